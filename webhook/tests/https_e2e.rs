//! The real binary over verified HTTPS (HTTP/1.1 and HTTP/2), as the API server
//! sees it: every fixture pod is reviewed, patched, validated with
//! kubernetes-validate and reviewed again (empty patch); health, readiness and
//! metrics; SIGTERM turns unready, serves through the shutdown delay, drains
//! an in-flight request and exits 0.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::time::Duration;

use common::{Proto, Server};
use rustls::pki_types::ServerName;
use secrets_injector_tests::kubernetes_validate;
use secrets_injector_tests::pods::{apply_response, response_patch};
use serde_json::Value;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn body(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

#[test]
fn fixtures_over_http1_and_http2_patch_validate_and_are_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    // One server per distinct flag set the fixtures ask for.
    let mut groups: BTreeMap<Vec<String>, Vec<String>> = BTreeMap::new();
    for (stem, args) in common::fixture_stems() {
        groups.entry(args).or_default().push(stem);
    }
    assert!(
        groups.values().map(Vec::len).sum::<usize>() >= 12,
        "need a dozen pod shapes"
    );
    let rt = rt();
    let mut mutated_docs = Vec::new();
    let mut outcomes = BTreeMap::new();
    for (args, stems) in groups {
        let sub = tempfile::tempdir_in(dir.path()).unwrap();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (server, pki) = Server::with_pki(sub.path(), &args);
        for stem in stems {
            let pod = common::fixture(&stem);
            let review = secrets_injector_tests::pods::admission_review(&pod, "team-a", &stem);
            let (h1, h2) = rt.block_on(async {
                let ca = [pki.ca_pem.as_str()];
                let h1 =
                    common::post_once(server.addr, &ca, Proto::H1, "/mutate", body(&review)).await;
                let h2 =
                    common::post_once(server.addr, &ca, Proto::H2, "/mutate", body(&review)).await;
                (h1.unwrap(), h2.unwrap())
            });
            assert_eq!(h1.alpn.as_deref(), Some(&b"http/1.1"[..]));
            assert_eq!(h2.alpn.as_deref(), Some(&b"h2"[..]));
            assert_eq!(
                (h1.status, h2.status),
                (200, 200),
                "{stem}: {}",
                String::from_utf8_lossy(&h1.body)
            );
            let (r1, r2) = (h1.json(), h2.json());
            assert_eq!(r1, r2, "{stem}: HTTP/1.1 and HTTP/2 answers differ");
            assert_eq!(r1["response"]["uid"], stem.as_str());
            let expected = common::expected_outcome(&stem);
            let got = match (r1["response"]["allowed"].as_bool(), response_patch(&r1)) {
                (Some(false), _) => "denied",
                (Some(true), Some(p)) if !p.0.is_empty() => "patched",
                (Some(true), _) => "unchanged",
                _ => panic!("{stem}: no allowed field: {r1}"),
            };
            assert_eq!(got, expected, "{stem}: {r1}");
            outcomes.insert(got, ());
            if got != "patched" {
                continue;
            }
            assert_eq!(r1["response"]["patchType"], "JSONPatch");
            let mutated = apply_response(&pod, &r1);
            let again = secrets_injector_tests::pods::admission_review(&mutated, "team-a", "again");
            let r = rt
                .block_on(common::post_once(
                    server.addr,
                    &[&pki.ca_pem],
                    Proto::H2,
                    "/mutate",
                    body(&again),
                ))
                .unwrap();
            let r = r.json();
            assert_eq!(r["response"]["allowed"], true, "{stem}: second pass: {r}");
            assert!(
                response_patch(&r).is_none_or(|p| p.0.is_empty()),
                "{stem}: the webhook changed its own output: {r}"
            );
            mutated_docs.push(serde_yaml_ng::to_string(&mutated).unwrap());
        }
        drop(server);
    }
    assert_eq!(
        outcomes.len(),
        3,
        "fixtures cover patched, unchanged and denied"
    );
    kubernetes_validate(&mutated_docs.join("---\n")).unwrap();
}

