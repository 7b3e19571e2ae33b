//! Certificate hot reload in the real binary: a Kubernetes Secret-volume style
//! `..data` symlink swap under continuous traffic fails no request and the new
//! certificate is served; a broken new pair keeps the previous certificate.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Conn, Proto, Server};
use secrets_injector_tests::TestPki;

/// Write a pair into `dir/<version>/` and atomically point `dir/..data` at it
/// (what the kubelet's AtomicWriter does).
fn publish(dir: &Path, version: &str, cert_pem: &str, key_pem: &str) {
    let v = dir.join(version);
    std::fs::create_dir(&v).unwrap();
    std::fs::write(v.join("tls.crt"), cert_pem).unwrap();
    std::fs::write(v.join("tls.key"), key_pem).unwrap();
    let tmp = dir.join("..data_tmp");
    std::os::unix::fs::symlink(version, &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
    for f in ["tls.crt", "tls.key"] {
        let link = dir.join(f);
        if link.symlink_metadata().is_err() {
            std::os::unix::fs::symlink(format!("..data/{f}"), link).unwrap();
        }
    }
}

fn start(dir: &Path, pki: &TestPki) -> Server {
    publish(dir, "..2026_01_01_00_00_00.1", &pki.cert_pem, &pki.key_pem);
    Server::start(
        &dir.join("tls.crt"),
        &dir.join("tls.key"),
        dir,
        &["--tls-reload-interval", "1s"],
    )
}

fn reloads(server: &Server, result: &str) -> f64 {
    let series = format!("secrets_injector_tls_reloads_total{{result=\"{result}\"}}");
    common::metric(&server.metrics(), &series)
}

/// Wait (bounded) until `reloads(result)` reaches `n`.
fn wait_reloads(server: &Server, result: &str, n: f64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while reloads(server, result) < n {
        assert!(
            Instant::now() < deadline,
            "no TLS reload {result} within 60s; log:\n{}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn review_body() -> Vec<u8> {
    serde_json::to_vec(&common::review(&common::simple_pod(), "CREATE", "r")).unwrap()
}

/// A fresh connection's view: the certificate served and whether the request succeeded.
async fn probe(server: &Server, cas: &[&str], proto: Proto) -> Result<Vec<u8>, String> {
    let r = common::post_once(server.addr, cas, proto, "/mutate", review_body())
        .await
        .map_err(|e| e.to_string())?;
    if r.status != 200 {
        return Err(format!("HTTP {}", r.status));
    }
    Ok(r.peer_cert)
}

#[test]
fn symlink_swap_under_traffic_fails_no_request_and_serves_the_new_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (TestPki::new(&["localhost"]), TestPki::new(&["localhost"]));
    let server = start(dir.path(), &old);
    let cas = [old.ca_pem.as_str(), new.ca_pem.as_str()];
    let (old_der, new_der) = (common::der(&old.cert_pem), common::der(&new.cert_pem));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (failures, sent, served_new) = rt.block_on(async {
        // A long-lived HTTP/2 connection keeps sending across the swap.
        let cfg = common::client_config(&cas, Proto::H2);
        let mut kept = Conn::open(server.addr, "localhost", cfg, Proto::H2)
            .await
            .unwrap();
        let (mut failures, mut sent, mut served_new) = (Vec::new(), 0, 0);
        // Bounded: stops once the new certificate was seen 20 times, or after 3000 rounds.
        for round in 0..3000 {
            if round == 20 {
                publish(
                    dir.path(),
                    "..2026_01_02_00_00_00.2",
                    &new.cert_pem,
                    &new.key_pem,
                );
            }
            let new_before = served_new;
            let (h1, h2, k) = tokio::join!(
                probe(&server, &cas, Proto::H1),
                probe(&server, &cas, Proto::H2),
                kept.post("/mutate", review_body()),
            );
            sent += 3;
            for r in [h1, h2] {
                match r {
                    Ok(cert) if cert == new_der => served_new += 1,
                    Ok(cert) if cert == old_der => {
                        assert!(
                            new_before == 0,
                            "the old certificate came back after the new one"
                        )
                    }
                    Ok(_) => failures.push(format!("round {round}: unknown certificate")),
                    Err(e) => failures.push(format!("round {round}: {e}")),
                }
            }
            match k {
                Ok((200, _)) => {}
                Ok((s, _)) => failures.push(format!("round {round}: kept connection HTTP {s}")),
                Err(e) => failures.push(format!("round {round}: kept connection: {e}")),
            }
            if served_new >= 20 {
                break;
            }
        }
        (failures, sent, served_new)
    });
    assert!(
        failures.is_empty(),
        "{} of {sent} requests failed: {failures:?}",
        failures.len()
    );
    assert!(
        served_new >= 20,
        "the new certificate was never served ({sent} requests)"
    );
    assert_eq!(reloads(&server, "success"), 1.0);
    assert_eq!(reloads(&server, "failure"), 0.0);
}

#[test]
fn a_broken_new_pair_keeps_the_previous_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (good, other) = (TestPki::new(&["localhost"]), TestPki::new(&["localhost"]));
    let server = start(dir.path(), &good);
    let cas = [good.ca_pem.as_str(), other.ca_pem.as_str()];
    let good_der = common::der(&good.cert_pem);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let served = |server: &Server| rt.block_on(probe(server, &cas, Proto::H1)).unwrap();

    // A key that does not match the certificate.
    publish(
        dir.path(),
        "..2026_01_02_00_00_00.2",
        &other.cert_pem,
        &good.key_pem,
    );
    wait_reloads(&server, "failure", 1.0);
    assert_eq!(served(&server), good_der);
    // A certificate file that is not a certificate.
    publish(
        dir.path(),
        "..2026_01_03_00_00_00.3",
        "garbage",
        &good.key_pem,
    );
    wait_reloads(&server, "failure", 2.0);
    assert_eq!(served(&server), good_der);
    assert_eq!(reloads(&server, "success"), 0.0);
    let log = server.log_text();
    assert!(log.contains("does not match the certificate"), "{log}");
    assert!(log.contains("still serving the previous one"), "{log}");
    assert!(!log.contains("PRIVATE KEY"), "key material in the log");

    // A good pair afterwards is picked up.
    publish(
        dir.path(),
        "..2026_01_04_00_00_00.4",
        &other.cert_pem,
        &other.key_pem,
    );
    wait_reloads(&server, "success", 1.0);
    assert_eq!(served(&server), common::der(&other.cert_pem));
}
