//! The admission HTTP app: `POST /mutate` turns an AdmissionReview v1 into a
//! response via [`crate::mutate::review`]. Policy denials are AdmissionResponses
//! (HTTP 200); only requests that are not AdmissionReviews get HTTP 4xx.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use k8s_openapi::api::core::v1::Pod;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use serde_json::Value;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::TimeoutLayer;

use crate::metrics::{AdmissionOutcome, Metrics};
use crate::mutate::{self, Outcome};
use crate::settings::Settings;

/// Largest accepted request body (the API server sends at most ~3 MiB objects).
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

const API_VERSION: &str = "admission.k8s.io/v1";
const KIND: &str = "AdmissionReview";

/// What the admission handler needs.
#[derive(Debug, Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub metrics: Arc<Metrics>,
    pub request_timeout: Duration,
}

/// The admission router with its protective layers (body limit, timeout, panic catcher).
pub fn router(state: AppState) -> Router {
    let timeout = state.request_timeout;
    protect(
        Router::new()
            .route("/mutate", post(mutate))
            .with_state(state),
        timeout,
    )
}

/// Layers every admission route gets: a handler panic becomes HTTP 500, a slow
/// handler HTTP 503 after `timeout`, a body over [`MAX_BODY_BYTES`] HTTP 413.
pub fn protect(router: Router, timeout: Duration) -> Router {
    router
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            timeout,
        ))
        .layer(CatchPanicLayer::custom(|_panic| {
            tracing::error!("admission handler panicked; the request failed, the server goes on");
            bad(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error while handling the admission request".into(),
            )
        }))
}

/// A request answered with an HTTP error (4xx, or 500 for our own bug) instead of a review.
#[derive(Debug)]
struct Rejected(StatusCode, String);

fn bad(status: StatusCode, message: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message + "\n",
    )
        .into_response()
}

async fn mutate(State(state): State<AppState>, body: Result<Bytes, BytesRejection>) -> Response {
    let started = Instant::now();
    let result = body
        .map_err(|rejection| {
            let status = rejection.status();
            if status == StatusCode::PAYLOAD_TOO_LARGE {
                Rejected(
                    status,
                    format!(
                        "request body exceeds the {} MiB limit for an AdmissionReview",
                        MAX_BODY_BYTES >> 20
                    ),
                )
            } else {
                Rejected(status, format!("cannot read the request body: {rejection}"))
            }
        })
        .and_then(|bytes| parse_review(&bytes))
        .and_then(|req| Ok((respond(&req, &state.settings)?, req)));
    let seconds = started.elapsed().as_secs_f64();
    match result {
        Ok(((response, outcome), req)) => {
            state.metrics.admission(outcome, seconds);
            log_admission(&req, outcome, seconds);
            axum::Json(review_json(response)).into_response()
        }
        Err(Rejected(status, message)) => {
            state.metrics.admission(AdmissionOutcome::Error, seconds);
            tracing::warn!(status = status.as_u16(), error = %message, "rejected a malformed admission request");
            bad(status, message)
        }
    }
}

/// Parse and check the envelope: JSON, `admission.k8s.io/v1` `AdmissionReview`,
/// a `request`. `object` is kept only for Pod CREATE (the only thing reviewed).
fn parse_review(bytes: &[u8]) -> Result<AdmissionRequest<Pod>, Rejected> {
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
    let invalid = |m: String| Rejected(StatusCode::BAD_REQUEST, m);
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
        .map_err(|e| {
            Rejected(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot re-read the admission request: {}", describe(&e)),
            )
        })?;
    out.types = types;
    out.object = pod;
    Ok(out)
}

/// The envelope through `serde_json::Value`, naming what is wrong.
fn parse_dynamic(bytes: &[u8]) -> Result<AdmissionRequest<DynamicObject>, Rejected> {
    let invalid = |m: String| Rejected(StatusCode::BAD_REQUEST, m);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(invalid(format!(
            "empty request body: expected an {KIND} ({API_VERSION}) JSON object"
        )));
    }
    // Syntax errors only carry a position, never content.
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| invalid(format!("request body is not JSON: {e}")))?;
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

/// Decide the response. Only CREATE of Pods is reviewed; everything else is allowed unchanged.
fn respond(
    req: &AdmissionRequest<Pod>,
    settings: &Settings,
) -> Result<(AdmissionResponse, AdmissionOutcome), Rejected> {
    let allowed = AdmissionResponse::from(req);
    let pod = match &req.object {
        Some(pod) if is_pod_create(req) => pod,
        _ => return Ok((allowed, AdmissionOutcome::Skipped)),
    };
    match mutate::review(pod, req.namespace.as_deref(), settings) {
        Outcome::Denied(message) => Ok((allowed.deny(message), AdmissionOutcome::Denied)),
        Outcome::Allowed { patch, warnings } => {
            let mut response = allowed;
            if !warnings.is_empty() {
                response.warnings = Some(warnings);
            }
            match patch {
                Some(p) if !p.0.is_empty() => {
                    let response = with_patch(response, &p).map_err(|e| {
                        Rejected(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            format!("cannot encode the patch: {e}"),
                        )
                    })?;
                    Ok((response, AdmissionOutcome::Injected))
                }
                _ => Ok((response, AdmissionOutcome::Skipped)),
            }
        }
    }
}

/// The response envelope as the API server reads it: `patch` is a base64 string
/// (Go's `[]byte`), where kube-core would emit an array of numbers.
fn review_json(response: AdmissionResponse) -> Value {
    use base64::Engine;
    let patch = response.patch.clone();
    let mut value = serde_json::to_value(response.into_review()).unwrap_or(Value::Null);
    if let (Some(bytes), Some(slot)) = (patch, value.pointer_mut("/response/patch")) {
        *slot = Value::String(base64::engine::general_purpose::STANDARD.encode(bytes));
    }
    value
}

/// Attach a JSONPatch; kube-core speaks an older `json_patch`, so go through the
/// RFC 6902 JSON both versions share.
fn with_patch(
    response: AdmissionResponse,
    patch: &json_patch::Patch,
) -> Result<AdmissionResponse, String> {
    let json = serde_json::to_vec(patch).map_err(|e| e.to_string())?;
    let ops = serde_json::from_slice(&json).map_err(|e| e.to_string())?;
    response.with_patch(ops).map_err(|e| e.to_string())
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

fn log_admission(req: &AdmissionRequest<Pod>, outcome: AdmissionOutcome, seconds: f64) {
    let meta = req.object.as_ref().map(|o| &o.metadata);
    let name = meta
        .and_then(|m| m.name.as_deref())
        .unwrap_or(req.name.as_str());
    let generate_name = meta.and_then(|m| m.generate_name.as_deref()).unwrap_or("");
    tracing::info!(
        uid = %req.uid,
        namespace = req.namespace.as_deref().unwrap_or(""),
        kind = %req.kind.kind,
        operation = ?req.operation,
        pod = name,
        generate_name,
        dry_run = req.dry_run,
        outcome = outcome.as_str(),
        duration_ms = seconds * 1000.0,
        "admission"
    );
}
