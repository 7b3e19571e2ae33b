//! Why a secret could not be delivered, in the agent's one vocabulary: a
//! [`FailureKind`] the run loop acts on, the code and message AWS (or the
//! agent) gave, and a hint. AWS errors get their kind in `classify.rs` only.

/// What kind of failure, which decides retry, skip (optional secrets) and hints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The secret, parameter or version does not exist: an optional one is skipped.
    NotFound,
    /// The identity may not read it (IAM, KMS, resource policy, a proxy's 401/403).
    Denied,
    /// Throttling, 5xx, network, timeouts, expiring credentials: retried.
    Transient,
    /// The endpoint's TLS certificate is not trusted (private CA missing): not retried.
    Trust,
    /// Anything else that retrying cannot fix (bad reference, bad value, no identity).
    Permanent,
}

impl FailureKind {
    /// Retrying later may succeed.
    pub fn is_transient(self) -> bool {
        self == FailureKind::Transient
    }
}

/// Why one secret could not be fetched or rendered. Carries no secret value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchFailure {
    /// The reference as the user wrote it (`prod/db`, `ssm:/app/key`, ARN).
    pub secret: String,
    /// AWS error code (`AccessDeniedException`, `ResourceNotFoundException`, …) or a local one.
    pub code: String,
    pub message: String,
    /// What the user can do, e.g. the IAM action that is missing.
    pub hint: Option<String>,
    pub kind: FailureKind,
}

impl FetchFailure {
    /// Retrying later may succeed.
    pub fn is_transient(&self) -> bool {
        self.kind.is_transient()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_transient_failures_are_retried() {
        use FailureKind::*;
        for (kind, transient) in [
            (Transient, true),
            (NotFound, false),
            (Denied, false),
            (Trust, false),
            (Permanent, false),
        ] {
            assert_eq!(kind.is_transient(), transient, "{kind:?}");
            let f = FetchFailure {
                secret: "prod/db".into(),
                code: "X".into(),
                message: String::new(),
                hint: None,
                kind,
            };
            assert_eq!(f.is_transient(), transient, "{kind:?}");
        }
    }
}
