//! SIGTERM under load: clients keep sending admission requests (keep-alive
//! HTTP/1.1, HTTP/2 and a new connection per request) while the webhook is
//! told to stop. As in a cluster, they stop picking this replica a while
//! after it turns unready (the endpoint is removed), well within
//! `--shutdown-delay`. Not one request may fail, and the process exits 0.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::{Conn, Proto, Server};

/// How a load client reaches the server.
#[derive(Clone, Copy, Debug)]
enum Style {
    KeepAlive(Proto),
    NewConnectionEach,
}

/// What the clients and the test share.
#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    terminated: AtomicBool,
    ok: AtomicU64,
    ok_after_sigterm: AtomicU64,
    failed: AtomicU64,
    failures: std::sync::Mutex<Vec<String>>,
}

async fn client(
    addr: std::net::SocketAddr,
    ca: String,
    style: Style,
    id: usize,
    shared: Arc<Shared>,
) {
    let proto = match style {
        Style::KeepAlive(p) => p,
        Style::NewConnectionEach => Proto::H1,
    };
    let cfg = common::client_config(&[&ca], proto);
    let mut conn: Option<Conn> = None;
    let mut n = 0u64;
    while !shared.stop.load(Ordering::SeqCst) {
        n += 1;
        let uid = format!("load-{id}-{n}");
        let body =
            serde_json::to_vec(&common::review(&common::simple_pod(), "CREATE", &uid)).unwrap();
        let after_sigterm = shared.terminated.load(Ordering::SeqCst);
        let result = async {
            if conn.is_none() || matches!(style, Style::NewConnectionEach) {
                conn = Some(Conn::open(addr, "localhost", Arc::clone(&cfg), proto).await?);
            }
            conn.as_mut().unwrap().post("/mutate", body).await
        };
        match tokio::time::timeout(Duration::from_secs(10), result).await {
            Ok(Ok((200, reply))) if String::from_utf8_lossy(&reply).contains(&uid) => {
                shared.ok.fetch_add(1, Ordering::SeqCst);
                if after_sigterm {
                    shared.ok_after_sigterm.fetch_add(1, Ordering::SeqCst);
                }
            }
            other => {
                shared.failed.fetch_add(1, Ordering::SeqCst);
                let what = match other {
                    Ok(Ok((status, reply))) => {
                        format!("HTTP {status}: {}", String::from_utf8_lossy(&reply))
                    }
                    Ok(Err(e)) => format!("I/O: {e}"),
                    Err(_) => "no answer within 10 s".to_string(),
                };
                shared.failures.lock().unwrap().push(format!(
                    "{style:?} {uid} (after SIGTERM: {after_sigterm}): {what}"
                ));
                conn = None;
            }
        }
    }
}

#[test]
fn sigterm_under_load_fails_no_request_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, pki) = Server::with_pki(
        dir.path(),
        &["--shutdown-grace", "30s", "--shutdown-delay", "4s"],
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let shared = Arc::new(Shared::default());
    let styles = [
        Style::KeepAlive(Proto::H1),
        Style::KeepAlive(Proto::H1),
        Style::KeepAlive(Proto::H2),
        Style::KeepAlive(Proto::H2),
        Style::NewConnectionEach,
        Style::NewConnectionEach,
    ];
    let tasks: Vec<_> = styles
        .iter()
        .enumerate()
        .map(|(id, style)| {
            rt.spawn(client(
                server.addr,
                pki.ca_pem.clone(),
                *style,
                id,
                Arc::clone(&shared),
            ))
        })
        .collect();

    // Load before the signal: every client has been answered at least once.
    assert!(
        secrets_injector_tests::agent::wait_until(Duration::from_secs(30), || {
            shared.ok.load(Ordering::SeqCst) >= 50
        }),
        "no load reached the webhook; failures: {:?}; log:\n{}",
        shared.failures.lock().unwrap(),
        server.log_text()
    );
    shared.terminated.store(true, Ordering::SeqCst);
    server.sigterm();
    // The endpoint goes away ~2 s after the pod turns unready; the delay is 4 s.
    std::thread::sleep(Duration::from_secs(2));
    shared.stop.store(true, Ordering::SeqCst);
    rt.block_on(async {
        for t in tasks {
            t.await.unwrap();
        }
    });
    drop(rt);

    let failed = shared.failed.load(Ordering::SeqCst);
    assert_eq!(
        failed,
        0,
        "requests failed during the drain: {:?}; log:\n{}",
        shared.failures.lock().unwrap(),
        server.log_text()
    );
    assert!(
        shared.ok_after_sigterm.load(Ordering::SeqCst) > 0,
        "no request was sent after SIGTERM: the test proved nothing"
    );
    let status = server
        .wait_exit(Duration::from_secs(40))
        .expect("exits after the drain");
    assert!(
        status.success(),
        "exit status {status:?}; log:\n{}",
        server.log_text()
    );
    let log = server.log_text();
    assert!(
        log.contains("all connections drained"),
        "the drain did not finish cleanly; log:\n{log}"
    );
}
