//! AWS SDK config and clients from the pod's own identity: web identity
//! (IRSA), container credentials (Pod Identity) or static keys, then optional
//! role chaining. Never the node role through IMDS unless the pod opted in.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_credential_types::Credentials;
use aws_credential_types::provider::{
    ProvideCredentials, SharedCredentialsProvider, error::CredentialsError, future,
};
use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use aws_types::SdkConfig;
use aws_types::region::Region;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use secrets_injector_shared::AgentConfig;
use secrets_injector_shared::keys::{CA_BUNDLE_ENV, POD_NAME_ENV, POD_NAMESPACE_ENV};

use crate::Error;

/// STS session name when the pod's name and namespace are unknown.
const DEFAULT_SESSION_NAME: &str = "secrets-injector-agent";
/// STS `RoleSessionName` limit.
const SESSION_NAME_MAX: usize = 64;
/// A black-holed endpoint must not hang the agent: the run loop owns retries.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// Snapshot of the environment variables the agent reads, so tests can pass
/// their own instead of mutating the process environment.
#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: BTreeMap<String, String>,
}

impl Env {
    /// The process environment.
    pub fn from_process() -> Env {
        Env {
            vars: std::env::vars().collect(),
        }
    }

    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Env {
        Env {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// A set, non-blank variable.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.vars
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }
}

/// Which pod identity the agent uses (first match wins, in this order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` set explicitly in the agent's env.
    Static,
    /// IRSA: `AWS_ROLE_ARN` + `AWS_WEB_IDENTITY_TOKEN_FILE`.
    WebIdentity {
        role_arn: String,
        token_file: PathBuf,
    },
    /// EKS Pod Identity: `AWS_CONTAINER_CREDENTIALS_FULL_URI` (+ token file).
    PodIdentity,
    /// The node's instance role via IMDS; only with `allow-node-role`.
    NodeRole,
}

/// Message for a pod without identity: says what to set up, never guesses IMDS.
const NO_IDENTITY: &str = "no pod identity: set up IRSA (AWS_ROLE_ARN + \
AWS_WEB_IDENTITY_TOKEN_FILE from an annotated ServiceAccount) or EKS Pod Identity \
(AWS_CONTAINER_CREDENTIALS_FULL_URI + AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE), or set \
AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY in the agent's env; the node's instance role \
(IMDS) is used only with the annotation secrets-injector.io/allow-node-role: \"true\"";

/// Pick the identity from the environment; pure, so every branch is tested.
fn identity(env: &Env, allow_node_role: bool) -> Result<Identity, Error> {
    if env.get("AWS_ACCESS_KEY_ID").is_some() && env.get("AWS_SECRET_ACCESS_KEY").is_some() {
        return Ok(Identity::Static);
    }
    match (
        env.get("AWS_ROLE_ARN"),
        env.get("AWS_WEB_IDENTITY_TOKEN_FILE"),
    ) {
        (Some(role), Some(file)) => {
            return Ok(Identity::WebIdentity {
                role_arn: role.to_string(),
                token_file: PathBuf::from(file),
            });
        }
        (Some(_), None) | (None, Some(_)) => {
            return Err(Error::Identity(
                "incomplete IRSA setup: AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE must both be \
                 set (is the ServiceAccount annotated with eks.amazonaws.com/role-arn?)"
                    .into(),
            ));
        }
        (None, None) => {}
    }
    if env.get("AWS_CONTAINER_CREDENTIALS_FULL_URI").is_some()
        || env.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI").is_some()
    {
        return Ok(Identity::PodIdentity);
    }
    if allow_node_role {
        return Ok(Identity::NodeRole);
    }
    Err(Error::Identity(NO_IDENTITY.into()))
}

