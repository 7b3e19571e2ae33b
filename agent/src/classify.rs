//! The one place that decides what an AWS error means for the agent: its
//! [`FailureKind`] (retry, skip, fail), whether it warrants the failover
//! region, and what a person should do about it.

use aws_credential_types::provider::error::CredentialsError;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::failure::FailureKind;

/// An AWS error reduced to what the agent acts on. Never holds a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Classified {
    /// AWS error code or a local one (`NetworkError`, `Timeout`, `NoCredentials`, …).
    pub code: String,
    pub message: String,
    pub kind: FailureKind,
    /// The primary region looks unavailable: try the failover region (ASCP behaviour).
    pub failover: bool,
}

impl Classified {
    /// A failure found by the agent itself (empty answer, missing entry), of `code`'s kind.
    pub fn local(code: &str, message: impl Into<String>) -> Classified {
        Classified {
            kind: kind_of(code, None),
            code: code.into(),
            message: message.into(),
            failover: false,
        }
    }

    /// AWS itself refused `BatchGetSecretValue`: use `GetSecretValue` from now on.
    /// A bare 401/403 (maybe a proxy) does not count.
    pub fn denies_batch_calls(&self) -> bool {
        self.code.starts_with("AccessDenied")
    }

    /// One bad SSM version or label fails a whole `GetParameters` call.
    pub fn is_bad_parameter_version(&self) -> bool {
        self.code.starts_with("ParameterVersion")
    }
}

/// Codes that are retried: throttling, server faults, expired credentials.
const TRANSIENT_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "ThrottledException",
    "InternalServiceError",
    "InternalServiceErrorException",
    "InternalFailure",
    "InternalServerError",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "RequestTimeout",
    "RequestTimeoutException",
    "ExpiredTokenException",
    "ExpiredToken",
    // Local codes (network, timeouts, credentials that could not be fetched yet).
    "NetworkError",
    "Timeout",
    "CredentialsExpired",
    "CredentialsUnavailable",
];

/// Codes that mean "this secret, parameter or version does not exist".
const NOT_FOUND_CODES: &[&str] = &[
    "ResourceNotFoundException",
    "ParameterNotFound",
    "ParameterVersionNotFound",
    "InvalidParameters",
];

/// Codes that mean "this identity may not read it".
const DENIED_CODES: &[&str] = &[
    "KMSAccessDeniedException",
    "CredentialsDenied",
    "HTTP401",
    "HTTP403",
];

/// Code of a TLS certificate the agent does not trust.
const UNTRUSTED_CERTIFICATE: &str = "UntrustedCertificate";

/// The kind of an AWS or local error code (with the HTTP status when known);
/// pure, so the table is unit-tested.
pub(crate) fn kind_of(code: &str, status: Option<u16>) -> FailureKind {
    if TRANSIENT_CODES.contains(&code) || status.is_some_and(|s| s >= 500) {
        FailureKind::Transient
    } else if NOT_FOUND_CODES.contains(&code) {
        FailureKind::NotFound
    } else if code.starts_with("AccessDenied") || DENIED_CODES.contains(&code) {
        FailureKind::Denied
    } else if code == UNTRUSTED_CERTIFICATE {
        FailureKind::Trust
    } else {
        FailureKind::Permanent
    }
}

