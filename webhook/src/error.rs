//! The webhook crate's one error type.

/// Everything that can go wrong outside an admission decision (a deny is an
/// [`crate::mutate::Outcome`], not an error).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A command-line setting is invalid (caught at startup).
    #[error("invalid settings: {0}")]
    Settings(String),
    /// An input document of `inject` is not YAML.
    #[error("document {document}: not valid YAML: {message}")]
    Yaml { document: usize, message: String },
    /// `inject` met a document whose pod template is not a valid pod spec.
    #[error("{document}: the pod template is not a valid pod: {message}")]
    Template { document: String, message: String },
    /// `inject` met a pod template the webhook would deny.
    #[error("{document}: denied: {message}")]
    Denied { document: String, message: String },
    /// A generated patch did not apply (a bug: please report it with the input).
    #[error("{document}: internal error applying the patch: {message}")]
    Patch { document: String, message: String },
    /// Serializing the output failed.
    #[error("cannot write YAML output: {0}")]
    Output(String),
    /// The TLS certificate or key cannot be loaded (the message names the file or the problem).
    #[error("TLS: {0}")]
    Tls(String),
    /// A listening socket cannot be opened.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    /// The `certs` subcommand failed.
    #[error("certs: {0}")]
    Certs(String),
    /// Reading the input of `inject` failed.
    #[error("cannot read {path}: {source}")]
    Input {
        path: String,
        source: std::io::Error,
    },
}
