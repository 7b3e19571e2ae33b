//! A normal review's latency while hostile requests are in flight (issue 12):
//! the worst-case bodies a pod author can send (≤ 3 MiB, the API server's
//! limit) are timed one by one, the slowest is sent back to back on two
//! connections, and typical reviews at a fixed rate are measured beside it,
//! against the same fixed rate without the hostile pair, in one run.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use serde_json::{Map, Value, json};
use tokio::time::Instant;

use crate::Error;
use crate::loadgen::{self, LoadResult, Target};
use crate::report::Row;
use crate::stats::fmt_dur;
use crate::suite::{Opts, Paths, Webhook, start_webhook};

/// Normal reviews a second while the hostile pair runs (an API server's
/// steady admission traffic, far from saturation).
const NORMAL_RPS: u32 = 200;

/// The API server's request size limit: nothing larger reaches a webhook.
pub const MAX_BODY: usize = 3 * 1024 * 1024;

fn review(annotations: Map<String, Value>, containers: Vec<Value>, uid: &str) -> Value {
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "hostile", "namespace": "bench", "annotations": annotations},
        "spec": {"containers": containers}
    });
    secrets_injector_tests::pods::admission_review(&pod, "bench", uid)
}

fn app(i: usize) -> Value {
    json!({"name": format!("app-{i}"), "image": "registry.example/app:1", "command": ["/app"]})
}

/// The largest `make(n)` whose body fits under [`MAX_BODY`]: estimate `n`
/// from the growth per item, then step down until it fits (a few probes).
fn largest_under_limit(make: impl Fn(usize) -> Value) -> Result<Vec<u8>, Error> {
    let size = |n| serde_json::to_vec(&make(n)).map_err(|e| Error::Http(e.to_string()));
    let base = size(0)?.len();
    let per_item = (size(1024)?.len().saturating_sub(base) / 1024).max(1);
    let mut n = MAX_BODY.saturating_sub(base) / per_item;
    loop {
        let body = size(n)?;
        if body.len() <= MAX_BODY || n == 0 {
            return Ok(body);
        }
        n -= ((body.len() - MAX_BODY) / per_item + 1).min(n);
    }
}

/// The hostile bodies, each as large as the limit allows, by name.
pub fn candidates() -> Result<Vec<(&'static str, Vec<u8>)>, Error> {
    let secret_annotations = |n: usize| {
        let mut a = Map::new();
        for i in 0..n {
            a.insert(
                format!("secrets-injector.io/secret-s{i}"),
                json!(format!("prod/app/secret-{i}")),
            );
        }
        review(a, vec![app(0)], "hostile")
    };
    let containers = |n: usize| {
        let mut a = Map::new();
        for i in 0..400 {
            a.insert(
                format!("secrets-injector.io/secret-s{i}"),
                json!(format!("prod/app/secret-{i}")),
            );
        }
        review(a, (0..n).map(app).collect(), "hostile")
    };
    let objects = |n: usize| {
        let mut a = Map::new();
        let mut yaml = String::new();
        for i in 0..n {
            yaml.push_str(&format!(
                "- source: prod/app/object-{i}\n  path: obj/{i}\n  jmesPath:\n    - path: a.b[0].c\n      objectAlias: k{i}\n"
            ));
        }
        a.insert("secrets-injector.io/objects".into(), json!(yaml));
        review(a, vec![app(0)], "hostile")
    };
    let long_value = |n: usize| {
        let mut a = Map::new();
        a.insert(
            "secrets-injector.io/secret-big".into(),
            json!("{".repeat(n)),
        );
        a.insert("secrets-injector.io/objects".into(), json!("[".repeat(n)));
        review(a, vec![app(0)], "hostile")
    };
    Ok(vec![
        (
            "secret-* annotations",
            largest_under_limit(secret_annotations)?,
        ),
        (
            "containers with 400 secrets",
            largest_under_limit(containers)?,
        ),
        ("objects YAML entries", largest_under_limit(objects)?),
        (
            "one huge annotation value",
            largest_under_limit(long_value)?,
        ),
    ])
}

/// One request with `body` on an open connection; the status and the time it took.
async fn timed(sender: &mut loadgen::Sender, body: Bytes) -> Result<(u16, Duration), Error> {
    let started = Instant::now();
    let (status, _) = loadgen::exchange(sender, "/mutate", body).await?;
    Ok((status, started.elapsed()))
}

