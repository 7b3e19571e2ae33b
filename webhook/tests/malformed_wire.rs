//! Hostile traffic against the real binary: oversized bodies, plain HTTP and
//! garbage on the TLS port, wrong paths and methods. Each gets a clear answer
//! (or a closed connection) and the server keeps serving.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::{Proto, Server};

async fn assert_serves(server: &Server, ca: &str) {
    let body = serde_json::to_vec(&common::review(&common::simple_pod(), "CREATE", "ok")).unwrap();
    let r = common::post_once(server.addr, &[ca], Proto::H2, "/mutate", body)
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["response"]["uid"], "ok");
}

#[test]
fn hostile_requests_get_clear_answers_and_the_server_survives() {
    let dir = tempfile::tempdir().unwrap();
    let (server, pki) = Server::with_pki(dir.path(), &[]);
    let ca = pki.ca_pem.as_str();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        // Over 3 MiB, on both protocols.
        for proto in [Proto::H1, Proto::H2] {
            let big = vec![b' '; 3 * 1024 * 1024 + 1];
            let r = common::post_once(server.addr, &[ca], proto, "/mutate", big)
                .await
                .unwrap();
            assert_eq!(r.status, 413, "{proto:?}");
            let text = String::from_utf8_lossy(&r.body);
            assert!(
                text.contains("exceeds the 3 MiB limit"),
                "{proto:?}: {text}"
            );
            assert_serves(&server, ca).await;
        }
        // Unknown path and wrong method.
        let r = common::post_once(server.addr, &[ca], Proto::H1, "/nope", b"{}".to_vec())
            .await
            .unwrap();
        assert_eq!(r.status, 404);
        assert_serves(&server, ca).await;
    });

    // Plain HTTP and random bytes on the TLS port: the connection closes, the server stays up.
    for junk in [
        &b"POST /mutate HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        &[0x16, 0x03, 0x01, 0xff, 0xff, 0, 1, 2][..],
    ] {
        let mut sock = std::net::TcpStream::connect(server.addr).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        sock.write_all(junk).unwrap();
        let mut buf = Vec::new();
        let _ = sock.read_to_end(&mut buf);
        assert!(
            !String::from_utf8_lossy(&buf).contains("HTTP/1.1 200"),
            "junk got a 200"
        );
    }
    // A client that connects and sends nothing does not block others.
    let _idle = std::net::TcpStream::connect(server.addr).unwrap();
    rt.block_on(assert_serves(&server, ca));
    assert_eq!(common::get(server.health, "/healthz").0, 200);
}
