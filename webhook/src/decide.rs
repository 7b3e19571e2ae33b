//! Pure: a pod and its annotations → skip, inject (a plan), refresh identity, or deny (DESIGN §2–4).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, EnvVar, Pod, PodSpec, VolumeMount};
use secrets_injector_shared::{
    AgentConfig, Mode, OnChange, Owner, Problems, keys, parse_annotations,
};
use sha2::{Digest, Sha256};

use crate::settings::{Settings, SidecarStyle};

/// Name of the injected agent (init container, native sidecar, or classic sidecar).
pub const AGENT_CONTAINER: &str = "secrets-injector-agent";
/// Name of the classic style's first-fetch init container (names are unique per pod).
pub const AGENT_INIT_CONTAINER: &str = "secrets-injector-agent-init";
/// Name of the in-memory volume the agent writes into.
pub const VOLUME_NAME: &str = "secrets-injector";
/// The agent binary in its image (the image's entrypoint).
pub const AGENT_BINARY: &str = "/secrets-injector-agent";
/// Env telling a classic init agent to fetch once and exit.
pub const ONCE_ENV: &str = "SECRETS_INJECTOR_ONCE";
/// Identity env copied from the first target container into the agent (DESIGN §4).
pub const IDENTITY_ENV: [&str; 7] = [
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_STS_REGIONAL_ENDPOINTS",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
];
/// Identity env naming token files whose projected volume mounts the agent needs too.
const TOKEN_FILE_ENV: [&str; 2] = [
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
];

/// Which container list of the pod spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum List {
    Init,
    App,
}

impl List {
    /// Field name in the pod spec, for JSON pointers.
    pub fn field(self) -> &'static str {
        match self {
            List::Init => "initContainers",
            List::App => "containers",
        }
    }
}

/// A container by position, as found in the reviewed pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub list: List,
    pub index: usize,
}

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
    /// Identity env copied from the first target container.
    pub identity_env: Vec<EnvVar>,
    /// Mounts of the projected token volumes the identity env points into.
    pub identity_mounts: Vec<VolumeMount>,
    /// `--agent-env`, validated.
    pub extra_env: Vec<EnvVar>,
    pub run_as_user: i64,
    pub run_as_group: i64,
    pub cpu_request: String,
    pub cpu_limit: String,
    pub memory_request: String,
    pub memory_limit: String,
    /// Set `spec.shareProcessNamespace: true` (signal on change).
    pub share_process_namespace: bool,
    /// Go into the AdmissionResponse.
    pub warnings: Vec<String>,
}

