//! HTTPS load generator: N keep-alive HTTP/1.1 connections over rustls that
//! verify the test CA. Fixed-rate mode schedules requests open-loop, so a
//! late server is charged for the queueing it causes; saturation mode runs
//! closed-loop; handshake mode opens a new connection per request. Every
//! phase ends by itself (duration plus a hard deadline).
//!
//! The keep-alive phases open their connections and send one request on each
//! before the clock starts, as the API server's long-lived connection pool
//! does: otherwise N simultaneous TLS handshakes at the first scheduled
//! instant queue the first ~50 requests behind them and decide the p99
//! (BENCHMARKS.md, "Where the webhook's tail came from"). Handshake cost has
//! its own phase.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;

use crate::Error;
use crate::stats::Summary;

/// Longest a single request may take before it counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Where and what to send.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub server_name: ServerName<'static>,
    pub tls: Arc<rustls::ClientConfig>,
    pub path: String,
    pub body: Bytes,
}

/// What one phase measured.
#[derive(Debug, Clone)]
pub struct LoadResult {
    pub completed: u64,
    pub errors: u64,
    /// Fixed rate only: scheduled requests never sent before the hard deadline.
    pub unsent: u64,
    pub elapsed: Duration,
    pub latency: Option<Summary>,
}

impl LoadResult {
    /// Completed requests per second.
    pub fn throughput(&self) -> f64 {
        self.completed as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// The sending half of one HTTP/1.1 connection.
pub type Sender = SendRequest<Full<Bytes>>;

/// Open one TLS connection and the HTTP/1.1 handshake on it.
pub async fn connect(t: &Target) -> Result<Sender, Error> {
    let tcp = TcpStream::connect(t.addr)
        .await
        .map_err(|e| Error::io(&format!("connect {}", t.addr), e))?;
    let _ = tcp.set_nodelay(true);
    let tls = TlsConnector::from(t.tls.clone())
        .connect(t.server_name.clone(), tcp)
        .await
        .map_err(|e| Error::io("TLS handshake", e))?;
    let (sender, conn) = http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| Error::Http(e.to_string()))?;
    tokio::spawn(conn);
    Ok(sender)
}

/// Send one POST of `body` to `path` and read the whole response: its status and body.
pub async fn exchange(sender: &mut Sender, path: &str, body: Bytes) -> Result<(u16, Bytes), Error> {
    let req = hyper::Request::post(path)
        .header(hyper::header::HOST, "localhost")
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(body))
        .map_err(|e| Error::Http(e.to_string()))?;
    sender
        .ready()
        .await
        .map_err(|e| Error::Http(e.to_string()))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| Error::Http(e.to_string()))?;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| Error::Http(e.to_string()))?
        .to_bytes();
    Ok((status, body))
}

/// Send one request and read the whole response; `Ok(body)` only for 200.
pub async fn send(sender: &mut Sender, t: &Target) -> Result<Bytes, Error> {
    let fut = async {
        let (status, body) = exchange(sender, &t.path, t.body.clone()).await?;
        if status != 200 {
            return Err(Error::Http(format!("status {status}")));
        }
        Ok(body)
    };
    tokio::time::timeout(REQUEST_TIMEOUT, fut)
        .await
        .map_err(|_| Error::Http("request timed out".into()))?
}

/// One request on a fresh connection (the API server's first call).
pub async fn one_shot(t: &Target) -> Result<Bytes, Error> {
    let mut s = connect(t).await?;
    send(&mut s, t).await
}

#[derive(Default)]
struct Tally {
    latencies: Vec<Duration>,
    errors: u64,
    last_done: Option<Instant>,
}

fn merge(start: Instant, tallies: Vec<Tally>) -> LoadResult {
    let mut all = Vec::new();
    let mut errors = 0;
    let mut last = start;
    for t in tallies {
        all.extend(t.latencies);
        errors += t.errors;
        last = last.max(t.last_done.unwrap_or(start));
    }
    LoadResult {
        completed: all.len() as u64,
        errors,
        unsent: 0,
        elapsed: last - start,
        latency: Summary::of(all),
    }
}

