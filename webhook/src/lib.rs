//! secrets-injector webhook: admission logic (pure) and its HTTPS server.

pub mod args;
pub mod certs;
pub mod decide;
pub mod error;
pub mod inject_cli;
pub mod logging;
pub mod metrics;
pub mod mutate;
pub mod patch;
pub mod routes;
pub mod server;
pub mod settings;
pub mod tls;