/// The STS role session name, visible in CloudTrail: `<namespace>.<pod>`
/// from the downward-API env, characters outside `[\w+=,.@-]` replaced by
/// `-`, at most 64 characters. The namespace is shortened first, so the pod
/// name's unique suffix survives; without either, `secrets-injector-agent`.
fn session_name(namespace: Option<&str>, pod: Option<&str>) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "_+=,.@-".contains(c) {
                    c
                } else {
                    '-'
                }
            })
            .collect()
    };
    let (namespace, pod) = (namespace.map(clean), pod.map(clean));
    let name = match (namespace, pod) {
        (Some(ns), Some(pod)) if pod.len() + 2 <= SESSION_NAME_MAX => {
            let room = SESSION_NAME_MAX - pod.len() - 1;
            format!("{}.{pod}", &ns[..ns.len().min(room)])
        }
        (_, Some(pod)) => pod[pod.len().saturating_sub(SESSION_NAME_MAX)..].to_string(),
        (Some(ns), None) => ns[..ns.len().min(SESSION_NAME_MAX)].to_string(),
        (None, None) => String::new(),
    };
    // STS wants at least 2 characters.
    if name.len() < 2 {
        DEFAULT_SESSION_NAME.to_string()
    } else {
        name
    }
}

/// Primary region: config (`region` annotation), else `AWS_REGION`, else
/// `AWS_DEFAULT_REGION`, else the region of the first ARN.
fn primary_region(cfg: &AgentConfig, env: &Env) -> Result<String, Error> {
    cfg.region
        .as_deref()
        .filter(|r| !r.is_empty())
        .or_else(|| env.get("AWS_REGION"))
        .or_else(|| env.get("AWS_DEFAULT_REGION"))
        .or_else(|| cfg.secrets.iter().find_map(|s| s.source.region()))
        .map(str::to_string)
        .ok_or(Error::NoRegion)
}

/// PEM roots the agent trusts: compiled-in Mozilla roots, plus `SSL_CERT_FILE`
/// and `SECRETS_INJECTOR_CA_BUNDLE`. A bad extra bundle is an error, not ignored.
fn trust_store(env: &Env) -> Result<TrustStore, Error> {
    let mut store = TrustStore::empty().with_native_roots(false);
    for der in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
        store.add_pem_certificate(to_pem(der));
    }
    if let Some(path) = env.get("SSL_CERT_FILE") {
        let pem = std::fs::read(path)
            .map_err(|e| Error::TlsRoots(format!("SSL_CERT_FILE {path}: cannot read: {e}")))?;
        store.add_pem_certificate(checked_pem(&pem, &format!("SSL_CERT_FILE {path}"))?);
    }
    if let Some(text) = env.get(CA_BUNDLE_ENV) {
        store.add_pem_certificate(checked_pem(text.as_bytes(), CA_BUNDLE_ENV)?);
    }
    Ok(store)
}

/// Parse every certificate up front: the SDK panics on a bad one later.
fn checked_pem(pem: &[u8], origin: &str) -> Result<Vec<u8>, Error> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::TlsRoots(format!("{origin}: not a PEM certificate bundle: {e}")))?;
    if certs.is_empty() {
        return Err(Error::TlsRoots(format!(
            "{origin}: holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)"
        )));
    }
    let mut roots = rustls::RootCertStore::empty();
    for (i, cert) in certs.into_iter().enumerate() {
        roots.add(cert).map_err(|e| {
            Error::TlsRoots(format!("{origin}: certificate #{} is invalid: {e}", i + 1))
        })?;
    }
    Ok(pem.to_vec())
}

/// The SDK's trust store takes PEM only, so every start encodes the ~150
/// compiled-in roots (and the SDK decodes them again): one allocation each,
/// no per-line copies (BENCHMARKS.md, "cold start").
fn to_pem(der: &CertificateDer<'_>) -> Vec<u8> {
    use base64::Engine as _;
    const BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----\n";
    const END: &[u8] = b"-----END CERTIFICATE-----\n";
    let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
    let mut out = Vec::with_capacity(BEGIN.len() + b64.len() + b64.len() / 64 + 1 + END.len());
    out.extend_from_slice(BEGIN);
    for line in b64.as_bytes().chunks(64) {
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out.extend_from_slice(END);
    out
}

/// HTTPS client on rustls + ring with our roots, for every AWS call (services,
/// STS, the Pod Identity endpoint). Proxies come from `HTTPS_PROXY`,
/// `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY` (either case) in the process
/// environment, read by the SDK's own proxy support as other AWS SDKs do.
fn http_client(env: &Env) -> Result<SharedHttpClient, Error> {
    let ctx = TlsContext::builder()
        .with_trust_store(trust_store(env)?)
        .build()
        .map_err(|e| Error::TlsRoots(e.to_string()))?;
    Ok(
        aws_smithy_http_client::Builder::new().build_with_connector_fn(
            move |settings, components| {
                let mut builder = aws_smithy_http_client::Connector::builder()
                    .proxy_config(ProxyConfig::from_env());
                builder.set_connector_settings(settings.cloned());
                builder.set_sleep_impl(components.and_then(|c| c.sleep_impl()));
                builder
                    .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
                    .tls_context(ctx.clone())
                    .build()
            },
        ),
    )
}

/// Endpoint overrides per service, as every AWS SDK resolves them from the
/// environment: `AWS_ENDPOINT_URL_<SERVICE>`, else `AWS_ENDPOINT_URL`, none
/// with `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct ServiceEndpoints {
    secrets_manager: Option<String>,
    ssm: Option<String>,
    sts: Option<String>,
}