#[test]
fn health_readiness_and_metrics_follow_the_traffic() {
    let dir = tempfile::tempdir().unwrap();
    let (server, pki) = Server::with_pki(dir.path(), &[]);
    assert_eq!(common::get(server.health, "/healthz").0, 200);
    assert_eq!(common::get(server.health, "/readyz").0, 200);
    let before = server.metrics();
    let series = |o: &str| format!("secrets_injector_admission_requests_total{{outcome=\"{o}\"}}");
    let count = |text: &str, o: &str| common::metric(text, &series(o));
    assert_eq!(count(&before, "injected"), 0.0);
    let expiry = common::metric(
        &before,
        "secrets_injector_tls_cert_expiry_timestamp_seconds",
    );
    assert!(expiry > 1.7e9, "expiry gauge is a Unix time: {expiry}");

    let rt = rt();
    // A secret-looking env value must never reach a log, a metric or a response.
    let canary = "CANARY-s3cr3t-value-7d1e";
    let mut pod = common::simple_pod();
    pod["spec"]["containers"][0]["env"] =
        serde_json::json!([{"name": "DB_PASSWORD", "value": canary}]);
    let review = secrets_injector_tests::pods::admission_review(&pod, "team-a", "m1");
    let denied = secrets_injector_tests::pods::admission_review(
        &common::fixture("12-invalid-annotations"),
        "team-a",
        "m2",
    );
    rt.block_on(async {
        for (v, p) in [
            (&review, Proto::H1),
            (&review, Proto::H2),
            (&denied, Proto::H1),
        ] {
            let r = common::post_once(server.addr, &[&pki.ca_pem], p, "/mutate", body(v))
                .await
                .unwrap();
            assert_eq!(r.status, 200);
        }
        let r = common::post_once(
            server.addr,
            &[&pki.ca_pem],
            Proto::H1,
            "/mutate",
            b"nope".to_vec(),
        )
        .await
        .unwrap();
        assert_eq!(r.status, 400);
        assert!(String::from_utf8_lossy(&r.body).contains("not JSON"));
    });
    let after = server.metrics();
    assert_eq!(count(&after, "injected"), 2.0);
    assert_eq!(count(&after, "denied"), 1.0);
    assert_eq!(count(&after, "error"), 1.0);
    assert_eq!(
        common::metric(&after, "secrets_injector_admission_duration_seconds_count"),
        4.0
    );
    let log = server.log_text();
    assert!(
        log.contains("\"uid\":\"m1\""),
        "one JSON log line per admission:\n{log}"
    );
    assert!(log.contains("\"outcome\":\"denied\""), "{log}");
    // The admission line's fields, as a log pipeline would read them.
    let line: serde_json::Value = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|l| l["message"] == "admission" && l["uid"] == "m2")
        .unwrap_or_else(|| panic!("no admission line for m2:\n{log}"));
    for (field, want) in [
        ("level", "INFO"),
        ("namespace", "team-a"),
        ("kind", "Pod"),
        ("operation", "Create"),
        ("outcome", "denied"),
    ] {
        assert_eq!(line[field], want, "{field} in {line}");
    }
    assert!(line["duration_ms"].as_f64().is_some(), "{line}");
    assert!(!log.contains(canary), "canary value in the log:\n{log}");
    assert!(!after.contains(canary), "canary value in the metrics");
}

