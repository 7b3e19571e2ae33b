//! The real agent binary behind what a locked-down cluster puts on the way
//! to AWS: an HTTP(S) proxy from `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY`
//! (either case), endpoint overrides per service, and a TLS endpoint whose
//! CA the agent does not know (docs/decisions.md "Egress").
#![allow(clippy::unwrap_used, clippy::panic)]

#[path = "common/agent_bin.rs"]
mod agent_bin;
#[path = "common/egress.rs"]
mod egress;
#[path = "common/fault_proxy.rs"]
mod fault_proxy;

use agent_bin::run_agent;
use egress::{EgressProxy, TlsFront};
use fault_proxy::FaultProxy;
use secrets_injector_shared::{AgentConfig, SecretRef, SecretSpec};
use secrets_injector_tests::Moto;
use secrets_injector_tests::agent::{CredentialsServer, POD_IDENTITY_TOKEN};

const ROLE: &str = "arn:aws:iam::123456789012:role/app";

fn seed(moto: &Moto) {
    moto.boto3(
        "client('secretsmanager').create_secret(Name='app/db', SecretString='db-value')\n\
         client('ssm').put_parameter(Name='/app/key', Value='key-value', Type='SecureString')\n",
    );
}

/// A Secrets Manager secret and an SSM parameter; `role_arn` adds STS `AssumeRole`.
fn cfg(role_arn: Option<&str>) -> AgentConfig {
    AgentConfig {
        startup_timeout_secs: 60,
        role_arn: role_arn.map(str::to_string),
        secrets: vec![
            SecretSpec::new(SecretRef::parse("app/db").unwrap(), "db"),
            SecretSpec::new(SecretRef::parse("ssm:/app/key").unwrap(), "key"),
        ],
        ..AgentConfig::default()
    }
}

fn assert_files(run: &agent_bin::Run, cfg: &AgentConfig) {
    assert!(run.success, "agent failed: {}", run.all());
    assert_eq!(run.file(cfg, "db").as_deref(), Some("db-value"));
    assert_eq!(run.file(cfg, "key").as_deref(), Some("key-value"));
}

/// IRSA + `role-arn` + both services over HTTPS: every call (STS web
/// identity, STS AssumeRole, Secrets Manager, SSM) goes through the proxy's
/// tunnels, whichever case the variable is spelled in; `NO_PROXY` bypasses it.
#[tokio::test(flavor = "multi_thread")]
async fn https_proxy_tunnels_every_aws_call_and_no_proxy_bypasses_it() {
    let moto = Moto::start();
    seed(&moto);
    let front = TlsFront::start(moto.port).await;
    let dir = tempfile::tempdir().unwrap();
    let (ca, token) = (dir.path().join("ca.pem"), dir.path().join("token"));
    std::fs::write(&ca, &front.ca_pem).unwrap();
    std::fs::write(&token, "web-identity-token").unwrap();
    let cfg = cfg(Some("arn:aws:iam::123456789012:role/chained"));
    let endpoint = front.endpoint();
    let base = [
        ("AWS_REGION", "us-east-1"),
        ("AWS_ROLE_ARN", ROLE),
        ("AWS_WEB_IDENTITY_TOKEN_FILE", token.to_str().unwrap()),
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("SSL_CERT_FILE", ca.to_str().unwrap()),
        ("AWS_MAX_ATTEMPTS", "5"),
    ];
    let localhost = format!("localhost:{}", front.port);
    for var in ["HTTPS_PROXY", "https_proxy"] {
        let proxy = EgressProxy::start().await;
        let url = proxy.url();
        let mut env = base.to_vec();
        env.push((var, url.as_str()));
        front.reset();
        let run = run_agent(&cfg, &env);
        assert_files(&run, &cfg);
        assert!(proxy.tunnels() >= 1, "{var}: no tunnel: {}", run.all());
        assert_eq!(
            proxy.tunnels(),
            front.handshakes_since_reset(),
            "{var}: every connection to the endpoint went through the proxy"
        );
        assert!(
            proxy.targets().iter().all(|t| *t == localhost),
            "{var}: {:?}",
            proxy.targets()
        );
        assert!(
            run.stderr.contains("AWS_MAX_ATTEMPTS"),
            "the ignored retry setting is called out: {}",
            run.stderr
        );
    }
    for (var, rule) in [
        ("NO_PROXY", "localhost"),
        ("no_proxy", "example.com,localhost"),
    ] {
        let proxy = EgressProxy::start().await;
        let url = proxy.url();
        let mut env = base.to_vec();
        env.extend([("HTTPS_PROXY", url.as_str()), (var, rule)]);
        front.reset();
        let run = run_agent(&cfg, &env);
        assert_files(&run, &cfg);
        assert_eq!(proxy.tunnels(), 0, "{var}={rule} bypasses the proxy");
        assert!(front.handshakes_since_reset() >= 1, "went direct");
    }
}