/// Classify any SDK error of Secrets Manager, SSM or STS.
pub(crate) fn classify<E>(err: &SdkError<E, HttpResponse>) -> Classified
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    // Before credentials: STS over an untrusted TLS endpoint fails inside the provider.
    if let Some(c) = untrusted_certificate(err) {
        return c;
    }
    if let Some(c) = credentials_error(err) {
        return c;
    }
    let with = |code: String, message: String, kind: FailureKind, failover: bool| Classified {
        code,
        message,
        kind,
        failover,
    };
    match err {
        SdkError::ServiceError(se) => {
            let status = se.raw().status().as_u16();
            let (code, message) = match se.err().code() {
                Some(code) => (
                    code.to_string(),
                    se.err().message().unwrap_or_default().to_string(),
                ),
                None => uncoded(status, se.raw().body().bytes().unwrap_or_default()),
            };
            with(
                code.clone(),
                message,
                kind_of(&code, Some(status)),
                status >= 500,
            )
        }
        SdkError::TimeoutError(_) => with(
            "Timeout".into(),
            "no answer from AWS in time".into(),
            FailureKind::Transient,
            true,
        ),
        SdkError::DispatchFailure(d) => with(
            if d.is_timeout() {
                "Timeout"
            } else {
                "NetworkError"
            }
            .into(),
            chain_summary(err),
            FailureKind::Transient,
            !d.is_user(),
        ),
        SdkError::ResponseError(r) => {
            let status = r.raw().status().as_u16();
            with(
                format!("HTTP{status}"),
                "unreadable response from AWS".into(),
                FailureKind::Transient,
                status >= 500 || status == 0,
            )
        }
        _ => with(
            "RequestFailed".into(),
            chain_summary(err),
            FailureKind::Permanent,
            false,
        ),
    }
}

