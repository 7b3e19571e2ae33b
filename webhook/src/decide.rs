//! Pure: a pod and its annotations → skip, inject (a plan), refresh identity,
//! or deny. This module orchestrates; container addressing is in
//! `containers`, the borrowed identity in `identity`, uid/gid in `owner`, and
//! the operator's settings come typed from `template`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};
use secrets_injector_shared::annotations::Parsed;
use secrets_injector_shared::{
    AgentConfig, InjectionRequest, Mode, OnChange, Problems, keys, parse_annotations,
};
use sha2::{Digest, Sha256};

use crate::containers::{Slot, agent_slots, container, resolve_targets};
use crate::env_wrap::{Rewrite, rewrites};
use crate::identity::{AgentUpdate, Identity, identity_of, missing};
use crate::owner::{RunAs, file_owner, run_as};
use crate::settings::SidecarStyle;
use crate::template::{AgentTemplate, Resources};

/// Name of the in-memory volume the agent writes into.
pub const VOLUME_NAME: &str = "secrets-injector";

/// How the agent is laid out in the pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// First init container; fetches once.
    Init,
    /// First init container with `restartPolicy: Always` and a startup probe.
    NativeSidecar,
    /// A fetch-once init container plus a regular container that refreshes.
    ClassicSidecar,
}

/// Why a pod is left unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// Names no secrets, or opted out with `inject: "false"`.
    NoSecrets,
    /// The agent is already there and has all the identity env it can copy.
    AlreadyInjected,
}

/// Everything needed to patch a pod, decided from the pod alone.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub layout: Layout,
    /// The agent config, `owner` filled from the pod.
    pub config: AgentConfig,
    /// `config.to_json()`, as put in the agent's env.
    pub config_json: String,
    /// First 16 hex digits of the SHA-256 of `config_json`.
    pub config_hash: String,
    /// Containers that get the read-only mount (targets first in annotation order).
    pub targets: Vec<Slot>,
    /// Identity env and token mounts copied from the first target container.
    pub identity: Identity,
    pub run_as: RunAs,
    pub cpu: Resources,
    pub memory: Resources,
    /// Set `spec.shareProcessNamespace: true` (signal on change).
    pub share_process_namespace: bool,
    /// Target commands that start through the env wrapper.
    pub commands: Vec<Rewrite>,
    /// Go into the AdmissionResponse.
    pub warnings: Vec<String>,
}

/// What to do with a pod.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Skip(Skip),
    Inject(Box<Plan>),
    /// Already injected; another webhook added identity env to the app since (reinvocation).
    Refresh(Vec<AgentUpdate>),
    /// One message listing every problem.
    Deny(String),
}

/// Decide what to do with `pod` (pure).
pub fn decide(pod: &Pod, template: &AgentTemplate) -> Decision {
    let empty_spec = PodSpec::default();
    let spec = pod.spec.as_ref().unwrap_or(&empty_spec);
    let empty = BTreeMap::new();
    let annotations = pod.metadata.annotations.as_ref().unwrap_or(&empty);
    let Parsed {
        request,
        mut problems,
    } = parse_annotations(annotations);

    // The agent's presence, not the status annotation, marks a pod as injected: a pod copied
    // from a mutated one keeps the annotation but may have lost the containers. Annotations
    // changed after injection (a different config hash) are not re-injected either: a second
    // agent would collide by name, and the API server forbids changing a pod's containers anyway.
    let agents = agent_slots(spec);
    if !agents.is_empty() {
        return reinvoked(spec, request.as_ref(), &agents, template);
    }
    let Some(request) = request else {
        return if problems.is_empty() {
            Decision::Skip(Skip::NoSecrets)
        } else {
            Decision::Deny(problems.to_string())
        };
    };
    let targets = resolve_targets(spec, request.containers.as_deref(), &mut problems);
    check_pod(spec, &targets, request.mount_path(), &mut problems);
    let mut warnings = Vec::new();
    let commands = rewrites(
        spec,
        &targets,
        &request.env,
        request.mount_path(),
        &mut problems,
        &mut warnings,
    );
    if !problems.is_empty() || targets.is_empty() {
        return Decision::Deny(problems.to_string());
    }
    let mut plan = plan(pod, spec, request, targets, template);
    plan.commands = commands;
    plan.warnings.extend(warnings);
    Decision::Inject(Box::new(plan))
}

