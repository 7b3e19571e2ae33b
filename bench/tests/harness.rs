//! The bench's own machinery, checked for what it claims (counts, RSS,
//! certificate verification) — never for how fast anything is.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;
use std::time::Duration;

use axum::body::Bytes;
use rustls::pki_types::ServerName;
use secrets_injector_bench::loadgen::{self, Target};
use secrets_injector_bench::measure::Measured;
use secrets_injector_bench::{bare, proxy, tls};
use secrets_injector_tests::{Moto, TestPki, tool};

const CANNED: &str = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"u","allowed":true}}"#;

async fn bare_target(pki: &TestPki, resume: bool) -> Target {
    server_target(pki, resume, false).await
}

/// The bare server, answering after parsing the body when `parse` is set.
async fn server_target(pki: &TestPki, resume: bool, parse: bool) -> Target {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let cfg = tls::server_config(&pki.cert_pem, &pki.key_pem).unwrap();
    tokio::spawn(bare::serve(
        listener,
        cfg,
        Bytes::from_static(CANNED.as_bytes()),
        parse,
    ));
    Target {
        addr,
        server_name: ServerName::try_from("localhost").unwrap(),
        tls: tls::client_config(&pki.ca_pem, resume).unwrap(),
        path: "/mutate".into(),
        body: Bytes::from_static(b"{}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_generator_sends_exactly_the_scheduled_requests() {
    let pki = TestPki::new(&["localhost"]);
    let t = bare_target(&pki, true).await;
    assert_eq!(loadgen::one_shot(&t).await.unwrap(), CANNED.as_bytes());
    let r = loadgen::fixed_rate(&t, 4, 50, Duration::from_secs(1)).await;
    assert_eq!((r.completed, r.errors, r.unsent), (50, 0, 0), "{r:?}");
    assert_eq!(r.latency.unwrap().n, 50);
    let s = loadgen::saturate(&t, 2, Duration::from_millis(500)).await;
    assert!(s.completed > 0 && s.errors == 0, "{s:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_parse_only_baseline_answers_like_the_bare_server() {
    let pki = TestPki::new(&["localhost"]);
    let mut t = server_target(&pki, true, true).await;
    t.body = Bytes::from(
        serde_json::to_vec(&secrets_injector_tests::pods::admission_review(
            &secrets_injector_bench::pods::typical(),
            "bench",
            "u",
        ))
        .unwrap(),
    );
    assert_eq!(loadgen::one_shot(&t).await.unwrap(), CANNED.as_bytes());
    let r = loadgen::fixed_rate(&t, 2, 20, Duration::from_secs(1)).await;
    assert_eq!((r.completed, r.errors, r.unsent), (20, 0, 0), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_mode_opens_verified_connections() {
    let pki = TestPki::new(&["localhost"]);
    let t = bare_target(&pki, false).await;
    let r = loadgen::handshakes(&t, 2, Duration::from_millis(500)).await;
    assert!(r.completed > 0 && r.errors == 0, "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_outside_the_trusted_ca_is_refused() {
    let pki = TestPki::new(&["localhost"]);
    let other = TestPki::new(&["localhost"]);
    let mut t = bare_target(&pki, true).await;
    t.tls = tls::client_config(&other.ca_pem, true).unwrap();
    assert!(loadgen::one_shot(&t).await.is_err());
    let r = loadgen::fixed_rate(&t, 2, 20, Duration::from_millis(500)).await;
    assert_eq!(r.completed, 0);
    assert_eq!(r.errors, 10, "{r:?}");
}

fn measure(args: &[&str]) -> Measured {
    let out = Command::new(env!("CARGO_BIN_EXE_secrets-injector-bench"))
        .arg("measure")
        .arg("--")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn measure_reports_the_peak_rss_of_the_child_tree() {
    // 64 MiB touched by a grandchild (python under sh), as the CLI loop runs `aws` under bash.
    let py = tool("python");
    let script = format!(
        "{} -c 'b = bytearray(64 * 1024 * 1024); b[::4096] = b\"x\" * len(b[::4096])'",
        py.display()
    );
    let m = measure(&["sh", "-c", &script]);
    assert!(m.success);
    assert!(m.max_rss_kib >= 64 * 1024, "{m:?}");
    let small = measure(&["true"]);
    assert!(small.success && small.max_rss_kib < 64 * 1024, "{small:?}");
}

#[test]
fn measure_reports_failure() {
    assert!(!measure(&["false"]).success);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_counts_each_aws_operation() {
    let moto = tokio::task::spawn_blocking(Moto::start).await.unwrap();
    let (addr, counts) = proxy::start(&moto.endpoint()).await.unwrap();
    let code = format!(
        "import boto3\n\
         c = lambda s: boto3.client(s, region_name='us-east-1', endpoint_url='http://{addr}', \
         aws_access_key_id='testing', aws_secret_access_key='testing')\n\
         sm = c('secretsmanager')\n\
         sm.create_secret(Name='a', SecretString='v')\n\
         sm.get_secret_value(SecretId='a')\n\
         sm.get_secret_value(SecretId='a')\n\
         c('ssm').put_parameter(Name='/p', Value='v', Type='String')\n\
         c('sts').assume_role_with_web_identity(RoleArn='arn:aws:iam::123456789012:role/r', \
         RoleSessionName='bench', WebIdentityToken='bench-token')\n"
    );
    let out = tokio::task::spawn_blocking(move || {
        Command::new(tool("python"))
            .arg("-c")
            .arg(code)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let c = counts.take();
    assert_eq!(c.get("secretsmanager.CreateSecret"), Some(&1), "{c:?}");
    assert_eq!(c.get("secretsmanager.GetSecretValue"), Some(&2), "{c:?}");
    assert_eq!(c.get("AmazonSSM.PutParameter"), Some(&1), "{c:?}");
    assert_eq!(c.get("sts.AssumeRoleWithWebIdentity"), Some(&1), "{c:?}");
    assert!(counts.take().is_empty());
}
