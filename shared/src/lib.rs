//! The secrets-injector contract: annotation keys, secret
//! references, annotation parsing and validation, and the `AgentConfig` the
//! webhook hands the agent. Pure: no I/O, no async.

pub mod annotations;
pub mod config;
pub mod env;
pub mod error;
pub mod keys;
#[cfg(feature = "logging")]
pub mod logging;
pub mod objects;
pub mod on_change;
pub mod paths;
pub mod quantity;
pub mod refs;
pub mod select;
pub mod template;
pub mod validate;

pub use annotations::{InjectionRequest, parse_annotations};
pub use config::{
    AgentConfig, Format, JmesPathEntry, Mode, OnChange, Owner, SecretSpec, TemplateSpec,
};
pub use error::{Error, Problem, Problems};
pub use quantity::Quantity;
pub use refs::{SecretRef, Service};