/// The plan for a pod whose annotations and targets are valid (`targets` not empty).
fn plan(
    pod: &Pod,
    spec: &PodSpec,
    request: InjectionRequest,
    targets: Vec<Slot>,
    template: &AgentTemplate,
) -> Plan {
    let none = Container::default();
    let first = targets
        .first()
        .and_then(|slot| container(spec, *slot))
        .unwrap_or(&none);
    let mut config = request.config;
    config.owner = file_owner(spec, &targets);
    let config_json = config.to_json();
    let config_hash = hash16(&config_json);
    let layout = match (config.mode, template.sidecar_style) {
        (Mode::Init, _) => Layout::Init,
        (Mode::Sidecar, SidecarStyle::Native) => Layout::NativeSidecar,
        (Mode::Sidecar, SidecarStyle::Classic) => Layout::ClassicSidecar,
    };
    let share_process_namespace = matches!(config.on_change, Some(OnChange::Signal { .. }))
        && spec.share_process_namespace != Some(true);
    Plan {
        layout,
        warnings: job_warnings(pod, layout),
        config,
        config_json,
        config_hash,
        targets,
        identity: identity_of(first, &template.env),
        run_as: run_as(spec, first, template.uid),
        cpu: template.cpu.with_request(request.agent_cpu.as_ref()),
        memory: template.memory.with_request(request.agent_memory.as_ref()),
        share_process_namespace,
        commands: Vec::new(),
    }
}

/// What the pod spec itself rules out: a mount path a target already uses,
/// our volume name taken, a Windows pod (the agent is Linux-only).
fn check_pod(spec: &PodSpec, targets: &[Slot], mount_path: &str, problems: &mut Problems) {
    for c in targets.iter().filter_map(|slot| container(spec, *slot)) {
        let clash = c
            .volume_mounts
            .iter()
            .flatten()
            .any(|m| m.mount_path.trim_end_matches('/') == mount_path);
        if clash {
            problems.push(
                keys::MOUNT_PATH,
                format!(
                    "{mount_path:?} is already a volumeMount path in container {:?}; choose another mount path",
                    c.name
                ),
            );
        }
    }
    if spec.volumes.iter().flatten().any(|v| v.name == VOLUME_NAME) {
        problems.push(
            "spec.volumes",
            format!("the pod already has a volume named {VOLUME_NAME:?}, which the webhook adds"),
        );
    }
    if let Some(field) = windows_field(spec) {
        problems.push(
            field,
            "the pod runs on Windows, and the secrets-injector agent runs on Linux only: \
             run the pod on Linux nodes, or remove its secrets-injector.io annotations",
        );
    }
}

/// The field that puts the pod on Windows nodes, if any.
fn windows_field(spec: &PodSpec) -> Option<&'static str> {
    if spec.os.as_ref().is_some_and(|os| os.name == "windows") {
        return Some("spec.os.name");
    }
    let selector = spec.node_selector.as_ref()?;
    (selector.get("kubernetes.io/os").map(String::as_str) == Some("windows"))
        .then_some("spec.nodeSelector")
}

/// Sidecars in Job pods: a classic sidecar never ends, so the Job never
/// completes; a native one ends with the app, but a failing one keeps the pod
/// running until its backoff gives up, where `init` would fail it at once.
fn job_warnings(pod: &Pod, layout: Layout) -> Vec<String> {
    let owned_by_job = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.kind == "Job" || o.kind == "CronJob");
    let warning = match layout {
        _ if !owned_by_job => return Vec::new(),
        Layout::Init => return Vec::new(),
        Layout::ClassicSidecar => format!(
            "secrets-injector: this pod belongs to a Job and the classic sidecar style keeps \
             running after the main containers end, so the Job will not complete; use \
             {}: init for Jobs, or the native sidecar style (Kubernetes >= 1.29)",
            keys::MODE
        ),
        Layout::NativeSidecar => format!(
            "secrets-injector: this pod belongs to a Job; {}: init is the right mode for \
             Jobs (secrets are fetched once before the job runs, and a failure fails the \
             pod at once instead of a sidecar retrying while the Job waits)",
            keys::MODE
        ),
    };
    vec![warning]
}

