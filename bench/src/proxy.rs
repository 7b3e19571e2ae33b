//! A counting HTTP proxy in front of the AWS emulator: every client under
//! test points `AWS_ENDPOINT_URL` here, and we count its AWS calls by
//! operation (`X-Amz-Target` for JSON APIs, `Action=` for STS's query API).
//! With quotas it is the *quota front*: calls over an operation's token
//! bucket are answered as AWS throttles them, never reaching the emulator,
//! and every call is logged with its time (`crate::quota`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;

use crate::Error;
use crate::quota::{self, Call, Quotas};

/// Calls seen per operation, e.g. `secretsmanager.BatchGetSecretValue`.
#[derive(Debug, Clone, Default)]
pub struct Counts(Arc<Mutex<BTreeMap<String, u64>>>);

impl Counts {
    fn add(&self, op: String) {
        if let Ok(mut m) = self.0.lock() {
            *m.entry(op).or_default() += 1;
        }
    }

    /// Take the counts and start again from zero.
    pub fn take(&self) -> BTreeMap<String, u64> {
        self.0
            .lock()
            .map(|mut m| std::mem::take(&mut *m))
            .unwrap_or_default()
    }
}

/// Operation name of one AWS request.
pub fn operation(target: Option<&str>, body: &[u8]) -> String {
    if let Some(t) = target {
        return t.to_string();
    }
    let text = String::from_utf8_lossy(body);
    text.split('&')
        .find_map(|kv| kv.strip_prefix("Action="))
        .map(|a| format!("sts.{a}"))
        .unwrap_or_else(|| "other".to_string())
}

/// Short service label of an operation: `sm`, `ssm`, `sts` or `other`.
pub fn service(op: &str) -> &'static str {
    if op.starts_with("secretsmanager.") {
        "sm"
    } else if op.starts_with("AmazonSSM.") {
        "ssm"
    } else if op.starts_with("sts.") {
        "sts"
    } else {
        "other"
    }
}

/// Sum of calls per service label.
pub fn by_service(counts: &BTreeMap<String, u64>) -> BTreeMap<&'static str, u64> {
    let mut out = BTreeMap::new();
    for (op, n) in counts {
        *out.entry(service(op)).or_default() += n;
    }
    out
}

/// Every call the front saw, in arrival order.
#[derive(Debug, Clone, Default)]
pub struct Calls(Arc<Mutex<Vec<Call>>>);

impl Calls {
    fn push(&self, call: Call) {
        if let Ok(mut v) = self.0.lock() {
            v.push(call);
        }
    }

    /// A copy of the calls so far.
    pub fn snapshot(&self) -> Vec<Call> {
        self.0.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

/// What a running front exposes: calls by operation, and each call with its time.
#[derive(Debug, Clone, Default)]
pub struct Front {
    pub counts: Counts,
    pub calls: Calls,
}

#[derive(Clone)]
struct Proxy {
    upstream: String,
    client: Client<HttpConnector, Full<Bytes>>,
    front: Front,
    quotas: Arc<Mutex<Quotas>>,
    started: Instant,
}

async fn forward(State(p): State<Proxy>, req: Request) -> Response {
    let (mut parts, body) = req.into_parts();
    let Ok(body) = body.collect().await.map(|b| b.to_bytes()) else {
        return (StatusCode::BAD_GATEWAY, "proxy: request body").into_response();
    };
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok());
    let op = operation(target, &body);
    let now = p.started.elapsed();
    let admitted = p
        .quotas
        .lock()
        .map(|mut q| q.admit(&op, now))
        .unwrap_or(true);
    p.front.counts.add(op.clone());
    p.front.calls.push(Call {
        at_ms: u64::try_from(now.as_millis()).unwrap_or(u64::MAX),
        op: op.clone(),
        throttled: !admitted,
        first_name: quota::first_name(&body),
    });
    if !admitted {
        let (status, content_type, body) = quota::throttled(&op);
        return (
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
            [(axum::http::header::CONTENT_TYPE, content_type)],
            body,
        )
            .into_response();
    }
    let path = parts
        .uri
        .path_and_query()
        .map(|pq| pq.as_str())
        .unwrap_or("/");
    let Ok(uri) = format!("{}{path}", p.upstream).parse() else {
        return (StatusCode::BAD_GATEWAY, "proxy: bad URI").into_response();
    };
    parts.uri = uri;
    match p
        .client
        .request(hyper::Request::from_parts(parts, Full::new(body)))
        .await
    {
        Ok(resp) => resp.map(Body::new).into_response(),
        Err(e) => (StatusCode::BAD_GATEWAY, format!("proxy: {e}")).into_response(),
    }
}

/// Where the front serves its call log as JSON (no AWS API uses this path).
pub const CALLS_PATH: &str = "/__front/calls";

async fn calls_json(State(p): State<Proxy>) -> Response {
    axum::Json(p.front.calls.snapshot()).into_response()
}

/// Start the counting proxy on a loopback port; it lives as long as the runtime.
pub async fn start(upstream: &str) -> Result<(SocketAddr, Counts), Error> {
    let (addr, front) = start_front(upstream, Quotas::default(), "127.0.0.1:0").await?;
    Ok((addr, front.counts))
}

/// Start the quota front on `listen`: the counting proxy, enforcing `quotas`.
pub async fn start_front(
    upstream: &str,
    quotas: Quotas,
    listen: &str,
) -> Result<(SocketAddr, Front), Error> {
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| Error::io("bind proxy", e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::io("proxy address", e))?;
    let front = Front::default();
    let state = Proxy {
        upstream: upstream.trim_end_matches('/').to_string(),
        client: Client::builder(TokioExecutor::new()).build_http(),
        front: front.clone(),
        quotas: Arc::new(Mutex::new(quotas)),
        started: Instant::now(),
    };
    let app = Router::new()
        .route(CALLS_PATH, axum::routing::get(calls_json))
        .fallback(forward)
        .with_state(state);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((addr, front))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_json_and_query_operations() {
        assert_eq!(
            operation(Some("secretsmanager.BatchGetSecretValue"), b"{}"),
            "secretsmanager.BatchGetSecretValue"
        );
        assert_eq!(
            operation(None, b"Action=AssumeRoleWithWebIdentity&Version=2011-06-15"),
            "sts.AssumeRoleWithWebIdentity"
        );
        assert_eq!(operation(None, b""), "other");
    }

    #[test]
    fn groups_by_service() {
        let counts = BTreeMap::from([
            ("secretsmanager.BatchGetSecretValue".to_string(), 2),
            ("secretsmanager.GetSecretValue".to_string(), 1),
            ("AmazonSSM.GetParameters".to_string(), 3),
            ("sts.AssumeRoleWithWebIdentity".to_string(), 1),
        ]);
        let s = by_service(&counts);
        assert_eq!(s.get("sm"), Some(&3));
        assert_eq!(s.get("ssm"), Some(&3));
        assert_eq!(s.get("sts"), Some(&1));
    }
}
