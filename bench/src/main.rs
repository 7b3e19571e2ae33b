//! `secrets-injector-bench`: run the benchmark suites and print a summary
//! table (`scripts/bench.sh` is the one command). Hidden helpers: the bare
//! server and the `measure` wrapper, run as child processes.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use secrets_injector_bench::report::{Row, markdown};
use secrets_injector_bench::suite::{self, Opts, Paths};
use secrets_injector_bench::{Error, bare, cold, hostile, measure, proxy, quota, rss, storm, tls};

#[derive(Parser)]
#[command(version, about = "secrets-injector benchmarks: numbers, side by side")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Every suite, then the summary table.
    All(RunArgs),
    /// `review` in process.
    Review(RunArgs),
    /// Webhook vs bare server over HTTPS.
    Https(RunArgs),
    /// A normal review's latency while two worst-case requests are in flight.
    Hostile(RunArgs),
    /// Fleet scale: the rollout storm, the refresh storm and the soak, AWS quotas enforced.
    Fleet(FleetArgs),
    /// Agent vs the AWS CLI loop, boto3 and the Secrets Manager Agent.
    Agent(RunArgs),
    /// One pod's cold start: the agent vs a signed curl making the same call.
    Cold(RunArgs),
    /// Release binary sizes.
    Sizes(RunArgs),
    /// Start overhead of the env wrapper (exec of `true` through it vs directly).
    Wrapper(RunArgs),
    /// The bare axum + rustls server (run by the `https` suite).
    #[command(hide = true)]
    BareServer(BareArgs),
    /// The quota front: a proxy before the AWS emulator enforcing per-API
    /// quotas; prints its address, serves its call log on `/__front/calls`.
    #[command(hide = true)]
    QuotaFront(FrontArgs),
    /// Run a command; print its wall time and tree-wide peak RSS as JSON.
    #[command(hide = true)]
    Measure {
        #[arg(
            required = true,
            trailing_var_arg = true,
            help = "command and arguments"
        )]
        command: Vec<String>,
    },
}

#[derive(Args, Clone)]
struct RunArgs {
    /// Webhook binary (default: next to this binary).
    #[arg(long, env = "SECRETS_INJECTOR_BENCH_WEBHOOK_BIN")]
    webhook_bin: Option<PathBuf>,
    /// Agent binary (default: next to this binary).
    #[arg(long, env = "SECRETS_INJECTOR_BENCH_AGENT_BIN")]
    agent_bin: Option<PathBuf>,
    /// Env wrapper binary (default: next to this binary).
    #[arg(long, env = "SECRETS_INJECTOR_BENCH_ENV_BIN")]
    env_bin: Option<PathBuf>,
    /// AWS Secrets Manager Agent binary to compare with; skipped when unset.
    #[arg(long, env = "ASM_AGENT_BIN")]
    asm_agent_bin: Option<PathBuf>,
    /// Directory holding the baseline scripts.
    #[arg(
        long,
        env = "SECRETS_INJECTOR_BENCH_BASELINES",
        default_value = "bench/baselines"
    )]
    baselines: PathBuf,
    /// Seconds per HTTPS load phase.
    #[arg(long, env = "SECRETS_INJECTOR_BENCH_PHASE_SECS", default_value_t = 5)]
    phase_secs: u64,
    /// Run only the saturation phase of `https` (e.g. under `perf record`).
    #[arg(long)]
    saturation_only: bool,
    /// Repetitions of each timed agent/boto3/ASM-agent run.
    #[arg(long, env = "SECRETS_INJECTOR_BENCH_REPS", default_value_t = 10)]
    reps: usize,
    /// Repetitions of the (slow) AWS CLI loop.
    #[arg(long, env = "SECRETS_INJECTOR_BENCH_CLI_REPS", default_value_t = 5)]
    cli_reps: usize,
    /// Iterations of `review` for the typical pod (a quarter for the large one).
    #[arg(
        long,
        env = "SECRETS_INJECTOR_BENCH_REVIEW_ITERS",
        default_value_t = 20_000
    )]
    review_iters: usize,
    /// Runs a round (direct and through the wrapper, interleaved) of the env wrapper bench.
    #[arg(
        long,
        env = "SECRETS_INJECTOR_BENCH_WRAPPER_RUNS",
        default_value_t = 2_000
    )]
    wrapper_runs: usize,
}

