//! Golden fixtures: every `fixtures/NN-name.pod.yaml` is reviewed (with the flags in
//! `NN-name.args`, if any), and the outcome — patch, mutated pod, warnings or deny
//! message — must equal `NN-name.expected.yaml`. Every mutated pod is validated with
//! kubernetes-validate and reviewed again, which must change nothing.
//! `UPDATE_GOLDEN=1 cargo test -p secrets-injector-webhook --test mutate_fixtures`
//! rewrites the expected files; review the diff before committing it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use k8s_openapi::api::core::v1::Pod;
use secrets_injector_shared::{AgentConfig, keys, parse_annotations};
use secrets_injector_tests::kubernetes_validate;
use secrets_injector_webhook::review::{Outcome, review};
use secrets_injector_webhook::template::AgentTemplate;
use secrets_injector_webhook::{AGENT_CONTAINER, AGENT_INIT_CONTAINER, IDENTITY_ENV};
use serde_json::{Value, json};

use common::fixtures_dir;

/// Every fixture pod (as JSON) with the agent template of its `.args`, sorted.
fn fixtures() -> Vec<(String, Value)> {
    common::fixture_stems()
        .into_iter()
        .map(|(stem, _)| {
            let pod = common::fixture(&stem);
            (stem, pod)
        })
        .collect()
}