/// Reinvocation of an injected pod: copy identity env (and token mounts) the agent lacks.
/// Problems were reported at injection time; only the containers that exist matter here.
fn reinvoked(
    spec: &PodSpec,
    request: Option<&InjectionRequest>,
    agents: &[Slot],
    template: &AgentTemplate,
) -> Decision {
    let names = request.and_then(|r| r.containers.as_deref());
    let targets = resolve_targets(spec, names, &mut Problems::default());
    let Some(first) = targets.first().and_then(|slot| container(spec, *slot)) else {
        return Decision::Skip(Skip::AlreadyInjected);
    };
    let updates = missing(spec, agents, &identity_of(first, &template.env));
    if updates.is_empty() {
        Decision::Skip(Skip::AlreadyInjected)
    } else {
        Decision::Refresh(updates)
    }
}

fn hash16(s: &str) -> String {
    use std::fmt::Write as _;
    let digest = Sha256::digest(s.as_bytes());
    let mut out = String::with_capacity(16);
    for b in &digest[..8] {
        // Writing into a String cannot fail.
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containers::{AGENT_CONTAINER, List};
    use crate::template::AgentTemplate as Settings;
    use secrets_injector_shared::Owner;
    use serde_json::{Value, json};

    fn pod(v: Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    fn with(annotations: Value, spec: Value) -> Pod {
        pod(json!({"metadata": {"name": "p", "annotations": annotations}, "spec": spec}))
    }

    fn app(name: &str) -> Value {
        json!({"name": name, "image": "x"})
    }

    fn secret() -> Value {
        json!({"secrets-injector.io/secret-db": "prod/db"})
    }

    fn plan(p: &Pod, s: &Settings) -> Plan {
        match decide(p, s) {
            Decision::Inject(plan) => *plan,
            other => panic!("expected a plan, got {other:?}"),
        }
    }

    fn deny(p: &Pod) -> String {
        match decide(p, &Settings::default()) {
            Decision::Deny(m) => m,
            other => panic!("expected a deny, got {other:?}"),
        }
    }

    fn irsa_app() -> Value {
        json!({
            "name": "app", "image": "x",
            "env": [
                {"name": "AWS_REGION", "value": "eu-west-1"},
                {"name": "DB_PASSWORD", "value": "not-copied"},
                {"name": "AWS_ROLE_ARN", "value": "arn:aws:iam::1:role/a"},
                {"name": "AWS_WEB_IDENTITY_TOKEN_FILE", "value": "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"},
                {"name": "AWS_REGION", "value": "eu-west-2"},
                {"name": "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
            ],
            "volumeMounts": [
                {"name": "eks", "mountPath": "/var/run/secrets/eks.amazonaws.com"},
                {"name": "tok", "mountPath": "/var/run/secrets/eks.amazonaws.com/serviceaccount/"},
                {"name": "near", "mountPath": "/var/run/secrets/eks.amazonaws.com/service"}
            ]
        })
    }

    #[test]
    fn no_secrets_and_opt_out_are_skipped() {
        let s = Settings::default();
        let none = with(json!({}), json!({"containers": [app("a")]}));
        assert_eq!(decide(&none, &s), Decision::Skip(Skip::NoSecrets));
        let no_annotations =
            pod(json!({"metadata": {"name": "p"}, "spec": {"containers": [app("a")]}}));
        assert_eq!(decide(&no_annotations, &s), Decision::Skip(Skip::NoSecrets));
        let out = with(
            json!({"secrets-injector.io/inject": "false", "secrets-injector.io/secret-db": "bad ref"}),
            json!({"containers": [app("a")]}),
        );
        assert_eq!(decide(&out, &s), Decision::Skip(Skip::NoSecrets));
    }

    #[test]
    fn annotation_and_container_problems_share_one_message() {
        let msg = deny(&with(
            json!({"secrets-injector.io/secret-db": "has space", "secrets-injector.io/containers": "app, ghost"}),
            json!({"initContainers": [app("init")], "containers": [app("app")]}),
        ));
        assert!(
            msg.starts_with("secrets-injector: 2 invalid annotations"),
            "{msg}"
        );
        assert!(msg.contains("secret-db: \"has space\""), "{msg}");
        assert!(
            msg.contains("containers: container \"ghost\" does not exist in the pod (containers: app; init containers: init)"),
            "{msg}"
        );
    }

    #[test]
    fn mount_path_collision_is_denied_with_trailing_slashes_ignored() {
        let msg = deny(&with(
            json!({"secrets-injector.io/secret-db": "prod/db", "secrets-injector.io/mount-path": "/etc/app/"}),
            json!({"containers": [{"name": "app", "image": "x", "volumeMounts": [{"name": "v", "mountPath": "/etc/app/"}]}],
                   "volumes": [{"name": "v", "emptyDir": {}}]}),
        ));
        assert!(
            msg.contains(
                "mount-path: \"/etc/app\" is already a volumeMount path in container \"app\""
            ),
            "{msg}"
        );
        // Only target containers matter.
        let ok = with(
            json!({"secrets-injector.io/secret-db": "prod/db", "secrets-injector.io/containers": "app"}),
            json!({"containers": [app("app"), {"name": "other", "image": "x", "volumeMounts": [{"name": "v", "mountPath": "/mnt/secrets"}]}]}),
        );
        plan(&ok, &Settings::default());
    }

    #[test]
    fn a_pod_without_containers_or_with_our_volume_is_denied() {
        let msg = deny(&with(secret(), json!({"containers": []})));
        assert!(msg.contains("no app containers"), "{msg}");
        let msg = deny(&pod(json!({"metadata": {"annotations": secret()}})));
        assert!(msg.contains("no app containers"), "{msg}");
        let msg = deny(&with(
            secret(),
            json!({"containers": [app("a")], "volumes": [{"name": VOLUME_NAME, "emptyDir": {}}]}),
        ));
        assert!(
            msg.contains("already has a volume named \"secrets-injector\""),
            "{msg}"
        );
    }

    #[test]
    fn targets_default_to_app_containers_and_follow_the_annotation() {
        let spec = json!({"initContainers": [app("init")], "containers": [app("a"), app("b")]});
        let p = plan(&with(secret(), spec.clone()), &Settings::default());
        let app_slot = |i| Slot {
            list: List::App,
            index: i,
        };
        assert_eq!(p.targets, vec![app_slot(0), app_slot(1)]);
        let mut a = secret();
        a["secrets-injector.io/containers"] = json!("b, init, b");
        let p = plan(&with(a, spec), &Settings::default());
        assert_eq!(
            p.targets,
            vec![
                app_slot(1),
                Slot {
                    list: List::Init,
                    index: 0
                }
            ]
        );
    }

    #[test]
    fn identity_env_and_token_mounts_are_copied_from_the_first_target() {
        let spec = json!({"containers": [irsa_app(), app("second")]});
        let s = crate::settings::AgentFlags {
            agent_env: vec!["AWS_ROLE_ARN=arn:aws:iam::1:role/op".into()],
            ..Default::default()
        }
        .template()
        .unwrap();
        let p = plan(&with(secret(), spec), &s);
        let env: Vec<(&str, Option<&str>)> = p
            .identity
            .env
            .iter()
            .map(|e| (e.name.as_str(), e.value.as_deref()))
            .collect();
        assert_eq!(
            env,
            vec![
                (
                    "AWS_WEB_IDENTITY_TOKEN_FILE",
                    Some("/var/run/secrets/eks.amazonaws.com/serviceaccount/token")
                ),
                ("AWS_REGION", Some("eu-west-2")),
                ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", None),
            ],
            "identity only, later duplicates win, --agent-env wins"
        );
        assert_eq!(s.env.len(), 1);
        let mounts: Vec<(&str, Option<bool>)> = p
            .identity
            .mounts
            .iter()
            .map(|m| (m.name.as_str(), m.read_only))
            .collect();
        assert_eq!(
            mounts,
            vec![("tok", Some(true))],
            "longest directory prefix, read-only"
        );
    }

    #[test]
    fn agent_runs_as_the_app_and_owner_comes_from_fs_group() {
        let s = Settings::default();
        let p = plan(
            &with(
                secret(),
                json!({
                "securityContext": {"runAsUser": 1000, "runAsGroup": 3000, "fsGroup": 2000},
                "containers": [{"name": "a", "image": "x", "securityContext": {"runAsUser": 1001}}]}),
            ),
            &s,
        );
        assert_eq!((p.run_as.user, p.run_as.group), (1001, 3000));
        assert_eq!(
            p.config.owner,
            Some(Owner {
                uid: Some(1001),
                gid: Some(2000)
            })
        );
        assert!(
            p.config_json
                .contains("\"owner\":{\"uid\":1001,\"gid\":2000}")
        );

        let p = plan(&with(secret(), json!({"containers": [app("a")]})), &s);
        assert_eq!((p.run_as.user, p.run_as.group), (65532, 65532));
        assert_eq!(p.config.owner, None);

        let p = plan(
            &with(
                secret(),
                json!({"securityContext": {"runAsUser": 0, "runAsGroup": 500},
                                   "containers": [app("a")]}),
            ),
            &s,
        );
        assert_eq!((p.run_as.user, p.run_as.group), (65532, 500), "never root");
        assert_eq!(
            p.config.owner,
            Some(Owner {
                uid: None,
                gid: Some(500)
            })
        );
    }

    #[test]
    fn files_are_owned_only_by_what_every_target_shares() {
        let s = Settings::default();
        let two = |pod_sc: Value, a: Value, b: Value| {
            plan(
                &with(
                    secret(),
                    json!({"securityContext": pod_sc, "containers": [
                        {"name": "a", "image": "x", "securityContext": a},
                        {"name": "b", "image": "x", "securityContext": b}]}),
                ),
                &s,
            )
        };
        // Different uids, no common group: nobody may own the files (0444).
        let p = two(
            json!({}),
            json!({"runAsUser": 1000}),
            json!({"runAsUser": 2000}),
        );
        assert_eq!(p.config.owner, None);
        assert_eq!(
            p.run_as.user, 1000,
            "the agent still runs as the first target"
        );
        // Different uids, a shared fsGroup: the group owns them.
        let p = two(
            json!({"fsGroup": 4000}),
            json!({"runAsUser": 1000}),
            json!({"runAsUser": 2000}),
        );
        assert_eq!(
            p.config.owner,
            Some(Owner {
                uid: None,
                gid: Some(4000)
            })
        );
        // Same uid and runAsGroup everywhere: both.
        let p = two(
            json!({"runAsGroup": 3000}),
            json!({"runAsUser": 1000}),
            json!({"runAsUser": 1000}),
        );
        assert_eq!(
            p.config.owner,
            Some(Owner {
                uid: Some(1000),
                gid: Some(3000)
            })
        );
        // runAsGroup 0 is not an owner the agent can use.
        let p = two(json!({"runAsGroup": 0}), json!({}), json!({}));
        assert_eq!(p.config.owner, None);
    }

    #[test]
    fn resource_annotations_override_requests_and_raise_limits() {
        let s = Settings::default();
        let mut a = secret();
        a["secrets-injector.io/agent-cpu"] = json!("250m");
        a["secrets-injector.io/agent-memory"] = json!("20Mi");
        let p = plan(&with(a, json!({"containers": [app("a")]})), &s);
        assert_eq!(
            (p.cpu.request.as_str(), p.cpu.limit.as_str()),
            ("250m", "250m")
        );
        assert_eq!(
            (p.memory.request.as_str(), p.memory.limit.as_str()),
            ("20Mi", "32Mi")
        );
        let p = plan(&with(secret(), json!({"containers": [app("a")]})), &s);
        assert_eq!(
            (p.cpu.request.as_str(), p.cpu.limit.as_str()),
            ("10m", "100m")
        );
    }

    #[test]
    fn layout_follows_mode_and_style_and_sidecars_in_jobs_warn() {
        let owned = |mode: &str, kind: &str| {
            pod(
                json!({"metadata": {"name": "j", "annotations": {"secrets-injector.io/secret-db": "prod/db", "secrets-injector.io/mode": mode},
                "ownerReferences": [{"apiVersion": "batch/v1", "kind": kind, "name": "j", "uid": "u"}]},
                "spec": {"containers": [app("a")]}}),
            )
        };
        let native = Settings::default();
        let classic = Settings {
            sidecar_style: SidecarStyle::Classic,
            ..Settings::default()
        };
        assert_eq!(plan(&owned("init", "Job"), &classic).layout, Layout::Init);
        assert!(plan(&owned("init", "Job"), &classic).warnings.is_empty());
        assert!(plan(&owned("init", "Job"), &native).warnings.is_empty());
        for kind in ["Job", "CronJob"] {
            let p = plan(&owned("sidecar", kind), &native);
            assert_eq!(p.layout, Layout::NativeSidecar);
            assert_eq!(p.warnings.len(), 1, "{kind}");
            assert!(
                p.warnings[0].contains("belongs to a Job")
                    && p.warnings[0].contains("secrets-injector.io/mode: init is the right mode"),
                "{:?}",
                p.warnings
            );
        }
        let p = plan(&owned("sidecar", "Job"), &classic);
        assert_eq!(p.layout, Layout::ClassicSidecar);
        assert!(
            p.warnings[0].contains("the Job will not complete"),
            "{:?}",
            p.warnings
        );
        let mut not_job = owned("sidecar", "Job");
        not_job.metadata.owner_references = None;
        assert!(plan(&not_job, &classic).warnings.is_empty());
        assert!(plan(&not_job, &native).warnings.is_empty());
        let replica_set = owned("sidecar", "ReplicaSet");
        assert!(plan(&replica_set, &native).warnings.is_empty());
    }

    #[test]
    fn signal_on_change_shares_the_process_namespace_once() {
        let mut a = secret();
        a["secrets-injector.io/mode"] = json!("sidecar");
        a["secrets-injector.io/on-change"] = json!("signal:SIGHUP:nginx");
        let s = Settings::default();
        assert!(
            plan(&with(a.clone(), json!({"containers": [app("a")]})), &s).share_process_namespace
        );
        let already = json!({"shareProcessNamespace": true, "containers": [app("a")]});
        assert!(!plan(&with(a.clone(), already), &s).share_process_namespace);
        a["secrets-injector.io/on-change"] = json!("http:http://127.0.0.1:8080/reload");
        assert!(!plan(&with(a, json!({"containers": [app("a")]})), &s).share_process_namespace);
    }

    #[test]
    fn config_hash_is_the_sha256_prefix_of_the_config() {
        let s = Settings::default();
        let p = plan(&with(secret(), json!({"containers": [app("a")]})), &s);
        assert_eq!(p.config_hash.len(), 16);
        assert!(p.config_hash.bytes().all(|b| b.is_ascii_hexdigit()));
        let full = format!("{:x}", Sha256::digest(p.config_json.as_bytes()));
        assert_eq!(p.config_hash, full[..16]);
        let mut other = secret();
        other["secrets-injector.io/secret-db"] = json!("prod/other");
        assert_ne!(
            plan(&with(other, json!({"containers": [app("a")]})), &s).config_hash,
            p.config_hash
        );
    }

    #[test]
    fn an_injected_pod_is_skipped_or_gets_only_new_identity() {
        let s = Settings::default();
        let agent = json!({"name": AGENT_CONTAINER, "image": "agent",
            "env": [{"name": "SECRETS_INJECTOR_CONFIG", "value": "{}"}, {"name": "AWS_REGION", "value": "x"}],
            "volumeMounts": [{"name": VOLUME_NAME, "mountPath": "/mnt/secrets"}]});
        // Annotations changed since injection (even invalid now): still never injected twice.
        let changed = with(
            json!({"secrets-injector.io/secret-db": "has space", keys::STATUS: "injected", keys::CONFIG_HASH: "0000"}),
            json!({"initContainers": [agent.clone()], "containers": [app("a")]}),
        );
        assert_eq!(decide(&changed, &s), Decision::Skip(Skip::AlreadyInjected));

        let reinvoked = with(
            secret(),
            json!({"initContainers": [agent], "containers": [irsa_app()]}),
        );
        let Decision::Refresh(updates) = decide(&reinvoked, &s) else {
            panic!("expected a refresh")
        };
        assert_eq!(updates.len(), 1);
        assert_eq!(
            updates[0].slot,
            Slot {
                list: List::Init,
                index: 0
            }
        );
        let names: Vec<&str> = updates[0]
            .identity
            .env
            .iter()
            .map(|e| e.name.as_str())
            .collect();
        assert_eq!(
            names,
            vec![
                "AWS_ROLE_ARN",
                "AWS_WEB_IDENTITY_TOKEN_FILE",
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"
            ],
            "AWS_REGION is already there"
        );
        assert_eq!(updates[0].identity.mounts.len(), 1);
    }

    #[test]
    fn a_status_annotation_without_the_agent_is_injected() {
        let mut a = secret();
        a[keys::STATUS] = json!("injected");
        plan(
            &with(a, json!({"containers": [app("a")]})),
            &Settings::default(),
        );
    }

    #[test]
    fn windows_pods_that_name_secrets_are_denied() {
        for spec in [
            json!({"os": {"name": "windows"}, "containers": [app("a")]}),
            json!({"nodeSelector": {"kubernetes.io/os": "windows"}, "containers": [app("a")]}),
        ] {
            let msg = deny(&with(secret(), spec.clone()));
            assert!(
                msg.contains("runs on Windows") && msg.contains("Linux only"),
                "{msg}"
            );
            assert!(
                msg.contains("spec.os.name") || msg.contains("spec.nodeSelector"),
                "{msg}"
            );
            let no_secrets = with(json!({}), spec);
            assert_eq!(
                decide(&no_secrets, &Settings::default()),
                Decision::Skip(Skip::NoSecrets)
            );
        }
        let linux = json!({"os": {"name": "linux"}, "nodeSelector": {"kubernetes.io/os": "linux"},
                           "containers": [app("a")]});
        plan(&with(secret(), linux), &Settings::default());
    }

    #[test]
    fn env_rewrites_commands_once_and_keeps_args() {
        let mut a = secret();
        a["secrets-injector.io/format-db"] = json!("files");
        a["secrets-injector.io/env-PASS"] = json!("db/password");
        let spec = json!({"containers": [{"name": "a", "image": "x",
            "command": ["/bin/app", "-v"], "args": ["serve"]}]});
        let p = plan(&with(a.clone(), spec), &Settings::default());
        assert!(p.config.exec_wrapper);
        assert_eq!(p.commands.len(), 1);
        assert_eq!(
            p.commands[0].command,
            vec![
                "/mnt/secrets/..secrets-injector-env",
                "--mount-path",
                "/mnt/secrets",
                "--env",
                "PASS=db/password",
                "--",
                "/bin/app",
                "-v"
            ]
        );
        // A command that already starts with the wrapper (a pod copied from a
        // mutated one, without its agent) is not wrapped a second time.
        let wrapped = json!({"containers": [{"name": "a", "image": "x",
            "command": p.commands[0].command.clone()}]});
        let again = plan(&with(a.clone(), wrapped), &Settings::default());
        assert!(again.commands.is_empty());
        // Without env annotations nothing is rewritten and no wrapper is needed.
        let p = plan(
            &with(secret(), json!({"containers": [app("a")]})),
            &Settings::default(),
        );
        assert!(p.commands.is_empty() && !p.config.exec_wrapper);
    }

    #[test]
    fn env_without_any_secret_is_denied_not_ignored() {
        let msg = deny(&with(
            json!({"secrets-injector.io/env-PASS": "db/password"}),
            json!({"containers": [{"name": "a", "image": "x", "command": ["/a"]}]}),
        ));
        assert!(
            msg.contains("env-PASS: \"db/password\" is not a file"),
            "{msg}"
        );
    }
}
