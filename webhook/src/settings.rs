//! Flags of the injected agent, shared by `serve` and `inject` (flattened into
//! both). They are checked once, into an [`AgentTemplate`], before any pod is seen.

use clap::{Args, ValueEnum};
use k8s_openapi::api::core::v1::EnvVar;
use secrets_injector_shared::{Quantity, keys};

use crate::error::Error;
use crate::template::{AgentTemplate, PullPolicy, Resources};

/// Default agent image, used by `inject` when no `--agent-image` is given.
pub const DEFAULT_AGENT_IMAGE: &str = "ghcr.io/secrets-injector/secrets-injector-agent:0.1.0";
const DEFAULT_PULL_POLICY: &str = "IfNotPresent";
const DEFAULT_CPU_REQUEST: &str = "10m";
const DEFAULT_CPU_LIMIT: &str = "100m";
const DEFAULT_MEMORY_REQUEST: &str = "16Mi";
const DEFAULT_MEMORY_LIMIT: &str = "32Mi";
/// Default uid (and gid) of the agent when the app's are unknown: distroless `nonroot`.
pub const DEFAULT_AGENT_UID: i64 = 65532;
const DEFAULT_VOLUME_SIZE_LIMIT: &str = "8Mi";

/// How `mode: sidecar` is rendered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum SidecarStyle {
    /// Init container with `restartPolicy: Always` (Kubernetes ≥ 1.29).
    #[default]
    Native,
    /// Init container for the first fetch plus a regular container (older clusters).
    Classic,
}

/// Agent container flags, as given. Every flag also reads `SECRETS_INJECTOR_*`.
#[derive(Debug, Clone, Args)]
pub struct AgentFlags {
    /// Image of the agent container injected into pods.
    #[arg(long, env = "SECRETS_INJECTOR_AGENT_IMAGE", default_value = DEFAULT_AGENT_IMAGE)]
    pub agent_image: String,
    /// imagePullPolicy of the agent container (Always, IfNotPresent or Never).
    #[arg(
        long,
        env = "SECRETS_INJECTOR_AGENT_IMAGE_PULL_POLICY",
        default_value = DEFAULT_PULL_POLICY
    )]
    pub agent_image_pull_policy: String,
    /// CPU request of the agent (a pod's `agent-cpu` annotation overrides it).
    #[arg(
        long,
        env = "SECRETS_INJECTOR_AGENT_CPU_REQUEST",
        default_value = DEFAULT_CPU_REQUEST
    )]
    pub agent_cpu_request: String,
    /// CPU limit of the agent (raised to the request when a pod asks for more).
    #[arg(long, env = "SECRETS_INJECTOR_AGENT_CPU_LIMIT", default_value = DEFAULT_CPU_LIMIT)]
    pub agent_cpu_limit: String,
    /// Memory request of the agent (a pod's `agent-memory` annotation overrides it).
    #[arg(
        long,
        env = "SECRETS_INJECTOR_AGENT_MEMORY_REQUEST",
        default_value = DEFAULT_MEMORY_REQUEST
    )]
    pub agent_memory_request: String,
    /// Memory limit of the agent (raised to the request when a pod asks for more).
    #[arg(
        long,
        env = "SECRETS_INJECTOR_AGENT_MEMORY_LIMIT",
        default_value = DEFAULT_MEMORY_LIMIT
    )]
    pub agent_memory_limit: String,
    /// Extra env for every agent, KEY=VALUE (repeatable; comma-separated, so values
    /// cannot contain commas), e.g. AWS_USE_FIPS_ENDPOINT=true,
    /// AWS_ENDPOINT_URL_SECRETS_MANAGER=https://vpce-…. Wins over identity env copied from the pod.
    #[arg(
        long = "agent-env",
        env = "SECRETS_INJECTOR_AGENT_ENV",
        value_delimiter = ','
    )]
    pub agent_env: Vec<String>,
    /// PEM bundle of extra CA roots the agents trust (private CA, TLS-inspecting
    /// proxy); handed to them as SECRETS_INJECTOR_CA_BUNDLE, commas and all.
    #[arg(long, env = "SECRETS_INJECTOR_AGENT_CA_BUNDLE")]
    pub agent_ca_bundle: Option<String>,
    /// Hosts the agents reach without the egress proxy, as one comma list kept
    /// whole (e.g. 169.254.170.23,.svc): set as NO_PROXY and no_proxy.
    #[arg(long, env = "SECRETS_INJECTOR_AGENT_NO_PROXY")]
    pub agent_no_proxy: Option<String>,
    /// uid (and gid) the agent runs as when the app's are unknown or root.
    #[arg(long, env = "SECRETS_INJECTOR_AGENT_UID", default_value_t = DEFAULT_AGENT_UID)]
    pub agent_uid: i64,
    /// `sizeLimit` of the in-memory secrets volume.
    #[arg(
        long,
        env = "SECRETS_INJECTOR_VOLUME_SIZE_LIMIT",
        default_value = DEFAULT_VOLUME_SIZE_LIMIT
    )]
    pub volume_size_limit: String,
    /// How `mode: sidecar` is rendered: native (K8s ≥ 1.29) or classic.
    #[arg(long, env = "SECRETS_INJECTOR_SIDECAR_STYLE", value_enum, default_value_t = SidecarStyle::Native)]
    pub sidecar_style: SidecarStyle,
}

