//! The agent process: parse args, start logging, load the config, run.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser as _;
use secrets_injector_shared::AgentConfig;
use secrets_injector_shared::keys::{CONFIG_ENV, POD_NAME_ENV, POD_NAMESPACE_ENV};
use secrets_injector_shared::logging;
use tokio_util::sync::CancellationToken;

use crate::args::{Args, Command, LogFormat};
use crate::fetch::AwsFetcher;
use crate::run::{Exit, RunSettings, run};
use crate::{aws, config, panic_hook, probe, termination, wrapper};

/// The whole agent process; `main.rs` only calls this.
pub fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => bad_args(e),
    };
    init_logs(args.log_format);
    let root = args.root_prefix.as_deref();
    let termination_log = config::under_root(root, &args.termination_log);
    // A probe's panic is not the container's cause of death.
    if args.command.is_none() {
        panic_hook::install(termination_log.clone());
    }
    let env_json = std::env::var(CONFIG_ENV).ok();
    let cfg = match config::load(args.config.as_deref(), env_json.as_deref()) {
        Ok(cfg) => cfg,
        Err(e) => {
            tracing::error!(error = %e, "cannot load the agent config");
            if args.command.is_none() {
                let _ = termination::write(&termination_log, &format!("{e}\n"));
            }
            return ExitCode::from(2);
        }
    };
    let mount_dir = config::under_root(root, Path::new(&cfg.mount_path));
    if let Some(Command::Probe) = args.command {
        return match probe::probe(&mount_dir) {
            Ok(()) => ExitCode::SUCCESS,
            Err(reason) => {
                eprintln!("{reason}");
                ExitCode::from(1)
            }
        };
    }
    // Before the first write: the wrapper must be in place once `..data` appears.
    if cfg.exec_wrapper
        && let Err(e) = wrapper::install_wrapper(&mount_dir)
    {
        tracing::error!(error = %e, "cannot copy the env wrapper into the secrets volume");
        let _ = termination::write(&termination_log, &format!("{e}\n"));
        return ExitCode::from(1);
    }
    let mut settings = RunSettings::new(&cfg, mount_dir, termination_log);
    settings.once = args.once;
    if let Some(ms) = args.refresh_override_ms {
        tracing::warn!(
            ms,
            "SECRETS_INJECTOR_REFRESH_OVERRIDE_MS is set: test-only poll period"
        );
        settings.refresh = Duration::from_millis(ms.max(1));
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            let _ = termination::write(
                &settings.termination_log,
                &format!("cannot start the async runtime: {e}\n"),
            );
            return ExitCode::from(2);
        }
    };
    runtime.block_on(fetch_and_write(&cfg, &settings))
}

/// The AWS clients, then the run: a set-up failure (no identity or region)
/// goes to the termination log, since nothing can be fetched.
async fn fetch_and_write(cfg: &AgentConfig, settings: &RunSettings) -> ExitCode {
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    let clients = match aws::clients(cfg).await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot set up the AWS clients");
            let _ = termination::write(&settings.termination_log, &format!("{e}\n"));
            return ExitCode::from(Exit::Failed.code());
        }
    };
    tracing::debug!(
        identity = ?clients.identity,
        region = %clients.region,
        failover_region = ?clients.failover_region,
        "AWS clients ready"
    );
    let fetcher = AwsFetcher::new(clients);
    ExitCode::from(run(cfg, &fetcher, settings, shutdown).await.code())
}

/// Arguments clap refuses (e.g. a bad `SECRETS_INJECTOR_*` value from
/// `--agent-env`): the first line of clap's error also goes to the
/// termination log (from its env, or the default), then clap exits as usual.
fn bad_args(e: clap::Error) -> ! {
    use clap::error::ErrorKind;
    let is_probe = std::env::args_os().nth(1).is_some_and(|a| a == "probe");
    if !matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) && !is_probe {
        let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
        let log = var("SECRETS_INJECTOR_TERMINATION_LOG")
            .map_or_else(|| "/dev/termination-log".into(), std::path::PathBuf::from);
        let root = var("SECRETS_INJECTOR_ROOT_PREFIX").map(std::path::PathBuf::from);
        let text = e.to_string();
        let first = text
            .lines()
            .next()
            .unwrap_or_default()
            .trim_start_matches("error: ");
        let _ = termination::write(
            &config::under_root(root.as_deref(), &log),
            &format!("invalid agent arguments: {first}\n"),
        );
    }
    e.exit()
}

/// SIGTERM or SIGINT cancels `token`.
async fn stop_on_signal(token: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::warn!("cannot install signal handlers");
        return;
    };
    tokio::select! {
        _ = term.recv() => {},
        _ = int.recv() => {},
    }
    tracing::info!("signal received, stopping");
    token.cancel();
}

/// The shared log set-up, each line carrying the pod's name and namespace
/// (downward-API env from the webhook) when known.
fn init_logs(format: LogFormat) {
    let format = match format {
        LogFormat::Json => logging::LogFormat::Json,
        LogFormat::Text => logging::LogFormat::Text,
    };
    let known = |key: &str| std::env::var(key).ok().filter(|v| !v.trim().is_empty());
    let fields: Vec<(&str, String)> = [("pod", POD_NAME_ENV), ("namespace", POD_NAMESPACE_ENV)]
        .into_iter()
        .filter_map(|(field, key)| Some((field, known(key)?)))
        .collect();
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    logging::init_with_fields(format, &fields);
}
