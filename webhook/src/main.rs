//! `secrets-injector-webhook`: parse the command line, start logging, dispatch.

use std::io::Read;
use std::process::ExitCode;

use clap::Parser;
use secrets_injector_webhook::args::{CertsArgs, Cli, Command, InjectArgs, ServeArgs};
use secrets_injector_webhook::error::Error;
use secrets_injector_webhook::server::{self, ServeConfig};
use secrets_injector_webhook::{certs, inject_cli, logging};
use tokio_util::sync::CancellationToken;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let Cli {
        log_format,
        command,
    } = Cli::parse();
    logging::init(log_format);
    let result = match command {
        Command::Serve(args) => serve(args),
        Command::Inject(args) => inject(args),
        Command::Certs(args) => write_certs(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(args: ServeArgs) -> Result<(), Error> {
    let ServeArgs {
        listen,
        tls_cert_file,
        tls_key_file,
        health_listen,
        tls_reload_interval,
        shutdown_delay,
        shutdown_grace,
        request_timeout,
        max_connections,
        idle_timeout,
        agent,
    } = args;
    let template = agent.template()?;
    let config = ServeConfig {
        listen,
        health_listen,
        tls_cert_file,
        tls_key_file,
        tls_reload_interval,
        shutdown_delay,
        shutdown_grace,
        request_timeout,
        max_connections: max_connections as usize,
        idle_timeout,
        template,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Settings(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        tokio::spawn(cancel_on_signal(shutdown.clone()));
        server::serve(config, shutdown).await
    })
}

/// SIGTERM (kubelet) or SIGINT (a terminal) starts the drain.
async fn cancel_on_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        tracing::error!("cannot install the SIGTERM handler");
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
    }
    shutdown.cancel();
}

fn inject(args: InjectArgs) -> Result<(), Error> {
    let InjectArgs { file, agent } = args;
    let template = agent.template()?;
    let name = file.display().to_string();
    let input = if name == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map(|_| s)
            .map_err(|source| Error::Input {
                path: "stdin".into(),
                source,
            })?
    } else {
        std::fs::read_to_string(&file).map_err(|source| Error::Input { path: name, source })?
    };
    let out = inject_cli::run(&input, &template)?;
    for notice in &out.notices {
        eprintln!("warning: {notice}");
    }
    print!("{}", out.yaml);
    Ok(())
}

fn write_certs(args: CertsArgs) -> Result<(), Error> {
    let CertsArgs {
        out_dir,
        service,
        namespace,
        dns_names,
        days,
    } = args;
    let names = certs::service_names(&service, &namespace, &dns_names);
    certs::write(&out_dir, &certs::generate(&names, days)?)?;
    eprintln!(
        "wrote {dir}/ca.crt, {dir}/tls.crt and {dir}/tls.key for {}",
        names.join(", "),
        dir = out_dir.display()
    );
    Ok(())
}
