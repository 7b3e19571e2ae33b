//! Pure: the pod identity the agent borrows from its first target container
//! (IRSA / Pod Identity env and the projected token volumes they point into),
//! and what an injected agent still lacks on reinvocation.

use k8s_openapi::api::core::v1::{Container, EnvVar, PodSpec, VolumeMount};

use crate::containers::{Slot, container};

/// Identity env copied from the first target container into the agent.
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

/// Identity env and the (read-only) mounts of the token files it names.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Identity {
    pub env: Vec<EnvVar>,
    pub mounts: Vec<VolumeMount>,
}

/// Identity env and token mounts to add to one already-injected agent container.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentUpdate {
    pub slot: Slot,
    pub identity: Identity,
}

/// Identity of `app`; a variable the operator sets (`operator_env`) is not copied.
pub fn identity_of(app: &Container, operator_env: &[EnvVar]) -> Identity {
    let mut env: Vec<EnvVar> = Vec::new();
    for e in app.env.iter().flatten() {
        if IDENTITY_ENV.contains(&e.name.as_str()) && !operator_env.iter().any(|x| x.name == e.name)
        {
            // Later duplicates win, as in the kubelet.
            env.retain(|x| x.name != e.name);
            env.push(e.clone());
        }
    }
    let mut mounts: Vec<VolumeMount> = Vec::new();
    let token_files = env
        .iter()
        .filter(|e| TOKEN_FILE_ENV.contains(&e.name.as_str()))
        .filter_map(|e| e.value.as_deref());
    for file in token_files {
        if let Some(m) = mount_of(app, file)
            && !mounts.iter().any(|x| x.mount_path == m.mount_path)
        {
            mounts.push(VolumeMount {
                read_only: Some(true),
                ..m.clone()
            });
        }
    }
    Identity { env, mounts }
}

/// The mount of `app` that holds `file`: the longest directory prefix.
fn mount_of<'a>(app: &'a Container, file: &str) -> Option<&'a VolumeMount> {
    app.volume_mounts
        .iter()
        .flatten()
        .filter(|m| {
            let dir = m.mount_path.trim_end_matches('/');
            file.strip_prefix(dir)
                .is_some_and(|rest| rest.starts_with('/'))
        })
        .max_by_key(|m| m.mount_path.len())
}

/// What each agent at `agents` lacks of `identity` (existing env is never changed).
pub fn missing(spec: &PodSpec, agents: &[Slot], identity: &Identity) -> Vec<AgentUpdate> {
    agents
        .iter()
        .filter_map(|slot| {
            let agent = container(spec, *slot)?;
            let has_env = |n: &str| agent.env.iter().flatten().any(|e| e.name == n);
            let has_mount = |p: &str| {
                agent
                    .volume_mounts
                    .iter()
                    .flatten()
                    .any(|m| m.mount_path == p)
            };
            let lacking = Identity {
                env: identity
                    .env
                    .iter()
                    .filter(|e| !has_env(&e.name))
                    .cloned()
                    .collect(),
                mounts: identity
                    .mounts
                    .iter()
                    .filter(|m| !has_mount(&m.mount_path))
                    .cloned()
                    .collect(),
            };
            let any = !lacking.env.is_empty() || !lacking.mounts.is_empty();
            any.then_some(AgentUpdate {
                slot: *slot,
                identity: lacking,
            })
        })
        .collect()
}