/// Pod Identity: the container credentials endpoint is plain HTTP, so
/// `HTTP_PROXY` carries it (as in every AWS SDK) unless `NO_PROXY` names it.
#[tokio::test(flavor = "multi_thread")]
async fn http_proxy_carries_the_pod_identity_call_unless_no_proxy_names_it() {
    let moto = Moto::start();
    seed(&moto);
    let creds = CredentialsServer::start(POD_IDENTITY_TOKEN, "AKIDPODIDENTITY", "pod-secret");
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, POD_IDENTITY_TOKEN).unwrap();
    let cfg = cfg(None);
    let endpoint = moto.endpoint();
    let creds_authority = creds
        .url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    for no_proxy in [None, Some("127.0.0.1")] {
        let proxy = EgressProxy::start().await;
        let url = proxy.url();
        let mut env = vec![
            ("AWS_REGION", "us-east-1"),
            ("AWS_ENDPOINT_URL", endpoint.as_str()),
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", creds.url.as_str()),
            (
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                token.to_str().unwrap(),
            ),
            ("http_proxy", url.as_str()),
        ];
        env.extend(no_proxy.map(|n| ("NO_PROXY", n)));
        let run = run_agent(&cfg, &env);
        assert_files(&run, &cfg);
        let through = proxy.targets();
        match no_proxy {
            None => {
                assert!(
                    through.contains(&creds_authority),
                    "the credentials call went through the proxy: {through:?}"
                );
                assert!(proxy.forwards() >= 2, "services too: {through:?}");
            }
            Some(_) => assert!(through.is_empty(), "NO_PROXY bypasses: {through:?}"),
        }
    }
}

/// `AWS_ENDPOINT_URL_<SERVICE>` wins over `AWS_ENDPOINT_URL`, for each service the agent calls.
#[tokio::test(flavor = "multi_thread")]
async fn service_specific_endpoints_win_over_the_generic_one() {
    let moto = Moto::start();
    seed(&moto);
    let generic = FaultProxy::start(moto.port).await;
    let (sm, ssm, sts) = (
        FaultProxy::start(moto.port).await,
        FaultProxy::start(moto.port).await,
        FaultProxy::start(moto.port).await,
    );
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "web-identity-token").unwrap();
    let cfg = cfg(None);
    let (g, a, b, c) = (
        generic.endpoint(),
        sm.endpoint(),
        ssm.endpoint(),
        sts.endpoint(),
    );
    let generic_only = [
        ("AWS_REGION", "us-east-1"),
        ("AWS_ROLE_ARN", ROLE),
        ("AWS_WEB_IDENTITY_TOKEN_FILE", token.to_str().unwrap()),
        ("AWS_ENDPOINT_URL", g.as_str()),
    ];
    let mut per_service = generic_only.to_vec();
    per_service.extend([
        ("AWS_ENDPOINT_URL_SECRETS_MANAGER", a.as_str()),
        ("AWS_ENDPOINT_URL_SSM", b.as_str()),
        ("AWS_ENDPOINT_URL_STS", c.as_str()),
    ]);
    let run = run_agent(&cfg, &per_service);
    assert_files(&run, &cfg);
    assert_eq!(generic.total(), 0, "the generic endpoint was not used");
    assert_eq!(sm.count("BatchGetSecretValue"), 1);
    assert_eq!(ssm.count("GetParameters"), 1);
    assert_eq!(sts.count("AssumeRoleWithWebIdentity"), 1);
    assert_eq!((sm.total(), ssm.total(), sts.total()), (1, 1, 1));

    // Without the service-specific ones, everything goes to the generic endpoint.
    let run = run_agent(&cfg, &generic_only);
    assert_files(&run, &cfg);
    assert_eq!(generic.total(), 3, "STS, Secrets Manager, SSM");
}

/// A certificate from an unknown CA (a TLS-inspecting proxy, a VPC endpoint
/// with a private CA) fails at the first attempt with a hint, not after
/// retries until the startup timeout; with the CA added it works.
#[tokio::test(flavor = "multi_thread")]
async fn untrusted_endpoint_certificate_fails_at_once_with_the_private_ca_hint() {
    let moto = Moto::start();
    seed(&moto);
    let front = TlsFront::start(moto.port).await;
    let cfg = cfg(None);
    let endpoint = front.endpoint();
    let env = [
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
    ];
    let run = run_agent(&cfg, &env);
    assert!(!run.success, "{}", run.all());
    let log = &run.termination_log;
    assert_eq!(log.lines().count(), 2, "one line per secret: {log}");
    for line in log.lines() {
        assert!(line.contains(": UntrustedCertificate: "), "{log}");
        assert!(line.contains("UnknownIssuer"), "{log}");
        assert!(
            line.contains("SSL_CERT_FILE") && line.contains("agent.caBundle"),
            "{log}"
        );
    }
    assert_eq!(
        front.handshakes_since_reset(),
        2,
        "one attempt per call (Secrets Manager, SSM), never retried"
    );

    // The same through IRSA: STS's answer is the first thing that fails.
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "web-identity-token").unwrap();
    front.reset();
    let run = run_agent(
        &cfg,
        &[
            ("AWS_REGION", "us-east-1"),
            ("AWS_ROLE_ARN", ROLE),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", token.to_str().unwrap()),
            ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ],
    );
    assert!(!run.success, "{}", run.all());
    assert_eq!(run.termination_log.lines().count(), 2, "{}", run.all());
    assert!(
        run.termination_log
            .lines()
            .all(|l| l.contains(": UntrustedCertificate: ") && l.contains("agent.caBundle")),
        "{}",
        run.termination_log
    );
    assert!(
        front.handshakes_since_reset() <= 2,
        "one round only, never retried: {}",
        front.handshakes_since_reset()
    );

    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &front.ca_pem).unwrap();
    let mut trusted = env.to_vec();
    trusted.push(("SSL_CERT_FILE", ca.to_str().unwrap()));
    assert_files(&run_agent(&cfg, &trusted), &cfg);
}
