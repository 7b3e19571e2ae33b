//! Pure: a [`Plan`] → RFC 6902 JSONPatch against the reviewed pod. Parent paths are
//! created when absent; target mounts are added before the agent is prepended to
//! `initContainers`, so every index still points at the container it was decided for.

use std::collections::BTreeMap;

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, Patch, PatchOperation};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, EmptyDirVolumeSource, EnvVar, EnvVarSource, ExecAction,
    ObjectFieldSelector, Pod, PodSpec, Probe, ResourceRequirements, SeccompProfile,
    SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use secrets_injector_shared::keys;
use serde::Serialize;
use serde_json::Value;

use crate::containers::{AGENT_CONTAINER, AGENT_INIT_CONTAINER, container};
use crate::decide::{Layout, Plan, VOLUME_NAME};
use crate::identity::AgentUpdate;
use crate::template::AgentTemplate;

/// The agent binary in its image (the image's entrypoint).
pub const AGENT_BINARY: &str = "/secrets-injector-agent";

/// Extra seconds the startup probe waits beyond the agent's own startup timeout.
const PROBE_GRACE_SECS: u64 = 30;

/// The patch that injects `plan` into `pod`.
pub fn inject(pod: &Pod, plan: &Plan, template: &AgentTemplate) -> Patch {
    let mut ops = Ops::default();
    let empty = PodSpec::default();
    let spec = pod.spec.as_ref().unwrap_or(&empty);

    let status = [
        (keys::STATUS, keys::STATUS_INJECTED.to_string()),
        (keys::CONFIG_HASH, plan.config_hash.clone()),
    ];
    match &pod.metadata.annotations {
        None => {
            let map: BTreeMap<&str, String> = status.into_iter().collect();
            ops.add(&["metadata", "annotations"], &map);
        }
        Some(_) => {
            for (k, v) in status {
                ops.add(&["metadata", "annotations", k], &v);
            }
        }
    }

    let volume = Volume {
        name: VOLUME_NAME.to_string(),
        empty_dir: Some(EmptyDirVolumeSource {
            medium: Some("Memory".to_string()),
            size_limit: Some(Quantity(template.volume_size_limit.to_string())),
        }),
        ..Volume::default()
    };
    ops.append(&["spec", "volumes"], spec.volumes.is_some(), &volume);

    let app_mount = VolumeMount {
        name: VOLUME_NAME.to_string(),
        mount_path: plan.config.mount_path.clone(),
        read_only: Some(true),
        ..VolumeMount::default()
    };
    for slot in &plan.targets {
        let has_mounts = container(spec, *slot).is_some_and(|c| c.volume_mounts.is_some());
        let idx = slot.index.to_string();
        ops.append(
            &["spec", slot.list.field(), &idx, "volumeMounts"],
            has_mounts,
            &app_mount,
        );
    }

    for r in &plan.commands {
        let idx = r.slot.index.to_string();
        ops.add(&["spec", r.slot.list.field(), &idx, "command"], &r.command);
    }

    if plan.share_process_namespace {
        ops.add(&["spec", "shareProcessNamespace"], &true);
    }

    let first_init = first_agent(plan, template);
    match &spec.init_containers {
        Some(_) => ops.add(&["spec", "initContainers", "0"], &first_init),
        None => ops.add(&["spec", "initContainers"], &[first_init]),
    }
    if plan.layout == Layout::ClassicSidecar {
        let sidecar = agent(plan, template, AGENT_CONTAINER, false);
        ops.append(&["spec", "containers"], true, &sidecar);
    }
    ops.into_patch()
}

/// The agent that goes first in `initContainers`, as the layout wants it.
fn first_agent(plan: &Plan, template: &AgentTemplate) -> Container {
    match plan.layout {
        Layout::Init => agent(plan, template, AGENT_CONTAINER, false),
        Layout::NativeSidecar => {
            let mut c = agent(plan, template, AGENT_CONTAINER, false);
            c.restart_policy = Some("Always".to_string());
            c.startup_probe = Some(Probe {
                exec: Some(ExecAction {
                    command: Some(vec![AGENT_BINARY.to_string(), "probe".to_string()]),
                }),
                period_seconds: Some(1),
                failure_threshold: Some(
                    i32::try_from(
                        plan.config
                            .startup_timeout_secs
                            .saturating_add(PROBE_GRACE_SECS),
                    )
                    .unwrap_or(i32::MAX),
                ),
                ..Probe::default()
            });
            c
        }
        Layout::ClassicSidecar => agent(plan, template, AGENT_INIT_CONTAINER, true),
    }
}

