//! Fleet scale (issue 16), through the quota front at the quotas AWS
//! publishes: a **rollout storm** (N init agents started within one second,
//! IRSA via the emulator's STS) and a **refresh storm** (M sidecars at the
//! minimum interval for three intervals, calls counted per second), plus a
//! **soak** of one sidecar over 1,000 refreshes (RSS at the start and end).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use secrets_injector_shared::AgentConfig;
use secrets_injector_shared::config::Mode;
use secrets_injector_tests::Moto;

use crate::agentbench::{self, AgentRoot, CANARY, Killed, PodEnv};
use crate::proxy::{self, Front};
use crate::quota::{Call, Quota, Quotas};
use crate::report::Row;
use crate::stats::{Summary, fmt_dur, fmt_kib};
use crate::suite::Paths;
use crate::{Error, rss};

/// The quotas AWS publishes per account and Region (BENCHMARKS.md cites
/// them): Secrets Manager `BatchGetSecretValue` 100/s and `GetSecretValue`
/// 10,000/s; Parameter Store's default (standard) throughput 40/s shared by
/// `GetParameter`, `GetParameters` and `GetParametersByPath`. STS publishes
/// no per-operation figure; it passes freely here (and is counted).
pub fn published_quotas() -> Quotas {
    let q = |rate: f64| Quota { rate, burst: rate };
    Quotas::new([
        ("secretsmanager.BatchGetSecretValue".to_string(), q(100.0)),
        ("secretsmanager.GetSecretValue".to_string(), q(10_000.0)),
        ("AmazonSSM.GetParameters".to_string(), q(40.0)),
    ])
}

/// Secrets Manager secrets and SSM parameters each pod names.
const SECRETS: usize = 10;
const PARAMS: usize = 5;

