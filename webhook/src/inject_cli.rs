//! `inject -f FILE|-`: the admission mutation applied offline to Pods and the pod
//! templates of workloads, over multi-document YAML.

use k8s_openapi::api::core::v1::Pod;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::Error;
use crate::review::{Outcome, review};
use crate::template::AgentTemplate;

/// Where a kind keeps its pod template (`""` = the document is the pod); `None` = not a workload.
fn template_pointer(kind: &str) -> Option<&'static str> {
    match kind {
        "Pod" => Some(""),
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" | "Rollout" => {
            Some("/spec/template")
        }
        "CronJob" => Some("/spec/jobTemplate/spec/template"),
        "PodTemplate" => Some("/template"),
        _ => None,
    }
}

/// What `inject` produced: the YAML, and one notice per document that carries a
/// pod template of a kind it does not know (passed through unchanged; say so).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Injected {
    pub yaml: String,
    pub notices: Vec<String>,
}

/// Mutate every Pod and pod template in `input` (YAML, one or more documents;
/// `kind: List` items too) and return YAML. Other documents pass through
/// (re-serialized). A template the webhook would deny fails the whole run,
/// naming the document.
pub fn run(input: &str, template: &AgentTemplate) -> Result<Injected, Error> {
    let mut out = Vec::new();
    let mut notices = Vec::new();
    for (i, de) in serde_yaml_ng::Deserializer::from_str(input).enumerate() {
        let number = i + 1;
        let doc = Value::deserialize(de).map_err(|e| Error::Yaml {
            document: number,
            message: e.to_string(),
        })?;
        if doc.is_null() {
            continue;
        }
        let label = format!("document {number}");
        let (doc, warnings) = inject_any(doc, &label, template, &mut notices)?;
        let yaml = serde_yaml_ng::to_string(&doc).map_err(|e| Error::Output(e.to_string()))?;
        // Warnings as YAML comments: visible in review and diffs, harmless to kubectl apply.
        let comments: String = warnings
            .iter()
            .map(|w| format!("# warning: {}\n", w.replace('\n', " ")))
            .collect();
        out.push(format!("{comments}{yaml}"));
    }
    Ok(Injected {
        yaml: out.join("---\n"),
        notices,
    })
}

/// One document: a `List`'s items one by one, a known workload, or anything else.
fn inject_any(
    mut doc: Value,
    label: &str,
    template: &AgentTemplate,
    notices: &mut Vec<String>,
) -> Result<(Value, Vec<String>), Error> {
    if doc["kind"] == "List"
        && let Some(items) = doc.get_mut("items").and_then(Value::as_array_mut)
    {
        let mut warnings = Vec::new();
        for (i, item) in items.iter_mut().enumerate() {
            let label = format!("{label} item {}", i + 1);
            let (injected, w) = inject_document(item.take(), &label, template, notices)?;
            *item = injected;
            warnings.extend(w);
        }
        return Ok((doc, warnings));
    }
    inject_document(doc, label, template, notices)
}

/// Where a document of an unknown kind holds something shaped like a pod spec.
fn unknown_template(doc: &Value) -> Option<&'static str> {
    [
        "/spec/template/spec/containers",
        "/template/spec/containers",
        "/spec/jobTemplate/spec/template/spec/containers",
        "/spec/containers",
    ]
    .into_iter()
    .find(|p| doc.pointer(p).is_some_and(Value::is_array))
    .map(|p| p.trim_end_matches("/containers"))
}

fn inject_document(
    mut doc: Value,
    label: &str,
    template: &AgentTemplate,
    notices: &mut Vec<String>,
) -> Result<(Value, Vec<String>), Error> {
    let kind = doc["kind"].as_str().unwrap_or_default().to_string();
    let name = doc["metadata"]["name"]
        .as_str()
        .or_else(|| doc["metadata"]["generateName"].as_str())
        .unwrap_or("<unnamed>")
        .to_string();
    let label = format!("{label} ({kind}/{name})");
    let Some(pointer) = template_pointer(&kind) else {
        if let Some(at) = unknown_template(&doc) {
            notices.push(format!(
                "{label}: has a pod template at {at}, but inject does not know the kind                  {kind:?}; passed through WITHOUT injection (inject the pod template                  yourself, or let the webhook do it in the cluster)"
            ));
        }
        return Ok((doc, Vec::new()));
    };
    let Some(pod_template) = doc.pointer_mut(pointer).filter(|t| t.is_object()) else {
        return Err(Error::Template {
            document: label,
            message: format!(
                "missing {}",
                pointer.trim_start_matches('/').replace('/', ".")
            ),
        });
    };

    let mut pod_value = json!({
        "metadata": pod_template.get("metadata").cloned().unwrap_or_else(|| json!({})),
        "spec": pod_template.get("spec").cloned().unwrap_or(Value::Null),
    });
    if matches!(kind.as_str(), "Job" | "CronJob")
        && let Some(meta) = pod_value["metadata"].as_object_mut()
    {
        // The pods of a Job are owned by it; the review's Job warning depends on that.
        // (A non-object `metadata` is reported by the Pod decoding below.)
        meta.insert(
            "ownerReferences".into(),
            json!([{
                "apiVersion": "batch/v1", "kind": "Job", "name": name, "uid": "offline",
            }]),
        );
    }
    let pod: Pod = serde_json::from_value(pod_value).map_err(|e| Error::Template {
        document: label.clone(),
        message: e.to_string(),
    })?;

    match review(&pod, template) {
        Outcome::Denied(message) => Err(Error::Denied {
            document: label,
            message,
        }),
        Outcome::Allowed { patch: None, .. } => Ok((doc, Vec::new())),
        Outcome::Allowed {
            patch: Some(patch),
            warnings,
        } => {
            if let Some(obj) = pod_template.as_object_mut() {
                obj.entry("metadata").or_insert_with(|| json!({}));
            }
            json_patch::patch(pod_template, &patch).map_err(|e| Error::Patch {
                document: label,
                message: e.to_string(),
            })?;
            Ok((doc, warnings))
        }
    }
}
