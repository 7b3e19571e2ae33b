//! The bench crate's one error type.

/// Why a benchmark could not produce its numbers.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("TLS setup: {0}")]
    Tls(String),
    #[error("HTTP: {0}")]
    Http(String),
    #[error("measurement failed: {0}")]
    Measure(String),
    #[error("{0} is missing: {1}")]
    Missing(String, String),
}

impl Error {
    pub fn io(what: &str, source: std::io::Error) -> Error {
        Error::Io {
            what: what.to_string(),
            source,
        }
    }
}
