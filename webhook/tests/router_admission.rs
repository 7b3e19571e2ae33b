//! The admission router driven in-process with `oneshot`: envelope, pass-through,
//! dryRun, deny, warnings, malformed requests, panics, and metrics.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use base64::Engine;
use http_body_util::BodyExt;
use secrets_injector_webhook::metrics::Metrics;
use secrets_injector_webhook::routes::{self, AppState, MAX_BODY_BYTES};
use serde_json::{Value, json};
use tower::ServiceExt;

fn state(args: &[&str]) -> AppState {
    AppState {
        template: Arc::new(common::template(args)),
        metrics: Arc::new(Metrics::new()),
        request_timeout: Duration::from_secs(10),
    }
}

async fn call(app: &Router, body: impl Into<Body>) -> (StatusCode, Vec<u8>) {
    let req = Request::post("/mutate")
        .header("content-type", "application/json")
        .body(body.into())
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    (
        status,
        resp.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
}

async fn call_json(app: &Router, review: &Value) -> Value {
    let (status, body) = call(app, serde_json::to_vec(review).unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap()
}

fn patch_ops(resp: &Value) -> Option<Vec<Value>> {
    let b64 = resp["response"]["patch"].as_str()?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    Some(serde_json::from_slice(&raw).unwrap())
}

/// A good request still gets a proper answer (run after every bad one).
async fn assert_still_serves(app: &Router) {
    let resp = call_json(
        app,
        &common::review(&common::simple_pod(), "CREATE", "after"),
    )
    .await;
    assert_eq!(resp["response"]["uid"], "after");
    assert_eq!(resp["response"]["allowed"], true);
}

#[tokio::test]
async fn pod_create_gets_a_v1_response_with_the_uid_and_a_json_patch() {
    let app = routes::router(state(&[]));
    let resp = call_json(
        &app,
        &common::review(&common::simple_pod(), "CREATE", "uid-1"),
    )
    .await;
    assert_eq!(resp["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(resp["kind"], "AdmissionReview");
    assert_eq!(resp["response"]["uid"], "uid-1");
    assert_eq!(resp["response"]["allowed"], true);
    assert_eq!(resp["response"]["patchType"], "JSONPatch");
    let ops = patch_ops(&resp).expect("an injected pod has a patch");
    assert!(!ops.is_empty());
}

#[tokio::test]
async fn a_pod_without_secrets_is_allowed_without_a_patch() {
    let app = routes::router(state(&[]));
    let pod = common::fixture("10-no-secrets");
    let resp = call_json(&app, &common::review(&pod, "CREATE", "u")).await;
    assert_eq!(resp["response"]["allowed"], true);
    assert!(resp["response"].get("patch").is_none(), "{resp}");
    assert!(resp["response"].get("patchType").is_none(), "{resp}");
}

#[tokio::test]
async fn other_kinds_and_operations_are_allowed_unchanged() {
    let app = routes::router(state(&[]));
    let mut cm = common::review(&common::simple_pod(), "CREATE", "cm");
    cm["request"]["kind"] = json!({"group": "", "version": "v1", "kind": "ConfigMap"});
    cm["request"]["object"] =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
    let update = common::review(&common::simple_pod(), "UPDATE", "up");
    let mut delete = common::review(&common::simple_pod(), "DELETE", "del");
    delete["request"]["object"] = Value::Null;
    let mut sub = common::review(&common::simple_pod(), "CREATE", "sub");
    sub["request"]["subResource"] = json!("ephemeralcontainers");
    for review in [cm, update, delete, sub] {
        let uid = review["request"]["uid"].clone();
        let resp = call_json(&app, &review).await;
        assert_eq!(resp["response"]["uid"], uid);
        assert_eq!(resp["response"]["allowed"], true, "{uid}");
        assert!(resp["response"].get("patch").is_none(), "{uid}: {resp}");
    }
}

#[tokio::test]
async fn dry_run_gets_the_identical_response() {
    let app = routes::router(state(&[]));
    let wet = common::review(&common::simple_pod(), "CREATE", "same");
    let mut dry = wet.clone();
    dry["request"]["dryRun"] = json!(true);
    assert_eq!(call_json(&app, &wet).await, call_json(&app, &dry).await);
}

/// A review with Go-style `null`s (`name: null` for a generateName pod) takes
/// the careful decoding path; the answer must match the one-pass typed path.
#[tokio::test]
async fn go_nulls_in_the_request_get_the_same_answer_as_the_typed_path() {
    let app = routes::router(state(&[]));
    let typed = common::review(&common::simple_pod(), "CREATE", "same");
    let mut with_nulls = typed.clone();
    with_nulls["request"]["name"] = Value::Null;
    with_nulls["request"]["requestSubResource"] = Value::Null;
    let a = call_json(&app, &typed).await;
    assert!(patch_ops(&a).is_some_and(|ops| !ops.is_empty()), "{a}");
    assert_eq!(a, call_json(&app, &with_nulls).await);
}

#[tokio::test]
async fn invalid_annotations_are_denied_with_one_message_and_http_200() {
    let app = routes::router(state(&[]));
    let pod = common::fixture("12-invalid-annotations");
    let resp = call_json(&app, &common::review(&pod, "CREATE", "deny")).await;
    assert_eq!(resp["response"]["uid"], "deny");
    assert_eq!(resp["response"]["allowed"], false);
    assert!(resp["response"].get("patch").is_none());
    let msg = resp["response"]["status"]["message"].as_str().unwrap();
    for key in [
        "secrets-injector.io/secret-db",
        "secrets-injector.io/refresh-interval",
    ] {
        assert!(msg.contains(key), "{msg}");
    }
}

#[tokio::test]
async fn warnings_reach_the_response() {
    let app = routes::router(state(&["--sidecar-style", "classic"]));
    let pod = common::fixture("08-sidecar-classic-job");
    let resp = call_json(&app, &common::review(&pod, "CREATE", "w")).await;
    let warnings = resp["response"]["warnings"].as_array().expect("warnings");
    assert!(!warnings.is_empty());
}

#[tokio::test]
async fn malformed_requests_get_a_4xx_naming_the_problem() {
    let st = state(&[]);
    let app = routes::router(st.clone());
    let good = common::review(&common::simple_pod(), "CREATE", "x");
    let with = |f: &dyn Fn(&mut Value)| {
        let mut v = good.clone();
        f(&mut v);
        serde_json::to_vec(&v).unwrap()
    };
    let cases: Vec<(&str, Vec<u8>, StatusCode, &str)> = vec![
        (
            "empty",
            vec![],
            StatusCode::BAD_REQUEST,
            "empty request body",
        ),
        (
            "blank",
            b"  \n".to_vec(),
            StatusCode::BAD_REQUEST,
            "empty request body",
        ),
        (
            "not json",
            b"hello".to_vec(),
            StatusCode::BAD_REQUEST,
            "not JSON",
        ),
        (
            "array",
            b"[1,2]".to_vec(),
            StatusCode::BAD_REQUEST,
            "not a JSON object",
        ),
        (
            "v1beta1",
            with(&|v| v["apiVersion"] = json!("admission.k8s.io/v1beta1")),
            StatusCode::BAD_REQUEST,
            "only admission.k8s.io/v1 AdmissionReview",
        ),
        (
            "wrong kind",
            with(&|v| v["kind"] = json!("Pod")),
            StatusCode::BAD_REQUEST,
            "unsupported apiVersion/kind",
        ),
        (
            "no request",
            with(&|v| {
                v.as_object_mut().unwrap().remove("request");
            }),
            StatusCode::BAD_REQUEST,
            "has no request",
        ),
        (
            "null request",
            with(&|v| v["request"] = Value::Null),
            StatusCode::BAD_REQUEST,
            "has no request",
        ),
        (
            "request without uid",
            with(&|v| {
                v["request"].as_object_mut().unwrap().remove("uid");
            }),
            StatusCode::BAD_REQUEST,
            "missing field `uid`",
        ),
        (
            "no object",
            with(&|v| {
                v["request"].as_object_mut().unwrap().remove("object");
            }),
            StatusCode::BAD_REQUEST,
            "request.object is missing",
        ),
        (
            "object not a pod",
            with(&|v| {
                v["request"]["object"] =
                    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}})
            }),
            StatusCode::BAD_REQUEST,
            "not a v1 Pod",
        ),
        (
            "object not a valid pod",
            with(&|v| v["request"]["object"]["spec"]["containers"] = json!("x")),
            StatusCode::BAD_REQUEST,
            "request.object is not a valid Pod",
        ),
        (
            "oversized",
            vec![b' '; MAX_BODY_BYTES + 1],
            StatusCode::PAYLOAD_TOO_LARGE,
            "exceeds the 3 MiB limit",
        ),
    ];
    let n = cases.len();
    for (name, body, status, needle) in cases {
        let (got, text) = call(&app, body).await;
        let text = String::from_utf8_lossy(&text);
        assert_eq!(got, status, "{name}: {text}");
        assert!(text.contains(needle), "{name}: {text:?} lacks {needle:?}");
        assert_still_serves(&app).await;
    }
    let m = st.metrics.encode();
    assert_eq!(
        common::metric(
            &m,
            "secrets_injector_admission_requests_total{outcome=\"error\"}"
        ),
        n as f64
    );
}

#[tokio::test]
async fn body_just_under_the_limit_is_read_not_rejected_for_size() {
    let app = routes::router(state(&[]));
    let mut review = common::review(&common::simple_pod(), "CREATE", "big");
    let pad = "a".repeat(MAX_BODY_BYTES - 64 * 1024);
    review["request"]["object"]["metadata"]["labels"] = json!({ "pad": "x" });
    review["request"]["userInfo"]["extra"] = json!({ "pad": [pad] });
    let resp = call_json(&app, &review).await;
    assert_eq!(resp["response"]["uid"], "big");
}

#[tokio::test]
async fn a_type_error_does_not_echo_the_offending_value() {
    let app = routes::router(state(&[]));
    let canary = "CANARY-not-a-secret-9f2c";
    let mut review = common::review(&common::simple_pod(), "CREATE", "c");
    review["request"]["object"]["spec"]["containers"] = json!(canary);
    let (status, body) = call(&app, serde_json::to_vec(&review).unwrap()).await;
    let text = String::from_utf8_lossy(&body);
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(text.contains("expected a sequence"), "{text}");
    assert!(!text.contains(canary), "{text}");
}

async fn boom() -> &'static str {
    panic!("handler bug")
}

