//! The suites `scripts/bench.sh` runs; each prints details as it goes and
//! returns rows for the summary table.

use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::body::Bytes;
use rustls::pki_types::ServerName;
use secrets_injector_tests::{Moto, TestPki};

use crate::agentbench::{self, PodEnv};
use crate::loadgen::{self, LoadResult, Target};
use crate::measure::Measured;
use crate::report::Row;
use crate::stats::{Summary, fmt_dur, fmt_kib, median_u64};
use crate::webhookbench::{self, ServerProcess};
use crate::{Error, cost, pods, proxy, rss, tls, wrapperbench};

/// Binaries and scripts under test.
#[derive(Debug, Clone)]
pub struct Paths {
    pub self_exe: PathBuf,
    pub webhook_bin: PathBuf,
    pub agent_bin: PathBuf,
    pub env_bin: PathBuf,
    pub asm_agent_bin: Option<PathBuf>,
    pub baselines_dir: PathBuf,
}

/// How long and how often.
#[derive(Debug, Clone, Copy)]
pub struct Opts {
    pub phase: Duration,
    pub reps: usize,
    pub cli_reps: usize,
    pub review_iters: usize,
    pub wrapper_runs: usize,
    /// `https` runs its saturation phase only.
    pub saturation_only: bool,
}

const MIB: u64 = 1024;

/// Fail with the build hint when a binary under test is missing.
fn require(what: &str, bin: &Path) -> Result<(), Error> {
    if bin.exists() {
        return Ok(());
    }
    Err(Error::Missing(
        format!("{what} binary {}", bin.display()),
        "run scripts/bench.sh (it builds the release binaries) or pass --webhook-bin/--agent-bin"
            .into(),
    ))
}

/// `review` in process for the typical and the large pod.
pub async fn review(opts: &Opts) -> Result<Vec<Row>, Error> {
    println!(
        "\n## webhook review() in process ({} iterations)",
        opts.review_iters
    );
    let mut rows = Vec::new();
    for (how, s) in webhookbench::bench_decode(&pods::typical(), opts.review_iters)? {
        println!(
            "decode the typical review {how}: n={} p50={} p99={}",
            s.n,
            fmt_dur(s.p50),
            fmt_dur(s.p99)
        );
        rows.push(Row::info(
            format!("decode the typical review {how}"),
            format!("p50 {} / p99 {}", fmt_dur(s.p50), fmt_dur(s.p99)),
        ));
    }
    for (name, pod, iters) in [
        (
            "typical pod (3 containers, 5 secrets)",
            pods::typical(),
            opts.review_iters,
        ),
        (
            "large pod (20 containers, 50 secrets)",
            pods::large(),
            opts.review_iters / 4,
        ),
    ] {
        let (s, ops) = webhookbench::bench_review(&pod, iters)?;
        println!(
            "{name}: {ops} patch ops, n={} p50={} p99={} max={}",
            s.n,
            fmt_dur(s.p50),
            fmt_dur(s.p99),
            fmt_dur(s.max)
        );
        let value = format!("p50 {} / p99 {}", fmt_dur(s.p50), fmt_dur(s.p99));
        let typical = name.starts_with("typical");
        if typical {
            rows.push(Row::target(
                format!("review(), {name}"),
                value,
                "p50 ≤ 20 µs",
                s.p50 <= Duration::from_micros(20),
            ));
        } else {
            rows.push(Row::info(format!("review(), {name}"), value));
        }
        let r = webhookbench::bench_router(&pod, iters).await?;
        println!(
            "{name} through routes::router + oneshot: n={} p50={} p99={} max={}",
            r.n,
            fmt_dur(r.p50),
            fmt_dur(r.p99),
            fmt_dur(r.max)
        );
        let value = format!("p50 {} / p99 {}", fmt_dur(r.p50), fmt_dur(r.p99));
        let what = format!("router (decode + review + encode), {name}");
        if typical {
            rows.push(Row::target(
                what,
                value,
                "p50 ≤ 60 µs",
                r.p50 <= Duration::from_micros(60),
            ));
        } else {
            rows.push(Row::info(what, value));
        }
    }
    Ok(rows)
}

