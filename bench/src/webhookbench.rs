//! The webhook: `review` in process, and the HTTPS server under load next to
//! the bare axum + rustls server (the ceiling of the stack).

use std::hint::black_box;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use k8s_openapi::api::core::v1::Pod;
use secrets_injector_webhook::review::{Outcome, review};
use secrets_injector_webhook::settings::AgentFlags;
use secrets_injector_webhook::template::AgentTemplate;
use serde_json::Value;

use crate::Error;
use crate::stats::Summary;

#[derive(Parser)]
struct FlagsOnly {
    #[command(flatten)]
    agent: AgentFlags,
}

/// The agent template with every default, as `serve` would build it.
pub fn default_settings() -> Result<AgentTemplate, Error> {
    FlagsOnly::try_parse_from(["bench"])
        .map_err(|e| Error::Measure(format!("webhook flags: {e}")))?
        .agent
        .template()
        .map_err(|e| Error::Measure(format!("webhook flags: {e}")))
}

/// Time `iters` calls of `review` on `pod` (after a warm-up); also returns the patch length.
pub fn bench_review(pod: &Value, iters: usize) -> Result<(Summary, usize), Error> {
    let settings = default_settings()?;
    let pod: Pod =
        serde_json::from_value(pod.clone()).map_err(|e| Error::Measure(format!("pod: {e}")))?;
    let ops = match review(&pod, &settings) {
        Outcome::Allowed {
            patch: Some(patch), ..
        } => patch.0.len(),
        other => {
            return Err(Error::Measure(format!(
                "review did not inject the bench pod: {other:?}"
            )));
        }
    };
    let s = time_calls(iters, || review(black_box(&pod), &settings))?;
    Ok((s, ops))
}

/// Time `iters` calls of `f` after `iters / 10` warm-up calls.
fn time_calls<T>(iters: usize, f: impl Fn() -> T) -> Result<Summary, Error> {
    for _ in 0..iters / 10 {
        black_box(f());
    }
    let mut samples = Vec::with_capacity(iters);
    for _ in 0..iters {
        let t = Instant::now();
        black_box(f());
        samples.push(t.elapsed());
    }
    Summary::of(samples).ok_or_else(|| Error::Measure("no samples".into()))
}

/// Time decoding the typical pod's AdmissionReview body `iters` times (after
/// a warm-up) three ways: into `serde_json::Value` (what the parse-only
/// server does), into kube's typed `AdmissionReview<Pod>` (the webhook's
/// decode), and only scanning it (`serde::de::IgnoredAny`). This process
/// uses the system allocator, as the parse-only server does (the webhook
/// ships mimalloc).
pub fn bench_decode(pod: &Value, iters: usize) -> Result<Vec<(&'static str, Summary)>, Error> {
    use kube::core::admission::AdmissionReview;

    fn time<T, E: std::fmt::Display>(
        body: &[u8],
        iters: usize,
        decode: impl Fn(&[u8]) -> Result<T, E>,
    ) -> Result<Summary, Error> {
        decode(body)
            .map_err(|e| Error::Measure(format!("the bench review does not decode: {e}")))?;
        time_calls(iters, || decode(black_box(body)).is_ok())
    }

    let review = secrets_injector_tests::pods::admission_review(pod, "bench", "bench-decode-uid");
    let body = serde_json::to_vec(&review).map_err(|e| Error::Http(e.to_string()))?;
    Ok(vec![
        (
            "into serde_json::Value (the parse-only server)",
            time(&body, iters, |b| serde_json::from_slice::<Value>(b))?,
        ),
        (
            "into AdmissionReview<Pod> (the webhook)",
            time(&body, iters, |b| {
                serde_json::from_slice::<AdmissionReview<Pod>>(b)
            })?,
        ),
        (
            "scan only (IgnoredAny)",
            time(&body, iters, |b| {
                serde_json::from_slice::<serde::de::IgnoredAny>(b)
            })?,
        ),
    ])
}

