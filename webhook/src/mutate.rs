//! The admission decision for one pod, independent of HTTP: what the router calls.

use k8s_openapi::api::core::v1::Pod;

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

/// Review a pod (CREATE). `namespace` is the request's namespace (pods may omit it).
pub fn review(pod: &Pod, namespace: Option<&str>, settings: &Settings) -> Outcome {
    let _ = (pod, namespace, settings);
    Outcome::Allowed {
        patch: None,
        warnings: Vec::new(),
    }
}
