//! Connection hygiene against the real binary at a low open-file limit: a
//! flood of idle connections on both ports never takes admission or
//! `/healthz` down (the least recently active ones are evicted), and idle
//! connections are closed after `--idle-timeout`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Read;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Proto, Server};
use secrets_injector_tests::TestPki;

fn open_idle(addr: std::net::SocketAddr, n: usize) -> Vec<TcpStream> {
    (0..n)
        .filter_map(|_| TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok())
        .collect()
}

/// An admission request over verified HTTPS on a fresh connection.
fn admission_ok(server: &Server, pki: &TestPki, uid: &str) -> bool {
    let body = serde_json::to_vec(&common::review(&common::simple_pod(), "CREATE", uid)).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let reply = rt.block_on(async {
        tokio::time::timeout(
            Duration::from_secs(10),
            common::post_once(server.addr, &[&pki.ca_pem], Proto::H1, "/mutate", body),
        )
        .await
    });
    matches!(reply, Ok(Ok(r)) if r.status == 200 && r.json()["response"]["uid"] == uid)
}

/// A peer connection was closed by the server (EOF or reset), within `within`.
fn closed_by_server(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 16];
    matches!(s.read(&mut buf), Ok(0) | Err(_))
        && {
            // A read timeout is an Err too: tell it apart from EOF/reset.
            s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
            !matches!(s.read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut)
        }
}

#[test]
fn an_idle_flood_at_a_low_fd_limit_never_stops_admission_or_health() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new(&["localhost", "127.0.0.1"]);
    pki.write_to(dir.path());
    // 256 descriptors: far fewer than the connections the flood opens.
    let server = Server::launch(
        &["prlimit", "--nofile=256:256", "--"],
        &dir.path().join("tls.crt"),
        &dir.path().join("tls.key"),
        dir.path(),
        &["--idle-timeout", "3s"],
    );
    let started = Instant::now();
    let mut flood = open_idle(server.addr, 600);
    flood.extend(open_idle(server.health, 150));
    assert!(
        flood.len() >= 700,
        "opened only {} connections",
        flood.len()
    );

    for i in 0..5 {
        assert!(
            admission_ok(&server, &pki, &format!("flood-{i}")),
            "admission refused during the flood; log:\n{}",
            server.log_text()
        );
        assert_eq!(common::get(server.health, "/healthz").0, 200);
    }
    let metrics = server.metrics();
    let evicted = common::metric(
        &metrics,
        "secrets_injector_connections_closed_total{reason=\"evicted\"}",
    );
    assert!(evicted >= 400.0, "evicted {evicted}\n{metrics}");
    assert!(
        server.log_text().contains("\"max_connections\":"),
        "the effective cap is logged"
    );

    // Whatever is still open goes once idle for 3 s (no byte ever moved on them).
    let mut still_open: Vec<TcpStream> = flood
        .into_iter()
        .filter(|s| {
            s.set_nonblocking(true).unwrap();
            let mut b = [0u8; 1];
            let open =
                matches!((&*s).read(&mut b), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
            s.set_nonblocking(false).unwrap();
            open
        })
        .collect();
    assert!(
        !still_open.is_empty(),
        "some flood connections are still held"
    );
    let wait = Duration::from_secs(10).saturating_sub(started.elapsed()) + Duration::from_secs(3);
    for s in still_open.iter_mut().take(20) {
        assert!(
            closed_by_server(s, wait),
            "an idle connection was kept open"
        );
    }
    let idle = common::metric(
        &server.metrics(),
        "secrets_injector_connections_closed_total{reason=\"idle\"}",
    );
    assert!(idle >= 20.0, "idle closes {idle}");
    assert!(admission_ok(&server, &pki, "after"));
}
