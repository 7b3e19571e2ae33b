//! secrets-injector agent: fetch with the pod's identity, split, write atomically.
//!
//! Layout: `cli` (process start) → `run` (init/sidecar loops over any
//! `fetch::Fetch`) → `fetch` (AWS calls, `aws` builds the clients,
//! `classify` gives every AWS error its `failure::FailureKind`; `select`
//! evaluates prefix/path/tag selectors) → `split` (a `value::SecretValue` into
//! files; `selected` for a selection's directory; templates render through
//! `shared::template`) → `write` (atomic file set), then `notify`
//! (`on-change`) and `termination` (the kubelet's message).

mod args;
pub mod aws;
mod classify;
mod cli;
mod config;
mod error;
pub mod failure;
pub mod fetch;
mod notify;
pub mod panic_hook;
mod probe;
pub mod run;
mod select;
mod selected;
pub mod split;
mod termination;
pub mod value;
pub mod wrapper;
pub mod write;

pub use cli::main;
pub use error::Error;