impl ServiceEndpoints {
    fn from_env(env: &Env) -> ServiceEndpoints {
        let ignored = env
            .get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
        let url = |service: &str| {
            let specific = format!("AWS_ENDPOINT_URL_{service}");
            env.get(&specific)
                .or_else(|| env.get("AWS_ENDPOINT_URL"))
                .filter(|_| !ignored)
                .map(str::to_string)
        };
        ServiceEndpoints {
            secrets_manager: url("SECRETS_MANAGER"),
            ssm: url("SSM"),
            sts: url("STS"),
        }
    }
}

/// `sdk` with `endpoint` (when set) for the clients built from it.
fn with_endpoint(sdk: &SdkConfig, endpoint: Option<&String>) -> SdkConfig {
    match endpoint {
        Some(url) => sdk.to_builder().endpoint_url(url).build(),
        None => sdk.clone(),
    }
}

/// Regional clients over one credentials chain, built on first use per region.
#[derive(Debug, Clone)]
pub struct Clients {
    sdk: SdkConfig,
    /// Region used when a reference carries no ARN region.
    pub region: String,
    /// Region tried on 5xx/connect errors in the primary.
    pub failover_region: Option<String>,
    /// The identity in use, for logs and error hints.
    pub identity: Identity,
    endpoints: ServiceEndpoints,
    sm: Arc<Mutex<HashMap<String, aws_sdk_secretsmanager::Client>>>,
    ssm: Arc<Mutex<HashMap<String, aws_sdk_ssm::Client>>>,
}

impl Clients {
    /// Clients built elsewhere (e.g. `aws-smithy-mocks`), used for `region` and the failover region.
    pub fn from_parts(
        region: &str,
        failover_region: Option<&str>,
        sm: aws_sdk_secretsmanager::Client,
        ssm: aws_sdk_ssm::Client,
    ) -> Clients {
        let regions = std::iter::once(region).chain(failover_region);
        Clients {
            sdk: SdkConfig::builder().build(),
            region: region.to_string(),
            failover_region: failover_region.map(str::to_string),
            identity: Identity::Static,
            endpoints: ServiceEndpoints::default(),
            sm: Arc::new(Mutex::new(
                regions
                    .clone()
                    .map(|r| (r.to_string(), sm.clone()))
                    .collect(),
            )),
            ssm: Arc::new(Mutex::new(
                regions.map(|r| (r.to_string(), ssm.clone())).collect(),
            )),
        }
    }

    pub(crate) fn secrets_manager(&self, region: &str) -> aws_sdk_secretsmanager::Client {
        cached(&self.sm, region, || {
            let sdk = self.regional(region, self.endpoints.secrets_manager.as_ref());
            aws_sdk_secretsmanager::Client::new(&sdk)
        })
    }

    pub(crate) fn ssm(&self, region: &str) -> aws_sdk_ssm::Client {
        cached(&self.ssm, region, || {
            aws_sdk_ssm::Client::new(&self.regional(region, self.endpoints.ssm.as_ref()))
        })
    }

    /// The shared config in `region`, with the service's endpoint override.
    fn regional(&self, region: &str, endpoint: Option<&String>) -> SdkConfig {
        with_endpoint(&self.sdk, endpoint)
            .to_builder()
            .region(Region::new(region.to_string()))
            .build()
    }
}

/// The client of `region` in `map`, built on first use.
fn cached<C: Clone>(map: &Mutex<HashMap<String, C>>, region: &str, build: impl FnOnce() -> C) -> C {
    let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
    map.entry(region.to_string()).or_insert_with(build).clone()
}