/// Time `iters` requests through the real router (`routes::router` +
/// `oneshot`): JSON decoding, review, patch encoding and the tower layers.
pub async fn bench_router(pod: &Value, iters: usize) -> Result<Summary, Error> {
    use http_body_util::BodyExt;
    use secrets_injector_webhook::metrics::Metrics;
    use secrets_injector_webhook::routes::{AppState, router};
    use std::sync::Arc;
    use tower::ServiceExt;

    let app = router(AppState {
        template: Arc::new(default_settings()?),
        metrics: Arc::new(Metrics::new()),
        request_timeout: Duration::from_secs(10),
    });
    let uid = "bench-router-uid";
    let review = secrets_injector_tests::pods::admission_review(pod, "bench", uid);
    let body = axum::body::Bytes::from(
        serde_json::to_vec(&review).map_err(|e| Error::Http(e.to_string()))?,
    );
    let call = |app: axum::Router| {
        let body = body.clone();
        async move {
            let req = axum::http::Request::post("/mutate")
                .header("content-type", "application/json")
                .body(axum::body::Body::from(body))
                .map_err(|e| Error::Http(e.to_string()))?;
            let resp = app
                .oneshot(req)
                .await
                .map_err(|e| Error::Http(e.to_string()))?;
            let status = resp.status();
            let bytes = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| Error::Http(e.to_string()))?
                .to_bytes();
            if status != axum::http::StatusCode::OK {
                return Err(Error::Http(format!("router answered {status}")));
            }
            Ok(bytes)
        }
    };
    check_response(&call(app.clone()).await?, uid)?;
    for _ in 0..iters / 10 {
        call(app.clone()).await?;
    }
    let mut samples = Vec::with_capacity(iters);
    for _ in 0..iters {
        let t = Instant::now();
        black_box(call(app.clone()).await?);
        samples.push(t.elapsed());
    }
    Summary::of(samples).ok_or_else(|| Error::Measure("no samples".into()))
}

/// A server process killed on drop.
#[derive(Debug)]
pub struct ServerProcess {
    pub child: Child,
    pub addr: SocketAddr,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_listening(mut p: ServerProcess, what: &str) -> Result<ServerProcess, Error> {
    if secrets_injector_tests::wait_for_port(p.addr, Duration::from_secs(30)) {
        return Ok(p);
    }
    let exited = p.child.try_wait().ok().flatten();
    Err(Error::Measure(format!(
        "{what} did not listen on {} within 30 s (exit: {exited:?})",
        p.addr
    )))
}

/// `secrets-injector-webhook serve` with the test certificate in `dir`.
pub fn start_webhook(bin: &Path, dir: &Path) -> Result<ServerProcess, Error> {
    let port = secrets_injector_tests::free_port();
    let health = secrets_injector_tests::free_port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let child = Command::new(bin)
        .arg("serve")
        .args(["--listen", &addr.to_string()])
        .args(["--health-listen", &format!("127.0.0.1:{health}")])
        .arg("--tls-cert-file")
        .arg(dir.join("tls.crt"))
        .arg("--tls-key-file")
        .arg(dir.join("tls.key"))
        .args([
            "--agent-image",
            "registry.example/secrets-injector-agent:bench",
        ])
        .args(["--log-format", "json"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| Error::io(&format!("start {}", bin.display()), e))?;
    wait_listening(ServerProcess { child, addr }, "webhook")
}

/// The bare server (`secrets-injector-bench bare-server`) answering with
/// `response`, after parsing each body when `parse` is set.
pub fn start_bare(
    self_exe: &Path,
    dir: &Path,
    response: &Path,
    parse: bool,
) -> Result<ServerProcess, Error> {
    let addr: SocketAddr = ([127, 0, 0, 1], secrets_injector_tests::free_port()).into();
    let child = Command::new(self_exe)
        .arg("bare-server")
        .args(parse.then_some("--parse-body"))
        .args(["--listen", &addr.to_string()])
        .arg("--tls-cert-file")
        .arg(dir.join("tls.crt"))
        .arg("--tls-key-file")
        .arg(dir.join("tls.key"))
        .arg("--response-file")
        .arg(response)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| Error::io("start bare-server", e))?;
    wait_listening(ServerProcess { child, addr }, "bare server")
}

/// Check one webhook answer: allowed, echoing `uid`, with a patch.
pub fn check_response(body: &[u8], uid: &str) -> Result<(), Error> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| Error::Measure(format!("webhook answer is not JSON: {e}")))?;
    let r = &v["response"];
    if r["uid"] != uid || r["allowed"] != true || !r["patch"].is_string() {
        return Err(Error::Measure(format!(
            "webhook answer is not an allowed patch for uid {uid}: {}",
            crate::measure::tail(&v.to_string(), 300)
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_settings_parse() {
        assert!(default_settings().is_ok());
    }

    #[test]
    fn rejects_a_denial_or_wrong_uid() {
        let ok = br#"{"response":{"uid":"u1","allowed":true,"patch":"W10="}}"#;
        assert!(check_response(ok, "u1").is_ok());
        assert!(check_response(ok, "u2").is_err());
        assert!(check_response(br#"{"response":{"uid":"u1","allowed":false}}"#, "u1").is_err());
        assert!(check_response(b"not json", "u1").is_err());
    }
}