fn line(what: &str, r: &LoadResult) -> String {
    let (p50, p99) = r
        .latency
        .map(|s| (fmt_dur(s.p50), fmt_dur(s.p99)))
        .unwrap_or_else(|| ("-".into(), "-".into()));
    format!(
        "{what}: {:.0} req/s, {} ok, {} errors, {} unsent, p50 {p50}, p99 {p99}",
        r.throughput(),
        r.completed,
        r.errors,
        r.unsent
    )
}

fn p99(r: &LoadResult) -> Duration {
    r.latency.map(|s: Summary| s.p99).unwrap_or(Duration::MAX)
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    Rate(u32),
    Saturate,
    Handshake,
}

async fn run_phase(p: Phase, t: &Target, opts: &Opts) -> LoadResult {
    match p {
        Phase::Rate(rps) => loadgen::fixed_rate(t, 8, rps, opts.phase).await,
        Phase::Saturate => loadgen::saturate(t, 16, opts.phase).await,
        Phase::Handshake => loadgen::handshakes(t, 4, opts.phase).await,
    }
}

/// The uid of every benchmark review.
const BENCH_UID: &str = "bench-uid-0001";

/// A webhook process under test and a keep-alive target for the typical pod.
#[derive(Debug)]
pub struct Webhook {
    pub dir: tempfile::TempDir,
    pub process: ServerProcess,
    pub target: Target,
    pub pki: TestPki,
}

/// Start the webhook with a fresh test PKI; the target sends the typical pod's review.
pub async fn start_webhook(paths: &Paths) -> Result<Webhook, Error> {
    require("webhook", &paths.webhook_bin)?;
    let dir = tempfile::tempdir().map_err(|e| Error::io("temp dir", e))?;
    let pki = TestPki::new(&["localhost", "127.0.0.1"]);
    pki.write_to(dir.path());
    let process = webhookbench::start_webhook(&paths.webhook_bin, dir.path())?;
    let review =
        secrets_injector_tests::pods::admission_review(&pods::typical(), "bench", BENCH_UID);
    let body = Bytes::from(serde_json::to_vec(&review).map_err(|e| Error::Http(e.to_string()))?);
    let target = Target {
        addr: process.addr,
        server_name: ServerName::try_from("localhost").map_err(|e| Error::Tls(e.to_string()))?,
        tls: tls::client_config(&pki.ca_pem, true)?,
        path: "/mutate".into(),
        body,
    };
    Ok(Webhook {
        dir,
        process,
        target,
        pki,
    })
}

