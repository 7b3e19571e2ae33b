//! secrets-injector webhook: admission logic (pure) and its HTTPS server.

pub mod mutate;
pub mod settings;
