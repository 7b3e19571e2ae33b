//! The AdmissionReview v1 envelope: the request decoded (typed in one pass when
//! well-formed, with words for what is wrong otherwise) and the response encoded
//! in one pass, its JSONPatch base64'd as the API server reads Go's `[]byte`.

use base64::Engine;
use k8s_openapi::api::core::v1::Pod;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionReview, Operation};
use serde::Serialize;
use serde_json::Value;

use crate::review::Outcome;

const API_VERSION: &str = "admission.k8s.io/v1";
const KIND: &str = "AdmissionReview";

/// Why a request is not an AdmissionReview we can answer: an HTTP status and
/// one line for the caller that never repeats the offending value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub status: u16,
    pub message: String,
}

fn invalid(message: String) -> Rejected {
    Rejected {
        status: 400,
        message,
    }
}

/// The response document for `uid`: allowed (with an optional patch and
/// warnings) or denied with a message. Written once, straight to bytes: the
/// patch's base64 text (most of the response) is encoded into the document's
/// buffer, not into a string that serde would then scan for escapes and copy.
/// The bytes are what serde would write for the same document, field order
/// included (a unit test holds the two equal).
pub fn encode(uid: &str, outcome: &Outcome) -> Result<Vec<u8>, Rejected> {
    let internal = |e: &dyn std::fmt::Display| Rejected {
        status: 500,
        message: format!("cannot encode the admission response: {e}"),
    };
    let mut out = Vec::with_capacity(ENCODE_CAPACITY);
    out.extend_from_slice(HEAD);
    serde_json::to_writer(&mut out, uid).map_err(|e| internal(&e))?;
    match outcome {
        Outcome::Denied(message) => {
            out.extend_from_slice(br#","allowed":false,"status":"#);
            serde_json::to_writer(&mut out, &Status { code: 403, message })
                .map_err(|e| internal(&e))?;
        }
        Outcome::Allowed { patch, warnings } => {
            out.extend_from_slice(br#","allowed":true"#);
            if let Some(patch) = patch.as_ref().filter(|p| !p.0.is_empty()) {
                let mut json = Vec::with_capacity(ENCODE_CAPACITY / 2);
                serde_json::to_writer(&mut json, patch).map_err(|e| internal(&e))?;
                out.extend_from_slice(br#","patch":""#);
                let start = out.len();
                let len = base64::encoded_len(json.len(), true)
                    .ok_or_else(|| internal(&"the patch is too large to encode"))?;
                out.resize(start + len, 0);
                base64::engine::general_purpose::STANDARD
                    .encode_slice(&json, &mut out[start..])
                    .map_err(|e| internal(&e))?;
                out.extend_from_slice(br#"","patchType":"JSONPatch""#);
            }
            if !warnings.is_empty() {
                out.extend_from_slice(br#","warnings":"#);
                serde_json::to_writer(&mut out, warnings).map_err(|e| internal(&e))?;
            }
        }
    }
    out.extend_from_slice(b"}}");
    Ok(out)
}

/// The document up to the response's `uid` value.
const HEAD: &[u8] =
    br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"#;

/// Room for a typical pod's response (a ~4 KiB patch, base64'd), so the
/// buffer is allocated once.
const ENCODE_CAPACITY: usize = 8 * 1024;

#[derive(Serialize)]
struct Status<'a> {
    code: u16,
    message: &'a str,
}

/// The Pod of a Pod CREATE (the only thing reviewed), if this request is one.
pub fn pod_to_review(req: &AdmissionRequest<Pod>) -> Option<&Pod> {
    req.object.as_ref().filter(|_| is_pod_create(req))
}

/// Decode and check the envelope: JSON, `admission.k8s.io/v1` `AdmissionReview`,
/// a `request`. `object` is kept only for Pod CREATE (the only thing reviewed).
pub fn decode(bytes: &[u8]) -> Result<AdmissionRequest<Pod>, Rejected> {
    // Fast path, one typed pass: a well-formed Pod review (k8s-openapi checks
    // the object's apiVersion/kind). Anything else takes the careful path,
    // which also finds the words for what is wrong.
    if let Ok(review) = serde_json::from_slice::<AdmissionReview<Pod>>(bytes)
        && review.types.api_version == API_VERSION
        && review.types.kind == KIND
        && let Ok(req) = TryInto::<AdmissionRequest<Pod>>::try_into(review)
        && is_pod_create(&req)
        && req.object.is_some()
    {
        return Ok(req);
    }
    let req = parse_dynamic(bytes)?;
    typed(req)
}

fn is_pod_create<T: kube::core::Resource>(req: &AdmissionRequest<T>) -> bool {
    req.kind.group.is_empty()
        && req.kind.kind == "Pod"
        && req.sub_resource.is_none()
        && matches!(req.operation, Operation::Create)
}

/// The careful path's request as the typed one: the Pod of a Pod CREATE
/// (checked), no object otherwise.
fn typed(mut req: AdmissionRequest<DynamicObject>) -> Result<AdmissionRequest<Pod>, Rejected> {
    let pod = if is_pod_create(&req) {
        let object = req.object.as_ref().ok_or_else(|| {
            invalid("request.object is missing: a Pod CREATE must carry the pod".into())
        })?;
        if let Some(types) = &object.types
            && (types.kind != "Pod" || types.api_version != "v1")
        {
            return Err(invalid(format!(
                "request.object is {:?}/{:?}, not a v1 Pod",
                short(&types.api_version),
                short(&types.kind)
            )));
        }
        let pod: Pod = serde_json::to_value(object)
            .and_then(serde_json::from_value)
            .map_err(|e| {
                invalid(format!(
                    "request.object is not a valid Pod: {}",
                    describe(&e)
                ))
            })?;
        Some(pod)
    } else {
        None
    };
    req.object = None;
    req.old_object = None;
    let types = req.types.clone();
    let mut out: AdmissionRequest<Pod> = serde_json::to_value(&req)
        .and_then(serde_json::from_value)
        .map_err(|e| Rejected {
            status: 500,
            message: format!("cannot re-read the admission request: {}", describe(&e)),
        })?;
    out.types = types;
    out.object = pod;
    Ok(out)
}

/// The envelope through `serde_json::Value`, naming what is wrong.
fn parse_dynamic(bytes: &[u8]) -> Result<AdmissionRequest<DynamicObject>, Rejected> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(invalid(format!(
            "empty request body: expected an {KIND} ({API_VERSION}) JSON object"
        )));
    }
    // Syntax errors only carry a position, never content.
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        if e.to_string().starts_with("recursion limit exceeded") {
            invalid(format!(
                "request body is nested deeper than JSON's 128-level limit (at line {} column {})",
                e.line(),
                e.column()
            ))
        } else {
            invalid(format!("request body is not JSON: {e}"))
        }
    })?;
    let Value::Object(map) = &value else {
        return Err(invalid(format!(
            "request body is not a JSON object: expected an {KIND}"
        )));
    };
    let field = |k: &str| map.get(k).and_then(Value::as_str).unwrap_or("");
    if field("apiVersion") != API_VERSION || field("kind") != KIND {
        return Err(invalid(format!(
            "unsupported apiVersion/kind {:?}/{:?}: only {API_VERSION} {KIND} is served \
             (set admissionReviewVersions: [\"v1\"] in the webhook configuration)",
            short(field("apiVersion")),
            short(field("kind"))
        )));
    }
    if map.get("request").is_none_or(Value::is_null) {
        return Err(invalid(format!("{KIND} has no request")));
    }
    let mut value = value;
    // Go decoders read `null` as the zero value (e.g. `name: null` for generateName pods).
    if let Some(Value::Object(request)) = value.get_mut("request") {
        request.retain(|_, v| !v.is_null());
    }
    let review: AdmissionReview<DynamicObject> = serde_json::from_value(value)
        .map_err(|e| invalid(format!("{KIND} request is malformed: {}", describe(&e))))?;
    review
        .try_into()
        .map_err(|_| invalid(format!("{KIND} has no request")))
}