/// Clients from the process environment.
pub async fn clients(cfg: &AgentConfig) -> Result<Clients, Error> {
    clients_with(cfg, &Env::from_process()).await
}

/// Clients from `env`, endpoint overrides included ([`ServiceEndpoints`]).
/// The SDK still reads `AWS_USE_FIPS_ENDPOINT`, proxies and the Pod Identity
/// variables from the process environment.
pub async fn clients_with(cfg: &AgentConfig, env: &Env) -> Result<Clients, Error> {
    let identity = identity(env, cfg.allow_node_role)?;
    let region = primary_region(cfg, env)?;
    let http = http_client(env)?;
    if env.get("AWS_MAX_ATTEMPTS").is_some() || env.get("AWS_RETRY_MODE").is_some() {
        tracing::warn!(
            "AWS_MAX_ATTEMPTS/AWS_RETRY_MODE are ignored: the agent retries on its own \
             until the startup timeout"
        );
    }
    let session = session_name(env.get(POD_NAMESPACE_ENV), env.get(POD_NAME_ENV));
    // Credentials providers need the HTTP client too: the SDK has no default one here.
    let provider_cfg = aws_config::provider_config::ProviderConfig::without_region()
        .with_http_client(http.clone())
        .with_sleep_impl(aws_smithy_async::rt::sleep::TokioSleep::new())
        .with_region(Some(Region::new(region.clone())));
    let loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.clone()))
        .http_client(http)
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .build(),
        );
    // Per service, not on the loader: an endpoint set there would beat
    // `AWS_ENDPOINT_URL_<SERVICE>` for every service.
    let endpoints = ServiceEndpoints::from_env(env);
    // STS calls need no credentials; this config is the base of every provider.
    let anon = loader.no_credentials().load().await;
    let base = base_provider(&identity, env, &anon, &endpoints, &provider_cfg, &session);
    let creds = match &cfg.role_arn {
        Some(role) => {
            let with_base = anon.to_builder().credentials_provider(base.clone()).build();
            SharedCredentialsProvider::new(
                aws_config::sts::AssumeRoleProvider::builder(role.clone())
                    .session_name(session)
                    .configure(&with_endpoint(&with_base, endpoints.sts.as_ref()))
                    .build_from_provider(base)
                    .await,
            )
        }
        None => base,
    };
    let sdk = anon.to_builder().credentials_provider(creds).build();
    Ok(Clients {
        sdk,
        region,
        failover_region: cfg.failover_region.clone().filter(|r| !r.is_empty()),
        identity,
        endpoints,
        sm: Arc::default(),
        ssm: Arc::default(),
    })
}

/// The identity's own credentials provider, before any `role-arn` chaining.
fn base_provider(
    identity: &Identity,
    env: &Env,
    anon: &SdkConfig,
    endpoints: &ServiceEndpoints,
    provider_cfg: &aws_config::provider_config::ProviderConfig,
    session: &str,
) -> SharedCredentialsProvider {
    match identity {
        Identity::Static => SharedCredentialsProvider::new(Credentials::new(
            env.get("AWS_ACCESS_KEY_ID").unwrap_or_default(),
            env.get("AWS_SECRET_ACCESS_KEY").unwrap_or_default(),
            env.get("AWS_SESSION_TOKEN").map(str::to_string),
            None,
            "Environment",
        )),
        Identity::WebIdentity {
            role_arn,
            token_file,
        } => SharedCredentialsProvider::new(WebIdentity {
            sts: aws_sdk_sts::Client::new(&with_endpoint(anon, endpoints.sts.as_ref())),
            role_arn: role_arn.clone(),
            token_file: token_file.clone(),
            session_name: session.to_string(),
        }),
        Identity::PodIdentity => SharedCredentialsProvider::new(
            aws_config::ecs::EcsCredentialsProvider::builder()
                .configure(provider_cfg)
                .connect_timeout(CONNECT_TIMEOUT)
                .read_timeout(ATTEMPT_TIMEOUT)
                .build(),
        ),
        Identity::NodeRole => SharedCredentialsProvider::new(
            aws_config::imds::credentials::ImdsCredentialsProvider::builder()
                .configure(provider_cfg)
                .build(),
        ),
    }
}

