//! The admission decision for one pod, independent of HTTP: what the router calls.

use k8s_openapi::api::core::v1::Pod;

use crate::decide::{Decision, decide};
use crate::patch;
use crate::settings::Settings;

/// Result of reviewing one pod.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Allow; `patch` is `None` when nothing changes. `warnings` go into the AdmissionResponse.
    Allowed {
        patch: Option<json_patch::Patch>,
        warnings: Vec<String>,
    },
    /// Deny with one message listing every problem.
    Denied(String),
}

/// Review a pod (CREATE). `namespace` is the request's namespace (pods may omit it); the
/// decision does not depend on it, as opt-in by namespace happens in the webhook configuration.
pub fn review(pod: &Pod, namespace: Option<&str>, settings: &Settings) -> Outcome {
    let _ = namespace;
    match decide(pod, settings) {
        Decision::Skip(_) => Outcome::Allowed {
            patch: None,
            warnings: Vec::new(),
        },
        Decision::Deny(message) => Outcome::Denied(message),
        Decision::Inject(plan) => Outcome::Allowed {
            patch: Some(patch::inject(pod, &plan, settings)),
            warnings: plan.warnings.clone(),
        },
        Decision::Refresh(updates) => Outcome::Allowed {
            patch: Some(patch::refresh(pod, &updates)),
            warnings: Vec::new(),
        },
    }
}
