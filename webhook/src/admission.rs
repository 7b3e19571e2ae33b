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
/// warnings) or denied with a message. Serialized once, straight to bytes.
pub fn encode(uid: &str, outcome: &Outcome) -> Result<Vec<u8>, Rejected> {
    let internal = |e: serde_json::Error| Rejected {
        status: 500,
        message: format!("cannot encode the admission response: {e}"),
    };
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
            let patch = match patch {
                Some(p) if !p.0.is_empty() => Some(
                    base64::engine::general_purpose::STANDARD
                        .encode(serde_json::to_vec(p).map_err(internal)?),
                ),
                _ => None,
            };
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
    .map_err(internal)
}

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
