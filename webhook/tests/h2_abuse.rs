//! HTTP/2 abuse from a real HTTP/2 frame writer (`h2_abuse.py`: hyperframe and
//! hpack from the Python `h2` project) against the real binary:
//! rapid reset, a CONTINUATION flood, more streams than allowed, and bodies
//! over the limit. After each attack the webhook must still answer admission
//! (HTTP/1.1 and HTTP/2) and `/healthz`, and its memory must stay bounded.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{Proto, Server};
use secrets_injector_tests::TestPki;
use serde_json::Value;

fn attack(server: &Server, dir: &Path, name: &str) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/h2_abuse.py");
    let out = secrets_injector_tests::output_within(
        Command::new(secrets_injector_tests::tool("python"))
            .arg(script)
            .arg(name)
            .arg("127.0.0.1")
            .arg(server.addr.port().to_string())
            .arg(dir.join("ca.crt")),
        Duration::from_secs(120),
    );
    assert!(
        out.status.success(),
        "{name}: the attack script failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{name}: no JSON report ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Admission over a fresh HTTPS connection, either protocol, and `/healthz`.
fn still_serving(server: &Server, pki: &TestPki, after: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for proto in [Proto::H1, Proto::H2] {
        let uid = format!("after-{after}-{proto:?}");
        let body =
            serde_json::to_vec(&common::review(&common::simple_pod(), "CREATE", &uid)).unwrap();
        let reply = rt.block_on(async {
            tokio::time::timeout(
                Duration::from_secs(10),
                common::post_once(server.addr, &[&pki.ca_pem], proto, "/mutate", body),
            )
            .await
        });
        assert!(
            matches!(&reply, Ok(Ok(r)) if r.status == 200 && r.json()["response"]["uid"] == uid.as_str()),
            "admission over {proto:?} failed after {after}: {reply:?}; log:\n{}",
            server.log_text()
        );
    }
    assert_eq!(
        common::get(server.health, "/healthz").0,
        200,
        "after {after}"
    );
}

fn rss_kib(server: &Server) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.child.id())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .expect("VmRSS")
}

fn start(dir: &Path) -> (Server, TestPki) {
    let pki = TestPki::new(&["localhost", "127.0.0.1"]);
    pki.write_to(dir);
    std::fs::write(dir.join("ca.crt"), &pki.ca_pem).unwrap();
    let server = Server::start(&dir.join("tls.crt"), &dir.join("tls.key"), dir, &[]);
    (server, pki)
}

#[test]
fn rapid_reset_is_cut_off_and_the_webhook_keeps_answering() {
    let dir = tempfile::tempdir().unwrap();
    let (server, pki) = start(dir.path());
    let report = attack(&server, dir.path(), "rapid-reset");
    // hyper counts streams reset before they were served and ends the
    // connection (GOAWAY ENHANCE_YOUR_CALM, 0xb, which a client still writing
    // may see as a reset instead) long before the 5,000th.
    let reset = report["streams_reset"].as_u64().unwrap();
    assert!(
        report["goaway_error_code"] == 0xb || report["server_closed"] == true,
        "the server kept accepting reset streams: {report}"
    );
    assert!(reset < 5000, "all 5,000 resets were taken: {report}");
    still_serving(&server, &pki, "rapid reset");
}

#[test]
fn a_continuation_flood_is_stopped_not_buffered() {
    let dir = tempfile::tempdir().unwrap();
    let (server, pki) = start(dir.path());
    let before = rss_kib(&server);
    let report = attack(&server, dir.path(), "continuation-flood");
    let sent = report["bytes_sent"].as_u64().unwrap();
    assert!(
        report["server_closed"] == true || !report["goaway_error_code"].is_null(),
        "the server kept reading an endless header block: {report}"
    );
    // Stopped near the 64 KiB header-list limit, not after the 80 MB the flood offers.
    assert!(sent < 8 * 1024 * 1024, "{sent} bytes accepted: {report}");
    let growth = rss_kib(&server).saturating_sub(before);
    assert!(growth < 16 * 1024, "RSS grew by {growth} KiB: {report}");
    still_serving(&server, &pki, "a CONTINUATION flood");
}

#[test]
fn streams_beyond_the_limit_are_refused_and_the_webhook_keeps_answering() {
    let dir = tempfile::tempdir().unwrap();
    let (server, pki) = start(dir.path());
    let report = attack(&server, dir.path(), "many-streams");
    assert_eq!(report["server_max_concurrent_streams"], 64, "{report}");
    // Every stream over the limit is refused (RST_STREAM), or the connection is ended.
    let refused = report["server_resets"].as_u64().unwrap();
    assert!(
        refused >= 1000 - 64 || !report["goaway_error_code"].is_null(),
        "only {refused} of 936 excess streams refused: {report}"
    );
    still_serving(&server, &pki, "1,000 streams on one connection");
}

#[test]
fn over_limit_bodies_get_413_over_http2() {
    let dir = tempfile::tempdir().unwrap();
    let (server, pki) = start(dir.path());
    for name in ["oversized-body", "oversized-body-unannounced"] {
        let report = attack(&server, dir.path(), name);
        assert_eq!(
            report["statuses"][0], "413",
            "{name}: expected 413 for a 4 MiB body: {report}"
        );
        still_serving(&server, &pki, name);
    }
}
