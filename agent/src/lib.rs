//! secrets-injector agent: fetch with the pod's identity, split, write atomically.

pub mod args;
pub mod aws;
pub mod classify;
pub mod config;
pub mod error;
pub mod fetch;
pub mod notify;
pub mod probe;
pub mod run;
pub mod split;
pub mod termination;
pub mod wrapper;
pub mod write;

pub use error::Error;
