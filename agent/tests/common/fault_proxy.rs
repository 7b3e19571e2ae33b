//! A loopback HTTP proxy between the agent and moto: counts calls per AWS
//! action and injects faults (error bodies, slowness, connection resets).

// Test support: a broken proxy should fail the test loudly; each test binary uses part of it.
#![allow(clippy::unwrap_used, dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

/// What the proxy does to a matching request.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer with this status and an AWS JSON error of this code.
    Error(u16, &'static str),
    /// Wait this long, then forward.
    Slow(Duration),
    /// Close the connection without an answer.
    Reset,
}

/// A fault for requests of `action` (or any action) signed for `region` (or any region).
#[derive(Debug, Clone)]
pub struct Rule {
    pub action: Option<&'static str>,
    pub region: Option<&'static str>,
    pub fault: Fault,
}

#[derive(Debug, Default)]
struct State {
    counts: HashMap<String, usize>,
    /// The last request body per action (form-encoded for STS).
    bodies: HashMap<String, String>,
    rules: Vec<Rule>,
}

#[derive(Debug)]
pub struct FaultProxy {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Start on a free loopback port, forwarding to `upstream` (`127.0.0.1:<port>`).
    pub async fn start(upstream_port: u16) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let st = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let st = st.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        handle(req, st.clone(), upstream_port)
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        FaultProxy { addr, state, task }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Calls seen for `action` (`BatchGetSecretValue`, `GetParameters`, `AssumeRoleWithWebIdentity`, …).
    pub fn count(&self, action: &str) -> usize {
        let s = self.state.lock().unwrap();
        s.counts.get(action).copied().unwrap_or(0)
    }

    /// The body of the last `action` request seen, e.g. STS's `RoleSessionName=…` form.
    pub fn last_body(&self, action: &str) -> Option<String> {
        self.state.lock().unwrap().bodies.get(action).cloned()
    }

    /// Calls seen for every action together.
    pub fn total(&self) -> usize {
        self.state.lock().unwrap().counts.values().sum()
    }

    pub fn reset_counts(&self) {
        self.state.lock().unwrap().counts.clear();
    }

    pub fn set_rules(&self, rules: Vec<Rule>) {
        self.state.lock().unwrap().rules = rules;
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `X-Amz-Target: secretsmanager.GetSecretValue` → `GetSecretValue`; query
/// protocols (STS) carry `Action=` in the form body.
fn action_of(req: &hyper::http::request::Parts, body: &[u8]) -> String {
    if let Some(t) = req
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
    {
        return t.rsplit('.').next().unwrap_or(t).to_string();
    }
    String::from_utf8_lossy(body)
        .split('&')
        .find_map(|kv| kv.strip_prefix("Action="))
        .unwrap_or("unknown")
        .to_string()
}

/// The region of the SigV4 credential scope: `Credential=AKID/date/<region>/service/aws4_request`.
fn region_of(req: &hyper::http::request::Parts) -> Option<String> {
    let auth = req.headers.get("authorization")?.to_str().ok()?;
    let scope = auth.split("Credential=").nth(1)?;
    scope.split('/').nth(2).map(str::to_string)
}

async fn handle(
    req: Request<Incoming>,
    state: Arc<Mutex<State>>,
    upstream_port: u16,
) -> Result<Response<Full<Bytes>>, std::io::Error> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map_err(io)?.to_bytes();
    let action = action_of(&parts, &body);
    let region = region_of(&parts);
    let fault = {
        let mut s = state.lock().unwrap();
        *s.counts.entry(action.clone()).or_default() += 1;
        s.bodies
            .insert(action.clone(), String::from_utf8_lossy(&body).into_owned());
        s.rules
            .iter()
            .find(|r| {
                r.action.is_none_or(|a| a == action)
                    && r.region.is_none_or(|g| Some(g) == region.as_deref())
            })
            .map(|r| r.fault.clone())
    };
    match fault {
        Some(Fault::Error(status, code)) => {
            let body = format!(r#"{{"__type":"{code}","message":"injected {code} for {action}"}}"#);
            return Ok(Response::builder()
                .status(status)
                .header("content-type", "application/x-amz-json-1.1")
                .header("x-amzn-errortype", code)
                .body(Full::new(Bytes::from(body)))
                .unwrap());
        }
        Some(Fault::Reset) => return Err(io("injected reset")),
        Some(Fault::Slow(d)) => tokio::time::sleep(d).await,
        None => {}
    }
    forward(parts, body, upstream_port).await
}

async fn forward(
    parts: hyper::http::request::Parts,
    body: Bytes,
    upstream_port: u16,
) -> Result<Response<Full<Bytes>>, std::io::Error> {
    let stream = TcpStream::connect(("127.0.0.1", upstream_port)).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(io)?;
    tokio::spawn(conn);
    let resp = sender
        .send_request(Request::from_parts(parts, Full::new(body)))
        .await
        .map_err(io)?;
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.map_err(io)?.to_bytes();
    Ok(Response::from_parts(parts, Full::new(body)))
}

fn io(e: impl ToString) -> std::io::Error {
    std::io::Error::other(e.to_string())
}