#[tokio::test]
async fn a_panicking_handler_becomes_a_500_and_the_app_keeps_serving() {
    let app = routes::protect(
        Router::new()
            .route("/boom", get(boom))
            .route("/ok", get(|| async { "ok" })),
        Duration::from_secs(10),
    );
    let get_status = |path: &'static str| {
        let app = app.clone();
        async move {
            let req = Request::get(path).body(Body::empty()).unwrap();
            app.oneshot(req).await.unwrap().status()
        }
    };
    assert_eq!(get_status("/boom").await, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(get_status("/ok").await, StatusCode::OK);
}

#[tokio::test]
async fn a_hanging_handler_times_out_instead_of_hanging() {
    let app = routes::protect(
        Router::new().route(
            "/slow",
            get(|| async { std::future::pending::<()>().await }),
        ),
        Duration::from_millis(200),
    );
    let req = Request::get("/slow").body(Body::empty()).unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(60), app.oneshot(req))
        .await
        .expect("the timeout layer answers")
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn outcomes_are_counted() {
    let st = state(&[]);
    let app = routes::router(st.clone());
    call_json(&app, &common::review(&common::simple_pod(), "CREATE", "a")).await;
    call_json(
        &app,
        &common::review(&common::fixture("10-no-secrets"), "CREATE", "b"),
    )
    .await;
    call_json(
        &app,
        &common::review(&common::fixture("12-invalid-annotations"), "CREATE", "c"),
    )
    .await;
    let m = st.metrics.encode();
    for outcome in ["injected", "skipped", "denied"] {
        let series = format!("secrets_injector_admission_requests_total{{outcome=\"{outcome}\"}}");
        assert_eq!(common::metric(&m, &series), 1.0, "{outcome}");
    }
    assert_eq!(
        common::metric(&m, "secrets_injector_admission_duration_seconds_count"),
        3.0
    );
}