/// The webhook process and both bare servers (canned answer; parse the body,
/// then the canned answer) under the same load, phase by phase, in one run.
pub async fn https(paths: &Paths, opts: &Opts) -> Result<Vec<Row>, Error> {
    println!(
        "\n## HTTPS on loopback: webhook vs bare axum + tokio-rustls, canned and parse-only ({} s phases, HTTP/1.1 keep-alive)",
        opts.phase.as_secs()
    );
    let Webhook {
        dir,
        process: wh,
        target: wh_target,
        pki,
    } = start_webhook(paths).await?;
    let full = tls::client_config(&pki.ca_pem, false)?;
    let uid = BENCH_UID;
    let first = loadgen::one_shot(&wh_target).await?;
    webhookbench::check_response(&first, uid)?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = rss::of_pid(wh.child.id())?;
    println!(
        "webhook idle after one request: VmRSS {} (response {} bytes)",
        fmt_kib(idle.rss_kib),
        first.len()
    );
    let response = dir.path().join("response.json");
    std::fs::write(&response, &first).map_err(|e| Error::io("canned response", e))?;
    let bare = webhookbench::start_bare(&paths.self_exe, dir.path(), &response, false)?;
    let bare_target = Target {
        addr: bare.addr,
        ..wh_target.clone()
    };
    let parse = webhookbench::start_bare(&paths.self_exe, dir.path(), &response, true)?;
    let parse_target = Target {
        addr: parse.addr,
        ..wh_target.clone()
    };
    let bare_idle = rss::of_pid(bare.child.id())?;

    let warm = Opts {
        phase: Duration::from_secs(1),
        ..*opts
    };
    run_phase(Phase::Saturate, &bare_target, &warm).await;
    run_phase(Phase::Saturate, &parse_target, &warm).await;
    run_phase(Phase::Saturate, &wh_target, &warm).await;

    let mut rows = Vec::new();
    let phases: &[Phase] = if opts.saturation_only {
        &[Phase::Saturate]
    } else {
        &[
            Phase::Rate(500),
            Phase::Rate(1000),
            Phase::Rate(2000),
            Phase::Saturate,
            Phase::Handshake,
        ]
    };
    for &phase in phases {
        let fresh = |t: &Target| match phase {
            Phase::Handshake => Target {
                tls: full.clone(),
                ..t.clone()
            },
            _ => t.clone(),
        };
        let b = run_phase(phase, &fresh(&bare_target), opts).await;
        let pb = run_phase(phase, &fresh(&parse_target), opts).await;
        let w = run_phase(phase, &fresh(&wh_target), opts).await;
        let label = match phase {
            Phase::Rate(r) => format!("{r} req/s open loop, 8 conns"),
            Phase::Saturate => "saturation, 16 conns".to_string(),
            Phase::Handshake => "new TLS connection per request, 4 concurrent".to_string(),
        };
        println!("{}", line(&format!("bare    {label}"), &b));
        println!("{}", line(&format!("parse   {label}"), &pb));
        println!("{}", line(&format!("webhook {label}"), &w));
        rows.extend(phase_rows(phase, &label, &b, &pb, &w));
    }
    let after = rss::of_pid(wh.child.id())?;
    let bare_after = rss::of_pid(bare.child.id())?;
    println!(
        "webhook memory: idle {} , peak under load (VmHWM) {}, after load {}; bare: idle {}, peak {}",
        fmt_kib(idle.rss_kib),
        fmt_kib(after.hwm_kib),
        fmt_kib(after.rss_kib),
        fmt_kib(bare_idle.rss_kib),
        fmt_kib(bare_after.hwm_kib)
    );
    rows.push(Row::target(
        "webhook idle RSS (after first request)",
        fmt_kib(idle.rss_kib),
        "≤ 20 MiB",
        idle.rss_kib <= 20 * MIB,
    ));
    rows.push(Row::info(
        "webhook peak RSS under load (VmHWM) / bare server's",
        format!(
            "{} / {}",
            fmt_kib(after.hwm_kib),
            fmt_kib(bare_after.hwm_kib)
        ),
    ));
    Ok(rows)
}

/// The summary rows of one HTTPS phase: each server's figures, and the
/// same-run ratios the targets are stated in.
fn phase_rows(
    phase: Phase,
    label: &str,
    b: &LoadResult,
    pb: &LoadResult,
    w: &LoadResult,
) -> Vec<Row> {
    let mut rows = Vec::new();
    let both = |r: &LoadResult| {
        format!(
            "{:.0} req/s, p50 {} / p99 {}{}",
            r.throughput(),
            r.latency.map(|s| fmt_dur(s.p50)).unwrap_or_default(),
            r.latency.map(|s| fmt_dur(s.p99)).unwrap_or_default(),
            if r.errors + r.unsent > 0 {
                format!(", {} errors, {} unsent", r.errors, r.unsent)
            } else {
                String::new()
            }
        )
    };
    rows.push(Row::info(format!("HTTPS bare, {label}"), both(b)));
    rows.push(Row::info(format!("HTTPS parse-only, {label}"), both(pb)));
    match phase {
        Phase::Rate(1000) => {
            rows.push(Row::info(format!("HTTPS webhook, {label}"), both(w)));
            let ratio = p99(w).as_secs_f64() / p99(b).as_secs_f64().max(1e-9);
            rows.push(Row::target(
                "HTTPS p99 at 1,000 req/s, webhook ÷ bare (same run)",
                format!("{ratio:.2}× ({} / {})", fmt_dur(p99(w)), fmt_dur(p99(b))),
                "≤ 3×, no errors",
                ratio <= 3.0 && w.errors + w.unsent == 0,
            ));
        }
        Phase::Saturate => {
            let vs_parse = w.throughput() / pb.throughput().max(1e-9);
            let vs_bare = w.throughput() / b.throughput().max(1e-9);
            rows.push(Row::info(format!("HTTPS webhook, {label}"), both(w)));
            rows.push(Row::target(
                "HTTPS saturation throughput, webhook ÷ parse-only (same run)",
                format!("{vs_parse:.2}×"),
                "≥ 0.7×",
                vs_parse >= 0.7,
            ));
            rows.push(Row::info(
                "HTTPS saturation throughput, webhook ÷ canned bare (same run)",
                format!("{vs_bare:.2}×"),
            ));
        }
        _ => rows.push(Row::info(format!("HTTPS webhook, {label}"), both(w))),
    }
    rows
}