/// Identity env and token mounts to add to one already-injected agent container.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentUpdate {
    pub slot: Slot,
    pub env: Vec<EnvVar>,
    pub mounts: Vec<VolumeMount>,
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
pub fn decide(pod: &Pod, settings: &Settings) -> Decision {
    let empty_spec = PodSpec::default();
    let spec = pod.spec.as_ref().unwrap_or(&empty_spec);
    let empty = BTreeMap::new();
    let annotations = pod.metadata.annotations.as_ref().unwrap_or(&empty);
    let extra_env = match settings.agent_env_vars() {
        Ok(env) => env,
        Err(e) => return Decision::Deny(format!("secrets-injector is misconfigured: {e}")),
    };

    // The agent's presence, not the status annotation, marks a pod as injected: a pod copied
    // from a mutated one keeps the annotation but may have lost the containers. Annotations
    // changed after injection (a different config hash) are not re-injected either: a second
    // agent would collide by name, and the API server forbids changing a pod's containers anyway.
    let agents = agent_slots(spec);
    if !agents.is_empty() {
        return refresh(spec, annotations, &agents, &extra_env);
    }

    let (request, mut problems) = match parse_annotations(annotations) {
        Ok(None) => return Decision::Skip(Skip::NoSecrets),
        Ok(Some(r)) => (Some(r), Problems::default()),
        Err(p) => (None, p),
    };
    let names = match &request {
        Some(r) => r.containers.clone(),
        None => raw_container_names(annotations),
    };
    let targets = resolve_targets(spec, names.as_deref(), &mut problems);
    let mount_path = match &request {
        Some(r) => r.mount_path().to_string(),
        None => raw_mount_path(annotations),
    };
    for slot in &targets {
        let c = container(spec, *slot);
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
    let (Some(request), Some(first_slot), true) = (request, targets.first(), problems.is_empty())
    else {
        return Decision::Deny(problems.to_string());
    };

    let first = container(spec, *first_slot);
    let pod_sc = spec.security_context.as_ref();
    // A container's uid/gid: its own securityContext, else the pod's.
    let uid_of = |c: &Container| {
        c.security_context
            .as_ref()
            .and_then(|s| s.run_as_user)
            .or_else(|| pod_sc.and_then(|s| s.run_as_user))
    };
    let gid_of = |c: &Container| {
        c.security_context
            .as_ref()
            .and_then(|s| s.run_as_group)
            .or_else(|| pod_sc.and_then(|s| s.run_as_group))
    };
    let app_uid = uid_of(first);
    let app_gid = gid_of(first);
    let fs_group = pod_sc.and_then(|s| s.fs_group);
    let non_root = |id: Option<i64>| id.filter(|v| *v > 0);
    let as_u32 = |id: Option<i64>| id.and_then(|v| u32::try_from(v).ok());

    let mut config = request.config.clone();
    // Files are 0440 only for an owner every target container shares: the
    // uid (all the same), the pod's fsGroup (every container's supplementary
    // group) or a runAsGroup they all have. Root counts as unknown: the agent
    // never runs as root, so it cannot own files as root.
    let shared = |id: &dyn Fn(&Container) -> Option<i64>| {
        let mut ids = targets
            .iter()
            .map(|slot| non_root(id(container(spec, *slot))));
        let first = ids.next().flatten();
        ids.all(|other| other == first).then_some(first).flatten()
    };
    let owner = Owner {
        uid: as_u32(shared(&uid_of)),
        gid: as_u32(non_root(fs_group).or_else(|| shared(&gid_of))),
    };
    config.owner = (owner.uid.is_some() || owner.gid.is_some()).then_some(owner);
    let config_json = config.to_json();
    let config_hash = hash16(&config_json);

    let (identity_env, identity_mounts) = identity_of(first, &extra_env);
    let layout = match (config.mode, settings.sidecar_style) {
        (Mode::Init, _) => Layout::Init,
        (Mode::Sidecar, SidecarStyle::Native) => Layout::NativeSidecar,
        (Mode::Sidecar, SidecarStyle::Classic) => Layout::ClassicSidecar,
    };
    let mut warnings = Vec::new();
    let owned_by_job = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.kind == "Job");
    if layout == Layout::ClassicSidecar && owned_by_job {
        warnings.push(format!(
            "secrets-injector: this pod belongs to a Job and the classic sidecar style keeps \
             running after the main containers end, so the Job will not complete; use \
             {}: init for Jobs, or the native sidecar style (Kubernetes >= 1.29)",
            keys::MODE
        ));
    }
    let (cpu_request, cpu_limit) = resources(
        request.agent_cpu.as_deref(),
        &settings.agent_cpu_request,
        &settings.agent_cpu_limit,
    );
    let (memory_request, memory_limit) = resources(
        request.agent_memory.as_deref(),
        &settings.agent_memory_request,
        &settings.agent_memory_limit,
    );
    let share_process_namespace = matches!(config.on_change, Some(OnChange::Signal { .. }))
        && spec.share_process_namespace != Some(true);

    Decision::Inject(Box::new(Plan {
        layout,
        config,
        config_json,
        config_hash,
        targets,
        identity_env,
        identity_mounts,
        extra_env,
        run_as_user: non_root(app_uid).unwrap_or(settings.agent_uid),
        run_as_group: non_root(app_gid).unwrap_or(settings.agent_uid),
        cpu_request,
        cpu_limit,
        memory_request,
        memory_limit,
        share_process_namespace,
        warnings,
    }))
}

/// Reinvocation of an injected pod: copy identity env (and token mounts) the agent lacks.
fn refresh(
    spec: &PodSpec,
    annotations: &BTreeMap<String, String>,
    agents: &[Slot],
    extra_env: &[EnvVar],
) -> Decision {
    let names = raw_container_names(annotations);
    // Problems were reported at injection time; here only the containers that exist matter.
    let mut ignored = Problems::default();
    let targets = resolve_targets(spec, names.as_deref(), &mut ignored);
    let Some(first) = targets.first() else {
        return Decision::Skip(Skip::AlreadyInjected);
    };
    let (env, mounts) = identity_of(container(spec, *first), extra_env);
    let updates: Vec<AgentUpdate> = agents
        .iter()
        .map(|slot| {
            let agent = container(spec, *slot);
            let has_env = |n: &str| agent.env.iter().flatten().any(|e| e.name == n);
            let has_mount = |p: &str| {
                agent
                    .volume_mounts
                    .iter()
                    .flatten()
                    .any(|m| m.mount_path == p)
            };
            AgentUpdate {
                slot: *slot,
                env: env.iter().filter(|e| !has_env(&e.name)).cloned().collect(),
                mounts: mounts
                    .iter()
                    .filter(|m| !has_mount(&m.mount_path))
                    .cloned()
                    .collect(),
            }
        })
        .filter(|u| !u.env.is_empty() || !u.mounts.is_empty())
        .collect();
    if updates.is_empty() {
        Decision::Skip(Skip::AlreadyInjected)
    } else {
        Decision::Refresh(updates)
    }
}