/// The patch that copies identity env and token mounts into already-injected agents.
pub fn refresh(pod: &Pod, updates: &[AgentUpdate]) -> Patch {
    let mut ops = Ops::default();
    let empty = PodSpec::default();
    let spec = pod.spec.as_ref().unwrap_or(&empty);
    for u in updates {
        let Some(c) = container(spec, u.slot) else {
            continue;
        };
        let idx = u.slot.index.to_string();
        let base = ["spec", u.slot.list.field(), &idx];
        let (env, mounts) = (&u.identity.env, &u.identity.mounts);
        if !env.is_empty() {
            ops.append_all(&[&base[..], &["env"]].concat(), c.env.is_some(), env);
        }
        if !mounts.is_empty() {
            ops.append_all(
                &[&base[..], &["volumeMounts"]].concat(),
                c.volume_mounts.is_some(),
                mounts,
            );
        }
    }
    ops.into_patch()
}

/// One agent container; `once` makes a classic-style init agent fetch once and exit.
fn agent(plan: &Plan, template: &AgentTemplate, name: &str, once: bool) -> Container {
    let mut env = vec![literal(keys::CONFIG_ENV, &plan.config_json)];
    env.extend([
        field_ref(keys::POD_NAME_ENV, "metadata.name"),
        field_ref(keys::POD_NAMESPACE_ENV, "metadata.namespace"),
    ]);
    env.extend(plan.identity.env.iter().cloned());
    env.extend(template.env.iter().cloned());
    if once {
        env.push(literal(keys::ONCE_ENV, "true"));
    }
    let mut mounts = vec![VolumeMount {
        name: VOLUME_NAME.to_string(),
        mount_path: plan.config.mount_path.clone(),
        ..VolumeMount::default()
    }];
    mounts.extend(plan.identity.mounts.iter().cloned());
    let q = |s: &secrets_injector_shared::Quantity| Quantity(s.to_string());
    Container {
        name: name.to_string(),
        image: Some(template.image.clone()),
        image_pull_policy: Some(template.pull_policy.as_str().to_string()),
        env: Some(env),
        volume_mounts: Some(mounts),
        resources: Some(ResourceRequirements {
            requests: Some(BTreeMap::from([
                ("cpu".to_string(), q(&plan.cpu.request)),
                ("memory".to_string(), q(&plan.memory.request)),
            ])),
            limits: Some(BTreeMap::from([
                ("cpu".to_string(), q(&plan.cpu.limit)),
                ("memory".to_string(), q(&plan.memory.limit)),
            ])),
            ..ResourceRequirements::default()
        }),
        security_context: Some(SecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(plan.run_as.user),
            run_as_group: Some(plan.run_as.group),
            read_only_root_filesystem: Some(true),
            allow_privilege_escalation: Some(false),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".to_string()]),
                ..Capabilities::default()
            }),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".to_string(),
                ..SeccompProfile::default()
            }),
            ..SecurityContext::default()
        }),
        termination_message_path: Some("/dev/termination-log".to_string()),
        termination_message_policy: Some("FallbackToLogsOnError".to_string()),
        ..Container::default()
    }
}

fn literal(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value: Some(value.to_string()),
        value_from: None,
    }
}

/// Downward-API env: a field of the pod, resolved by the kubelet.
fn field_ref(name: &str, field_path: &str) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value: None,
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: field_path.to_string(),
                api_version: None,
            }),
            ..EnvVarSource::default()
        }),
    }
}

/// Accumulates `add` operations; pointer tokens are escaped by `jsonptr` (`~1` for `/`).
#[derive(Default)]
struct Ops(Vec<PatchOperation>);

impl Ops {
    fn add(&mut self, tokens: &[&str], value: &impl Serialize) {
        self.0.push(PatchOperation::Add(AddOperation {
            path: PointerBuf::from_tokens(tokens.iter().copied()),
            value: to_value(value),
        }));
    }