/// A serde error without the offending value (pods may carry secret-looking env values).
fn describe(e: &serde_json::Error) -> String {
    let text = e.to_string();
    if !matches!(e.classify(), serde_json::error::Category::Data)
        || text.starts_with("missing field")
    {
        return text;
    }
    // `invalid type: string "…", expected …` → keep the category and the expectation only.
    let category = text.split_once(':').map_or("invalid value", |(c, _)| c);
    match text.rsplit_once(", expected ") {
        Some((_, expected)) => format!("{category}, expected {expected}"),
        None => category.to_string(),
    }
}

fn short(s: &str) -> String {
    s.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The document as serde writes it from structs: the reference `encode` must match.
    fn reference(uid: &str, outcome: &Outcome) -> Vec<u8> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Review<'a> {
            api_version: &'static str,
            kind: &'static str,
            response: Response<'a>,
        }
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Response<'a> {
            uid: &'a str,
            allowed: bool,
            #[serde(skip_serializing_if = "Option::is_none")]
            status: Option<Status<'a>>,
            #[serde(skip_serializing_if = "Option::is_none")]
            patch: Option<String>,
            #[serde(skip_serializing_if = "Option::is_none")]
            patch_type: Option<&'static str>,
            #[serde(skip_serializing_if = "<[String]>::is_empty")]
            warnings: &'a [String],
        }
        let response = match outcome {
            Outcome::Denied(message) => Response {
                uid,
                allowed: false,
                status: Some(Status { code: 403, message }),
                patch: None,
                patch_type: None,
                warnings: &[],
            },
            Outcome::Allowed { patch, warnings } => {
                let patch = patch.as_ref().filter(|p| !p.0.is_empty()).map(|p| {
                    base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(p).unwrap())
                });
                Response {
                    uid,
                    allowed: true,
                    status: None,
                    patch_type: patch.as_ref().map(|_| "JSONPatch"),
                    patch,
                    warnings,
                }
            }
        };
        serde_json::to_vec(&Review {
            api_version: API_VERSION,
            kind: KIND,
            response,
        })
        .unwrap()
    }

    fn patch(ops: serde_json::Value) -> json_patch::Patch {
        serde_json::from_value(ops).unwrap()
    }

    #[test]
    fn the_written_response_is_the_document_serde_would_write() {
        // Sizes around base64's 3-byte groups and the writer's 1 KiB chunks.
        let patches: Vec<json_patch::Patch> = [0, 1, 2, 3, 700, 1021, 1024, 3000, 20_000]
            .into_iter()
            .map(|n| {
                patch(json!([{"op": "add", "path": "/metadata/annotations/a", "value": "x".repeat(n)}]))
            })
            .collect();
        let warnings = vec![
            "secrets-injector: a \"quoted\" warning\nwith a newline".to_string(),
            "ünïcödé \u{1} control".to_string(),
        ];
        let mut outcomes = vec![
            Outcome::unchanged(),
            Outcome::Allowed {
                patch: Some(json_patch::Patch(Vec::new())),
                warnings: Vec::new(),
            },
            Outcome::Allowed {
                patch: None,
                warnings: warnings.clone(),
            },
            Outcome::Denied("secrets-injector: 2 invalid annotations: \"a\\b\" \u{7f} é".into()),
            Outcome::Denied(String::new()),
        ];
        for p in patches {
            outcomes.push(Outcome::Allowed {
                patch: Some(p.clone()),
                warnings: Vec::new(),
            });
            outcomes.push(Outcome::Allowed {
                patch: Some(p),
                warnings: warnings.clone(),
            });
        }
        for uid in [
            "705ab4f5-6393-11e8-b7cc-42010a800002",
            "",
            "quote\" back\\slash \u{0}",
        ] {
            for outcome in &outcomes {
                let ours = encode(uid, outcome).unwrap();
                assert_eq!(
                    String::from_utf8(ours).unwrap(),
                    String::from_utf8(reference(uid, outcome)).unwrap(),
                    "uid {uid:?}, outcome {outcome:?}"
                );
            }
        }
    }

    #[test]
    fn the_patch_decodes_back_to_the_operations() {
        let p = patch(json!([
            {"op": "add", "path": "/spec/initContainers", "value": [{"name": "secrets-injector", "image": "x"}]},
            {"op": "add", "path": "/metadata/annotations/secrets-injector.io~1status", "value": "injected"}
        ]));
        let out = encode(
            "u",
            &Outcome::Allowed {
                patch: Some(p.clone()),
                warnings: Vec::new(),
            },
        )
        .unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(doc["response"]["patchType"], "JSONPatch");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(doc["response"]["patch"].as_str().unwrap())
            .unwrap();
        let back: json_patch::Patch = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(back, p);
    }
}