fn container(spec: &PodSpec, slot: Slot) -> &Container {
    match slot.list {
        List::Init => &spec.init_containers.as_deref().unwrap_or_default()[slot.index],
        List::App => &spec.containers[slot.index],
    }
}

fn slots(spec: &PodSpec) -> impl Iterator<Item = (Slot, &Container)> {
    let init = spec
        .init_containers
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, c)| {
            (
                Slot {
                    list: List::Init,
                    index: i,
                },
                c,
            )
        });
    let app = spec.containers.iter().enumerate().map(|(i, c)| {
        (
            Slot {
                list: List::App,
                index: i,
            },
            c,
        )
    });
    init.chain(app)
}

fn is_agent(name: &str) -> bool {
    name == AGENT_CONTAINER || name == AGENT_INIT_CONTAINER
}

fn agent_slots(spec: &PodSpec) -> Vec<Slot> {
    slots(spec)
        .filter(|(_, c)| is_agent(&c.name))
        .map(|(s, _)| s)
        .collect()
}

/// Named containers (app list first, then init) in annotation order; default: all app containers.
fn resolve_targets(spec: &PodSpec, names: Option<&[String]>, p: &mut Problems) -> Vec<Slot> {
    let targets: Vec<Slot> = match names {
        None => slots(spec)
            .filter(|(s, c)| s.list == List::App && !is_agent(&c.name))
            .map(|(s, _)| s)
            .collect(),
        Some(names) => {
            let mut found = Vec::new();
            for name in names {
                let hit = slots(spec)
                    .filter(|(_, c)| &c.name == name)
                    .min_by_key(|(s, _)| s.list == List::Init)
                    .map(|(s, _)| s);
                match hit {
                    Some(s) if !found.contains(&s) => found.push(s),
                    Some(_) => {}
                    None => p.push(
                        keys::CONTAINERS,
                        format!(
                            "container {name:?} does not exist in the pod (containers: {}; init containers: {})",
                            list_names(&spec.containers),
                            list_names(spec.init_containers.as_deref().unwrap_or_default()),
                        ),
                    ),
                }
            }
            found
        }
    };
    if targets.is_empty() && names.is_none() {
        p.push(
            keys::CONTAINERS,
            "the pod has no app containers to mount the secrets into",
        );
    }
    targets
}

fn list_names(cs: &[Container]) -> String {
    if cs.is_empty() {
        return "none".to_string();
    }
    cs.iter()
        .map(|c| c.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The `containers` annotation read leniently, for reports when other annotations are invalid.
fn raw_container_names(a: &BTreeMap<String, String>) -> Option<Vec<String>> {
    let v = a.get(keys::CONTAINERS)?.trim();
    let names: Vec<String> = v
        .split(',')
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty())
        .collect();
    (!names.is_empty()).then_some(names)
}

fn raw_mount_path(a: &BTreeMap<String, String>) -> String {
    a.get(keys::MOUNT_PATH)
        .map(|v| v.trim().trim_end_matches('/'))
        .filter(|v| v.starts_with('/'))
        .unwrap_or(secrets_injector_shared::config::DEFAULT_MOUNT_PATH)
        .to_string()
}

/// Identity env of `app` (operator's `--agent-env` wins) and the mounts its token files live in.
fn identity_of(app: &Container, extra_env: &[EnvVar]) -> (Vec<EnvVar>, Vec<VolumeMount>) {
    let mut env: Vec<EnvVar> = Vec::new();
    for e in app.env.iter().flatten() {
        if IDENTITY_ENV.contains(&e.name.as_str()) && !extra_env.iter().any(|x| x.name == e.name) {
            // Later duplicates win, as in the kubelet.
            env.retain(|x| x.name != e.name);
            env.push(e.clone());
        }
    }
    let mut mounts: Vec<VolumeMount> = Vec::new();
    for e in &env {
        let Some(file) = e
            .value
            .as_deref()
            .filter(|_| TOKEN_FILE_ENV.contains(&e.name.as_str()))
        else {
            continue;
        };
        let best = app
            .volume_mounts
            .iter()
            .flatten()
            .filter(|m| {
                let dir = m.mount_path.trim_end_matches('/');
                file.strip_prefix(dir)
                    .is_some_and(|rest| rest.starts_with('/'))
            })
            .max_by_key(|m| m.mount_path.len());
        if let Some(m) = best
            && !mounts.iter().any(|x| x.mount_path == m.mount_path)
        {
            mounts.push(VolumeMount {
                read_only: Some(true),
                ..m.clone()
            });
        }
    }
    (env, mounts)
}

/// Request from the annotation or the default; the limit is raised to at least the request.
fn resources(annotation: Option<&str>, default_request: &str, limit: &str) -> (String, String) {
    let request = annotation.unwrap_or(default_request).to_string();
    let limit = match (quantity(&request), quantity(limit)) {
        (Some(r), Some(l)) if l >= r => limit.to_string(),
        _ => request.clone(),
    };
    (request, limit)
}

/// A Kubernetes quantity as a number, for comparing request and limit.
fn quantity(s: &str) -> Option<f64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let scale = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        e => 10f64.powi(e.strip_prefix(['e', 'E'])?.parse().ok()?),
    };
    Some(n * scale)
}

