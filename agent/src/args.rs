//! Command line of `secrets-injector-agent`. Every flag also reads
//! an env var `SECRETS_INJECTOR_…`.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "secrets-injector-agent",
    version,
    about = "Fetches AWS Secrets Manager secrets and SSM parameters with the pod's own identity \
             and writes them atomically into the secrets volume",
    after_help = "The config is the JSON in env SECRETS_INJECTOR_CONFIG (set by the webhook) \
                  unless --config names a file."
)]
pub struct Args {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Read the AgentConfig JSON from this file instead of env SECRETS_INJECTOR_CONFIG.
    #[arg(
        long,
        value_name = "FILE",
        env = "SECRETS_INJECTOR_CONFIG_FILE",
        global = true
    )]
    pub config: Option<PathBuf>,

    /// Fetch and write once, then exit, even in sidecar mode.
    #[arg(long, env = secrets_injector_shared::keys::ONCE_ENV)]
    pub once: bool,

    /// Where the one-line-per-secret failure reason is written (read by the kubelet).
    #[arg(
        long,
        value_name = "PATH",
        env = "SECRETS_INJECTOR_TERMINATION_LOG",
        default_value = "/dev/termination-log"
    )]
    pub termination_log: PathBuf,

    /// Log format.
    #[arg(
        long,
        value_enum,
        env = "SECRETS_INJECTOR_LOG_FORMAT",
        default_value = "json",
        global = true
    )]
    pub log_format: LogFormat,

    /// Testing/debugging override: directory prepended to the config's mount_path
    /// and to the termination-log path, to run outside a pod.
    #[arg(
        long,
        value_name = "DIR",
        env = "SECRETS_INJECTOR_ROOT_PREFIX",
        global = true
    )]
    pub root_prefix: Option<PathBuf>,

    /// Test-only override of the sidecar poll period in milliseconds (the
    /// config's minimum is 30 s). Not for production use.
    #[arg(
        long,
        value_name = "MS",
        env = "SECRETS_INJECTOR_REFRESH_OVERRIDE_MS",
        hide_short_help = true
    )]
    pub refresh_override_ms: Option<u64>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Exit 0 once the first write is done (the native sidecar's startupProbe), else 1.
    Probe,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Json,
    Text,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn every_flag_has_help_and_env() {
        let cmd = Args::command();
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if id == "help" || id == "version" {
                continue;
            }
            assert!(arg.get_help().is_some(), "{id} has no help");
            let env = arg.get_env().map(|e| e.to_string_lossy().into_owned());
            assert!(
                env.as_deref()
                    .is_some_and(|e| e.starts_with("SECRETS_INJECTOR_")),
                "{id} has no SECRETS_INJECTOR_ env"
            );
        }
    }

    #[test]
    fn probe_subcommand_parses() {
        let a = Args::try_parse_from(["agent", "probe"]).unwrap();
        assert!(matches!(a.command, Some(Command::Probe)));
        let a = Args::try_parse_from(["agent", "--once", "--log-format", "text"]).unwrap();
        assert!(a.once && a.command.is_none() && a.log_format == LogFormat::Text);
    }
}
