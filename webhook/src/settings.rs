//! Settings of the injected agent, shared by `serve` and `inject` (flattened into both).

use clap::{Args, ValueEnum};

/// Default agent image, used by `inject` when no `--agent-image` is given.
pub const DEFAULT_AGENT_IMAGE: &str = "ghcr.io/secrets-injector/secrets-injector-agent:0.1.0";

/// How `mode: sidecar` is rendered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum SidecarStyle {
    /// Init container with `restartPolicy: Always` (Kubernetes ≥ 1.29).
    #[default]
    Native,
    /// Init container for the first fetch plus a regular container (older clusters).
    Classic,
}

/// Agent container settings. Every flag also reads `SECRETS_INJECTOR_*`.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// Image of the agent container injected into pods.
    #[arg(long, env = "SECRETS_INJECTOR_AGENT_IMAGE", default_value = DEFAULT_AGENT_IMAGE)]
    pub agent_image: String,
    /// imagePullPolicy of the agent container.
    #[arg(
        long,
        env = "SECRETS_INJECTOR_AGENT_IMAGE_PULL_POLICY",
        default_value = "IfNotPresent"
    )]
    pub agent_image_pull_policy: String,
    /// CPU request of the agent (a pod's `agent-cpu` annotation overrides it).
    #[arg(
        long,
        env = "SECRETS_INJECTOR_AGENT_CPU_REQUEST",
        default_value = "10m"
    )]
    pub agent_cpu_request: String,
    /// CPU limit of the agent.
    #[arg(long, env = "SECRETS_INJECTOR_AGENT_CPU_LIMIT", default_value = "100m")]
    pub agent_cpu_limit: String,
    /// Memory request of the agent (a pod's `agent-memory` annotation overrides it).
    #[arg(
        long,
        env = "SECRETS_INJECTOR_AGENT_MEMORY_REQUEST",
        default_value = "16Mi"
    )]
    pub agent_memory_request: String,
    /// Memory limit of the agent.
    #[arg(
        long,
        env = "SECRETS_INJECTOR_AGENT_MEMORY_LIMIT",
        default_value = "32Mi"
    )]
    pub agent_memory_limit: String,
    /// Extra env for every agent, KEY=VALUE (repeatable; comma-separated in the env var),
    /// e.g. AWS_USE_FIPS_ENDPOINT=true, AWS_ENDPOINT_URL_SECRETS_MANAGER=https://vpce-…,
    /// SECRETS_INJECTOR_CA_BUNDLE=<PEM> for a private CA.
    #[arg(
        long = "agent-env",
        env = "SECRETS_INJECTOR_AGENT_ENV",
        value_delimiter = ','
    )]
    pub agent_env: Vec<String>,
    /// uid the agent runs as when the app's uid is unknown (non-root).
    #[arg(long, env = "SECRETS_INJECTOR_AGENT_UID", default_value_t = 65532)]
    pub agent_uid: i64,
    /// `sizeLimit` of the in-memory secrets volume.
    #[arg(
        long,
        env = "SECRETS_INJECTOR_VOLUME_SIZE_LIMIT",
        default_value = "8Mi"
    )]
    pub volume_size_limit: String,
    /// How `mode: sidecar` is rendered: native (K8s ≥ 1.29) or classic.
    #[arg(long, env = "SECRETS_INJECTOR_SIDECAR_STYLE", value_enum, default_value_t = SidecarStyle::Native)]
    pub sidecar_style: SidecarStyle,
}