fn hash16(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
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
        let s = Settings {
            agent_env: vec!["AWS_ROLE_ARN=arn:aws:iam::1:role/op".into()],
            ..Settings::default()
        };
        let p = plan(&with(secret(), spec), &s);
        let env: Vec<(&str, Option<&str>)> = p
            .identity_env
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
        assert_eq!(p.extra_env.len(), 1);
        let mounts: Vec<(&str, Option<bool>)> = p
            .identity_mounts
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
        assert_eq!((p.run_as_user, p.run_as_group), (1001, 3000));
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
        assert_eq!((p.run_as_user, p.run_as_group), (65532, 65532));
        assert_eq!(p.config.owner, None);

        let p = plan(
            &with(
                secret(),
                json!({"securityContext": {"runAsUser": 0, "runAsGroup": 500},
                                   "containers": [app("a")]}),
            ),
            &s,
        );
        assert_eq!((p.run_as_user, p.run_as_group), (65532, 500), "never root");
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
            p.run_as_user, 1000,
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
            (p.cpu_request.as_str(), p.cpu_limit.as_str()),
            ("250m", "250m")
        );
        assert_eq!(
            (p.memory_request.as_str(), p.memory_limit.as_str()),
            ("20Mi", "32Mi")
        );
        let p = plan(&with(secret(), json!({"containers": [app("a")]})), &s);
        assert_eq!(
            (p.cpu_request.as_str(), p.cpu_limit.as_str()),
            ("10m", "100m")
        );
    }

    #[test]
    fn quantities_compare_across_suffixes() {
        assert_eq!(quantity("250m"), Some(0.25));
        assert_eq!(quantity("1"), Some(1.0));
        assert_eq!(quantity("64Mi"), Some(64.0 * 1024.0 * 1024.0));
        assert_eq!(quantity("1e3"), Some(1000.0));
        assert!(quantity("1Gi") > quantity("1G"));
        assert_eq!(quantity("lots"), None);
        assert_eq!(resources(None, "1", "500m"), ("1".into(), "1".into()));
    }

    #[test]
    fn layout_follows_mode_and_style_and_only_classic_jobs_warn() {
        let job_owned = |mode: &str| {
            pod(
                json!({"metadata": {"name": "j", "annotations": {"secrets-injector.io/secret-db": "prod/db", "secrets-injector.io/mode": mode},
                "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "j", "uid": "u"}]},
                "spec": {"containers": [app("a")]}}),
            )
        };
        let native = Settings::default();
        let classic = Settings {
            sidecar_style: SidecarStyle::Classic,
            ..Settings::default()
        };
        assert_eq!(plan(&job_owned("init"), &classic).layout, Layout::Init);
        assert!(plan(&job_owned("init"), &classic).warnings.is_empty());
        let p = plan(&job_owned("sidecar"), &native);
        assert_eq!((p.layout, p.warnings.len()), (Layout::NativeSidecar, 0));
        let p = plan(&job_owned("sidecar"), &classic);
        assert_eq!(p.layout, Layout::ClassicSidecar);
        assert!(
            p.warnings[0].contains("belongs to a Job"),
            "{:?}",
            p.warnings
        );
        let mut not_job = job_owned("sidecar");
        not_job.metadata.owner_references = None;
        assert!(plan(&not_job, &classic).warnings.is_empty());
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
        let names: Vec<&str> = updates[0].env.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            vec![
                "AWS_ROLE_ARN",
                "AWS_WEB_IDENTITY_TOKEN_FILE",
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"
            ],
            "AWS_REGION is already there"
        );
        assert_eq!(updates[0].mounts.len(), 1);
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
    fn misconfigured_agent_env_denies_without_a_panic() {
        let s = Settings {
            agent_env: vec!["BROKEN".into()],
            ..Settings::default()
        };
        let Decision::Deny(m) = decide(&with(secret(), json!({"containers": [app("a")]})), &s)
        else {
            panic!("expected a deny")
        };
        assert!(
            m.contains("misconfigured") && m.contains("--agent-env"),
            "{m}"
        );
    }
}