fn ceil_div(a: usize, b: usize) -> u64 {
    a.div_ceil(b) as u64
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Measure(format!("worker: {e}")))?
}

/// Median and p90 wall time, and the largest peak RSS, of a series of runs.
#[derive(Debug, Clone, Copy)]
struct Series {
    median: Duration,
    p90: Duration,
    max_rss_kib: u64,
    rss_median_kib: u64,
}

impl Series {
    fn of(runs: &[Measured]) -> Option<Series> {
        let s = Summary::of(runs.iter().map(Measured::wall).collect())?;
        let rss: Vec<u64> = runs.iter().map(|m| m.max_rss_kib).collect();
        Some(Series {
            median: s.p50,
            p90: s.p90,
            max_rss_kib: rss.iter().copied().max()?,
            rss_median_kib: median_u64(&rss)?,
        })
    }

    fn show(&self) -> String {
        format!(
            "median {} / p90 {}, peak RSS {}",
            fmt_dur(self.median),
            fmt_dur(self.p90),
            fmt_kib(self.max_rss_kib)
        )
    }
}

async fn repeat<F>(reps: usize, f: F) -> Result<Vec<Measured>, Error>
where
    F: Fn() -> Result<Measured, Error> + Send + Clone + 'static,
{
    let mut out = Vec::new();
    for _ in 0..reps {
        let g = f.clone();
        out.push(blocking(g).await?);
    }
    Ok(out)
}