#[derive(Args, Clone)]
struct FleetArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Init agents started within one second in the rollout storm.
    #[arg(
        long,
        env = "SECRETS_INJECTOR_BENCH_STORM_AGENTS",
        default_value_t = 300
    )]
    agents: usize,
    /// Sidecars in the refresh storm (three minimum intervals, ~2 minutes;
    /// ~9 MiB each). At 300 the peak second of 90 is ~2× the mean from
    /// random phases alone; 600 shows the arrival pattern, not that noise.
    #[arg(
        long,
        env = "SECRETS_INJECTOR_BENCH_STORM_SIDECARS",
        default_value_t = 600
    )]
    sidecars: usize,
    /// Refreshes of the one soaked sidecar.
    #[arg(
        long,
        env = "SECRETS_INJECTOR_BENCH_SOAK_ROUNDS",
        default_value_t = 1000
    )]
    soak_rounds: u64,
}

#[derive(Args)]
struct FrontArgs {
    /// The emulator's URL, e.g. http://127.0.0.1:5000.
    #[arg(long, env = "SECRETS_INJECTOR_FRONT_UPSTREAM")]
    upstream: String,
    /// Listen address (port 0: any free port, printed on stdout).
    #[arg(
        long,
        env = "SECRETS_INJECTOR_FRONT_LISTEN",
        default_value = "127.0.0.1:0"
    )]
    listen: String,
    /// A quota, OPERATION=RATE[:BURST] (e.g. secretsmanager.BatchGetSecretValue=100); repeatable.
    #[arg(
        long = "quota",
        env = "SECRETS_INJECTOR_FRONT_QUOTAS",
        value_delimiter = ','
    )]
    quotas: Vec<String>,
}

#[derive(Args)]
struct BareArgs {
    /// Listen address.
    #[arg(long, env = "SECRETS_INJECTOR_BENCH_LISTEN")]
    listen: std::net::SocketAddr,
    /// PEM certificate chain.
    #[arg(long, env = "SECRETS_INJECTOR_BENCH_TLS_CERT_FILE")]
    tls_cert_file: PathBuf,
    /// PEM private key.
    #[arg(long, env = "SECRETS_INJECTOR_BENCH_TLS_KEY_FILE")]
    tls_key_file: PathBuf,
    /// Body returned for every `POST /mutate`.
    #[arg(long, env = "SECRETS_INJECTOR_BENCH_RESPONSE_FILE")]
    response_file: PathBuf,
    /// Parse each request body into `serde_json::Value` before answering.
    #[arg(long, env = "SECRETS_INJECTOR_BENCH_PARSE_BODY")]
    parse_body: bool,
}

fn read(path: &PathBuf) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|e| Error::io(&path.display().to_string(), e))
}

fn paths(a: &RunArgs) -> Result<Paths, Error> {
    let self_exe = std::env::current_exe().map_err(|e| Error::io("current_exe", e))?;
    let dir = self_exe.parent().map(PathBuf::from).unwrap_or_default();
    let webhook_bin = a
        .webhook_bin
        .clone()
        .unwrap_or_else(|| dir.join("secrets-injector-webhook"));
    let agent_bin = a
        .agent_bin
        .clone()
        .unwrap_or_else(|| dir.join("secrets-injector-agent"));
    let env_bin = a
        .env_bin
        .clone()
        .unwrap_or_else(|| dir.join("secrets-injector-env"));
    Ok(Paths {
        self_exe,
        webhook_bin,
        agent_bin,
        env_bin,
        asm_agent_bin: a
            .asm_agent_bin
            .clone()
            .filter(|p| !p.as_os_str().is_empty()),
        baselines_dir: a.baselines.clone(),
    })
}

