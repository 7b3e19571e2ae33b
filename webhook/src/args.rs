//! Command line of `secrets-injector-webhook`; every flag also reads `SECRETS_INJECTOR_*`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::settings::AgentFlags;

/// Mutating admission webhook that injects the secrets-injector agent into annotated pods.
#[derive(Debug, Parser)]
#[command(name = "secrets-injector-webhook", version, about)]
pub struct Cli {
    /// Log format: `json` (one object a line, the default) or `text` for humans.
    #[arg(
        long,
        global = true,
        env = "SECRETS_INJECTOR_LOG_FORMAT",
        value_enum,
        default_value_t = LogFormat::Json
    )]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// JSON lines (for log collectors).
    Json,
    /// Human-readable text.
    Text,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the admission webhook over HTTPS (POST /mutate) plus health and metrics over HTTP.
    Serve(ServeArgs),
    /// Apply the mutation offline to Pods and pod templates in YAML; prints the result.
    Inject(InjectArgs),
    /// Write a development CA and a server certificate for the webhook Service.
    Certs(CertsArgs),
}

/// `serve` flags.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address of the HTTPS admission endpoint.
    #[arg(long, env = "SECRETS_INJECTOR_LISTEN", default_value = "0.0.0.0:8443")]
    pub listen: SocketAddr,
    /// PEM certificate chain served over TLS (reloaded when it changes).
    #[arg(
        long,
        env = "SECRETS_INJECTOR_TLS_CERT_FILE",
        default_value = "/certs/tls.crt"
    )]
    pub tls_cert_file: PathBuf,
    /// PEM private key matching --tls-cert-file (reloaded when it changes).
    #[arg(
        long,
        env = "SECRETS_INJECTOR_TLS_KEY_FILE",
        default_value = "/certs/tls.key"
    )]
    pub tls_key_file: PathBuf,
    /// Address of the plain-HTTP health and metrics endpoint (/healthz, /readyz, /metrics).
    #[arg(
        long,
        env = "SECRETS_INJECTOR_HEALTH_LISTEN",
        default_value = "0.0.0.0:8080"
    )]
    pub health_listen: SocketAddr,
    /// How often the certificate files are checked for changes, e.g. `10s`.
    #[arg(long, env = "SECRETS_INJECTOR_TLS_RELOAD_INTERVAL", default_value = "10s", value_parser = parse_duration)]
    pub tls_reload_interval: Duration,
    /// After SIGTERM, keep accepting requests (with /readyz failing) this long before
    /// closing the port, so the API server stops sending to this replica first.
    #[arg(long, env = "SECRETS_INJECTOR_SHUTDOWN_DELAY", default_value = "5s", value_parser = parse_duration)]
    pub shutdown_delay: Duration,
    /// How long in-flight requests may finish after SIGTERM before the process exits.
    #[arg(long, env = "SECRETS_INJECTOR_SHUTDOWN_GRACE", default_value = "20s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
    /// Maximum time to handle one admission request.
    #[arg(long, env = "SECRETS_INJECTOR_REQUEST_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub request_timeout: Duration,
    /// Most admission connections open at once (lowered to fit the open-file limit);
    /// when full, the least recently active connection is closed for a new one.
    #[arg(
        long,
        env = "SECRETS_INJECTOR_MAX_CONNECTIONS",
        default_value_t = 1000,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub max_connections: u32,
    /// Close a connection (either port) after this long without a byte moving either
    /// way; longer than the API server's 90s idle keep-alive, so it closes first.
    #[arg(long, env = "SECRETS_INJECTOR_IDLE_TIMEOUT", default_value = "120s", value_parser = parse_duration)]
    pub idle_timeout: Duration,
    #[command(flatten)]
    pub agent: AgentFlags,
}

/// `inject` flags.
#[derive(Debug, Clone, Args)]
pub struct InjectArgs {
    /// YAML file with Pods or workloads (multi-document); `-` reads stdin.
    #[arg(short = 'f', long = "filename", env = "SECRETS_INJECTOR_INJECT_FILE")]
    pub file: PathBuf,
    #[command(flatten)]
    pub agent: AgentFlags,
}

/// `certs` flags.
#[derive(Debug, Clone, Args)]
pub struct CertsArgs {
    /// Directory to write `ca.crt`, `tls.crt` and `tls.key` into (created if missing).
    #[arg(long, env = "SECRETS_INJECTOR_CERTS_OUT_DIR")]
    pub out_dir: PathBuf,
    /// Name of the webhook's Service.
    #[arg(
        long,
        env = "SECRETS_INJECTOR_CERTS_SERVICE",
        default_value = "secrets-injector"
    )]
    pub service: String,
    /// Namespace of the webhook's Service.
    #[arg(
        long,
        env = "SECRETS_INJECTOR_CERTS_NAMESPACE",
        default_value = "secrets-injector"
    )]
    pub namespace: String,
    /// Extra DNS name or IP address in the certificate (repeatable; comma-separated in the env var).
    #[arg(
        long = "dns-name",
        env = "SECRETS_INJECTOR_CERTS_DNS_NAMES",
        value_delimiter = ','
    )]
    pub dns_names: Vec<String>,
    /// Validity of the CA and the server certificate, in days.
    #[arg(long, env = "SECRETS_INJECTOR_CERTS_DAYS", default_value_t = 365, value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub days: u32,
}

/// Parse a Go-style duration (`10s`, `2m`, `1h30m`; whole seconds, at least `1s`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    match secrets_injector_shared::validate::parse_duration_secs(s)? {
        0 => Err(format!("{s:?} is zero; use at least 1s")),
        secs => Ok(Duration::from_secs(secs)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_go_style_and_reject_zero() {
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("0s").unwrap_err().contains("zero"));
        assert!(parse_duration("ten").is_err());
    }

    #[test]
    fn serve_defaults_match_the_documented_command_line() {
        let cli = Cli::try_parse_from(["w", "serve", "--agent-image", "r/a:1"]).unwrap();
        let Command::Serve(a) = cli.command else {
            panic!("not serve")
        };
        assert_eq!(a.listen.to_string(), "0.0.0.0:8443");
        assert_eq!(a.health_listen.to_string(), "0.0.0.0:8080");
        assert_eq!(a.tls_reload_interval, Duration::from_secs(10));
        assert_eq!(a.shutdown_grace, Duration::from_secs(20));
        assert_eq!(a.shutdown_delay, Duration::from_secs(5));
        assert_eq!(a.agent.agent_image, "r/a:1");
        assert_eq!(cli.log_format, LogFormat::Json);
    }

    #[test]
    fn every_flag_has_help_and_an_env_var() {
        use clap::CommandFactory;
        fn walk(cmd: &clap::Command) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if matches!(id, "help" | "version") {
                    continue;
                }
                assert!(
                    arg.get_help().is_some(),
                    "{}: --{id} has no help",
                    cmd.get_name()
                );
                let env = arg.get_env().and_then(|e| e.to_str()).unwrap_or_default();
                assert!(
                    env.starts_with("SECRETS_INJECTOR_"),
                    "{}: --{id} has no SECRETS_INJECTOR_ env var",
                    cmd.get_name()
                );
            }
            cmd.get_subcommands().for_each(walk);
        }
        walk(&Cli::command());
    }
}
