//! The admission HTTP app: `POST /mutate` turns an AdmissionReview v1 into a
//! response via [`crate::review::review`]. Policy denials are AdmissionResponses
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
use kube::core::admission::{AdmissionRequest, Operation};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::TimeoutLayer;

use crate::admission::{self, Rejected};
use crate::large;
use crate::metrics::{AdmissionOutcome, Metrics};
use crate::review::{Outcome, review};
use crate::template::AgentTemplate;

/// Largest accepted request body (the API server sends at most ~3 MiB objects).
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// What the admission handler needs.
#[derive(Debug, Clone)]
pub struct AppState {
    pub template: Arc<AgentTemplate>,
    pub metrics: Arc<Metrics>,
    pub request_timeout: Duration,
}

/// The admission router with its protective layers (body limit, timeout, panic catcher).
pub fn router(state: AppState) -> Router {
    let timeout = state.request_timeout;
    protect(
        Router::new()
            .route("/mutate", post(admit))
            .method_not_allowed_fallback(|| async {
                json_error(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "only POST is served on /mutate",
                )
            })
            .fallback(|| async {
                json_error(
                    StatusCode::NOT_FOUND,
                    "not found: admission reviews are served on POST /mutate",
                )
            })
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

/// A JSON error body for requests that are not for the admission route at all.
fn json_error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
}

fn bad(status: StatusCode, message: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message + "\n",
    )
        .into_response()
}

/// Bodies larger than this are reviewed on the large-review thread ([`large`]),
/// so a few huge requests cannot hold the async workers (and the timeout) hostage.
const INLINE_BODY_BYTES: usize = 256 * 1024;

async fn admit(State(state): State<AppState>, body: Result<Bytes, BytesRejection>) -> Response {
    let started = Instant::now();
    let result = match body.map_err(body_rejected) {
        Err(e) => Err(e),
        Ok(bytes) if bytes.len() <= INLINE_BODY_BYTES => answer(&bytes, &state.template),
        Ok(bytes) => {
            let template = Arc::clone(&state.template);
            match large::review(move || answer(&bytes, &template)).await {
                Ok(answered) => answered,
                Err(large::Refused::Busy) => Err(Rejected {
                    status: 503,
                    message: format!(
                        "busy: {} large (over {} KiB) admission requests are already waiting to be reviewed",
                        large::QUEUE,
                        INLINE_BODY_BYTES >> 10
                    ),
                }),
                Err(large::Refused::Failed) => Err(Rejected {
                    status: 500,
                    message: "internal error while reviewing a large admission request".into(),
                }),
            }
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    match result {
        Ok((json, outcome, req)) => {
            state.metrics.admission(outcome, seconds);
            log_admission(&req, outcome, seconds);
            ([(header::CONTENT_TYPE, "application/json")], json).into_response()
        }
        Err(Rejected { status, message }) => {
            state.metrics.admission(AdmissionOutcome::Error, seconds);
            tracing::warn!(status, error = %message, "rejected a malformed admission request");
            bad(
                StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
                message,
            )
        }
    }
}

/// Decode, review and encode one request (CPU only, no I/O).
fn answer(
    bytes: &[u8],
    template: &AgentTemplate,
) -> Result<(Vec<u8>, AdmissionOutcome, AdmissionRequest<Pod>), Rejected> {
    let req = admission::decode(bytes)?;
    let (outcome, label) = match admission::pod_to_review(&req) {
        Some(pod) => {
            let outcome = review(pod, template);
            let label = outcome_label(&outcome);
            (outcome, label)
        }
        None => (Outcome::unchanged(), AdmissionOutcome::Skipped),
    };
    Ok((admission::encode(&req.uid, &outcome)?, label, req))
}

fn body_rejected(rejection: BytesRejection) -> Rejected {
    let status = rejection.status();
    let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
        format!(
            "request body exceeds the {} MiB limit for an AdmissionReview",
            MAX_BODY_BYTES >> 20
        )
    } else {
        format!("cannot read the request body: {rejection}")
    };
    Rejected {
        status: status.as_u16(),
        message,
    }
}

/// The metrics label of a reviewed pod.
fn outcome_label(outcome: &Outcome) -> AdmissionOutcome {
    match outcome {
        Outcome::Denied(_) => AdmissionOutcome::Denied,
        Outcome::Allowed { patch: Some(p), .. } if !p.0.is_empty() => AdmissionOutcome::Injected,
        Outcome::Allowed { .. } => AdmissionOutcome::Skipped,
    }
}

/// The operation's name in the log line (`Create`, as its `Debug` prints it).
fn operation_name(op: &Operation) -> &'static str {
    match op {
        Operation::Create => "Create",
        Operation::Update => "Update",
        Operation::Delete => "Delete",
        Operation::Connect => "Connect",
    }
}

fn log_admission(req: &AdmissionRequest<Pod>, outcome: AdmissionOutcome, seconds: f64) {
    let meta = req.object.as_ref().map(|o| &o.metadata);
    let name = meta
        .and_then(|m| m.name.as_deref())
        .unwrap_or(req.name.as_str());
    let generate_name = meta.and_then(|m| m.generate_name.as_deref()).unwrap_or("");
    // Strings, not `%`/`?` captures: recorded as they are, not formatted first.
    tracing::info!(
        uid = req.uid.as_str(),
        namespace = req.namespace.as_deref().unwrap_or(""),
        kind = req.kind.kind.as_str(),
        operation = operation_name(&req.operation),
        pod = name,
        generate_name,
        dry_run = req.dry_run,
        outcome = outcome.as_str(),
        duration_ms = seconds * 1000.0,
        "admission"
    );
}