fn opts(a: &RunArgs) -> Opts {
    Opts {
        phase: Duration::from_secs(a.phase_secs.max(1)),
        reps: a.reps.max(1),
        cli_reps: a.cli_reps.max(1),
        review_iters: a.review_iters.max(100),
        wrapper_runs: a.wrapper_runs.max(10),
        saturation_only: a.saturation_only,
    }
}

async fn run(cmd: Cmd) -> Result<(), Error> {
    let mut rows: Vec<Row> = Vec::new();
    match cmd {
        Cmd::BareServer(b) => {
            let cfg = tls::server_config(&read(&b.tls_cert_file)?, &read(&b.tls_key_file)?)?;
            let canned = std::fs::read(&b.response_file)
                .map_err(|e| Error::io(&b.response_file.display().to_string(), e))?;
            let listener = tokio::net::TcpListener::bind(b.listen)
                .await
                .map_err(|e| Error::io(&format!("bind {}", b.listen), e))?;
            return bare::serve(listener, cfg, canned.into(), b.parse_body).await;
        }
        Cmd::QuotaFront(f) => {
            let quotas = f
                .quotas
                .iter()
                .map(|q| quota::Quota::parse(q))
                .collect::<Result<Vec<_>, _>>()?;
            let (addr, _front) =
                proxy::start_front(&f.upstream, quota::Quotas::new(quotas), &f.listen).await?;
            println!("{addr}");
            let _ = tokio::signal::ctrl_c().await;
            return Ok(());
        }
        Cmd::Measure { command } => {
            let (prog, args) = command
                .split_first()
                .ok_or_else(|| Error::Measure("no command".into()))?;
            let mut c = std::process::Command::new(prog);
            c.args(args).stdout(std::process::Stdio::null());
            let r = rss::run_measured(c)?;
            let m = measure::Measured {
                wall_ns: u64::try_from(r.wall.as_nanos()).unwrap_or(u64::MAX),
                max_rss_kib: r.max_rss_kib,
                cpu_ns: u64::try_from(r.cpu.as_nanos()).unwrap_or(u64::MAX),
                success: r.status.success(),
            };
            println!(
                "{}",
                serde_json::to_string(&m).map_err(|e| Error::Measure(e.to_string()))?
            );
            return Ok(());
        }
        Cmd::All(a) => {
            let (p, o) = (paths(&a)?, opts(&a));
            rows.extend(suite::sizes(&p));
            rows.extend(suite::review(&o).await?);
            rows.extend(suite::https(&p, &o).await?);
            rows.extend(hostile::suite(&p, &o).await?);
            rows.extend(suite::agent(&p, &o).await?);
            rows.extend(cold::suite(&p, o.reps.max(20))?);
            rows.extend(suite::wrapper(&p, &o)?);
        }
        Cmd::Review(a) => rows.extend(suite::review(&opts(&a)).await?),
        Cmd::Https(a) => rows.extend(suite::https(&paths(&a)?, &opts(&a)).await?),
        Cmd::Hostile(a) => rows.extend(hostile::suite(&paths(&a)?, &opts(&a)).await?),
        Cmd::Fleet(f) => {
            let p = paths(&f.run)?;
            rows.extend(storm::rollout(&p, f.agents.max(1)).await?);
            rows.extend(storm::refresh(&p, f.sidecars.max(1)).await?);
            rows.extend(storm::soak(&p, f.soak_rounds.max(21)).await?);
        }
        Cmd::Agent(a) => rows.extend(suite::agent(&paths(&a)?, &opts(&a)).await?),
        Cmd::Sizes(a) => rows.extend(suite::sizes(&paths(&a)?)),
        Cmd::Cold(a) => rows.extend(cold::suite(&paths(&a)?, a.reps.max(20))?),
        Cmd::Wrapper(a) => rows.extend(suite::wrapper(&paths(&a)?, &opts(&a))?),
    }
    println!("\n## summary\n\n{}", markdown(&rows));
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("secrets-injector-bench: tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli.cmd)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("secrets-injector-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
