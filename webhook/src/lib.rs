//! secrets-injector webhook: admission logic (pure) and its HTTPS server.
//!
//! Pure core: `decide` (pod → decision, using `containers`, `identity`, `owner`)
//! and `patch` (decision → JSONPatch), joined by `review`; the operator's flags
//! are checked once into a `template`. I/O edge: `routes` (AdmissionReview over
//! HTTP), `server` and `tls` (listeners, certificate reload), `inject_cli`.

mod admission;
pub mod args;
pub mod certs;
mod conn;
mod containers;
mod decide;
mod env_wrap;
pub mod error;
mod identity;
pub mod inject_cli;
mod large;
pub mod logging;
pub mod metrics;
mod owner;
mod patch;
pub mod review;
pub mod routes;
pub mod server;
pub mod settings;
pub mod template;
mod tls;

pub use containers::{AGENT_CONTAINER, AGENT_INIT_CONTAINER};
pub use identity::IDENTITY_ENV;
