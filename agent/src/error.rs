//! The agent's one error type.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] secrets_injector_shared::Error),
    #[error("{0}")]
    Io(String),
    /// A fetched value could not be rendered; names the secret and the key or
    /// path at fault, never the value.
    #[error("secret {secret}: {message}")]
    Render { secret: String, message: String },
    /// The atomic write of the file set failed; the previous set is untouched.
    #[error("writing {path}: {message}")]
    Write { path: String, message: String },
    /// An `on-change` action failed (the files were written).
    #[error("on-change {action}: {message}")]
    Notify { action: String, message: String },
    /// The pod has no usable AWS identity (see `aws::NO_IDENTITY`).
    #[error("{0}")]
    Identity(String),
    #[error(
        "no AWS region: set the secrets-injector.io/region annotation or AWS_REGION in the pod"
    )]
    NoRegion,
    /// Extra CA roots (`SSL_CERT_FILE`, `SECRETS_INJECTOR_CA_BUNDLE`) are unusable.
    #[error("TLS roots: {0}")]
    TlsRoots(String),
}