/// The slowest candidate: each timed alone, three times (median kept).
pub async fn slowest(t: &Target) -> Result<(&'static str, Bytes, Duration), Error> {
    let mut worst: Option<(&'static str, Bytes, Duration)> = None;
    for (name, body) in candidates()? {
        let body = Bytes::from(body);
        let mut times = Vec::new();
        let mut status = 0;
        for _ in 0..3 {
            let mut s = loadgen::connect(t).await?;
            let (st, d) = timed(&mut s, body.clone()).await?;
            status = st;
            times.push(d);
        }
        times.sort();
        let median = times[1];
        println!(
            "hostile body {name}: {:.2} MiB, HTTP {status}, alone {}",
            body.len() as f64 / (1024.0 * 1024.0),
            fmt_dur(median)
        );
        if worst.as_ref().is_none_or(|w| median > w.2) {
            worst = Some((name, body, median));
        }
    }
    worst.ok_or_else(|| Error::Http("no hostile candidates".into()))
}

/// What the hostile pair did while the normal reviews were measured.
#[derive(Debug, Clone, Copy)]
pub struct Pressure {
    pub sent: u64,
    pub longest: Duration,
}

/// Normal reviews at `rps` while two connections send `hostile` back to back.
pub async fn under_pressure(
    normal: &Target,
    hostile: Bytes,
    rps: u32,
    phase: Duration,
) -> Result<(LoadResult, Pressure), Error> {
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let mut pair = Vec::new();
    for _ in 0..2 {
        let mut s = loadgen::connect(normal).await?;
        let (stop, sent, body) = (Arc::clone(&stop), Arc::clone(&sent), hostile.clone());
        pair.push(tokio::spawn(async move {
            let mut longest = Duration::ZERO;
            while !stop.load(Ordering::SeqCst) {
                match timed(&mut s, body.clone()).await {
                    Ok((_, d)) => longest = longest.max(d),
                    Err(_) => break,
                }
                sent.fetch_add(1, Ordering::SeqCst);
            }
            longest
        }));
    }
    // Both hostile requests are in flight before the measurement starts.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let result = loadgen::fixed_rate(normal, 4, rps, phase).await;
    stop.store(true, Ordering::SeqCst);
    let mut longest = Duration::ZERO;
    for h in pair {
        longest = longest.max(h.await.unwrap_or_default());
    }
    let pressure = Pressure {
        sent: sent.load(Ordering::SeqCst),
        longest,
    };
    Ok((result, pressure))
}

/// The suite: the slowest hostile body, then typical reviews at a fixed rate
/// alone and beside two of it in flight, in one run.
pub async fn suite(paths: &Paths, opts: &Opts) -> Result<Vec<Row>, Error> {
    println!(
        "\n## A normal review while two worst-case requests (≤ 3 MiB) are in flight ({} s phases)",
        opts.phase.as_secs()
    );
    // Bound whole: dropping the process or its directory stops the webhook.
    let webhook: Webhook = start_webhook(paths).await?;
    let target = &webhook.target;
    let (name, body, alone) = slowest(target).await?;
    let quiet = loadgen::fixed_rate(target, 4, NORMAL_RPS, opts.phase).await;
    let (loaded, pressure) = under_pressure(target, body, NORMAL_RPS, opts.phase).await?;
    let p99 = |r: &LoadResult| r.latency.map(|s| s.p99).unwrap_or(Duration::MAX);
    let show = |r: &LoadResult| {
        format!(
            "p50 {} / p99 {} ({} ok, {} errors, {} unsent)",
            r.latency.map(|s| fmt_dur(s.p50)).unwrap_or_default(),
            fmt_dur(p99(r)),
            r.completed,
            r.errors,
            r.unsent
        )
    };
    println!("normal reviews alone, {NORMAL_RPS} req/s: {}", show(&quiet));
    println!(
        "normal reviews beside two `{name}` requests: {}; hostile requests answered {}, longest {}",
        show(&loaded),
        pressure.sent,
        fmt_dur(pressure.longest)
    );
    Ok(vec![
        Row::info(
            format!("worst-case body (slowest of 4 kinds, ≤ 3 MiB): {name}"),
            format!("alone {}", fmt_dur(alone)),
        ),
        Row::info(
            format!("normal review p99, {NORMAL_RPS} req/s, nothing else in flight"),
            show(&quiet),
        ),
        Row::target(
            format!("normal review p99, {NORMAL_RPS} req/s, two worst-case requests in flight"),
            show(&loaded),
            "< 10 ms, no errors",
            p99(&loaded) < Duration::from_millis(10) && loaded.errors + loaded.unsent == 0,
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_candidate_fills_the_limit_without_passing_it() {
        for (name, body) in candidates().unwrap() {
            assert!(body.len() <= MAX_BODY, "{name}: {} bytes", body.len());
            assert!(
                body.len() > MAX_BODY * 9 / 10,
                "{name}: {} bytes",
                body.len()
            );
            let v: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(v["kind"], "AdmissionReview", "{name}");
        }
    }
}