fn settings_for(stem: &str) -> AgentTemplate {
    let (_, args) = common::fixture_stems()
        .into_iter()
        .find(|(s, _)| s == stem)
        .unwrap_or_else(|| panic!("no fixture {stem}"));
    common::template(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

/// The reviewed outcome as a reviewable document, and the mutated pod if patched.
fn record(pod_value: &Value, outcome: &Outcome) -> (Value, Option<Value>) {
    match outcome {
        Outcome::Denied(message) => (json!({"outcome": "denied", "message": message}), None),
        Outcome::Allowed {
            patch: None,
            warnings,
        } => (json!({"outcome": "unchanged", "warnings": warnings}), None),
        Outcome::Allowed {
            patch: Some(patch),
            warnings,
        } => {
            let mut mutated = pod_value.clone();
            json_patch::patch(&mut mutated, patch).expect("patch applies to its own pod");
            (
                json!({"outcome": "patched", "warnings": warnings, "patch": patch, "pod": mutated}),
                Some(mutated),
            )
        }
    }
}

fn agents(pod: &Value) -> Vec<&Value> {
    ["initContainers", "containers"]
        .iter()
        .filter_map(|l| pod["spec"][l].as_array())
        .flatten()
        .filter(|c| c["name"] == AGENT_CONTAINER || c["name"] == AGENT_INIT_CONTAINER)
        .collect()
}

/// What the webhook hands the agent derives from the annotations alone (refs, never
/// values), and no other app env reaches the patch.
fn assert_only_refs(stem: &str, input: &Value, mutated: &Value, patch_text: &str) {
    let annotations = serde_json::from_value(input["metadata"]["annotations"].clone()).unwrap();
    let wanted = parse_annotations(&annotations)
        .into_result()
        .unwrap()
        .unwrap()
        .config;
    for agent in agents(mutated) {
        let env = agent["env"].as_array().unwrap();
        let cfg = env
            .iter()
            .find(|e| e["name"] == keys::CONFIG_ENV)
            .and_then(|e| e["value"].as_str())
            .unwrap_or_else(|| panic!("{stem}: agent without {}", keys::CONFIG_ENV));
        let mut cfg = AgentConfig::from_json(cfg).unwrap();
        cfg.owner = None;
        assert_eq!(cfg, wanted, "{stem}: agent config is not the annotations'");
    }
    let app_env = ["initContainers", "containers"]
        .iter()
        .filter_map(|l| input["spec"][l].as_array())
        .flatten()
        .filter_map(|c| c["env"].as_array())
        .flatten();
    for e in app_env {
        let name = e["name"].as_str().unwrap();
        if let Some(v) = e["value"]
            .as_str()
            .filter(|_| !IDENTITY_ENV.contains(&name))
        {
            assert!(
                !patch_text.contains(v),
                "{stem}: app env {name} leaked into the patch"
            );
        }
    }
}

#[test]
fn golden_fixtures() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1");
    let all = fixtures();
    assert!(
        all.len() >= 14,
        "expected at least 14 fixtures, found {}",
        all.len()
    );
    let mut mutated_pods = Vec::new();
    let mut failures = Vec::new();
    for (stem, pod_value) in &all {
        let settings = settings_for(stem);
        let pod: Pod = serde_json::from_value(pod_value.clone()).unwrap();
        let outcome = review(&pod, &settings);
        let (actual, mutated) = record(pod_value, &outcome);
        let expected_path = fixtures_dir().join(format!("{stem}.expected.yaml"));
        if update {
            std::fs::write(&expected_path, serde_yaml_ng::to_string(&actual).unwrap()).unwrap();
        } else {
            let text = std::fs::read_to_string(&expected_path).unwrap_or_else(|_| {
                panic!(
                    "{} missing: run with UPDATE_GOLDEN=1 and review it",
                    expected_path.display()
                )
            });
            let expected: Value = serde_yaml_ng::from_str(&text).unwrap();
            if expected != actual {
                failures.push(format!(
                    "{stem}: outcome differs from {stem}.expected.yaml; got:\n{}",
                    serde_yaml_ng::to_string(&actual).unwrap()
                ));
            }
        }
        if let Some(mutated) = mutated {
            let patch_text = actual["patch"].to_string();
            if !stem.contains("reinvocation") {
                assert_only_refs(stem, pod_value, &mutated, &patch_text);
            }
            let again: Pod = serde_json::from_value(mutated.clone()).unwrap();
            assert_eq!(
                review(&again, &settings),
                Outcome::Allowed {
                    patch: None,
                    warnings: vec![]
                },
                "{stem}: reviewing the mutated pod again must change nothing"
            );
            mutated_pods.push((stem.clone(), mutated));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    let docs: Vec<String> = mutated_pods
        .iter()
        .map(|(_, p)| serde_yaml_ng::to_string(p).unwrap())
        .collect();
    if let Err(e) = kubernetes_validate(&docs.join("---\n")) {
        // Name the offending fixtures.
        let bad: Vec<&str> = mutated_pods
            .iter()
            .zip(&docs)
            .filter(|(_, d)| kubernetes_validate(d).is_err())
            .map(|((s, _), _)| s.as_str())
            .collect();
        panic!("mutated pods of {bad:?} are invalid:\n{e}");
    }
}

#[test]
fn reinvocation_patch_only_touches_the_agent() {
    let (stem, pod_value) = fixtures()
        .into_iter()
        .find(|(s, _)| s.contains("reinvocation"))
        .expect("a reinvocation fixture");
    let pod: Pod = serde_json::from_value(pod_value).unwrap();
    let Outcome::Allowed {
        patch: Some(patch), ..
    } = review(&pod, &settings_for(&stem))
    else {
        panic!("{stem}: expected a patch");
    };
    assert!(!patch.0.is_empty());
    for op in &patch.0 {
        let path = op.path().to_string();
        assert!(
            path.starts_with("/spec/initContainers/0/env")
                || path.starts_with("/spec/initContainers/0/volumeMounts"),
            "{stem}: {path} is outside the agent's env and mounts"
        );
    }
}

/// The same fixtures through the real router (`routes::router` + `oneshot`, as
/// the API server's request would travel): the answer carries exactly the
/// outcome the golden files pin — deny message, base64 patch, warnings.
#[tokio::test]
async fn golden_fixtures_through_the_router_give_the_same_answers() {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use base64::Engine;
    use http_body_util::BodyExt;
    use secrets_injector_webhook::metrics::Metrics;
    use secrets_injector_webhook::routes::{self, AppState};
    use std::sync::Arc;
    use tower::ServiceExt;

    for (stem, pod_value) in fixtures() {
        let settings = settings_for(&stem);
        let pod: Pod = serde_json::from_value(pod_value.clone()).unwrap();
        let direct = review(&pod, &settings);
        let app = routes::router(AppState {
            template: Arc::new(settings),
            metrics: Arc::new(Metrics::new()),
            request_timeout: std::time::Duration::from_secs(10),
        });
        let body = serde_json::to_vec(&secrets_injector_tests::pods::admission_review(
            &pod_value, "demo", &stem,
        ))
        .unwrap();
        let req = Request::post("/mutate")
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap();
        let resp = app.oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{stem}");
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let answer: Value = serde_json::from_slice(&bytes).unwrap();
        let r = &answer["response"];
        assert_eq!(r["uid"], stem.as_str(), "{stem}: uid echoed");
        match direct {
            Outcome::Denied(message) => {
                assert_eq!(r["allowed"], false, "{stem}");
                assert_eq!(r["status"]["message"], message.as_str(), "{stem}");
                assert!(r.get("patch").is_none(), "{stem}: a deny carries no patch");
            }
            Outcome::Allowed { patch, warnings } => {
                assert_eq!(r["allowed"], true, "{stem}");
                let got = r["patch"].as_str().map(|b64| {
                    let raw = base64::engine::general_purpose::STANDARD
                        .decode(b64)
                        .unwrap();
                    serde_json::from_slice::<Value>(&raw).unwrap()
                });
                let want = patch
                    .filter(|p| !p.0.is_empty())
                    .map(|p| serde_json::to_value(p).unwrap());
                assert_eq!(got, want, "{stem}: patch");
                if want.is_some() {
                    assert_eq!(r["patchType"], "JSONPatch", "{stem}");
                }
                let got_warnings: Vec<String> =
                    serde_json::from_value(r.get("warnings").cloned().unwrap_or(json!([])))
                        .unwrap();
                assert_eq!(got_warnings, warnings, "{stem}: warnings");
            }
        }
    }
}
