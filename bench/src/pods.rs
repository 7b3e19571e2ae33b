//! The pods the webhook is measured with: a typical one (3 containers, 5
//! secrets, IRSA env) and a large one (20 containers, 50 secrets).

use serde_json::{Map, Value, json};

/// Identity env an EKS pod with IRSA carries (added by the EKS pod identity webhook).
fn irsa_env() -> Value {
    json!([
        {"name": "AWS_REGION", "value": "eu-west-1"},
        {"name": "AWS_DEFAULT_REGION", "value": "eu-west-1"},
        {"name": "AWS_STS_REGIONAL_ENDPOINTS", "value": "regional"},
        {"name": "AWS_ROLE_ARN", "value": "arn:aws:iam::123456789012:role/app"},
        {"name": "AWS_WEB_IDENTITY_TOKEN_FILE",
         "value": "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"}
    ])
}

fn container(i: usize) -> Value {
    json!({
        "name": format!("app-{i}"),
        "image": format!("registry.example/app-{i}:1.0"),
        "ports": [{"containerPort": 8080 + i, "name": format!("http-{i}")}],
        "env": irsa_env(),
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
        "volumeMounts": [
            {"name": "aws-iam-token", "mountPath": "/var/run/secrets/eks.amazonaws.com/serviceaccount", "readOnly": true},
            {"name": "kube-api-access-abcde", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true}
        ]
    })
}

/// A pod with `containers` app containers and `secrets` annotations
/// (every fifth an SSM parameter, every fourth rendered as dotenv).
pub fn pod(containers: usize, secrets: usize) -> Value {
    let mut ann = Map::new();
    ann.insert("secrets-injector.io/mode".into(), json!("init"));
    for i in 0..secrets {
        let source = if i % 5 == 4 {
            format!("ssm:/prod/app/param-{i}")
        } else {
            format!("prod/app/secret-{i}")
        };
        ann.insert(
            format!("secrets-injector.io/secret-s{i}.env"),
            json!(source),
        );
        if i % 4 == 3 {
            ann.insert(
                format!("secrets-injector.io/format-s{i}.env"),
                json!("dotenv"),
            );
        }
    }
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": format!("bench-{containers}c-{secrets}s"),
            "namespace": "bench",
            "labels": {"app": "bench", "pod-template-hash": "5d8f7c9b6"},
            "annotations": ann,
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                "name": "bench-5d8f7c9b6", "uid": "0e7f9d3c-1111-2222-3333-444455556666",
                "controller": true, "blockOwnerDeletion": true}]
        },
        "spec": {
            "serviceAccountName": "app",
            "securityContext": {"runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 2000},
            "containers": (0..containers).map(container).collect::<Vec<_>>(),
            "volumes": [
                {"name": "aws-iam-token", "projected": {"sources": [{"serviceAccountToken":
                    {"audience": "sts.amazonaws.com", "expirationSeconds": 86400, "path": "token"}}]}},
                {"name": "kube-api-access-abcde", "projected": {"sources": [{"serviceAccountToken":
                    {"expirationSeconds": 3607, "path": "token"}}]}}
            ]
        }
    })
}

/// 3 containers, 5 secrets, IRSA env.
pub fn typical() -> Value {
    pod(3, 5)
}

/// 20 containers, 50 secrets.
pub fn large() -> Value {
    pod(20, 50)
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrets_injector_shared::parse_annotations;

    fn annotations(pod: &Value) -> std::collections::BTreeMap<String, String> {
        pod["metadata"]["annotations"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
            .collect()
    }

    #[test]
    fn shapes_are_as_named() {
        for (p, c, s) in [(typical(), 3, 5), (large(), 20, 50)] {
            assert_eq!(p["spec"]["containers"].as_array().map(Vec::len), Some(c));
            let n = annotations(&p)
                .keys()
                .filter(|k| k.starts_with(secrets_injector_shared::keys::SECRET_PREFIX))
                .count();
            assert_eq!(n, s);
        }
    }

    #[test]
    fn pods_are_valid_kubernetes_and_typed() {
        for p in [typical(), large()] {
            let _: k8s_openapi::api::core::v1::Pod = serde_json::from_value(p.clone()).unwrap();
            let yaml = serde_yaml_ng::to_string(&p).unwrap();
            secrets_injector_tests::kubernetes_validate(&yaml).unwrap();
        }
    }

    #[test]
    fn annotations_parse_without_problems() {
        for p in [typical(), large()] {
            let req = parse_annotations(&annotations(&p)).into_result();
            assert!(matches!(req, Ok(Some(_))), "{req:?}");
        }
    }
}
