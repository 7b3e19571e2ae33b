//! AdmissionReview envelopes and pod surgery for end-to-end tests: wrap a pod
//! as the API server would, apply the webhook's JSONPatch, and take the agent
//! container out of the mutated pod.

use base64::Engine;
use serde_json::{Value, json};

/// Name of the container the webhook injects.
pub const AGENT_CONTAINER: &str = "secrets-injector-agent";

/// Load the first document of a YAML file as JSON.
pub fn load_yaml(path: &std::path::Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// An `admission.k8s.io/v1` AdmissionReview for CREATE of `pod`.
pub fn admission_review(pod: &Value, namespace: &str, uid: &str) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "name": pod["metadata"]["name"],
            "namespace": namespace,
            "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
            "object": pod,
            "oldObject": null,
            "dryRun": false,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}
        }
    })
}

/// The JSONPatch in an AdmissionReview response, if any.
pub fn response_patch(review: &Value) -> Option<json_patch::Patch> {
    let b64 = review["response"]["patch"].as_str()?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("patch is base64");
    Some(serde_json::from_slice(&bytes).expect("patch is a JSONPatch"))
}

/// Apply the response's patch to `pod` (unchanged when there is none).
pub fn apply_response(pod: &Value, review: &Value) -> Value {
    let mut out = pod.clone();
    if let Some(patch) = response_patch(review) {
        json_patch::patch(&mut out, &patch).expect("patch applies to the pod it was made for");
    }
    out
}

/// The injected agent container (init container or, classic style, a container).
pub fn agent_container(pod: &Value) -> Option<&Value> {
    ["initContainers", "containers"].iter().find_map(|list| {
        pod["spec"][list]
            .as_array()?
            .iter()
            .find(|c| c["name"] == AGENT_CONTAINER)
    })
}

/// A container's literal env (`value` entries; `valueFrom` is not resolvable offline).
pub fn container_env(container: &Value) -> Vec<(String, String)> {
    container["env"]
        .as_array()
        .map(|env| {
            env.iter()
                .filter_map(|e| {
                    Some((
                        e["name"].as_str()?.to_string(),
                        e["value"].as_str()?.to_string(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A container's volume mounts as `(volume name, mount path, read only)`.
pub fn volume_mounts(container: &Value) -> Vec<(String, String, bool)> {
    container["volumeMounts"]
        .as_array()
        .map(|m| {
            m.iter()
                .filter_map(|v| {
                    Some((
                        v["name"].as_str()?.to_string(),
                        v["mountPath"].as_str()?.to_string(),
                        v["readOnly"].as_bool().unwrap_or(false),
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The pod's annotations as a map.
pub fn annotations(pod: &Value) -> std::collections::BTreeMap<String, String> {
    pod["metadata"]["annotations"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// Serialize a JSON value as YAML (for kubernetes-validate).
pub fn to_yaml(v: &Value) -> String {
    serde_yaml_ng::to_string(v).expect("JSON serializes as YAML")
}