    /// Append to the array at `tokens`, creating it when `exists` is false.
    fn append(&mut self, tokens: &[&str], exists: bool, item: &impl Serialize) {
        self.append_all(tokens, exists, std::slice::from_ref(item));
    }

    fn append_all<T: Serialize>(&mut self, tokens: &[&str], exists: bool, items: &[T]) {
        if exists {
            let path: Vec<&str> = tokens.iter().copied().chain(["-"]).collect();
            for item in items {
                self.add(&path, item);
            }
        } else {
            self.add(tokens, &items);
        }
    }

    fn into_patch(self) -> Patch {
        Patch(self.0)
    }
}

fn to_value(v: &impl Serialize) -> Value {
    // k8s-openapi types and plain maps of strings always serialize.
    serde_json::to_value(v).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::{Decision, decide};
    use crate::settings::SidecarStyle;
    use serde_json::json;

    fn review(pod_json: &Value, s: &AgentTemplate) -> (Patch, Value) {
        let pod: Pod = serde_json::from_value(pod_json.clone()).unwrap();
        let patch = match decide(&pod, s) {
            Decision::Inject(plan) => inject(&pod, &plan, s),
            Decision::Refresh(u) => refresh(&pod, &u),
            other => panic!("expected a patch, got {other:?}"),
        };
        let mut out = pod_json.clone();
        json_patch::patch(&mut out, &patch).unwrap();
        (patch, out)
    }

    fn paths(p: &Patch) -> Vec<String> {
        p.0.iter().map(|op| op.path().to_string()).collect()
    }

    fn minimal(annotations: Value) -> Value {
        json!({"metadata": {"name": "p", "annotations": annotations},
               "spec": {"containers": [{"name": "app", "image": "x"}]}})
    }

    #[test]
    fn creates_parents_when_absent_and_escapes_annotation_keys() {
        let (patch, out) = review(
            &minimal(json!({"secrets-injector.io/secret-db": "prod/db"})),
            &AgentTemplate::default(),
        );
        assert_eq!(
            paths(&patch),
            vec![
                "/metadata/annotations/secrets-injector.io~1status",
                "/metadata/annotations/secrets-injector.io~1config-hash",
                "/spec/volumes",
                "/spec/containers/0/volumeMounts",
                "/spec/initContainers",
            ]
        );
        assert_eq!(out["metadata"]["annotations"][keys::STATUS], "injected");
        assert_eq!(
            out["spec"]["volumes"][0]["emptyDir"],
            json!({"medium": "Memory", "sizeLimit": "8Mi"})
        );
        assert_eq!(
            out["spec"]["containers"][0]["volumeMounts"][0],
            json!({"name": VOLUME_NAME, "mountPath": "/mnt/secrets", "readOnly": true})
        );
    }

    #[test]
    fn appends_to_existing_lists_and_mounts_before_prepending_the_agent() {
        let pod = json!({"metadata": {"name": "p", "annotations": {
                "secrets-injector.io/secret-db": "prod/db", "secrets-injector.io/containers": "app, setup"}},
            "spec": {
                "initContainers": [{"name": "setup", "image": "x", "volumeMounts": [{"name": "v", "mountPath": "/v"}]}],
                "containers": [{"name": "app", "image": "x", "volumeMounts": []}],
                "volumes": [{"name": "v", "emptyDir": {}}]}});
        let (patch, out) = review(&pod, &AgentTemplate::default());
        assert_eq!(
            paths(&patch)[2..],
            [
                "/spec/volumes/-",
                "/spec/containers/0/volumeMounts/-",
                "/spec/initContainers/0/volumeMounts/-",
                "/spec/initContainers/0",
            ]
        );
        let init = out["spec"]["initContainers"].as_array().unwrap();
        assert_eq!(init[0]["name"], AGENT_CONTAINER);
        assert_eq!(init[1]["name"], "setup");
        assert_eq!(
            init[1]["volumeMounts"][1]["mountPath"], "/mnt/secrets",
            "setup got the mount"
        );
        assert_eq!(
            init[0]["volumeMounts"].as_array().unwrap().len(),
            1,
            "agent got no app mount"
        );
        assert_eq!(out["spec"]["volumes"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn agent_container_is_hardened_and_has_no_command() {
        let (_, out) = review(
            &minimal(json!({"secrets-injector.io/secret-db": "prod/db"})),
            &AgentTemplate::default(),
        );
        let agent = &out["spec"]["initContainers"][0];
        assert!(agent.get("command").is_none() && agent.get("args").is_none());
        assert_eq!(
            agent["securityContext"],
            json!({"runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532,
                   "readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false,
                   "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}})
        );
        assert_eq!(agent["terminationMessagePolicy"], "FallbackToLogsOnError");
        assert_eq!(agent["terminationMessagePath"], "/dev/termination-log");
        assert_eq!(
            agent["volumeMounts"][0],
            json!({"name": VOLUME_NAME, "mountPath": "/mnt/secrets"})
        );
        assert_eq!(agent["env"][0]["name"], keys::CONFIG_ENV);
        assert!(agent.get("restartPolicy").is_none() && agent.get("startupProbe").is_none());
    }

    #[test]
    fn native_sidecar_has_restart_always_and_a_startup_probe() {
        let (_, out) = review(
            &minimal(
                json!({"secrets-injector.io/secret-db": "prod/db", "secrets-injector.io/mode": "sidecar",
                            "secrets-injector.io/startup-timeout": "2m"}),
            ),
            &AgentTemplate::default(),
        );
        let agent = &out["spec"]["initContainers"][0];
        assert_eq!(agent["restartPolicy"], "Always");
        assert_eq!(
            agent["startupProbe"],
            json!({"exec": {"command": ["/secrets-injector-agent", "probe"]}, "periodSeconds": 1, "failureThreshold": 150})
        );
        assert_eq!(out["spec"]["containers"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn classic_sidecar_adds_a_once_init_agent_and_a_refreshing_container() {
        let s = AgentTemplate {
            sidecar_style: SidecarStyle::Classic,
            ..AgentTemplate::default()
        };
        let (_, out) = review(
            &minimal(
                json!({"secrets-injector.io/secret-db": "prod/db", "secrets-injector.io/mode": "sidecar"}),
            ),
            &s,
        );
        let init = &out["spec"]["initContainers"][0];
        let side = &out["spec"]["containers"][1];
        assert_eq!(
            (init["name"].as_str(), side["name"].as_str()),
            (Some(AGENT_INIT_CONTAINER), Some(AGENT_CONTAINER))
        );
        let has_once = |c: &Value| {
            c["env"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["name"] == keys::ONCE_ENV && e["value"] == "true")
        };
        assert!(has_once(init) && !has_once(side));
        assert!(side.get("startupProbe").is_none() && side.get("restartPolicy").is_none());
    }

    #[test]
    fn share_process_namespace_is_set_for_signals() {
        let (patch, out) = review(
            &minimal(
                json!({"secrets-injector.io/secret-db": "prod/db", "secrets-injector.io/mode": "sidecar",
                            "secrets-injector.io/on-change": "signal:SIGHUP:app"}),
            ),
            &AgentTemplate::default(),
        );
        assert!(paths(&patch).contains(&"/spec/shareProcessNamespace".to_string()));
        assert_eq!(out["spec"]["shareProcessNamespace"], true);
    }

    #[test]
    fn refresh_creates_env_and_mounts_on_a_bare_agent() {
        let pod = json!({"metadata": {"name": "p", "annotations": {"secrets-injector.io/secret-db": "prod/db"}},
            "spec": {
                "initContainers": [{"name": AGENT_CONTAINER, "image": "agent"}],
                "containers": [{"name": "app", "image": "x",
                    "env": [{"name": "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "value": "/t/token"}],
                    "volumeMounts": [{"name": "t", "mountPath": "/t"}]}]}});
        let (patch, out) = review(&pod, &AgentTemplate::default());
        assert_eq!(
            paths(&patch),
            vec![
                "/spec/initContainers/0/env",
                "/spec/initContainers/0/volumeMounts"
            ]
        );
        let agent = &out["spec"]["initContainers"][0];
        assert_eq!(agent["env"][0]["value"], "/t/token");
        assert_eq!(
            agent["volumeMounts"][0],
            json!({"name": "t", "mountPath": "/t", "readOnly": true})
        );
    }
}