async fn join(handles: Vec<tokio::task::JoinHandle<Tally>>) -> Vec<Tally> {
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap_or_default());
    }
    out
}

/// Open `conns` connections, one after another, and send one request on each
/// (not measured). A connection that failed is `None`: the phase retries it
/// and counts the error.
async fn warm(t: &Target, conns: usize) -> Vec<Option<Sender>> {
    let mut out = Vec::with_capacity(conns);
    for _ in 0..conns {
        let mut sender = connect(t).await.ok();
        if let Some(s) = sender.as_mut()
            && send(s, t).await.is_err()
        {
            sender = None;
        }
        out.push(sender);
    }
    out
}

/// `rps` requests per second for `duration` over `conns` keep-alive
/// connections. Latency counts from the scheduled send time whenever the
/// request could not go out on time (all connections busy), so queueing
/// shows; a connection that was idle starts the clock when it sends, so the
/// timer's 1 ms granularity is not charged to the server.
pub async fn fixed_rate(t: &Target, conns: usize, rps: u32, duration: Duration) -> LoadResult {
    let total = (f64::from(rps) * duration.as_secs_f64()) as u64;
    let interval = Duration::from_secs_f64(1.0 / f64::from(rps.max(1)));
    let next = Arc::new(AtomicU64::new(0));
    let warmed = warm(t, conns).await;
    let start = Instant::now() + Duration::from_millis(50);
    let hard_stop = start + duration * 3 + Duration::from_secs(10);
    let mut handles = Vec::new();
    for mut sender in warmed {
        let (t, next) = (t.clone(), next.clone());
        handles.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total || Instant::now() > hard_stop {
                    break;
                }
                let scheduled = start + interval * u32::try_from(i).unwrap_or(u32::MAX);
                let behind = Instant::now() >= scheduled;
                if !behind {
                    tokio::time::sleep_until(scheduled).await;
                }
                if sender.is_none() {
                    sender = connect(&t).await.ok();
                }
                let Some(s) = sender.as_mut() else {
                    tally.errors += 1;
                    continue;
                };
                let clock = if behind { scheduled } else { Instant::now() };
                match send(s, &t).await {
                    Ok(_) => {
                        let now = Instant::now();
                        tally.latencies.push(now - clock);
                        tally.last_done = Some(now);
                    }
                    Err(_) => {
                        tally.errors += 1;
                        sender = None;
                    }
                }
            }
            tally
        }));
    }
    let mut r = merge(start, join(handles).await);
    r.unsent = total.saturating_sub(r.completed + r.errors);
    r
}

/// Closed loop: `conns` connections send back to back for `duration`.
pub async fn saturate(t: &Target, conns: usize, duration: Duration) -> LoadResult {
    let warmed = warm(t, conns).await;
    let start = Instant::now();
    let stop = start + duration;
    let mut handles = Vec::new();
    for mut sender in warmed {
        let t = t.clone();
        handles.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            while Instant::now() < stop {
                if sender.is_none() {
                    sender = connect(&t).await.ok();
                }
                let Some(s) = sender.as_mut() else {
                    tally.errors += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let sent = Instant::now();
                match send(s, &t).await {
                    Ok(_) => {
                        let now = Instant::now();
                        tally.latencies.push(now - sent);
                        tally.last_done = Some(now);
                    }
                    Err(_) => {
                        tally.errors += 1;
                        sender = None;
                    }
                }
            }
            tally
        }));
    }
    merge(start, join(handles).await)
}

/// Closed loop, a new TCP + TLS connection (full handshake when the client
/// config disables resumption) for every request.
pub async fn handshakes(t: &Target, concurrency: usize, duration: Duration) -> LoadResult {
    let start = Instant::now();
    let stop = start + duration;
    let mut handles = Vec::new();
    for _ in 0..concurrency {
        let t = t.clone();
        handles.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            while Instant::now() < stop {
                let began = Instant::now();
                match one_shot(&t).await {
                    Ok(_) => {
                        let now = Instant::now();
                        tally.latencies.push(now - began);
                        tally.last_done = Some(now);
                    }
                    Err(_) => {
                        tally.errors += 1;
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
            tally
        }));
    }
    merge(start, join(handles).await)
}
