//! Every annotation and label key of the contract, in one place.

/// Domain of every annotation and label.
pub const DOMAIN: &str = "secrets-injector.io";

/// Namespace/pod label `=enabled` to opt in; pod annotation `"false"` to opt out.
pub const INJECT: &str = "secrets-injector.io/inject";
/// Value of the [`INJECT`] label that opts a namespace or pod in.
pub const INJECT_ENABLED: &str = "enabled";

/// `secret-<file>: <ref>` — one secret written to `<mount-path>/<file>`.
pub const SECRET_PREFIX: &str = "secrets-injector.io/secret-";
/// `format-<file>: raw|dotenv|json|yaml|properties|files|none`.
pub const FORMAT_PREFIX: &str = "secrets-injector.io/format-";
/// `template-<file>: <minijinja source>` — `<file>` rendered from the fetched secrets.
pub const TEMPLATE_PREFIX: &str = "secrets-injector.io/template-";
/// YAML list in the ASCP `objects` format.
pub const OBJECTS: &str = "secrets-injector.io/objects";
/// `env-<NAME>: <path>` — env var `<NAME>` = content of `<mount-path>/<path>`.
pub const ENV_PREFIX: &str = "secrets-injector.io/env-";
/// `env-from: <dir>[,<dir>…]` — every file of a `format: files` output becomes a var
/// (so no single variable can be named `from`).
pub const ENV_FROM: &str = "secrets-injector.io/env-from";

pub const MODE: &str = "secrets-injector.io/mode";
pub const REFRESH_INTERVAL: &str = "secrets-injector.io/refresh-interval";
pub const MOUNT_PATH: &str = "secrets-injector.io/mount-path";
pub const CONTAINERS: &str = "secrets-injector.io/containers";
pub const REGION: &str = "secrets-injector.io/region";
pub const FAILOVER_REGION: &str = "secrets-injector.io/failover-region";
pub const ROLE_ARN: &str = "secrets-injector.io/role-arn";
pub const FILE_PERMISSION: &str = "secrets-injector.io/file-permission";
pub const ON_CHANGE: &str = "secrets-injector.io/on-change";
pub const STARTUP_TIMEOUT: &str = "secrets-injector.io/startup-timeout";
pub const AGENT_CPU: &str = "secrets-injector.io/agent-cpu";
pub const AGENT_MEMORY: &str = "secrets-injector.io/agent-memory";
/// Explicit opt-in to the node's instance role (IMDS) when the pod has no identity.
pub const ALLOW_NODE_ROLE: &str = "secrets-injector.io/allow-node-role";

/// Written by the webhook: `injected` once the pod is patched.
pub const STATUS: &str = "secrets-injector.io/status";
/// Value of [`STATUS`] after injection.
pub const STATUS_INJECTED: &str = "injected";
/// Written by the webhook: hash of the rendered agent config.
pub const CONFIG_HASH: &str = "secrets-injector.io/config-hash";

/// Env var carrying the [`crate::AgentConfig`] JSON into the agent container.
pub const CONFIG_ENV: &str = "SECRETS_INJECTOR_CONFIG";

/// Annotations this version understands (prefix keys excluded); anything else
/// under [`DOMAIN`] is reported as unknown so typos do not pass silently.
pub const KNOWN: &[&str] = &[
    INJECT,
    OBJECTS,
    ENV_FROM,
    MODE,
    REFRESH_INTERVAL,
    MOUNT_PATH,
    CONTAINERS,
    REGION,
    FAILOVER_REGION,
    ROLE_ARN,
    FILE_PERMISSION,
    ON_CHANGE,
    STARTUP_TIMEOUT,
    AGENT_CPU,
    AGENT_MEMORY,
    ALLOW_NODE_ROLE,
    STATUS,
    CONFIG_HASH,
];

/// Env var carrying extra CA roots (PEM) into the agent (operator's `--agent-ca-bundle`).
pub const CA_BUNDLE_ENV: &str = "SECRETS_INJECTOR_CA_BUNDLE";
/// Env var telling a classic-style init agent to fetch once and exit.
pub const ONCE_ENV: &str = "SECRETS_INJECTOR_ONCE";
/// Downward-API env: the pod's name, for the agent's STS session name and logs.
pub const POD_NAME_ENV: &str = "SECRETS_INJECTOR_POD_NAME";
/// Downward-API env: the pod's namespace, for the agent's STS session name and logs.
pub const POD_NAMESPACE_ENV: &str = "SECRETS_INJECTOR_POD_NAMESPACE";
/// Agent env the webhook sets itself; operators may not override it with `--agent-env`.
pub const WEBHOOK_SET_ENV: &[&str] = &[CONFIG_ENV, ONCE_ENV, POD_NAME_ENV, POD_NAMESPACE_ENV];
