//! The agent's one error type.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] secrets_injector_shared::Error),
    #[error("{0}")]
    Io(String),
}