/// The agent and the alternatives against moto through the counting proxy.
pub async fn agent(paths: &Paths, opts: &Opts) -> Result<Vec<Row>, Error> {
    println!("\n## agent vs AWS emulator (moto) through a counting proxy, IRSA credentials");
    require("agent", &paths.agent_bin)?;
    let moto = blocking(|| Ok(Moto::start())).await?;
    let endpoint = moto.endpoint();
    let moto = std::sync::Arc::new(moto);
    {
        let m = moto.clone();
        blocking(move || {
            agentbench::seed(&m, 100, 100);
            Ok(())
        })
        .await?;
    }
    let (proxy_addr, counts) = proxy::start(&endpoint).await?;
    let pod = std::sync::Arc::new(PodEnv::new(&format!("http://{proxy_addr}"))?);
    let mut rows = Vec::new();

    let agent_run = |n_sm: usize, n_ssm: usize| {
        let (exe, bin, pod) = (paths.self_exe.clone(), paths.agent_bin.clone(), pod.clone());
        move || agentbench::run_agent(&exe, &bin, &pod, n_sm, n_ssm)
    };

    for (kind, ns) in [
        ("secrets", [1, 10, 20, 21, 100]),
        ("SSM parameters", [1, 10, 20, 21, 100]),
    ] {
        for n in ns {
            counts.take();
            let (sm, ssm) = if kind == "secrets" { (n, 0) } else { (0, n) };
            blocking(agent_run(sm, ssm)).await?;
            let c = counts.take();
            let by = proxy::by_service(&c);
            let got = by
                .get(if sm > 0 { "sm" } else { "ssm" })
                .copied()
                .unwrap_or(0);
            let want = if sm > 0 {
                ceil_div(n, 20)
            } else {
                ceil_div(n, 10)
            };
            let others: u64 = by.values().sum::<u64>() - got;
            println!("agent, {n} {kind}: {}", agentbench::call_summary(&c));
            rows.push(Row::target(
                format!("agent AWS calls, {n} {kind}"),
                format!("{got} + {others} credentials/other"),
                format!("{want} + credentials"),
                got == want,
            ));
        }
    }

    counts.take();
    let a10 = repeat(opts.reps, agent_run(10, 0)).await?;
    let a10_calls = counts.take();
    let a20 = repeat(opts.reps, agent_run(10, 10)).await?;
    counts.take();
    let s10 = Series::of(&a10).ok_or_else(|| Error::Measure("no agent runs".into()))?;
    let s20 = Series::of(&a20).ok_or_else(|| Error::Measure("no agent runs".into()))?;
    println!(
        "agent, 10 secrets, start → files written ({} runs): {}",
        opts.reps,
        s10.show()
    );
    println!(
        "agent, 10 secrets + 10 SSM parameters ({} runs): {}",
        opts.reps,
        s20.show()
    );

    let python = secrets_injector_tests::tool("python");
    let aws = secrets_injector_tests::tool("aws");
    let cli_script = paths.baselines_dir.join("cli_loop.sh");
    let boto_script = paths.baselines_dir.join("boto3_batch.py");
    let cli_env = vec![("AWS_CLI".to_string(), aws.to_string_lossy().into_owned())];
    let cli = {
        let (exe, pod, script, env) = (paths.self_exe.clone(), pod.clone(), cli_script, cli_env);
        repeat(opts.cli_reps, move || {
            agentbench::run_baseline(&exe, Path::new("bash"), &script, &pod, 10, &env)
        })
        .await?
    };
    let cli_calls = counts.take();
    let boto = {
        let (exe, pod, script, py) = (paths.self_exe.clone(), pod.clone(), boto_script, python);
        repeat(opts.reps, move || {
            agentbench::run_baseline(&exe, &py, &script, &pod, 10, &[])
        })
        .await?
    };
    let boto_calls = counts.take();
    let cli_s = Series::of(&cli).ok_or_else(|| Error::Measure("no CLI runs".into()))?;
    let boto_s = Series::of(&boto).ok_or_else(|| Error::Measure("no boto3 runs".into()))?;
    println!(
        "AWS CLI loop, 10 secrets ({} runs): {}",
        opts.cli_reps,
        cli_s.show()
    );
    println!(
        "boto3 batch script, 10 secrets ({} runs): {}",
        opts.reps,
        boto_s.show()
    );

    let per_run = |c: &std::collections::BTreeMap<String, u64>, runs: usize| {
        let by = proxy::by_service(c);
        let sm = by.get("sm").copied().unwrap_or(0) / runs.max(1) as u64;
        let other = by.values().sum::<u64>() / runs.max(1) as u64 - sm;
        (sm, other)
    };
    let (a_sm, a_other) = per_run(&a10_calls, opts.reps);
    let (c_sm, c_other) = per_run(&cli_calls, opts.cli_reps);
    let (b_sm, b_other) = per_run(&boto_calls, opts.reps);

    rows.push(Row::info(
        "agent, 10 secrets, start → files written",
        s10.show(),
    ));
    rows.push(Row::info(
        "agent, 10 secrets + 10 SSM parameters, start → files written",
        s20.show(),
    ));
    rows.push(Row::info(
        "AWS CLI loop (get-secret-value ×10), same moto",
        format!("{}; {c_sm} SM + {c_other} other calls", cli_s.show()),
    ));
    rows.push(Row::info(
        "boto3 batch_get_secret_value script, same moto",
        format!("{}; {b_sm} SM + {b_other} other calls", boto_s.show()),
    ));
    let speedup = |base: Duration| base.as_secs_f64() / s10.median.as_secs_f64().max(1e-9);
    let vs_cli = speedup(cli_s.median);
    let vs_boto = speedup(boto_s.median);
    rows.push(Row::target(
        "agent speed-up vs AWS CLI loop (medians, same run)",
        format!("{vs_cli:.1}×"),
        "≥ 50×",
        vs_cli >= 50.0,
    ));
    rows.push(Row::target(
        "agent speed-up vs boto3 batch script (medians, same run)",
        format!("{vs_boto:.1}×"),
        "≥ 3×",
        vs_boto >= 3.0,
    ));

    let mut asm_sm = None;
    match &paths.asm_agent_bin {
        None => {
            println!("AWS Secrets Manager Agent: skipped: set ASM_AGENT_BIN");
            rows.push(Row::info(
                "AWS Secrets Manager Agent",
                "skipped: set ASM_AGENT_BIN",
            ));
        }
        Some(bin) => {
            let mut runs = Vec::new();
            for _ in 0..opts.reps {
                runs.push(agentbench::run_asm_agent(bin, &pod, 10).await?);
            }
            let asm_calls = counts.take();
            let (sm, other) = per_run(&asm_calls, opts.reps);
            asm_sm = Some(sm);
            let s = Summary::of(runs.iter().map(|r| r.to_served).collect())
                .ok_or_else(|| Error::Measure("no ASM agent runs".into()))?;
            let idle = median_u64(&runs.iter().map(|r| r.rss_kib).collect::<Vec<_>>()).unwrap_or(0);
            let peak = runs.iter().map(|r| r.hwm_kib).max().unwrap_or(0);
            let size = stripped_size(bin)
                .map(fmt_bytes)
                .unwrap_or_else(|e| e.to_string());
            println!(
                "AWS Secrets Manager Agent, start → 10 GETs answered ({} runs): median {} / p90 {}, RSS after serving {}, peak {}, {sm} SM + {other} other calls per start ({}), stripped size {}",
                opts.reps,
                fmt_dur(s.p50),
                fmt_dur(s.p90),
                fmt_kib(idle),
                fmt_kib(peak),
                agentbench::call_summary(&asm_calls),
                size
            );
            rows.push(Row::info(
                "AWS Secrets Manager Agent, start → 10 secrets served",
                format!(
                    "median {} / p90 {}, RSS {} (peak {}), {sm} SM + {other} other calls, {size} stripped",
                    fmt_dur(s.p50),
                    fmt_dur(s.p90),
                    fmt_kib(idle),
                    fmt_kib(peak),
                ),
            ));
            let vs = speedup(s.p50);
            rows.push(Row::target(
                "agent speed-up vs AWS Secrets Manager Agent (medians, same run)",
                format!("{vs:.1}×"),
                "≥ 3×",
                vs >= 3.0,
            ));
        }
    }

    rows.push(Row::target(
        "agent peak RSS (largest of all timed runs)",
        fmt_kib(s10.max_rss_kib.max(s20.max_rss_kib)),
        "≤ 10 MiB",
        s10.max_rss_kib.max(s20.max_rss_kib) <= 10 * MIB,
    ));
    println!(
        "peak RSS medians: agent {}, CLI loop {}, boto3 {}",
        fmt_kib(s10.rss_median_kib),
        fmt_kib(cli_s.rss_median_kib),
        fmt_kib(boto_s.rss_median_kib)
    );
    let usd = cost::monthly_usd(a_sm, 300);
    let mut cost_line = format!(
        "agent ${usd:.4} ({a_sm} call/refresh, +{a_other} STS); CLI loop ${:.4}; boto3 ${:.4}",
        cost::monthly_usd(c_sm, 300),
        cost::monthly_usd(b_sm, 300)
    );
    if let Some(sm) = asm_sm {
        cost_line += &format!("; ASM Agent ${:.4}", cost::monthly_usd(sm, 300));
    }
    println!("monthly Secrets Manager API cost per pod, 10 secrets, 5 min refresh: {cost_line}");
    rows.push(Row::target(
        "monthly API cost per pod, 10 secrets, 5 min refresh",
        cost_line,
        "≤ $0.05",
        usd <= 0.05,
    ));
    drop(moto);
    Ok(rows)
}

