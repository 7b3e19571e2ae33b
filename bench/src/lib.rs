//! Benchmarks that print numbers (issue 8): the webhook in process and over
//! HTTPS next to a bare axum + rustls server, the agent and today's
//! alternatives against the AWS emulator, and release binary sizes.
//! No timed assertions anywhere: the suites print, people judge.

pub mod agentbench;
pub mod bare;
pub mod cold;
pub mod cost;
pub mod error;
pub mod hostile;
pub mod loadgen;
pub mod measure;
pub mod pods;
pub mod proxy;
pub mod quota;
pub mod report;
pub mod rss;
pub mod stats;
pub mod storm;
pub mod suite;
pub mod tls;
pub mod webhookbench;
pub mod wrapperbench;

pub use error::Error;
