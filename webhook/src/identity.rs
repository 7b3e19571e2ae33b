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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containers::List;

    fn env(name: &str, value: &str) -> EnvVar {
        EnvVar {
            name: name.into(),
            value: Some(value.into()),
            value_from: None,
        }
    }

    fn mount(name: &str, path: &str) -> VolumeMount {
        VolumeMount {
            name: name.into(),
            mount_path: path.into(),
            ..VolumeMount::default()
        }
    }

    fn app(env: Vec<EnvVar>, mounts: Vec<VolumeMount>) -> Container {
        Container {
            name: "app".into(),
            env: Some(env),
            volume_mounts: Some(mounts),
            ..Container::default()
        }
    }

    /// Mount names with their read-only flags.
    type Mounts<'a> = Vec<(&'a str, Option<bool>)>;

    fn names_of(mounts: &[VolumeMount]) -> Mounts<'_> {
        mounts
            .iter()
            .map(|m| (m.name.as_str(), m.read_only))
            .collect()
    }

    #[test]
    fn each_token_file_brings_its_mount_once() {
        let web = "AWS_WEB_IDENTITY_TOKEN_FILE";
        let pod_id = "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE";
        let mounts = || {
            vec![
                mount("irsa", "/var/run/irsa"),
                mount("pod-identity", "/var/run/pod-identity/"),
                mount("unrelated", "/data"),
            ]
        };
        let cases: [(&str, Vec<EnvVar>, Mounts); 4] = [
            (
                "two files in two mounts: both, in env order",
                vec![
                    env(pod_id, "/var/run/pod-identity/token"),
                    env(web, "/var/run/irsa/token"),
                ],
                vec![("pod-identity", Some(true)), ("irsa", Some(true))],
            ),
            (
                "two files in one mount: that mount once",
                vec![
                    env(web, "/var/run/irsa/token"),
                    env(pod_id, "/var/run/irsa/other"),
                ],
                vec![("irsa", Some(true))],
            ),
            (
                "a file under no mount: no mount",
                vec![env(web, "/elsewhere/token")],
                vec![],
            ),
            (
                "a prefix that is not a directory: no mount",
                vec![env(web, "/var/run/irsa-token")],
                vec![],
            ),
        ];
        for (case, e, want) in cases {
            let id = identity_of(&app(e, mounts()), &[]);
            assert_eq!(names_of(&id.mounts), want, "{case}");
        }
    }

    fn pairs(id: &Identity) -> Vec<(&str, Option<&str>)> {
        id.env
            .iter()
            .map(|e| (e.name.as_str(), e.value.as_deref()))
            .collect()
    }

    #[test]
    fn only_identity_env_the_operator_does_not_set_is_copied() {
        let a = app(
            vec![
                env("AWS_REGION", "eu-west-1"),
                env("SECRET", "CANARY-identity"),
                env("AWS_ROLE_ARN", "arn:aws:iam::1:role/app"),
                env("AWS_REGION", "eu-west-2"),
            ],
            vec![],
        );
        let all = identity_of(&a, &[]);
        assert_eq!(
            pairs(&all),
            [
                ("AWS_ROLE_ARN", Some("arn:aws:iam::1:role/app")),
                ("AWS_REGION", Some("eu-west-2")),
            ],
            "identity only, a later duplicate wins"
        );
        let operator = [env("AWS_ROLE_ARN", "arn:aws:iam::1:role/op")];
        let without = identity_of(&a, &operator);
        assert_eq!(
            pairs(&without),
            [("AWS_REGION", Some("eu-west-2"))],
            "the operator's variable is not copied"
        );
    }

    #[test]
    fn an_agent_gets_exactly_what_it_lacks() {
        let slot = Slot {
            list: List::Init,
            index: 0,
        };
        let identity = Identity {
            env: vec![env("AWS_REGION", "r"), env("AWS_ROLE_ARN", "a")],
            mounts: vec![mount("tok", "/t")],
        };
        let agent = |env: Vec<EnvVar>, mounts: Vec<VolumeMount>| PodSpec {
            init_containers: Some(vec![app(env, mounts)]),
            ..PodSpec::default()
        };
        let lacking = |spec: &PodSpec| -> Vec<(Vec<String>, Vec<String>)> {
            missing(spec, &[slot], &identity)
                .into_iter()
                .map(|u| {
                    assert_eq!(u.slot, slot);
                    (
                        u.identity.env.into_iter().map(|e| e.name).collect(),
                        u.identity
                            .mounts
                            .into_iter()
                            .map(|m| m.mount_path)
                            .collect(),
                    )
                })
                .collect()
        };
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let cases = [
            (
                "bare",
                agent(vec![], vec![]),
                vec![(s(&["AWS_REGION", "AWS_ROLE_ARN"]), s(&["/t"]))],
            ),
            (
                "env only",
                agent(vec![env("AWS_REGION", "x")], vec![mount("tok", "/t")]),
                vec![(s(&["AWS_ROLE_ARN"]), s(&[]))],
            ),
            (
                "mount only",
                agent(
                    vec![env("AWS_REGION", "x"), env("AWS_ROLE_ARN", "y")],
                    vec![mount("other", "/o")],
                ),
                vec![(s(&[]), s(&["/t"]))],
            ),
            (
                "nothing",
                agent(
                    vec![env("AWS_ROLE_ARN", "y"), env("AWS_REGION", "x")],
                    vec![mount("tok", "/t")],
                ),
                vec![],
            ),
        ];
        for (case, spec, want) in cases {
            assert_eq!(lacking(&spec), want, "{case}");
        }
        // A slot that is not in this spec is no agent to update.
        assert!(missing(&PodSpec::default(), &[slot], &identity).is_empty());
    }
}
