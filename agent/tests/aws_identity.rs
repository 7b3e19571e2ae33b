//! Pod identities end to end against moto: IRSA (web identity), role
//! chaining, EKS Pod Identity, and no identity at all.
// Test helpers: a failed setup should fail the test loudly.
#![allow(clippy::unwrap_used, clippy::panic)]

#[path = "common/fault_proxy.rs"]
mod fault_proxy;

use std::process::Command;
use std::time::Duration;

use fault_proxy::FaultProxy;
use secrets_injector_agent::aws::{Env, Identity, clients, clients_with};
use secrets_injector_agent::fetch::{AwsFetcher, Fetch};
use secrets_injector_agent::value::SecretValue as Value;
use secrets_injector_shared::{AgentConfig, SecretRef, SecretSpec};
use secrets_injector_tests::Moto;
use secrets_injector_tests::agent::{CredentialsServer, POD_IDENTITY_TOKEN};

/// Set in the child process the Pod Identity test spawns (the SDK reads that
/// identity from the process environment, which tests must not mutate).
const CHILD_ENV: &str = "SECRETS_INJECTOR_AWS_TEST_CHILD";
const ROLE: &str = "arn:aws:iam::123456789012:role/app";

fn cfg_for(id: &str) -> (AgentConfig, Vec<SecretSpec>) {
    let specs = vec![SecretSpec::new(SecretRef::parse(id).unwrap(), "f")];
    let cfg = AgentConfig {
        secrets: specs.clone(),
        ..AgentConfig::default()
    };
    (cfg, specs)
}

async fn fetch_text(f: &AwsFetcher, specs: &[SecretSpec]) -> String {
    let o = f.fetch(specs).await;
    match o.first() {
        Some(Ok(Value::Text(s))) => s.clone(),
        other => panic!("no value: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn irsa_web_identity_with_and_without_trailing_newline_then_role_chaining() {
    let moto = Moto::start();
    moto.boto3("client('secretsmanager').create_secret(Name='irsa', SecretString='via-irsa')");
    let proxy = FaultProxy::start(moto.port).await;
    let dir = tempfile::tempdir().unwrap();
    for (name, token) in [
        ("plain", "header.payload.sig"),
        ("newline", "header.payload.sig\n"),
    ] {
        let file = dir.path().join(name);
        std::fs::write(&file, token).unwrap();
        let env = Env::from_pairs([
            ("AWS_ROLE_ARN", ROLE),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", file.to_str().unwrap()),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ENDPOINT_URL", &proxy.endpoint()),
        ]);
        let (mut cfg, specs) = cfg_for("irsa");
        proxy.reset_counts();
        let clients = clients_with(&cfg, &env).await.unwrap();
        assert!(matches!(clients.identity, Identity::WebIdentity { .. }));
        let f = AwsFetcher::new(clients);
        assert_eq!(fetch_text(&f, &specs).await, "via-irsa", "token {name}");
        assert_eq!(proxy.count("AssumeRoleWithWebIdentity"), 1, "token {name}");
        assert_eq!(proxy.count("AssumeRole"), 0);

        cfg.role_arn = Some("arn:aws:iam::123456789012:role/cross-account".into());
        proxy.reset_counts();
        let f = AwsFetcher::new(clients_with(&cfg, &env).await.unwrap());
        assert_eq!(fetch_text(&f, &specs).await, "via-irsa");
        assert_eq!(proxy.count("AssumeRoleWithWebIdentity"), 1);
        assert_eq!(proxy.count("AssumeRole"), 1, "role-arn chained on top");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_token_file_is_a_permanent_failure_naming_it() {
    let env = Env::from_pairs([
        ("AWS_ROLE_ARN", ROLE),
        ("AWS_WEB_IDENTITY_TOKEN_FILE", "/nonexistent/token"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
    ]);
    let (cfg, specs) = cfg_for("x");
    let f = AwsFetcher::new(clients_with(&cfg, &env).await.unwrap());
    let o = f.fetch(&specs).await;
    let fail = o[0].as_ref().unwrap_err();
    assert!(!fail.is_transient(), "{fail:?}");
    assert!(fail.message.contains("/nonexistent/token"), "{fail:?}");
    assert!(fail.hint.as_deref().unwrap().contains("IRSA"), "{fail:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn no_identity_fails_at_once_with_the_setup_to_do() {
    let (cfg, _) = cfg_for("x");
    let env = Env::from_pairs([("AWS_REGION", "us-east-1")]);
    // Bounded wait: an IMDS probe would take seconds; the check does no I/O at all.
    let r = tokio::time::timeout(Duration::from_secs(5), clients_with(&cfg, &env))
        .await
        .expect("no identity must not wait on the network");
    let err = r.unwrap_err().to_string();
    assert!(err.starts_with("no pod identity"), "{err}");
    assert!(err.contains("secrets-injector.io/allow-node-role"), "{err}");

    let mut opted = cfg.clone();
    opted.allow_node_role = true;
    let c = clients_with(&opted, &env).await.unwrap();
    assert_eq!(c.identity, Identity::NodeRole);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_ssl_cert_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("ca.pem");
    std::fs::write(
        &pem,
        "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let (cfg, _) = cfg_for("x");
    let env = Env::from_pairs([
        ("AWS_ACCESS_KEY_ID", "a"),
        ("AWS_SECRET_ACCESS_KEY", "b"),
        ("AWS_REGION", "us-east-1"),
        ("SSL_CERT_FILE", pem.to_str().unwrap()),
    ]);
    let err = clients_with(&cfg, &env).await.unwrap_err().to_string();
    assert!(err.starts_with("TLS roots: SSL_CERT_FILE"), "{err}");
    assert!(err.contains(pem.to_str().unwrap()), "{err}");
}

/// Runs twice: as the test (starts moto and the credentials endpoint, spawns
/// itself) and as that child (fetches with the process environment).
#[tokio::test(flavor = "multi_thread")]
async fn pod_identity_uses_the_container_credentials_endpoint() {
    let (cfg, specs) = cfg_for("pod-identity");
    if std::env::var_os(CHILD_ENV).is_some() {
        let f = AwsFetcher::new(clients(&cfg).await.unwrap());
        assert_eq!(f.clients().identity, Identity::PodIdentity);
        assert_eq!(fetch_text(&f, &specs).await, "via-pod-identity");
        return;
    }
    let moto = Moto::start();
    moto.boto3(
        "client('secretsmanager').create_secret(Name='pod-identity', SecretString='via-pod-identity')",
    );
    let creds = CredentialsServer::start(POD_IDENTITY_TOKEN, "AKIDPODIDENTITY", "pod-secret");
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, POD_IDENTITY_TOKEN).unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "pod_identity_uses_the_container_credentials_endpoint",
            "--nocapture",
        ])
        .env_clear()
        .env(CHILD_ENV, "1")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL", moto.endpoint())
        .env("AWS_CONTAINER_CREDENTIALS_FULL_URI", &creds.url)
        .env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", &token)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        creds.calls.load(std::sync::atomic::Ordering::SeqCst) >= 1,
        "the credentials endpoint was not called with the token"
    );
    assert_eq!(creds.rejected.load(std::sync::atomic::Ordering::SeqCst), 0);
}
