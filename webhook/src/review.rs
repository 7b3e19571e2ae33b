//! The admission decision for one pod, independent of HTTP: what the router calls.

use k8s_openapi::api::core::v1::Pod;

use crate::decide::{Decision, decide};
use crate::patch;
use crate::template::AgentTemplate;

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

impl Outcome {
    /// Allowed, nothing to change.
    pub fn unchanged() -> Outcome {
        Outcome::Allowed {
            patch: None,
            warnings: Vec::new(),
        }
    }
}

/// Review a pod (CREATE). Opt-in by namespace happens in the webhook
/// configuration, so the decision needs the pod alone.
pub fn review(pod: &Pod, template: &AgentTemplate) -> Outcome {
    match decide(pod, template) {
        Decision::Skip(_) => Outcome::unchanged(),
        Decision::Deny(message) => Outcome::Denied(message),
        Decision::Inject(plan) => Outcome::Allowed {
            patch: Some(patch::inject(pod, &plan, template)),
            warnings: plan.warnings.clone(),
        },
        Decision::Refresh(updates) => Outcome::Allowed {
            patch: Some(patch::refresh(pod, &updates)),
            warnings: Vec::new(),
        },
    }
}