fn fmt_bytes(b: u64) -> String {
    format!("{:.2} MiB", b as f64 / (1024.0 * 1024.0))
}

/// Size of `bin` after `strip` (a temp copy), or as is when already stripped.
fn stripped_size(bin: &Path) -> Result<u64, Error> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("temp dir", e))?;
    let copy = dir.path().join("bin");
    std::fs::copy(bin, &copy).map_err(|e| Error::io(&bin.display().to_string(), e))?;
    let status = std::process::Command::new("strip")
        .arg(&copy)
        .status()
        .map_err(|e| Error::io("strip", e))?;
    if !status.success() {
        return Err(Error::Measure(format!("strip {} failed", bin.display())));
    }
    rss::file_size(&copy)
}

/// Sizes of the release binaries (the release profile strips symbols).
pub fn sizes(paths: &Paths) -> Vec<Row> {
    println!("\n## release binaries");
    let mut rows = Vec::new();
    for (name, bin, limit) in [
        ("webhook", &paths.webhook_bin, 10u64),
        ("agent", &paths.agent_bin, 8u64),
        ("env wrapper", &paths.env_bin, 1u64),
    ] {
        match stripped_size(bin) {
            Ok(b) => {
                println!("{name}: {} ({})", fmt_bytes(b), bin.display());
                rows.push(Row::target(
                    format!("{name} binary, stripped"),
                    fmt_bytes(b),
                    format!("≤ {limit} MiB"),
                    b <= limit * 1024 * 1024,
                ));
            }
            Err(e) => rows.push(Row::target(
                format!("{name} binary, stripped"),
                format!("not measured: {e}"),
                format!("≤ {limit} MiB"),
                false,
            )),
        }
    }
    rows
}

