//! Fetching secret values from Secrets Manager and SSM with the fewest calls.
//! Knows AWS; knows nothing of files or formats.

use secrets_injector_shared::SecretSpec;

/// A fetched value. Never `Debug`-printed with its contents.
pub enum Value {
    Text(String),
    Binary(Vec<u8>),
}

impl std::fmt::Debug for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Text(s) => write!(f, "Text(<{} bytes redacted>)", s.len()),
            Value::Binary(b) => write!(f, "Binary(<{} bytes redacted>)", b.len()),
        }
    }
}

/// The value of `specs[index]`.
#[derive(Debug)]
pub struct Fetched {
    pub index: usize,
    pub value: Value,
}

/// Why `specs[index]` could not be fetched. Carries no secret value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchFailure {
    pub index: usize,
    /// The reference as the user wrote it (`prod/db`, `ssm:/app/key`, ARN).
    pub secret: String,
    /// AWS error code (`AccessDeniedException`, `ResourceNotFoundException`, …) or a local one.
    pub code: String,
    pub message: String,
    /// What the user can do, e.g. the IAM action that is missing.
    pub hint: Option<String>,
    /// Worth retrying (throttling, 5xx, network, expired credentials).
    pub transient: bool,
}

/// Everything one fetch round produced.
#[derive(Debug, Default)]
pub struct FetchOutcome {
    pub values: Vec<Fetched>,
    pub failures: Vec<FetchFailure>,
}

/// Fetches `specs`; implemented over the AWS SDK clients (see `aws.rs`).
pub trait Fetch {
    fn fetch(&self, specs: &[SecretSpec])
    -> impl std::future::Future<Output = FetchOutcome> + Send;
}
