//! `inject -f FILE|-`: the admission mutation applied offline to Pods and the pod
//! templates of workloads, over multi-document YAML (DESIGN §4).

use k8s_openapi::api::core::v1::Pod;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::Error;
use crate::mutate::{Outcome, review};
use crate::settings::Settings;

/// Where a kind keeps its pod template (`""` = the document is the pod); `None` = not a workload.
fn template_pointer(kind: &str) -> Option<&'static str> {
    match kind {
        "Pod" => Some(""),
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => Some("/spec/template"),
        "CronJob" => Some("/spec/jobTemplate/spec/template"),
        _ => None,
    }
}

/// Mutate every Pod and pod template in `input` (YAML, one or more documents) and return
/// YAML. Other documents pass through (re-serialized). A template the webhook would deny
/// fails the whole run, naming the document.
pub fn run(input: &str, settings: &Settings) -> Result<String, Error> {
    settings.validate()?;
    let mut out = Vec::new();
    for (i, de) in serde_yaml_ng::Deserializer::from_str(input).enumerate() {
        let number = i + 1;
        let doc = Value::deserialize(de).map_err(|e| Error::Yaml {
            document: number,
            message: e.to_string(),
        })?;
        if doc.is_null() {
            continue;
        }
        let (doc, warnings) = inject_document(doc, number, settings)?;
        let yaml = serde_yaml_ng::to_string(&doc).map_err(|e| Error::Output(e.to_string()))?;
        // Warnings as YAML comments: visible in review and diffs, harmless to kubectl apply.
        let comments: String = warnings
            .iter()
            .map(|w| format!("# warning: {}\n", w.replace('\n', " ")))
            .collect();
        out.push(format!("{comments}{yaml}"));
    }
    Ok(out.join("---\n"))
}

fn inject_document(
    mut doc: Value,
    number: usize,
    settings: &Settings,
) -> Result<(Value, Vec<String>), Error> {
    let kind = doc["kind"].as_str().unwrap_or_default().to_string();
    let Some(pointer) = template_pointer(&kind) else {
        return Ok((doc, Vec::new()));
    };
    let name = doc["metadata"]["name"]
        .as_str()
        .or_else(|| doc["metadata"]["generateName"].as_str())
        .unwrap_or("<unnamed>")
        .to_string();
    let label = format!("document {number} ({kind}/{name})");
    let namespace = doc["metadata"]["namespace"].as_str().map(str::to_string);
    let Some(template) = doc.pointer_mut(pointer).filter(|t| t.is_object()) else {
        return Err(Error::Template {
            document: label,
            message: format!(
                "missing {}",
                pointer.trim_start_matches('/').replace('/', ".")
            ),
        });
    };

    let mut pod_value = json!({
        "metadata": template.get("metadata").cloned().unwrap_or_else(|| json!({})),
        "spec": template.get("spec").cloned().unwrap_or(Value::Null),
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

    match review(&pod, namespace.as_deref(), settings) {
        Outcome::Denied(message) => Err(Error::Denied {
            document: label,
            message,
        }),
        Outcome::Allowed { patch: None, .. } => Ok((doc, Vec::new())),
        Outcome::Allowed {
            patch: Some(patch),
            warnings,
        } => {
            if let Some(obj) = template.as_object_mut() {
                obj.entry("metadata").or_insert_with(|| json!({}));
            }
            json_patch::patch(template, &patch).map_err(|e| Error::Patch {
                document: label,
                message: e.to_string(),
            })?;
            Ok((doc, warnings))
        }
    }
}
