//! Pure: a [`Plan`] → RFC 6902 JSONPatch against the reviewed pod. Parent paths are
//! created when absent; target mounts are added before the agent is prepended to
//! `initContainers`, so every index still points at the container it was decided for.

use std::collections::BTreeMap;

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, Patch, PatchOperation};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, EmptyDirVolumeSource, EnvVar, ExecAction, Pod, Probe,
    ResourceRequirements, SeccompProfile, SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use secrets_injector_shared::keys;
use serde::Serialize;
use serde_json::Value;

use crate::decide::{
    AGENT_BINARY, AGENT_CONTAINER, AGENT_INIT_CONTAINER, AgentUpdate, Layout, List, ONCE_ENV, Plan,
    Slot, VOLUME_NAME,
};
use crate::settings::Settings;

/// Extra seconds the startup probe waits beyond the agent's own startup timeout.
const PROBE_GRACE_SECS: u64 = 30;

/// The patch that injects `plan` into `pod`.
pub fn inject(pod: &Pod, plan: &Plan, settings: &Settings) -> Patch {
    let mut ops = Ops::default();
    let spec = pod.spec.clone().unwrap_or_default();

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
            size_limit: Some(Quantity(settings.volume_size_limit.clone())),
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
        let c = container_at(&spec, *slot);
        let idx = slot.index.to_string();
        ops.append(
            &["spec", slot.list.field(), &idx, "volumeMounts"],
            c.volume_mounts.is_some(),
            &app_mount,
        );
    }

    if plan.share_process_namespace {
        ops.add(&["spec", "shareProcessNamespace"], &true);
    }

    let first_init = match plan.layout {
        Layout::Init => agent(plan, settings, AGENT_CONTAINER, false),
        Layout::NativeSidecar => {
            let mut c = agent(plan, settings, AGENT_CONTAINER, false);
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
        Layout::ClassicSidecar => agent(plan, settings, AGENT_INIT_CONTAINER, true),
    };
    match &spec.init_containers {
        Some(_) => ops.add(&["spec", "initContainers", "0"], &first_init),
        None => ops.add(&["spec", "initContainers"], &[first_init]),
    }
    if plan.layout == Layout::ClassicSidecar {
        let sidecar = agent(plan, settings, AGENT_CONTAINER, false);
        ops.append(&["spec", "containers"], true, &sidecar);
    }
    ops.into_patch()
}

/// The patch that copies identity env and token mounts into already-injected agents.
pub fn refresh(pod: &Pod, updates: &[AgentUpdate]) -> Patch {
    let mut ops = Ops::default();
    let spec = pod.spec.clone().unwrap_or_default();
    for u in updates {
        let c = container_at(&spec, u.slot);
        let idx = u.slot.index.to_string();
        let base = ["spec", u.slot.list.field(), &idx];
        if !u.env.is_empty() {
            ops.append_all(&[&base[..], &["env"]].concat(), c.env.is_some(), &u.env);
        }
        if !u.mounts.is_empty() {
            ops.append_all(
                &[&base[..], &["volumeMounts"]].concat(),
                c.volume_mounts.is_some(),
                &u.mounts,
            );
        }
    }
    ops.into_patch()
}

fn container_at(spec: &k8s_openapi::api::core::v1::PodSpec, slot: Slot) -> Container {
    let list = match slot.list {
        List::Init => spec.init_containers.as_deref().unwrap_or_default(),
        List::App => &spec.containers,
    };
    list.get(slot.index).cloned().unwrap_or_default()
}

/// One agent container; `once` makes a classic-style init agent fetch once and exit.
fn agent(plan: &Plan, settings: &Settings, name: &str, once: bool) -> Container {
    let mut env = vec![literal(keys::CONFIG_ENV, &plan.config_json)];
    env.extend(plan.identity_env.iter().cloned());
    env.extend(plan.extra_env.iter().cloned());
    if once {
        env.push(literal(ONCE_ENV, "true"));
    }
    let mut mounts = vec![VolumeMount {
        name: VOLUME_NAME.to_string(),
        mount_path: plan.config.mount_path.clone(),
        ..VolumeMount::default()
    }];
    mounts.extend(plan.identity_mounts.iter().cloned());
    let q = |s: &str| Quantity(s.to_string());
    Container {
        name: name.to_string(),
        image: Some(settings.agent_image.clone()),
        image_pull_policy: Some(settings.agent_image_pull_policy.clone()),
        env: Some(env),
        volume_mounts: Some(mounts),
        resources: Some(ResourceRequirements {
            requests: Some(BTreeMap::from([
                ("cpu".to_string(), q(&plan.cpu_request)),
                ("memory".to_string(), q(&plan.memory_request)),
            ])),
            limits: Some(BTreeMap::from([
                ("cpu".to_string(), q(&plan.cpu_limit)),
                ("memory".to_string(), q(&plan.memory_limit)),
            ])),
            ..ResourceRequirements::default()
        }),
        security_context: Some(SecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(plan.run_as_user),
            run_as_group: Some(plan.run_as_group),
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