/// IRSA with the token file read by us: the SDK sends a trailing newline
/// verbatim, which STS rejects; the file is re-read on every refresh (rotation).
#[derive(Debug)]
struct WebIdentity {
    sts: aws_sdk_sts::Client,
    role_arn: String,
    token_file: PathBuf,
    session_name: String,
}

impl WebIdentity {
    async fn load(&self) -> Result<Credentials, CredentialsError> {
        let token = tokio::fs::read_to_string(&self.token_file)
            .await
            .map_err(|e| {
                CredentialsError::invalid_configuration(format!(
                    "AWS_WEB_IDENTITY_TOKEN_FILE {}: {e} (is the projected token volume mounted?)",
                    self.token_file.display()
                ))
            })?;
        let out = self
            .sts
            .assume_role_with_web_identity()
            .role_arn(&self.role_arn)
            .role_session_name(&self.session_name)
            .web_identity_token(token.trim())
            .send()
            .await
            .map_err(CredentialsError::provider_error)?;
        let c = out.credentials.ok_or_else(|| {
            CredentialsError::unhandled("STS AssumeRoleWithWebIdentity returned no credentials")
        })?;
        let expiry = std::time::SystemTime::try_from(c.expiration).ok();
        Ok(Credentials::new(
            c.access_key_id,
            c.secret_access_key,
            Some(c.session_token),
            expiry,
            "WebIdentityToken",
        ))
    }
}

impl ProvideCredentials for WebIdentity {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(self.load())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrets_injector_shared::{SecretRef, SecretSpec};

    #[test]
    fn static_keys_win() {
        let env = Env::from_pairs([
            ("AWS_ACCESS_KEY_ID", "a"),
            ("AWS_SECRET_ACCESS_KEY", "b"),
            ("AWS_ROLE_ARN", "arn:aws:iam::1:role/r"),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", "/t"),
        ]);
        assert_eq!(identity(&env, false).unwrap(), Identity::Static);
    }

    #[test]
    fn irsa_then_pod_identity() {
        let env = Env::from_pairs([
            ("AWS_ROLE_ARN", "arn:aws:iam::1:role/r"),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", "/t"),
            (
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "http://169.254.170.23/v1",
            ),
        ]);
        assert!(matches!(
            identity(&env, false).unwrap(),
            Identity::WebIdentity { .. }
        ));
        let env = Env::from_pairs([(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "http://169.254.170.23/v1",
        )]);
        assert_eq!(identity(&env, false).unwrap(), Identity::PodIdentity);
    }

    #[test]
    fn no_identity_names_the_setups_and_the_opt_in() {
        let err = identity(&Env::default(), false).unwrap_err().to_string();
        for needle in [
            "no pod identity",
            "AWS_ROLE_ARN",
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "Pod Identity",
            "secrets-injector.io/allow-node-role",
        ] {
            assert!(err.contains(needle), "{needle} missing in {err}");
        }
        assert_eq!(identity(&Env::default(), true).unwrap(), Identity::NodeRole);
    }

    #[test]
    fn half_irsa_is_an_error_not_a_fallback() {
        let env = Env::from_pairs([("AWS_ROLE_ARN", "arn:aws:iam::1:role/r")]);
        let err = identity(&env, true).unwrap_err().to_string();
        assert!(err.contains("AWS_WEB_IDENTITY_TOKEN_FILE"), "{err}");
    }

