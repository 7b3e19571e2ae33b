//! The one place that decides whether an AWS error is worth retrying, whether
//! it warrants the failover region, and what a person should do about it.

use aws_credential_types::provider::error::CredentialsError;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// An AWS error reduced to what the agent acts on. Never holds a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classified {
    /// AWS error code or a local one (`NetworkError`, `Timeout`, `NoCredentials`, …).
    pub code: String,
    pub message: String,
    /// Retrying later may succeed.
    pub transient: bool,
    /// The primary region looks unavailable: try the failover region (ASCP behaviour).
    pub failover: bool,
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
];

/// Transient by code or HTTP status; pure, so the table is unit-tested.
pub fn is_transient(code: &str, status: Option<u16>) -> bool {
    TRANSIENT_CODES.contains(&code) || status.is_some_and(|s| s >= 500)
}

/// Classify any SDK error of Secrets Manager, SSM or STS.
pub fn classify<E>(err: &SdkError<E, HttpResponse>) -> Classified
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    if let Some(c) = credentials_error(err) {
        return c;
    }
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
            Classified {
                transient: is_transient(&code, Some(status)),
                failover: status >= 500,
                code,
                message,
            }
        }
        SdkError::TimeoutError(_) => Classified {
            code: "Timeout".into(),
            message: "no answer from AWS in time".into(),
            transient: true,
            failover: true,
        },
        SdkError::DispatchFailure(d) => Classified {
            code: if d.is_timeout() {
                "Timeout".into()
            } else {
                "NetworkError".into()
            },
            message: DisplayErrorContext(err).to_string(),
            transient: true,
            failover: !d.is_user(),
        },
        SdkError::ResponseError(r) => {
            let status = r.raw().status().as_u16();
            Classified {
                code: format!("HTTP{status}"),
                message: "unreadable response from AWS".into(),
                transient: true,
                failover: status >= 500 || status == 0,
            }
        }
        _ => Classified {
            code: "RequestFailed".into(),
            message: DisplayErrorContext(err).to_string(),
            transient: false,
            failover: false,
        },
    }
}

/// An error answer the SDK could not decode (no `__type`/`x-amzn-errortype`):
/// a query-protocol XML body (some emulators and gateways answer JSON APIs
/// that way) still carries `<Code>` and `<Message>`; otherwise the HTTP
/// status is all there is, and 401/403 mean the identity was refused.
pub fn uncoded(status: u16, body: &[u8]) -> (String, String) {
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

/// Credentials that could not be loaded surface deep in the error chain.
fn credentials_error(err: &(dyn std::error::Error + 'static)) -> Option<Classified> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(c) = e.downcast_ref::<CredentialsError>() {
            let message = DisplayErrorContext(c).to_string();
            let denied = ["AccessDenied", "InvalidIdentityToken"]
                .iter()
                .any(|k| message.contains(k));
            // An expired projected token is replaced by the kubelet: retry.
            let expired = message.contains("ExpiredToken");
            let (code, transient) = match c {
                CredentialsError::CredentialsNotLoaded(_) => ("NoCredentials", false),
                CredentialsError::InvalidConfiguration(_) => ("InvalidCredentialsConfig", false),
                _ if expired => ("CredentialsExpired", true),
                _ if denied => ("CredentialsDenied", false),
                _ => ("CredentialsUnavailable", true),
            };
            return Some(Classified {
                code: code.into(),
                message,
                transient,
                failover: false,
            });
        }
        cur = e.source();
    }
    None
}

/// A hint a person can act on, for the IAM `action` on `resource` in `region`.
pub fn hint(code: &str, action: &str, resource: &str, region: &str) -> Option<String> {
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
        c if is_transient(c, None) => {
            format!("AWS is throttling or failing in {region}; the agent retries")
        }
        "NetworkError" | "Timeout" => format!(
            "check that the pod can reach the {} endpoint of {region} \
             (NetworkPolicy, VPC endpoint, proxy, AWS_ENDPOINT_URL*)",
            action.split(':').next().unwrap_or("AWS")
        ),
        "InvalidRequestException" | "InvalidParameterException" => {
            format!("AWS rejected the request for {resource}; check the reference and version")
        }
        _ => return None,
    };
    Some(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_table() {
        for c in [
            "ThrottlingException",
            "TooManyRequestsException",
            "RequestLimitExceeded",
            "InternalServiceError",
            "ExpiredTokenException",
        ] {
            assert!(is_transient(c, Some(400)), "{c}");
        }
        for c in [
            "AccessDeniedException",
            "ResourceNotFoundException",
            "ParameterNotFound",
            "DecryptionFailure",
            "InvalidRequestException",
            "InvalidParameterException",
        ] {
            assert!(!is_transient(c, Some(400)), "{c}");
        }
        assert!(is_transient("Whatever", Some(503)));
    }

    #[test]
    fn credential_errors_expired_is_retried_denied_is_not() {
        let err = |m: &str| CredentialsError::provider_error(std::io::Error::other(m.to_string()));
        let c = credentials_error(&err("ExpiredTokenException: Token expired")).unwrap();
        assert_eq!((c.code.as_str(), c.transient), ("CredentialsExpired", true));
        let c = credentials_error(&err("AccessDenied: not authorized to assume")).unwrap();
        assert_eq!((c.code.as_str(), c.transient), ("CredentialsDenied", false));
        let c = credentials_error(&err("connection reset")).unwrap();
        assert_eq!(
            (c.code.as_str(), c.transient),
            ("CredentialsUnavailable", true)
        );
        let c = credentials_error(&CredentialsError::not_loaded("no identity")).unwrap();
        assert_eq!((c.code.as_str(), c.transient), ("NoCredentials", false));
        assert!(credentials_error(&std::io::Error::other("unrelated")).is_none());
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
}