/// Set `name` in `env`; the last setting wins, as a shell would do.
fn set_env(env: &mut Vec<EnvVar>, name: &str, value: &str) {
    env.retain(|e| e.name != name);
    env.push(EnvVar {
        name: name.to_string(),
        value: Some(value.to_string()),
        value_from: None,
    });
}

impl Default for AgentFlags {
    fn default() -> Self {
        AgentFlags {
            agent_image: DEFAULT_AGENT_IMAGE.to_string(),
            agent_image_pull_policy: DEFAULT_PULL_POLICY.to_string(),
            agent_cpu_request: DEFAULT_CPU_REQUEST.to_string(),
            agent_cpu_limit: DEFAULT_CPU_LIMIT.to_string(),
            agent_memory_request: DEFAULT_MEMORY_REQUEST.to_string(),
            agent_memory_limit: DEFAULT_MEMORY_LIMIT.to_string(),
            agent_env: Vec::new(),
            agent_ca_bundle: None,
            agent_no_proxy: None,
            agent_uid: DEFAULT_AGENT_UID,
            volume_size_limit: DEFAULT_VOLUME_SIZE_LIMIT.to_string(),
            sidecar_style: SidecarStyle::Native,
        }
    }
}

impl AgentFlags {
    /// Check every flag once, at startup, into the typed template the hot path
    /// reads: a bad flag stops the process, never a pod. Every problem is named.
    pub fn template(&self) -> Result<AgentTemplate, Error> {
        let mut problems = Vec::new();
        if self.agent_image.trim().is_empty() || self.agent_image.chars().any(char::is_whitespace) {
            problems.push(format!(
                "--agent-image {:?} is not an image reference",
                self.agent_image
            ));
        }
        let pull_policy = PullPolicy::parse(&self.agent_image_pull_policy);
        if pull_policy.is_none() {
            problems.push(format!(
                "--agent-image-pull-policy {:?} is not Always, IfNotPresent or Never",
                self.agent_image_pull_policy
            ));
        }
        let mut quantity = |flag: &str, value: &str| {
            Quantity::parse(value)
                .map_err(|e| problems.push(format!("{flag}: {e}")))
                .ok()
        };
        let cpu_request = quantity("--agent-cpu-request", &self.agent_cpu_request);
        let cpu_limit = quantity("--agent-cpu-limit", &self.agent_cpu_limit);
        let memory_request = quantity("--agent-memory-request", &self.agent_memory_request);
        let memory_limit = quantity("--agent-memory-limit", &self.agent_memory_limit);
        let volume_size_limit = quantity("--volume-size-limit", &self.volume_size_limit);
        if self.agent_uid <= 0 {
            problems.push(format!(
                "--agent-uid {} must be a non-root uid (> 0)",
                self.agent_uid
            ));
        }
        let env = self.agent_env_vars().map_err(|e| problems.push(e)).ok();
        match (
            pull_policy,
            cpu_request.zip(cpu_limit),
            memory_request.zip(memory_limit),
            volume_size_limit,
            env,
        ) {
            (Some(pull_policy), Some(cpu), Some(memory), Some(volume_size_limit), Some(env))
                if problems.is_empty() =>
            {
                Ok(AgentTemplate {
                    image: self.agent_image.clone(),
                    pull_policy,
                    cpu: Resources::new(cpu.0, cpu.1),
                    memory: Resources::new(memory.0, memory.1),
                    env,
                    uid: self.agent_uid,
                    volume_size_limit,
                    sidecar_style: self.sidecar_style,
                })
            }
            _ => Err(Error::Settings(problems.join("; "))),
        }
    }