    #[test]
    fn session_names_are_valid_for_sts_and_keep_the_pod() {
        assert_eq!(
            session_name(Some("shop"), Some("web-7d9f-x2k4q")),
            "shop.web-7d9f-x2k4q"
        );
        assert_eq!(session_name(None, None), "secrets-injector-agent");
        assert_eq!(session_name(None, Some("")), "secrets-injector-agent");
        assert_eq!(session_name(None, Some("x")), "secrets-injector-agent");
        assert_eq!(session_name(None, Some("web-1")), "web-1");
        assert_eq!(session_name(Some("shop"), None), "shop");
        // Only [\w+=,.@-] survive.
        assert_eq!(
            session_name(Some("ns"), Some("a b/c:d\u{e9}")),
            "ns.a-b-c-d-"
        );
        // Too long: the namespace gives way, the pod's tail (its unique suffix) stays.
        let ns = "n".repeat(63);
        let pod = format!("{}-abcde", "p".repeat(40));
        let name = session_name(Some(&ns), Some(&pod));
        assert_eq!(name.len(), 64, "{name}");
        assert!(name.ends_with(&format!(".{pod}")), "{name}");
        let long_pod = format!("{}-zyxwv", "p".repeat(100));
        let name = session_name(Some(&ns), Some(&long_pod));
        assert_eq!(name.len(), 64, "{name}");
        assert!(name.ends_with("-zyxwv"), "{name}");
        for name in [
            session_name(Some(&ns), Some(&long_pod)),
            session_name(Some(&"é".repeat(80)), None),
        ] {
            assert!(name.len() <= 64 && name.len() >= 2, "{name}");
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)),
                "{name}"
            );
        }
    }

    #[test]
    fn service_endpoints_win_over_the_generic_one() {
        let env = Env::from_pairs([
            ("AWS_ENDPOINT_URL", "http://generic"),
            ("AWS_ENDPOINT_URL_SSM", "http://ssm"),
            ("AWS_ENDPOINT_URL_STS", "http://sts"),
        ]);
        let e = ServiceEndpoints::from_env(&env);
        assert_eq!(e.secrets_manager.as_deref(), Some("http://generic"));
        assert_eq!(e.ssm.as_deref(), Some("http://ssm"));
        assert_eq!(e.sts.as_deref(), Some("http://sts"));
        let env = Env::from_pairs([
            ("AWS_ENDPOINT_URL_SECRETS_MANAGER", "http://sm"),
            ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true"),
        ]);
        assert_eq!(
            ServiceEndpoints::from_env(&env),
            ServiceEndpoints::default()
        );
    }

    #[test]
    fn region_order() {
        let mut cfg = AgentConfig::default();
        let env = Env::from_pairs([("AWS_REGION", "eu-west-1"), ("AWS_DEFAULT_REGION", "x")]);
        assert_eq!(primary_region(&cfg, &env).unwrap(), "eu-west-1");
        let env2 = Env::from_pairs([("AWS_DEFAULT_REGION", "eu-north-1")]);
        assert_eq!(primary_region(&cfg, &env2).unwrap(), "eu-north-1");
        cfg.region = Some("us-west-2".into());
        assert_eq!(primary_region(&cfg, &env).unwrap(), "us-west-2");
        cfg.region = None;
        assert!(matches!(
            primary_region(&cfg, &Env::default()),
            Err(Error::NoRegion)
        ));
        cfg.secrets.push(SecretSpec::new(
            SecretRef::parse("arn:aws:secretsmanager:ap-south-1:123456789012:secret:x-AbCdEf")
                .unwrap(),
            "x",
        ));
        assert_eq!(primary_region(&cfg, &Env::default()).unwrap(), "ap-south-1");
    }

    #[test]
    fn bad_extra_roots_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.pem");
        let env = Env::from_pairs([("SSL_CERT_FILE", missing.to_str().unwrap())]);
        let err = trust_store(&env).unwrap_err().to_string();
        assert!(
            err.contains("SSL_CERT_FILE") && err.contains("cannot read"),
            "{err}"
        );

        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate\n").unwrap();
        let env = Env::from_pairs([("SSL_CERT_FILE", junk.to_str().unwrap())]);
        let err = trust_store(&env).unwrap_err().to_string();
        assert!(err.contains("holds no PEM certificate"), "{err}");

        let broken = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let env = Env::from_pairs([(CA_BUNDLE_ENV, broken)]);
        let err = trust_store(&env).unwrap_err().to_string();
        assert!(
            err.contains(CA_BUNDLE_ENV) && err.contains("invalid"),
            "{err}"
        );
    }

    #[test]
    fn compiled_roots_are_valid_pem() {
        for der in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
            let pem = to_pem(der);
            assert!(checked_pem(&pem, "test").is_ok());
            let back = CertificateDer::from_pem_slice(&pem).expect("one certificate");
            assert_eq!(back.as_ref(), der.as_ref(), "PEM round trip");
            let text = String::from_utf8(pem).expect("ASCII");
            assert!(text.lines().all(|l| l.len() <= 64), "lines of at most 64");
        }
        assert!(trust_store(&Env::default()).is_ok());
    }
}
