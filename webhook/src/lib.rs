//! secrets-injector webhook: admission logic (pure) and its HTTPS server.

pub mod decide;
pub mod error;
pub mod inject_cli;
pub mod mutate;
pub mod patch;
pub mod settings;