#[tokio::test]
async fn unknown_paths_and_methods_get_json_errors() {
    let app = routes::router(state(&[]));
    let send = |method: &str, path: &str| {
        Request::builder()
            .method(method)
            .uri(path)
            .body(Body::empty())
            .unwrap()
    };
    for (method, path, status, words) in [
        (
            "GET",
            "/mutate",
            StatusCode::METHOD_NOT_ALLOWED,
            "only POST",
        ),
        ("POST", "/nope", StatusCode::NOT_FOUND, "POST /mutate"),
    ] {
        let resp = app.clone().oneshot(send(method, path)).await.unwrap();
        assert_eq!(resp.status(), status, "{method} {path}");
        assert_eq!(
            resp.headers()["content-type"],
            "application/json",
            "{method} {path}"
        );
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert!(
            v["error"].as_str().unwrap().contains(words),
            "{method} {path}: {v}"
        );
    }
}

#[tokio::test]
async fn json_nested_too_deep_is_reported_as_such() {
    let app = routes::router(state(&[]));
    let deep = format!(
        "{{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"request\":{}{}}}",
        "[".repeat(200),
        "]".repeat(200)
    );
    let (status, body) = call(&app, deep).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let text = String::from_utf8_lossy(&body);
    assert!(
        text.contains("nested deeper than JSON's 128-level limit"),
        "{text}"
    );
}

#[tokio::test]
async fn a_large_review_is_answered_like_a_small_one() {
    // Over the inline threshold (256 KiB): reviewed on the large-review thread.
    let app = routes::router(state(&[]));
    let mut pod = common::simple_pod();
    pod["metadata"]["annotations"]["padding.example/blob"] = json!("x".repeat(400 * 1024));
    let resp = call_json(&app, &common::review(&pod, "CREATE", "big")).await;
    assert_eq!(resp["response"]["uid"], "big");
    assert_eq!(resp["response"]["allowed"], true);
    assert!(patch_ops(&resp).is_some(), "the large pod is injected too");
}