/// The TLS handshake refused the endpoint's certificate (unknown issuer,
/// wrong name, expired): retrying cannot fix it, a CA bundle can.
fn untrusted_certificate(err: &(dyn std::error::Error + 'static)) -> Option<Classified> {
    let mut pending: Vec<&(dyn std::error::Error + 'static)> = vec![err];
    // Bounded: error chains are short, this only guards against a cycle.
    for _ in 0..64 {
        let e = pending.pop()?;
        if let Some(rustls::Error::InvalidCertificate(reason)) = e.downcast_ref::<rustls::Error>() {
            return Some(Classified {
                code: UNTRUSTED_CERTIFICATE.into(),
                message: format!("the endpoint's TLS certificate is not trusted: {reason:?}"),
                kind: FailureKind::Trust,
                failover: false,
            });
        }
        pending.extend(e.source());
        // `io::Error::source` skips the error it wraps, where tokio-rustls puts rustls's.
        if let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            pending.push(inner);
        }
    }
    None
}

/// An error answer the SDK could not decode (no `__type`/`x-amzn-errortype`):
/// a query-protocol XML body (some emulators and gateways answer JSON APIs
/// that way) still carries `<Code>` and `<Message>`; otherwise the HTTP
/// status is all there is, and 401/403 mean the identity was refused.
fn uncoded(status: u16, body: &[u8]) -> (String, String) {
    let text = String::from_utf8_lossy(body);
    let element = |name: &str| {
        let open = format!("<{name}>");
        let start = text.find(&open)? + open.len();
        let len = text[start..].find(&format!("</{name}>"))?;
        Some(text[start..start + len].trim().to_string())
    };
    if let Some(code) = element("Code").filter(|c| !c.is_empty() && c.len() <= 128) {
        let mut message = element("Message").unwrap_or_default();
        if message.len() > 512 {
            let mut end = 512;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
        }
        return (code, message);
    }
    // A bare 401/403 may come from a proxy, so it keeps its own code: it gets
    // the access hint but never switches off BatchGetSecretValue for good.
    let message = match status {
        401 | 403 => format!(
            "HTTP {status} without an AWS error code: access refused by AWS or a proxy in between"
        ),
        _ => format!("HTTP {status} without an AWS error code"),
    };
    (format!("HTTP{status}"), message)
}

/// Longest error-chain summary: with a hint it stays one readable line.
const MAX_CHAIN: usize = 240;

/// An error chain on one short line, root cause first:
/// `Connection refused (os error 111) (via dispatch failure: io error: …)`.
/// Display texts only: `DisplayErrorContext` appends a ~500-byte debug dump.
pub(crate) fn chain_summary(err: &(dyn std::error::Error + 'static)) -> String {
    let mut segments: Vec<String> = Vec::new();
    let mut cur = Some(err);
    // Bounded: error chains are short, this only guards against a cycle.
    for _ in 0..16 {
        let Some(e) = cur else { break };
        let text = e
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        if !text.is_empty() && !segments.iter().any(|s| s.contains(&text)) {
            segments.push(text);
        }
        cur = e.source();
    }
    let root = segments.pop().unwrap_or_default();
    let line = if segments.is_empty() {
        root
    } else {
        format!("{root} (via {})", segments.join(": "))
    };
    crate::termination::cut(&line, MAX_CHAIN)
}

/// Credentials that could not be loaded surface deep in the error chain.
fn credentials_error(err: &(dyn std::error::Error + 'static)) -> Option<Classified> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(c) = e.downcast_ref::<CredentialsError>() {
            // Matched on the full text (debug parts included); reported compact.
            let full = DisplayErrorContext(c).to_string();
            let message = chain_summary(c);
            let denied = ["AccessDenied", "InvalidIdentityToken"]
                .iter()
                .any(|k| full.contains(k));
            // An expired projected token is replaced by the kubelet: retry.
            let expired = full.contains("ExpiredToken");
            let code = match c {
                CredentialsError::CredentialsNotLoaded(_) => "NoCredentials",
                CredentialsError::InvalidConfiguration(_) => "InvalidCredentialsConfig",
                _ if expired => "CredentialsExpired",
                _ if denied => "CredentialsDenied",
                _ => "CredentialsUnavailable",
            };
            return Some(Classified {
                kind: kind_of(code, None),
                code: code.into(),
                message,
                failover: false,
            });
        }
        cur = e.source();
    }
    None
}

/// A hint a person can act on, for the IAM `action` on `resource` in `region`.
pub(crate) fn hint(code: &str, action: &str, resource: &str, region: &str) -> Option<String> {
    let h = match code {
        c if c.starts_with("AccessDenied") => format!(
            "the pod's IAM role needs {action} on {resource} (check its policy, \
             permission boundary and the secret's resource policy)"
        ),
        "HTTP401" | "HTTP403" => format!(
            "the pod's IAM role may lack {action} on {resource}, or a proxy or VPC \
             endpoint policy refused the call"
        ),
        "ResourceNotFoundException" | "ParameterNotFound" | "ParameterVersionNotFound" => {
            format!("check the name and that it exists in region {region}")
        }
        "ParameterVersionLabelLimitExceeded" | "InvalidParameters" => {
            format!("check the name, version or label of {resource} in region {region}")
        }
        "DecryptionFailure" | "KMSAccessDeniedException" | "KMSDisabledException" => {
            format!("the pod's IAM role needs kms:Decrypt on the KMS key that encrypts {resource}")
        }
        "NoCredentials"
        | "InvalidCredentialsConfig"
        | "CredentialsDenied"
        | "CredentialsUnavailable" => "check the pod identity: IRSA (ServiceAccount annotation \
             eks.amazonaws.com/role-arn and the role's trust policy) or an EKS Pod Identity \
             association for the pod's ServiceAccount"
            .into(),
        "ExpiredTokenException" | "ExpiredToken" | "CredentialsExpired" => {
            "the credentials expired; they are refreshed on the next attempt".into()
        }
        UNTRUSTED_CERTIFICATE => "a proxy or VPC endpoint with a private CA? Add that CA: chart \
             value agent.caBundle.pem or agent.caBundle.configMapRef (env \
             SECRETS_INJECTOR_CA_BUNDLE), or SSL_CERT_FILE in the agent's env"
            .into(),
        "NetworkError" | "Timeout" => format!(
            "check that the pod can reach the {} endpoint of {region} \
             (NetworkPolicy, VPC endpoint, proxy, AWS_ENDPOINT_URL*)",
            action.split(':').next().unwrap_or("AWS")
        ),
        "InvalidRequestException" | "InvalidParameterException" => {
            format!("AWS rejected the request for {resource}; check the reference and version")
        }
        c if kind_of(c, None).is_transient() => {
            format!("AWS is throttling or failing in {region}; the agent retries")
        }
        _ => return None,
    };
    Some(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error with a fixed text and an optional cause.
    #[derive(Debug)]
    struct Link(&'static str, Option<Box<Link>>);

    impl std::fmt::Display for Link {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Link {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|l| l as _)
        }
    }

    fn chain(texts: &[&'static str]) -> Link {
        texts
            .iter()
            .rev()
            .fold(None, |cause, t| Some(Link(t, cause.map(Box::new))))
            .expect("at least one link")
    }

    #[test]
    fn chain_summary_puts_the_root_first_and_drops_empty_and_repeated_links() {
        for (links, want) in [
            (&["refused"][..], "refused"),
            (
                &["dispatch failure", "io error", "refused"][..],
                "refused (via dispatch failure: io error)",
            ),
            // An empty text and a text already contained in an earlier one add nothing.
            (
                &["", "io error: refused", "refused"][..],
                "io error: refused",
            ),
            (
                &["dispatch  failure\n", "", "refused"][..],
                "refused (via dispatch failure)",
            ),
            (&[""][..], ""),
        ] {
            assert_eq!(chain_summary(&chain(links)), want, "{links:?}");
        }
    }

    #[test]
    fn kind_table() {
        use FailureKind::*;
        for (code, kind) in [
            ("ThrottlingException", Transient),
            ("TooManyRequestsException", Transient),
            ("RequestLimitExceeded", Transient),
            ("InternalServiceError", Transient),
            ("ExpiredTokenException", Transient),
            ("AccessDeniedException", Denied),
            ("AccessDenied", Denied),
            ("KMSAccessDeniedException", Denied),
            ("HTTP403", Denied),
            ("ResourceNotFoundException", NotFound),
            ("ParameterNotFound", NotFound),
            ("ParameterVersionNotFound", NotFound),
            ("DecryptionFailure", Permanent),
            ("InvalidRequestException", Permanent),
            ("InvalidParameterException", Permanent),
            ("UntrustedCertificate", Trust),
        ] {
            assert_eq!(kind_of(code, Some(400)), kind, "{code}");
        }
        assert_eq!(kind_of("Whatever", Some(503)), Transient);
    }

    #[test]
    fn an_untrusted_certificate_deep_in_an_io_error_is_a_trust_failure() {
        let tls = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, tls);
        let outer = std::io::Error::other(io);
        let c = untrusted_certificate(&outer).unwrap();
        assert_eq!(
            (c.code.as_str(), c.kind),
            ("UntrustedCertificate", FailureKind::Trust)
        );
        assert!(c.message.contains("UnknownIssuer"), "{c:?}");
        let h = hint(&c.code, "secretsmanager:GetSecretValue", "x", "r").unwrap();
        assert!(
            h.contains("SSL_CERT_FILE") && h.contains("agent.caBundle"),
            "{h}"
        );
        assert!(untrusted_certificate(&std::io::Error::other("reset")).is_none());
    }

    #[test]
    fn credential_errors_expired_is_retried_denied_is_not() {
        let err = |m: &str| CredentialsError::provider_error(std::io::Error::other(m.to_string()));
        let c = credentials_error(&err("ExpiredTokenException: Token expired")).unwrap();
        assert_eq!(
            (c.code.as_str(), c.kind),
            ("CredentialsExpired", FailureKind::Transient)
        );
        let c = credentials_error(&err("AccessDenied: not authorized to assume")).unwrap();
        assert_eq!(
            (c.code.as_str(), c.kind),
            ("CredentialsDenied", FailureKind::Denied)
        );
        let c = credentials_error(&err("connection reset")).unwrap();
        assert_eq!(
            (c.code.as_str(), c.kind),
            ("CredentialsUnavailable", FailureKind::Transient)
        );
        let c = credentials_error(&CredentialsError::not_loaded("no identity")).unwrap();
        assert_eq!(
            (c.code.as_str(), c.kind),
            ("NoCredentials", FailureKind::Permanent)
        );
        assert!(credentials_error(&std::io::Error::other("unrelated")).is_none());
    }

    #[test]
    fn network_errors_are_one_short_line_root_cause_first() {
        use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;
        use aws_smithy_runtime_api::client::result::ConnectorError;
        let refused = std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "tcp connect error: Connection refused (os error 111)",
        );
        let err: SdkError<GetSecretValueError, HttpResponse> =
            SdkError::dispatch_failure(ConnectorError::io(Box::new(refused)));
        // What the message was before: the display chain plus a debug dump.
        assert!(
            DisplayErrorContext(&err)
                .to_string()
                .contains("DispatchFailure(")
        );
        let c = classify(&err);
        assert_eq!(
            (c.code.as_str(), c.kind),
            ("NetworkError", FailureKind::Transient)
        );
        assert_eq!(
            c.message,
            "tcp connect error: Connection refused (os error 111) (via dispatch failure: io error)"
        );
        let long = std::io::Error::other("x".repeat(2000));
        let err: SdkError<GetSecretValueError, HttpResponse> =
            SdkError::dispatch_failure(ConnectorError::io(Box::new(long)));
        assert!(classify(&err).message.len() <= MAX_CHAIN);
    }

    #[test]
    fn undecoded_error_bodies_still_name_the_error() {
        let xml = br#"<?xml version="1.0"?><ErrorResponse><Errors><Error><Code>AccessDenied</Code><Message>User: arn:aws:iam::1:user/u is not authorized to perform: secretsmanager:GetSecretValue</Message></Error></Errors></ErrorResponse>"#;
        let (code, message) = uncoded(403, xml);
        assert_eq!(code, "AccessDenied");
        assert!(message.contains("not authorized"), "{message}");

        let (code, message) = uncoded(403, b"<html>Forbidden by proxy</html>");
        assert_eq!(code, "HTTP403");
        assert!(message.contains("access refused"), "{message}");
        let h = hint(&code, "secretsmanager:BatchGetSecretValue", "x", "r").unwrap();
        assert!(h.contains("proxy"), "{h}");

        let (code, message) = uncoded(418, b"");
        assert_eq!(code, "HTTP418");
        assert!(message.contains("418"), "{message}");

        let long = format!("<Code>X</Code><Message>{}</Message>", "é".repeat(600));
        let (code, message) = uncoded(400, long.as_bytes());
        assert_eq!(code, "X");
        assert!(message.len() <= 512);
    }

    #[test]
    fn hints_name_what_to_fix() {
        let h = hint(
            "AccessDeniedException",
            "secretsmanager:GetSecretValue",
            "arn:aws:secretsmanager:eu-west-1:1:secret:x",
            "eu-west-1",
        )
        .unwrap();
        assert!(
            h.contains("secretsmanager:GetSecretValue on arn:aws:secretsmanager"),
            "{h}"
        );
        let h = hint(
            "DecryptionFailure",
            "secretsmanager:GetSecretValue",
            "x",
            "r",
        )
        .unwrap();
        assert!(h.contains("kms:Decrypt"), "{h}");
        let h = hint("ParameterNotFound", "ssm:GetParameters", "/a", "eu-west-1").unwrap();
        assert!(h.contains("eu-west-1"), "{h}");
        let h = hint("NoCredentials", "ssm:GetParameters", "/a", "r").unwrap();
        assert!(h.contains("IRSA") && h.contains("Pod Identity"), "{h}");
        assert!(hint("SomethingElse", "a", "b", "c").is_none());
    }

    use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;
    use aws_smithy_runtime_api::client::result::ConnectorError;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    type Sdk = SdkError<GetSecretValueError, HttpResponse>;

    fn raw(status: u16, body: &str) -> HttpResponse {
        HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::from(body))
    }

    fn service(code: Option<&str>, status: u16, body: &str) -> Sdk {
        let mut meta = ErrorMetadata::builder().message("the message");
        if let Some(code) = code {
            meta = meta.code(code);
        }
        SdkError::service_error(
            GetSecretValueError::generic(meta.build()),
            raw(status, body),
        )
    }

    /// (code, kind, failover) of a classified error.
    fn summary(c: &Classified) -> (&str, FailureKind, bool) {
        (c.code.as_str(), c.kind, c.failover)
    }

    #[test]
    fn local_failures_take_their_codes_kind_and_never_fail_over() {
        let c = Classified::local("ResourceNotFoundException", "no such secret");
        assert_eq!(
            c,
            Classified {
                code: "ResourceNotFoundException".into(),
                message: "no such secret".into(),
                kind: FailureKind::NotFound,
                failover: false,
            }
        );
        assert_eq!(
            Classified::local("Timeout", "").kind,
            FailureKind::Transient
        );
    }

    #[test]
    fn only_aws_access_denied_switches_off_batch_calls() {
        for (code, denies) in [
            ("AccessDeniedException", true),
            ("AccessDenied", true),
            ("HTTP403", false),
            ("KMSAccessDeniedException", false),
            ("ResourceNotFoundException", false),
        ] {
            assert_eq!(
                Classified::local(code, "").denies_batch_calls(),
                denies,
                "{code}"
            );
        }
    }

    #[test]
    fn bad_parameter_versions_are_recognised() {
        for (code, bad) in [
            ("ParameterVersionNotFound", true),
            ("ParameterVersionLabelLimitExceeded", true),
            ("ParameterNotFound", false),
            ("InvalidParameters", false),
        ] {
            assert_eq!(
                Classified::local(code, "").is_bad_parameter_version(),
                bad,
                "{code}"
            );
        }
    }

    #[test]
    fn kinds_by_status_and_local_codes() {
        use FailureKind::*;
        assert_eq!(kind_of("Whatever", Some(500)), Transient);
        assert_eq!(kind_of("Whatever", Some(499)), Permanent);
        assert_eq!(kind_of("Whatever", None), Permanent);
        assert_eq!(
            kind_of("AccessDeniedException", Some(500)),
            Transient,
            "5xx first"
        );
        for (code, kind) in [
            ("NetworkError", Transient),
            ("CredentialsUnavailable", Transient),
            ("InvalidParameters", NotFound),
            ("AccessDeniedAnything", Denied),
            ("CredentialsDenied", Denied),
            ("HTTP401", Denied),
            ("NoCredentials", Permanent),
            ("UntrustedCertificate", Trust),
        ] {
            assert_eq!(kind_of(code, None), kind, "{code}");
        }
    }

    #[test]
    fn service_errors_keep_their_code_and_fail_over_on_5xx() {
        for (code, status, want) in [
            (
                "ThrottlingException",
                400,
                ("ThrottlingException", FailureKind::Transient, false),
            ),
            (
                "AccessDeniedException",
                400,
                ("AccessDeniedException", FailureKind::Denied, false),
            ),
            (
                "InternalServiceError",
                499,
                ("InternalServiceError", FailureKind::Transient, false),
            ),
            ("Oops", 500, ("Oops", FailureKind::Transient, true)),
            ("Oops", 503, ("Oops", FailureKind::Transient, true)),
        ] {
            let c = classify(&service(Some(code), status, ""));
            assert_eq!(summary(&c), want, "{code} {status}");
            assert_eq!(c.message, "the message");
        }
    }

    #[test]
    fn service_errors_without_a_code_are_read_from_the_body_or_status() {
        let c = classify(&service(None, 403, "<html>denied</html>"));
        assert_eq!(summary(&c), ("HTTP403", FailureKind::Denied, false));
        let c = classify(&service(
            None,
            400,
            "<Error><Code>ThrottlingException</Code><Message>slow down</Message></Error>",
        ));
        assert_eq!(
            summary(&c),
            ("ThrottlingException", FailureKind::Transient, false)
        );
        assert_eq!(c.message, "slow down");
        let c = classify(&service(None, 502, ""));
        assert_eq!(summary(&c), ("HTTP502", FailureKind::Transient, true));
    }

    #[test]
    fn timeouts_and_network_failures_are_retried_and_fail_over_unless_ours() {
        let c = classify(&Sdk::timeout_error("slow"));
        assert_eq!(summary(&c), ("Timeout", FailureKind::Transient, true));
        assert_eq!(c.message, "no answer from AWS in time");
        let c = classify(&Sdk::dispatch_failure(ConnectorError::timeout(
            "read timed out".into(),
        )));
        assert_eq!(summary(&c), ("Timeout", FailureKind::Transient, true));
        let c = classify(&Sdk::dispatch_failure(ConnectorError::io(
            "connection reset".into(),
        )));
        assert_eq!(summary(&c), ("NetworkError", FailureKind::Transient, true));
        assert!(c.message.contains("connection reset"), "{c:?}");
        let c = classify(&Sdk::dispatch_failure(ConnectorError::user(
            "bad request".into(),
        )));
        assert_eq!(summary(&c), ("NetworkError", FailureKind::Transient, false));
    }

    #[test]
    fn unreadable_responses_are_named_by_status() {
        let c = classify(&Sdk::response_error("garbled", raw(502, "")));
        assert_eq!(summary(&c), ("HTTP502", FailureKind::Transient, true));
        assert_eq!(c.message, "unreadable response from AWS");
        let c = classify(&Sdk::response_error("garbled", raw(500, "")));
        assert_eq!(summary(&c), ("HTTP500", FailureKind::Transient, true));
        let c = classify(&Sdk::response_error("garbled", raw(200, "")));
        assert_eq!(summary(&c), ("HTTP200", FailureKind::Transient, false));
    }

    #[test]
    fn other_sdk_errors_are_permanent() {
        let c = classify(&Sdk::construction_failure("no region"));
        assert_eq!(
            summary(&c),
            ("RequestFailed", FailureKind::Permanent, false)
        );
        assert!(c.message.contains("no region"), "{c:?}");
    }

    #[test]
    fn credential_and_certificate_errors_win_over_the_error_variant() {
        let creds = CredentialsError::not_loaded("no identity");
        let c = classify(&Sdk::dispatch_failure(ConnectorError::other(
            Box::new(creds),
            None,
        )));
        assert_eq!(
            summary(&c),
            ("NoCredentials", FailureKind::Permanent, false)
        );
        let tls = rustls::Error::InvalidCertificate(rustls::CertificateError::Expired);
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, tls);
        let c = classify(&Sdk::dispatch_failure(ConnectorError::io(Box::new(io))));
        assert_eq!(
            summary(&c),
            ("UntrustedCertificate", FailureKind::Trust, false)
        );
        // Other TLS errors are not about trust.
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, rustls::Error::DecryptError);
        let c = classify(&Sdk::dispatch_failure(ConnectorError::io(Box::new(io))));
        assert_eq!(summary(&c), ("NetworkError", FailureKind::Transient, true));
    }

    #[test]
    fn credential_error_codes() {
        let c = credentials_error(&CredentialsError::invalid_configuration("bad profile")).unwrap();
        assert_eq!(
            (c.code.as_str(), c.kind, c.failover),
            ("InvalidCredentialsConfig", FailureKind::Permanent, false)
        );
        let err =
            CredentialsError::provider_error(std::io::Error::other("InvalidIdentityToken: no"));
        let c = credentials_error(&err).unwrap();
        assert_eq!(
            (c.code.as_str(), c.kind),
            ("CredentialsDenied", FailureKind::Denied)
        );
        // Expired wins over denied when both appear.
        let err = CredentialsError::provider_error(std::io::Error::other(
            "AccessDenied after ExpiredToken",
        ));
        assert_eq!(credentials_error(&err).unwrap().code, "CredentialsExpired");
        assert!(c.message.contains("InvalidIdentityToken"), "{c:?}");
    }

    #[test]
    fn undecoded_bodies_have_bounded_codes_and_messages() {
        let code = |len: usize| format!("<Code>{}</Code>", "C".repeat(len));
        assert_eq!(uncoded(400, code(128).as_bytes()).0, "C".repeat(128));
        assert_eq!(uncoded(400, code(129).as_bytes()).0, "HTTP400");
        assert_eq!(uncoded(400, b"<Code></Code>").0, "HTTP400");
        assert_eq!(
            uncoded(400, b"<Code> X </Code>"),
            ("X".into(), String::new())
        );
        assert_eq!(uncoded(400, b"<Code>X").0, "HTTP400", "unclosed");
        let msg = |len: usize| format!("<Code>X</Code><Message>{}</Message>", "m".repeat(len));
        assert_eq!(uncoded(400, msg(512).as_bytes()).1, "m".repeat(512));
        assert_eq!(uncoded(400, msg(513).as_bytes()).1, "m".repeat(512));
        // A two-byte character across the limit is dropped whole.
        let body = format!("<Code>X</Code><Message>{}é</Message>", "m".repeat(511));
        assert_eq!(uncoded(400, body.as_bytes()).1, "m".repeat(511));
        for (status, want) in [
            (
                401,
                "HTTP 401 without an AWS error code: access refused by AWS or a proxy in between",
            ),
            (
                403,
                "HTTP 403 without an AWS error code: access refused by AWS or a proxy in between",
            ),
            (404, "HTTP 404 without an AWS error code"),
        ] {
            assert_eq!(
                uncoded(status, b""),
                (format!("HTTP{status}"), want.to_string())
            );
        }
    }

    #[test]
    fn every_hint_arm() {
        let h = |code: &str| hint(code, "ssm:GetParameters", "RES", "REG");
        for (code, want) in [
            (
                "AccessDenied",
                "the pod's IAM role needs ssm:GetParameters on RES",
            ),
            ("HTTP401", "may lack ssm:GetParameters on RES, or a proxy"),
            ("HTTP403", "may lack ssm:GetParameters on RES, or a proxy"),
            ("ResourceNotFoundException", "exists in region REG"),
            ("ParameterVersionNotFound", "exists in region REG"),
            (
                "ParameterVersionLabelLimitExceeded",
                "version or label of RES in region REG",
            ),
            ("InvalidParameters", "version or label of RES in region REG"),
            (
                "KMSAccessDeniedException",
                "kms:Decrypt on the KMS key that encrypts RES",
            ),
            ("KMSDisabledException", "kms:Decrypt"),
            ("InvalidCredentialsConfig", "IRSA"),
            ("CredentialsDenied", "IRSA"),
            ("CredentialsUnavailable", "IRSA"),
            ("ExpiredTokenException", "refreshed on the next attempt"),
            ("ExpiredToken", "refreshed on the next attempt"),
            ("CredentialsExpired", "refreshed on the next attempt"),
            ("NetworkError", "reach the ssm endpoint of REG"),
            ("Timeout", "reach the ssm endpoint of REG"),
            (
                "InvalidRequestException",
                "AWS rejected the request for RES",
            ),
            (
                "InvalidParameterException",
                "AWS rejected the request for RES",
            ),
            ("ThrottlingException", "throttling or failing in REG"),
            ("InternalFailure", "throttling or failing in REG"),
        ] {
            let got = h(code).unwrap_or_else(|| panic!("{code}: no hint"));
            assert!(got.contains(want), "{code}: {got}");
        }
        for code in ["ValidationException", "HTTP404", "DecryptionFailureX"] {
            assert_eq!(h(code), None, "{code}");
        }
    }
}