/// Signed difference `a - b` as a duration string.
fn fmt_delta(a: Duration, b: Duration) -> String {
    if a >= b {
        format!("+{}", fmt_dur(a - b))
    } else {
        format!("-{}", fmt_dur(b - a))
    }
}

/// The env wrapper's start overhead: `true` directly vs through the wrapper,
/// three rounds of interleaved runs, so the spread shows.
pub fn wrapper(paths: &Paths, opts: &Opts) -> Result<Vec<Row>, Error> {
    require("env wrapper", &paths.env_bin)?;
    println!(
        "\n## env wrapper start overhead ({} interleaved runs a round, {} --env + {}-key --env-from, `{}`)",
        opts.wrapper_runs,
        wrapperbench::ENV_VARS,
        wrapperbench::ENV_FROM_KEYS,
        wrapperbench::true_bin().display()
    );
    let mut rounds = Vec::new();
    for round in 1..=3 {
        let (direct, wrapped) = wrapperbench::measure(&paths.env_bin, opts.wrapper_runs)?;
        println!(
            "round {round}: direct p50 {} p90 {} / through the wrapper p50 {} p90 {} -> overhead p50 {}",
            fmt_dur(direct.p50),
            fmt_dur(direct.p90),
            fmt_dur(wrapped.p50),
            fmt_dur(wrapped.p90),
            fmt_delta(wrapped.p50, direct.p50)
        );
        rounds.push((direct, wrapped));
    }
    let overheads: Vec<String> = rounds
        .iter()
        .map(|(d, w)| fmt_delta(w.p50, d.p50))
        .collect();
    let directs: Vec<String> = rounds.iter().map(|(d, _)| fmt_dur(d.p50)).collect();
    Ok(vec![
        Row::info(
            "env wrapper start overhead, exec of `true` (p50 through wrapper − p50 direct, 3 rounds)",
            overheads.join(" / "),
        ),
        Row::info(
            "same-run baseline: `true` spawned directly, p50 (3 rounds)",
            directs.join(" / "),
        ),
    ])
}