/// An HTTP/1.1 request with `Expect: 100-continue`: once the server answers
/// `100 Continue`, its handler is reading the body, so the request is in flight.
fn start_in_flight_request(
    server: &Server,
    ca_pem: &str,
    len: usize,
) -> rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream> {
    let cfg = common::client_config(&[ca_pem], Proto::H1);
    let name = ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(cfg, name).unwrap();
    let sock = std::net::TcpStream::connect(server.addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut tls = rustls::StreamOwned::new(conn, sock);
    let head = format!(
        "POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Expect: 100-continue\r\nContent-Length: {len}\r\n\r\n"
    );
    tls.write_all(head.as_bytes()).unwrap();
    tls.flush().unwrap();
    let mut interim = Vec::new();
    let mut byte = [0u8; 1];
    while !interim.ends_with(b"\r\n\r\n") {
        tls.read_exact(&mut byte).expect("100 Continue");
        interim.push(byte[0]);
    }
    let interim = String::from_utf8_lossy(&interim);
    assert!(interim.starts_with("HTTP/1.1 100"), "{interim}");
    tls
}

#[test]
fn sigterm_turns_unready_keeps_serving_for_the_delay_then_drains_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, pki) = Server::with_pki(
        dir.path(),
        &["--shutdown-grace", "60s", "--shutdown-delay", "3s"],
    );
    let review =
        secrets_injector_tests::pods::admission_review(&common::simple_pod(), "team-a", "inflight");
    let payload = body(&review);
    let mut tls = start_in_flight_request(&server, &pki.ca_pem, payload.len());
    let readyz = common::get(server.health, "/readyz");
    assert_eq!(readyz.0, 200);
    server.sigterm();
    // Readiness turns false while draining (bounded wait).
    let mut unready = false;
    for _ in 0..200 {
        match secrets_injector_tests::https::get_plain(server.health, "/readyz") {
            Ok(r) if r.status == 503 => {
                unready = true;
                break;
            }
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    assert!(
        unready,
        "readyz should report 503 while draining; log:\n{}",
        server.log_text()
    );
    // During the shutdown delay a new connection is still answered: the API
    // server may pick this replica until its endpoint is removed.
    let late = rt().block_on(common::post_once(
        server.addr,
        &[&pki.ca_pem],
        Proto::H1,
        "/mutate",
        payload.clone(),
    ));
    assert_eq!(
        late.map(|r| r.status).ok(),
        Some(200),
        "a request during the shutdown delay must be served; log:\n{}",
        server.log_text()
    );
    // After the delay the port closes (bounded wait).
    let mut closed = false;
    for _ in 0..200 {
        if std::net::TcpStream::connect_timeout(&server.addr, Duration::from_secs(1)).is_err() {
            closed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        closed,
        "the admission port still accepts connections after the shutdown delay"
    );
    tls.write_all(&payload).unwrap();
    tls.flush().unwrap();
    let mut raw = Vec::new();
    let _ = tls.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw);
    assert!(
        text.starts_with("HTTP/1.1 200"),
        "in-flight request failed: {text}"
    );
    assert!(text.contains("\"uid\":\"inflight\""), "{text}");
    drop(tls);
    let status = server
        .wait_exit(Duration::from_secs(60))
        .expect("exits after the drain");
    assert!(
        status.success(),
        "exit status {status:?}; log:\n{}",
        server.log_text()
    );
}

#[test]
fn an_unloadable_certificate_fails_startup_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tls.crt"), "not a certificate").unwrap();
    std::fs::write(dir.path().join("tls.key"), "not a key").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_secrets-injector-webhook"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--health-listen",
            "127.0.0.1:0",
        ])
        .arg("--tls-cert-file")
        .arg(dir.path().join("tls.crt"))
        .arg("--tls-key-file")
        .arg(dir.path().join("tls.key"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no CERTIFICATE block"), "{err}");
}

#[test]
fn tls12_and_tls13_clients_are_both_served() {
    let dir = tempfile::tempdir().unwrap();
    let (server, pki) = Server::with_pki(dir.path(), &[]);
    for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(common::der(&pki.ca_pem).into()).unwrap();
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[version])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = ServerName::try_from("localhost").unwrap();
        let conn = rustls::ClientConnection::new(std::sync::Arc::new(cfg), name).unwrap();
        let sock = std::net::TcpStream::connect(server.addr).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut tls = rustls::StreamOwned::new(conn, sock);
        tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut raw = Vec::new();
        let _ = tls.read_to_end(&mut raw);
        assert_eq!(tls.conn.protocol_version(), Some(version.version));
        // Only POST /mutate exists on the TLS port; a 404 proves a full HTTP exchange.
        assert!(
            String::from_utf8_lossy(&raw).starts_with("HTTP/1.1 404"),
            "{version:?}"
        );
    }
}
