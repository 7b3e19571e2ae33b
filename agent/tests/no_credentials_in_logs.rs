//! The real agent binary at `RUST_LOG=trace` against moto, with canary
//! credentials for each identity: no session token, web identity token,
//! secret key or secret value reaches stdout, stderr or the termination log
//! (docs/decisions.md "No credential at any log level").
#![allow(clippy::unwrap_used, clippy::panic)]

#[path = "common/agent_bin.rs"]
mod agent_bin;
#[path = "common/fault_proxy.rs"]
mod fault_proxy;

use agent_bin::{Run, run_agent};
use fault_proxy::FaultProxy;
use secrets_injector_shared::keys::{POD_NAME_ENV, POD_NAMESPACE_ENV};
use secrets_injector_shared::{AgentConfig, SecretRef, SecretSpec};
use secrets_injector_tests::Moto;
use secrets_injector_tests::agent::CredentialsServer;

const VALUE_CANARY: &str = "CANARY-value-5e1f";
const SESSION_CANARY: &str = "CANARY-session-token-a41c";
const SECRET_KEY_CANARY: &str = "CANARY-secret-key-77d0";
const WEB_IDENTITY_CANARY: &str = "CANARY-web-identity-token-2b9e";
const POD_IDENTITY_CANARY: &str = "CANARY-pod-identity-token-c3d8";
/// Every session token moto's STS issues starts with this (moto/sts/utils.py).
const MOTO_SESSION_TOKEN_PREFIX: &str = "FQoGZXIvYXdzEBYaD";

fn seed(moto: &Moto) -> AgentConfig {
    moto.boto3(&format!(
        "client('secretsmanager').create_secret(Name='app/db', SecretString='{VALUE_CANARY}')\n\
         client('ssm').put_parameter(Name='/app/key', Value='{VALUE_CANARY}', Type='SecureString')\n"
    ));
    AgentConfig {
        startup_timeout_secs: 30,
        secrets: vec![
            SecretSpec::new(SecretRef::parse("app/db").unwrap(), "db"),
            SecretSpec::new(SecretRef::parse("ssm:/app/key").unwrap(), "key"),
        ],
        ..AgentConfig::default()
    }
}

/// The agent succeeded at trace level, and none of `canaries` was printed.
fn assert_clean(what: &str, cfg: &AgentConfig, run: &Run, canaries: &[&str]) {
    let all = run.all();
    assert!(run.success, "{what}: agent failed: {all}");
    assert_eq!(run.file(cfg, "db").as_deref(), Some(VALUE_CANARY), "{what}");
    assert!(
        all.lines()
            .any(|l| l.contains("\"level\":\"TRACE\"") || l.contains("\"level\":\"DEBUG\"")),
        "{what}: trace logging was not on, the test would prove nothing: {all}"
    );
    for canary in canaries {
        assert!(!all.contains(canary), "{what}: {canary} leaked: {all}");
    }
}

fn trace_env<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut env = vec![
        ("RUST_LOG", "trace"),
        ("LOG_SIGNABLE_BODY", "true"),
        ("AWS_REGION", "us-east-1"),
    ];
    env.extend_from_slice(extra);
    env
}

#[tokio::test(flavor = "multi_thread")]
async fn static_keys_with_a_session_token() {
    let moto = Moto::start();
    let cfg = seed(&moto);
    let endpoint = moto.endpoint();
    let run = run_agent(
        &cfg,
        &trace_env(&[
            ("AWS_ENDPOINT_URL", &endpoint),
            ("AWS_ACCESS_KEY_ID", "AKIDSTATIC"),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY_CANARY),
            ("AWS_SESSION_TOKEN", SESSION_CANARY),
        ]),
    );
    assert_clean(
        "static keys",
        &cfg,
        &run,
        &[VALUE_CANARY, SESSION_CANARY, SECRET_KEY_CANARY],
    );
}

/// IRSA, then `role-arn` chained on top: the web identity token and both
/// session tokens moto's STS hands out stay out of the logs. The log lines
/// and the STS session names carry the pod.
#[tokio::test(flavor = "multi_thread")]
async fn irsa_web_identity_and_role_chaining() {
    let moto = Moto::start();
    let mut cfg = seed(&moto);
    cfg.role_arn = Some("arn:aws:iam::123456789012:role/chained".into());
    let proxy = FaultProxy::start(moto.port).await;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, format!("{WEB_IDENTITY_CANARY}\n")).unwrap();
    let endpoint = proxy.endpoint();
    let run = run_agent(
        &cfg,
        &trace_env(&[
            ("AWS_ENDPOINT_URL", &endpoint),
            ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/app"),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", token.to_str().unwrap()),
            (POD_NAME_ENV, "web-7d9f-x2k4q"),
            (POD_NAMESPACE_ENV, "shop"),
        ]),
    );
    assert_clean(
        "IRSA",
        &cfg,
        &run,
        &[VALUE_CANARY, WEB_IDENTITY_CANARY, MOTO_SESSION_TOKEN_PREFIX],
    );
    for action in ["AssumeRoleWithWebIdentity", "AssumeRole"] {
        let body = proxy.last_body(action).unwrap_or_default();
        assert!(
            body.contains("RoleSessionName=shop.web-7d9f-x2k4q"),
            "{action} names the pod in its session: {body}"
        );
    }
    let lines: Vec<serde_json::Value> = run
        .stderr
        .lines()
        .chain(run.stdout.lines())
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(!lines.is_empty(), "{}", run.all());
    for l in &lines {
        assert_eq!(l["pod"], "web-7d9f-x2k4q", "{l}");
        assert_eq!(l["namespace"], "shop", "{l}");
        assert!(l["message"].is_string() && l["target"].is_string(), "{l}");
        assert!(l.get("fields").is_none(), "fields are flattened: {l}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pod_identity_credentials_endpoint() {
    let moto = Moto::start();
    let cfg = seed(&moto);
    let creds = CredentialsServer::start_with_session(
        POD_IDENTITY_CANARY,
        "AKIDPODIDENTITY",
        SECRET_KEY_CANARY,
        SESSION_CANARY,
    );
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, POD_IDENTITY_CANARY).unwrap();
    let endpoint = moto.endpoint();
    let run = run_agent(
        &cfg,
        &trace_env(&[
            ("AWS_ENDPOINT_URL", &endpoint),
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", &creds.url),
            (
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                token.to_str().unwrap(),
            ),
        ]),
    );
    assert!(
        creds.calls.load(std::sync::atomic::Ordering::SeqCst) >= 1,
        "the credentials endpoint was used: {}",
        run.all()
    );
    assert_clean(
        "Pod Identity",
        &cfg,
        &run,
        &[
            VALUE_CANARY,
            POD_IDENTITY_CANARY,
            SECRET_KEY_CANARY,
            SESSION_CANARY,
        ],
    );
}
