//! A counting HTTP proxy in front of the AWS emulator: every client under
//! test points `AWS_ENDPOINT_URL` here, and we count its AWS calls by
//! operation (`X-Amz-Target` for JSON APIs, `Action=` for STS's query API).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

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

#[derive(Clone)]
struct Proxy {
    upstream: String,
    client: Client<HttpConnector, Full<Bytes>>,
    counts: Counts,
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
    p.counts.add(operation(target, &body));
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

/// Start the proxy on a loopback port; it lives as long as the runtime.
pub async fn start(upstream: &str) -> Result<(SocketAddr, Counts), Error> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| Error::io("bind proxy", e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::io("proxy address", e))?;
    let counts = Counts::default();
    let state = Proxy {
        upstream: upstream.trim_end_matches('/').to_string(),
        client: Client::builder(TokioExecutor::new()).build_http(),
        counts: counts.clone(),
    };
    let app = Router::new().fallback(forward).with_state(state);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((addr, counts))
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