fn spawn_agent(
    agent: &Path,
    env: &PodEnv,
    cfg: &AgentConfig,
    pod: &AgentRoot,
    extra: &[(&str, String)],
    stderr: Stdio,
) -> Result<Child, Error> {
    Command::new(agent)
        .env_clear()
        .envs(pod.env(env, cfg, "json"))
        .envs(extra.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .map_err(|e| Error::io(&format!("start {}", agent.display()), e))
}

/// Calls and throttles per operation, over the whole run.
fn per_api(calls: &[Call]) -> BTreeMap<String, (u64, u64)> {
    let mut out: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for c in calls {
        let e = out.entry(c.op.clone()).or_default();
        e.0 += 1;
        e.1 += u64::from(c.throttled);
    }
    out
}

fn show_per_api(calls: &[Call]) -> String {
    per_api(calls)
        .iter()
        .map(|(op, (n, t))| format!("{op} {n} ({t} throttled)"))
        .collect::<Vec<_>>()
        .join(", ")
}

async fn emulator_with_front() -> Result<(Moto, Front, PodEnv), Error> {
    let moto = Moto::start();
    agentbench::seed(&moto, SECRETS, PARAMS);
    let (addr, front) =
        proxy::start_front(&moto.endpoint(), published_quotas(), "127.0.0.1:0").await?;
    let env = PodEnv::new(&format!("http://{addr}"))?;
    Ok((moto, front, env))
}

/// N init agents started within one second; every one must write its files.
pub async fn rollout(paths: &Paths, n: usize) -> Result<Vec<Row>, Error> {
    println!(
        "\n## Rollout storm: {n} init agents ({SECRETS} secrets + {PARAMS} parameters each, IRSA) started within one second, AWS quotas enforced"
    );
    let (_moto, front, env) = emulator_with_front().await?;
    let cfg = agentbench::agent_config(SECRETS, PARAMS)?;
    let started = Instant::now();
    let mut running = Vec::with_capacity(n);
    for i in 0..n {
        let pod = AgentRoot::new(&env, &format!("pod-{i:04}"), &cfg)?;
        let child = spawn_agent(&paths.agent_bin, &env, &cfg, &pod, &[], Stdio::piped())?;
        running.push((Instant::now(), pod, child));
    }
    let spawned_in = started.elapsed();
    let waited = tokio::task::spawn_blocking(move || {
        running
            .into_iter()
            .map(|(at, pod, child)| {
                let out = child.wait_with_output();
                let took = at.elapsed();
                let ok = out.as_ref().is_ok_and(|o| o.status.success())
                    && agentbench::files_with_canary(&pod.mount) == SECRETS + PARAMS;
                (took, ok, out.map(|o| o.stderr).unwrap_or_default())
            })
            .collect::<Vec<_>>()
    })
    .await
    .map_err(|e| Error::Measure(format!("waiting for agents: {e}")))?;
    let last = started.elapsed();
    let failed: Vec<_> = waited.iter().filter(|(_, ok, _)| !ok).collect();
    if let Some((_, _, stderr)) = failed.first() {
        let text = String::from_utf8_lossy(stderr);
        let tail: String = text.lines().rev().take(3).collect::<Vec<_>>().join(" | ");
        println!(
            "first failure (last log lines): {}",
            tail.replace(CANARY, "<canary>")
        );
    }
    let per_pod = Summary::of(waited.iter().map(|(d, _, _)| *d).collect())
        .ok_or_else(|| Error::Measure("no agents".into()))?;
    let calls = front.calls.snapshot();
    println!(
        "{n} agents spawned in {}; last wrote after {}; per pod p50 {} / p99 {}; {} failed",
        fmt_dur(spawned_in),
        fmt_dur(last),
        fmt_dur(per_pod.p50),
        fmt_dur(per_pod.p99),
        failed.len()
    );
    println!("calls: {}", show_per_api(&calls));
    print_histogram(&calls);
    Ok(vec![
        Row::target(
            format!("rollout storm, {n} init agents: failed pods"),
            failed.len().to_string(),
            "0 within the default startup timeout",
            failed.is_empty(),
        ),
        Row::info(
            format!("rollout storm, {n} agents: until the last wrote / per pod p50 / p99"),
            format!(
                "{} / {} / {}",
                fmt_dur(last),
                fmt_dur(per_pod.p50),
                fmt_dur(per_pod.p99)
            ),
        ),
        Row::info(
            format!("rollout storm, {n} agents: calls per API"),
            show_per_api(&calls),
        ),
    ])
}

/// Calls per second (all APIs), one line per second.
fn print_histogram(calls: &[Call]) {
    let mut per_sec: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    for c in calls {
        let e = per_sec.entry(c.at_ms / 1000).or_default();
        e.0 += 1;
        e.1 += u64::from(c.throttled);
    }
    let line: Vec<String> = per_sec
        .iter()
        .map(|(s, (n, t))| format!("{s}s:{n}/{t}t"))
        .collect();
    println!("calls per second (calls/throttled): {}", line.join(" "));
}

/// Peak and mean calls per second over `[from_ms, to_ms)`.
pub fn peak_and_mean(calls: &[Call], from_ms: u64, to_ms: u64) -> (u64, f64) {
    let secs = ((to_ms.saturating_sub(from_ms)) / 1000).max(1);
    let mut per_sec = vec![0u64; usize::try_from(secs).unwrap_or(1)];
    let mut total = 0u64;
    for c in calls {
        if c.at_ms >= from_ms && c.at_ms < from_ms + secs * 1000 {
            let i = usize::try_from((c.at_ms - from_ms) / 1000).unwrap_or(0);
            per_sec[i] += 1;
            total += 1;
        }
    }
    let peak = per_sec.iter().copied().max().unwrap_or(0);
    (peak, total as f64 / secs as f64)
}

/// M sidecars at the minimum interval for three intervals after their first
/// write: calls per second (peak vs mean), and rewrites when nothing changed.
pub async fn refresh(paths: &Paths, m: usize) -> Result<Vec<Row>, Error> {
    let interval = Duration::from_secs(secrets_injector_shared::config::MIN_REFRESH_SECS);
    println!(
        "\n## Refresh storm: {m} sidecars at the minimum interval ({} s) for three intervals, AWS quotas enforced",
        interval.as_secs()
    );
    let (_moto, front, env) = emulator_with_front().await?;
    let cfg = AgentConfig {
        mode: Mode::Sidecar,
        refresh_interval_secs: interval.as_secs(),
        ..agentbench::agent_config(SECRETS, PARAMS)?
    };
    let mut sidecars = Vec::with_capacity(m);
    let mut mounts = Vec::with_capacity(m);
    let started = Instant::now();
    for i in 0..m {
        let pod = AgentRoot::new(&env, &format!("sidecar-{i:04}"), &cfg)?;
        // A few log lines a round: far below the pipe's buffer over three intervals.
        sidecars.push(spawn_agent(
            &paths.agent_bin,
            &env,
            &cfg,
            &pod,
            &[],
            Stdio::piped(),
        )?);
        mounts.push(pod.mount);
    }
    // The storm's own start is the rollout; measure the steady state after
    // it: from when every sidecar has written its files.
    let written = wait_all_written(mounts, STARTUP_DEADLINE).await?;
    println!(
        "all {m} sidecars wrote their files {} after the first was spawned",
        fmt_dur(started.elapsed())
    );
    if written < m {
        let _ = stop_and_count_rewrites(sidecars).await;
        return Err(Error::Measure(format!(
            "only {written} of {m} sidecars wrote their files within {} s",
            STARTUP_DEADLINE.as_secs()
        )));
    }
    let from = front.calls.snapshot().last().map_or(0, |c| c.at_ms);
    tokio::time::sleep(interval * 3).await;
    let calls = front.calls.snapshot();
    let to = from + u64::try_from((interval * 3).as_millis()).unwrap_or(u64::MAX);
    let (peak, mean) = peak_and_mean(&calls, from, to);
    let steady: Vec<Call> = calls.iter().filter(|c| c.at_ms >= from).cloned().collect();
    let rewrites = stop_and_count_rewrites(sidecars).await?;
    println!(
        "steady state over {} s: mean {mean:.1} calls/s, peak second {peak} ({:.2}× the mean); {}",
        interval.as_secs() * 3,
        peak as f64 / mean.max(1e-9),
        show_per_api(&steady)
    );
    print_histogram(&steady);
    println!("file sets rewritten with nothing changed: {rewrites}");
    Ok(vec![
        Row::target(
            format!(
                "refresh storm, {m} sidecars at {} s: peak second ÷ mean",
                interval.as_secs()
            ),
            format!(
                "{:.2}× ({peak} / {mean:.1} calls/s)",
                peak as f64 / mean.max(1e-9)
            ),
            "≤ 2×",
            (peak as f64) <= 2.0 * mean,
        ),
        Row::target(
            format!("refresh storm, {m} sidecars: rewrites with nothing changed"),
            rewrites.to_string(),
            "0",
            rewrites == 0,
        ),
    ])
}

/// How long the refresh storm waits for every sidecar's first write (the
/// agent's default startup timeout).
const STARTUP_DEADLINE: Duration = Duration::from_secs(60);

/// Poll until every mount holds all its files or `deadline` passes; how many do.
async fn wait_all_written(mounts: Vec<PathBuf>, deadline: Duration) -> Result<usize, Error> {
    tokio::task::spawn_blocking(move || {
        let until = Instant::now() + deadline;
        let mut pending = mounts;
        let total = pending.len();
        while !pending.is_empty() && Instant::now() < until {
            pending.retain(|m| agentbench::files_with_canary(m) != SECRETS + PARAMS);
            std::thread::sleep(Duration::from_millis(200));
        }
        total - pending.len()
    })
    .await
    .map_err(|e| Error::Measure(format!("waiting for sidecars: {e}")))
}

/// Stop the sidecars; the refresh rounds that rewrote the files, from their
/// own `round` log lines (`changed: true`; the emulator's values never change).
async fn stop_and_count_rewrites(sidecars: Vec<Child>) -> Result<usize, Error> {
    tokio::task::spawn_blocking(move || {
        sidecars
            .into_iter()
            .map(|mut c| {
                let _ = c.kill();
                let out = c.wait_with_output().map(|o| o.stderr).unwrap_or_default();
                String::from_utf8_lossy(&out)
                    .lines()
                    .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                    .filter(|v| v["message"] == "round" && v["changed"] == true)
                    .count()
            })
            .sum()
    })
    .await
    .map_err(|e| Error::Measure(format!("stopping sidecars: {e}")))
}

/// One sidecar refreshing `rounds` times as fast as the test-only override
/// allows: RSS after the first and after the last rounds.
pub async fn soak(paths: &Paths, rounds: u64) -> Result<Vec<Row>, Error> {
    println!(
        "\n## Soak: one sidecar over {rounds} refreshes ({SECRETS} secrets + {PARAMS} parameters)"
    );
    let (_moto, front, env) = emulator_with_front().await?;
    let cfg = AgentConfig {
        mode: Mode::Sidecar,
        ..agentbench::agent_config(SECRETS, PARAMS)?
    };
    let pod = AgentRoot::new(&env, "soak", &cfg)?;
    let child = spawn_agent(
        &paths.agent_bin,
        &env,
        &cfg,
        &pod,
        &[("SECRETS_INJECTOR_REFRESH_OVERRIDE_MS", "5".to_string())],
        // Thousands of rounds of log lines: nobody reads them.
        Stdio::null(),
    )?;
    let pid = child.id();
    let sidecar = Killed(child);
    let batch_calls = || {
        front
            .calls
            .snapshot()
            .iter()
            .filter(|c| c.op == "secretsmanager.BatchGetSecretValue" && !c.throttled)
            .count() as u64
    };
    let wait_for = |target: u64| async move {
        let deadline = Instant::now() + Duration::from_secs(1800);
        while batch_calls() < target && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        batch_calls()
    };
    wait_for(20).await;
    let early = rss::of_pid(pid)?;
    let done = wait_for(rounds + 1).await;
    let late = rss::of_pid(pid)?;
    drop(sidecar);
    let growth = late.rss_kib.saturating_sub(early.rss_kib);
    println!(
        "RSS after 20 rounds {}, after {done} rounds {} (peak {}); growth {}",
        fmt_kib(early.rss_kib),
        fmt_kib(late.rss_kib),
        fmt_kib(late.hwm_kib),
        fmt_kib(growth)
    );
    Ok(vec![Row::target(
        format!("soak: one sidecar, RSS after 20 → {done} refreshes"),
        format!("{} → {}", fmt_kib(early.rss_kib), fmt_kib(late.rss_kib)),
        "no growth (≤ 512 KiB)",
        done > rounds && growth <= 512,
    )])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(at_ms: u64) -> Call {
        Call {
            at_ms,
            op: "op".into(),
            throttled: false,
            first_name: String::new(),
        }
    }

    #[test]
    fn peak_and_mean_per_whole_second_in_the_window() {
        let calls: Vec<Call> = [0, 100, 900, 1500, 2999, 3000]
            .into_iter()
            .map(call)
            .collect();
        let (peak, mean) = peak_and_mean(&calls, 0, 3000);
        assert_eq!(peak, 3);
        assert!((mean - 5.0 / 3.0).abs() < 1e-9, "{mean}");
    }

    #[test]
    fn the_published_quotas_throttle_a_burst_over_them() {
        let mut q = published_quotas();
        let now = Duration::from_millis(10);
        let batch = (0..150)
            .filter(|_| q.admit("secretsmanager.BatchGetSecretValue", now))
            .count();
        assert_eq!(batch, 100);
        let ssm = (0..50)
            .filter(|_| q.admit("AmazonSSM.GetParameters", now))
            .count();
        assert_eq!(ssm, 40);
        assert!(q.admit("sts.AssumeRoleWithWebIdentity", now));
    }
}