    /// `--agent-env` (then `--agent-ca-bundle`) as container env; malformed entries
    /// are named (their values never).
    fn agent_env_vars(&self) -> Result<Vec<EnvVar>, String> {
        let mut out: Vec<EnvVar> = Vec::new();
        for (i, entry) in self.agent_env.iter().enumerate() {
            let Some((name, value)) = entry.split_once('=') else {
                return Err(format!(
                    "--agent-env entry {} is not KEY=VALUE (starts with {:?})",
                    i + 1,
                    entry.chars().take(12).collect::<String>()
                ));
            };
            let name = name.trim();
            if !is_env_name(name) {
                return Err(format!(
                    "--agent-env entry {}: {name:?} is not a valid environment variable name",
                    i + 1
                ));
            }
            if keys::WEBHOOK_SET_ENV.contains(&name) {
                return Err(format!(
                    "--agent-env entry {}: {name} is set by the webhook itself",
                    i + 1
                ));
            }
            set_env(&mut out, name, value);
        }
        if let Some(pem) = self
            .agent_ca_bundle
            .as_deref()
            .filter(|p| !p.trim().is_empty())
        {
            set_env(&mut out, keys::CA_BUNDLE_ENV, pem);
        }
        if let Some(hosts) = self.agent_no_proxy.as_deref().map(str::trim)
            && !hosts.is_empty()
        {
            set_env(&mut out, "NO_PROXY", hosts);
            set_env(&mut out, "no_proxy", hosts);
        }
        Ok(out)
    }
}

