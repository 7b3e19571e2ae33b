//! secrets-injector agent: fetch with the pod's identity, split, write atomically.

pub mod error;
pub mod fetch;
pub mod split;
pub mod write;

pub use error::Error;
