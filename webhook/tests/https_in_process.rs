//! `server::serve_on` in-process (as a benchmark uses it): serves verified
//! HTTPS on pre-bound port-0 sockets and returns `Ok` once the token is cancelled.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::Proto;
use secrets_injector_tests::TestPki;
use secrets_injector_webhook::server::{ServeConfig, serve_on};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_on_answers_and_stops_when_the_token_is_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new(&["localhost"]);
    pki.write_to(dir.path());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let health = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (addr, health_addr) = (listener.local_addr().unwrap(), health.local_addr().unwrap());
    let config = ServeConfig {
        listen: addr,
        health_listen: health_addr,
        tls_cert_file: dir.path().join("tls.crt"),
        tls_key_file: dir.path().join("tls.key"),
        tls_reload_interval: Duration::from_secs(10),
        shutdown_delay: Duration::ZERO,
        shutdown_grace: Duration::from_secs(20),
        request_timeout: Duration::from_secs(10),
        max_connections: 1000,
        idle_timeout: Duration::from_secs(120),
        template: common::template(&[]),
    };
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(serve_on(listener, health, config, shutdown.clone()));

    let body = serde_json::to_vec(&common::review(&common::simple_pod(), "CREATE", "ip")).unwrap();
    let r = common::post_once(addr, &[&pki.ca_pem], Proto::H2, "/mutate", body)
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["response"]["uid"], "ip");

    shutdown.cancel();
    let result = tokio::time::timeout(Duration::from_secs(60), task)
        .await
        .expect("serve_on returns after cancellation")
        .unwrap();
    assert!(result.is_ok(), "{result:?}");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "still accepting"
    );
}