/// `[-._a-zA-Z][-._a-zA-Z0-9]*`: what every supported Kubernetes version accepts.
fn is_env_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '-' || c == '.')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_pairs(t: &AgentTemplate) -> Vec<(&str, &str)> {
        t.env
            .iter()
            .map(|e| (e.name.as_str(), e.value.as_deref().unwrap_or("")))
            .collect()
    }

    #[test]
    fn defaults_are_valid_and_typed() {
        let t = AgentFlags::default().template().unwrap();
        assert_eq!(t.pull_policy, PullPolicy::IfNotPresent);
        assert_eq!(t.cpu.request.as_str(), "10m");
        assert_eq!(t.memory.limit.as_str(), "32Mi");
        assert_eq!(t.volume_size_limit.as_str(), "8Mi");
        assert_eq!(t, AgentTemplate::default());
    }

    #[test]
    fn clap_defaults_match_default_impl() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            s: AgentFlags,
        }
        let parsed = Cli::try_parse_from(["x"]).unwrap().s;
        assert_eq!(
            parsed.template().unwrap(),
            AgentFlags::default().template().unwrap()
        );
    }

    #[test]
    fn agent_env_parses_and_last_wins() {
        let s = AgentFlags {
            agent_env: vec![
                "AWS_USE_FIPS_ENDPOINT=true".into(),
                "A=1=2".into(),
                "A=3".into(),
            ],
            ..AgentFlags::default()
        };
        let t = s.template().unwrap();
        assert_eq!(
            env_pairs(&t),
            vec![("AWS_USE_FIPS_ENDPOINT", "true"), ("A", "3")]
        );
    }

    #[test]
    fn a_ca_bundle_with_commas_arrives_whole() {
        use clap::Parser as _;
        let pem = "# subject=C = US, O = Corp, CN = Root\n-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        let cli = crate::args::Cli::try_parse_from([
            "w",
            "inject",
            "-f",
            "-",
            "--agent-env",
            "A=1,B=2",
            "--agent-ca-bundle",
            pem,
        ])
        .unwrap();
        let crate::args::Command::Inject(a) = cli.command else {
            panic!("not inject")
        };
        let t = a.agent.template().unwrap();
        assert_eq!(
            env_pairs(&t),
            vec![("A", "1"), ("B", "2"), ("SECRETS_INJECTOR_CA_BUNDLE", pem)]
        );
    }

    #[test]
    fn a_no_proxy_list_arrives_whole_in_both_cases() {
        use clap::Parser as _;
        let cli = crate::args::Cli::try_parse_from([
            "w",
            "inject",
            "-f",
            "-",
            "--agent-env",
            "HTTPS_PROXY=http://proxy:3128",
            "--agent-no-proxy",
            "169.254.170.23,.svc,.cluster.local",
        ])
        .unwrap();
        let crate::args::Command::Inject(a) = cli.command else {
            panic!("not inject")
        };
        let t = a.agent.template().unwrap();
        assert_eq!(
            env_pairs(&t),
            vec![
                ("HTTPS_PROXY", "http://proxy:3128"),
                ("NO_PROXY", "169.254.170.23,.svc,.cluster.local"),
                ("no_proxy", "169.254.170.23,.svc,.cluster.local"),
            ]
        );
    }

    #[test]
    fn malformed_agent_env_is_rejected_without_echoing_values() {
        for (entry, want) in [
            ("NOEQUALS", "entry 1 is not KEY=VALUE"),
            (
                "1BAD=x",
                "\"1BAD\" is not a valid environment variable name",
            ),
            ("=x", "\"\" is not a valid"),
            ("SECRETS_INJECTOR_CONFIG={}", "set by the webhook itself"),
            ("SECRETS_INJECTOR_POD_NAME=x", "set by the webhook itself"),
        ] {
            let s = AgentFlags {
                agent_env: vec![entry.into()],
                ..AgentFlags::default()
            };
            let err = s.template().unwrap_err().to_string();
            assert!(err.contains(want), "{entry}: {err}");
        }
        let s = AgentFlags {
            agent_env: vec!["TOKEN=very-secret-value".into(), "BAD NAME=v".into()],
            ..AgentFlags::default()
        };
        let err = s.template().unwrap_err().to_string();
        assert!(!err.contains("very-secret-value"), "{err}");
    }

    #[test]
    fn bad_quantities_policy_and_uid_are_all_reported() {
        let s = AgentFlags {
            agent_cpu_request: "lots".into(),
            volume_size_limit: "big".into(),
            agent_image_pull_policy: "Sometimes".into(),
            agent_uid: 0,
            agent_image: "has space".into(),
            agent_env: vec!["NOPE".into()],
            ..AgentFlags::default()
        };
        let err = s.template().unwrap_err().to_string();
        for want in [
            "--agent-cpu-request: \"lots\"",
            "--volume-size-limit: \"big\"",
            "--agent-image-pull-policy \"Sometimes\"",
            "--agent-uid 0",
            "--agent-image \"has space\"",
            "--agent-env entry 1",
        ] {
            assert!(err.contains(want), "missing {want}: {err}");
        }
    }
}
