//! `inject` (offline mutation) over every workload kind, multi-document input, pass-through
//! documents and denied templates; every output is validated with kubernetes-validate.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::process::{Command, Stdio};

use secrets_injector_tests::{kubernetes_validate, workspace_root};
use secrets_injector_webhook::error::Error;
use secrets_injector_webhook::inject_cli::run;
use secrets_injector_webhook::settings::{AgentFlags, SidecarStyle};
use secrets_injector_webhook::template::AgentTemplate;
use secrets_injector_webhook::{AGENT_CONTAINER, AGENT_INIT_CONTAINER};
use serde::Deserialize;
use serde_json::Value;

const ANNOTATIONS: &str = "
        secrets-injector.io/secret-db: prod/db
        secrets-injector.io/secret-key: ssm:/prod/key";

fn pod_spec(indent: usize) -> String {
    let pad = " ".repeat(indent);
    format!("{pad}containers:\n{pad}  - name: app\n{pad}    image: registry.example/app:1\n")
}

/// One document per workload kind, plus a ConfigMap, each asking for two secrets.
fn workloads() -> String {
    let template = |kind: &str, extra: &str| {
        format!(
            "apiVersion: apps/v1\nkind: {kind}\nmetadata:\n  name: w-{lower}\n  namespace: demo\n\
             spec:\n{extra}  selector:\n    matchLabels:\n      app: w\n  template:\n    metadata:\n      \
             labels:\n        app: w\n      annotations:{ANNOTATIONS}\n    spec:\n{spec}",
            lower = kind.to_lowercase(),
            spec = pod_spec(6)
        )
    };
    let docs = [
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  namespace: demo\n  annotations:{}\nspec:\n{}",
            ANNOTATIONS.replace("\n        ", "\n    "),
            pod_spec(2)
        ),
        template("Deployment", ""),
        template("StatefulSet", "  serviceName: w\n"),
        template("DaemonSet", ""),
        template("ReplicaSet", ""),
        format!(
            "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: w-job\nspec:\n  template:\n    metadata:\n      \
             annotations:{ANNOTATIONS}\n    spec:\n      restartPolicy: Never\n{}",
            pod_spec(6)
        ),
        format!(
            "apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: w-cron\nspec:\n  schedule: \"0 * * * *\"\n  \
             jobTemplate:\n    spec:\n      template:\n        metadata:\n          annotations:{}\n        \
             spec:\n          restartPolicy: OnFailure\n{}",
            ANNOTATIONS.replace("\n        ", "\n            "),
            pod_spec(10)
        ),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  a: \"1\"\n"
            .to_string(),
    ];
    docs.join("---\n")
}

fn docs(yaml: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(yaml)
        .map(|d| Value::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

fn template(doc: &Value) -> &Value {
    match doc["kind"].as_str().unwrap() {
        "Pod" => doc,
        "CronJob" => &doc["spec"]["jobTemplate"]["spec"]["template"],
        _ => &doc["spec"]["template"],
    }
}

fn container_names(pod: &Value, list: &str) -> Vec<String> {
    pod["spec"][list]
        .as_array()
        .map(|l| {
            l.iter()
                .map(|c| c["name"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn every_workload_kind_is_injected_and_other_documents_pass_through() {
    let input = workloads();
    let before = docs(&input);
    let out = run(&input, &AgentTemplate::default()).unwrap().yaml;
    let after = docs(&out);
    assert_eq!(after.len(), 8, "{out}");
    for (b, a) in before.iter().zip(&after) {
        let kind = b["kind"].as_str().unwrap();
        if kind == "ConfigMap" {
            assert_eq!(a, b, "ConfigMap passes through unchanged");
            continue;
        }
        let t = template(a);
        assert_eq!(
            container_names(t, "initContainers"),
            vec![AGENT_CONTAINER],
            "{kind}: agent is the first init container"
        );
        assert_eq!(
            t["metadata"]["annotations"]["secrets-injector.io/status"], "injected",
            "{kind}"
        );
        assert_eq!(
            t["spec"]["containers"][0]["volumeMounts"][0]["mountPath"], "/mnt/secrets",
            "{kind}"
        );
        if kind != "Pod" {
            assert_eq!(
                a["metadata"], b["metadata"],
                "{kind}: object metadata untouched"
            );
        }
    }
    kubernetes_validate(&out).unwrap_or_else(|e| panic!("{e}\n{out}"));
}

#[test]
fn injecting_the_output_again_changes_nothing() {
    let once = run(&workloads(), &AgentTemplate::default()).unwrap().yaml;
    let twice = run(&once, &AgentTemplate::default()).unwrap().yaml;
    assert_eq!(docs(&once), docs(&twice));
}

#[test]
fn denied_template_names_the_document_and_every_problem() {
    let input = format!(
        "{}---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  selector:\n    \
         matchLabels:\n      app: web\n  template:\n    metadata:\n      labels:\n        app: web\n      \
         annotations:\n        secrets-injector.io/secret-db: \"has space\"\n        \
         secrets-injector.io/containers: api\n    spec:\n{}",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n",
        pod_spec(6)
    );
    let err = run(&input, &AgentTemplate::default()).unwrap_err();
    assert!(matches!(err, Error::Denied { .. }), "{err:?}");
    let msg = err.to_string();
    for want in [
        "document 2 (Deployment/web): denied",
        "secrets-injector.io/secret-db: \"has space\" is not a valid Secrets Manager name",
        "secrets-injector.io/containers: container \"api\" does not exist",
    ] {
        assert!(msg.contains(want), "missing {want:?} in {msg}");
    }
}

#[test]
fn classic_sidecar_in_a_job_is_injected_with_a_warning_comment() {
    let input = format!(
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: report\nspec:\n  template:\n    metadata:\n      \
         annotations:\n        secrets-injector.io/mode: sidecar{ANNOTATIONS}\n    spec:\n      \
         restartPolicy: Never\n{}",
        pod_spec(6)
    );
    let settings = AgentTemplate {
        sidecar_style: SidecarStyle::Classic,
        ..AgentTemplate::default()
    };
    let out = run(&input, &settings).unwrap().yaml;
    assert!(
        out.starts_with("# warning: secrets-injector: this pod belongs to a Job"),
        "{out}"
    );
    let job = &docs(&out)[0];
    let t = template(job);
    assert_eq!(
        container_names(t, "initContainers"),
        vec![AGENT_INIT_CONTAINER]
    );
    assert_eq!(
        container_names(t, "containers"),
        vec!["app", AGENT_CONTAINER]
    );
    kubernetes_validate(&out).unwrap_or_else(|e| panic!("{e}\n{out}"));
}

#[test]
fn documents_without_secrets_empty_documents_and_unknown_kinds_pass_through() {
    let input = format!(
        "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: plain\nspec:\n{}---\n---\n\
         apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n  annotations:{ANNOTATIONS}\n",
        pod_spec(2)
    );
    let out = run(&input, &AgentTemplate::default()).unwrap();
    assert_eq!(docs(&out.yaml), docs(&input));
    assert!(out.notices.is_empty(), "{:?}", out.notices);
}

/// A pod template at the usual places of a pod-owning custom resource.
fn custom_resource(kind: &str, name: &str) -> String {
    format!(
        "apiVersion: example.com/v1\nkind: {kind}\nmetadata:\n  name: {name}\nspec:\n  template:\n    \
         metadata:\n      annotations:{ANNOTATIONS}\n    spec:\n{}",
        pod_spec(6)
    )
}

#[test]
fn lists_rollouts_and_pod_templates_are_injected() {
    let rollout = custom_resource("Rollout", "r").replace("example.com/v1", "argoproj.io/v1alpha1");
    let pod_template = format!(
        "apiVersion: v1\nkind: PodTemplate\nmetadata:\n  name: pt\ntemplate:\n  metadata:\n    \
         annotations:{}\n  spec:\n{}",
        ANNOTATIONS.replace("\n        ", "\n      "),
        pod_spec(4)
    );
    let list = format!(
        "apiVersion: v1\nkind: List\nitems:\n- {}",
        workloads()
            .split("---\n")
            .map(|d| d.trim_end().replace('\n', "\n  "))
            .collect::<Vec<_>>()
            .join("\n- ")
    );
    let input = [rollout, pod_template, list].join("---\n");
    let out = run(&input, &AgentTemplate::default()).unwrap();
    assert!(out.notices.is_empty(), "{:?}", out.notices);
    let docs = docs(&out.yaml);
    assert_eq!(
        container_names(&docs[0]["spec"]["template"], "initContainers"),
        vec![AGENT_CONTAINER],
        "Rollout"
    );
    assert_eq!(
        container_names(&docs[1]["template"], "initContainers"),
        vec![AGENT_CONTAINER],
        "PodTemplate"
    );
    let items = docs[2]["items"].as_array().unwrap();
    assert_eq!(items.len(), 8, "every workload and the ConfigMap");
    for item in items.iter().filter(|i| i["kind"] != "ConfigMap") {
        assert_eq!(
            container_names(template(item), "initContainers"),
            vec![AGENT_CONTAINER],
            "List item {}",
            item["kind"]
        );
    }
    assert_eq!(items[7]["kind"], "ConfigMap");
    assert!(items[7].get("spec").is_none());
    // The PodTemplate and the List of standard kinds are valid Kubernetes objects.
    let standard: Vec<String> = docs[1..]
        .iter()
        .map(|d| serde_yaml_ng::to_string(d).unwrap())
        .collect();
    kubernetes_validate(&standard.join("---\n")).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn an_unknown_kind_with_a_pod_template_is_reported_not_silently_passed() {
    let input = [
        custom_resource("CloneSet", "c"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n".to_string(),
    ]
    .join("---\n");
    let out = run(&input, &AgentTemplate::default()).unwrap();
    assert_eq!(docs(&out.yaml), docs(&input), "passed through unchanged");
    assert_eq!(out.notices.len(), 1, "{:?}", out.notices);
    let n = &out.notices[0];
    assert!(
        n.contains("document 1 (CloneSet/c)")
            && n.contains("/spec/template")
            && n.contains("WITHOUT injection"),
        "{n}"
    );
}

#[test]
fn broken_input_is_reported_by_document() {
    let err = run(
        "apiVersion: v1\nkind: ConfigMap\n---\nkind: Pod\nmetadata: [unclosed\n",
        &AgentTemplate::default(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::Yaml { document: 2, .. }), "{err:?}");
    let err = run(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\nspec: {}\n",
        &AgentTemplate::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("document 1 (Deployment/d)") && err.contains("missing spec.template"),
        "{err}"
    );
    let err = run(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers: 3\n",
        &AgentTemplate::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("not a valid pod"), "{err}");
    // A Job template whose metadata is not a mapping is an error, not a panic.
    let err = run(
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: j\nspec:\n  template:\n    metadata: 3\n    spec:\n      containers: []\n",
        &AgentTemplate::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("document 1 (Job/j)"), "{err}");
}

#[test]
fn bad_settings_are_rejected_before_reading_input() {
    let flags = AgentFlags {
        agent_env: vec!["NOT-AN-ASSIGNMENT".into()],
        ..AgentFlags::default()
    };
    let err = flags.template().unwrap_err();
    assert!(matches!(err, Error::Settings(_)), "{err:?}");
}

#[test]
fn every_example_injects_to_valid_yaml() {
    let mut seen = 0;
    for entry in std::fs::read_dir(workspace_root().join("examples")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let input = std::fs::read_to_string(&path).unwrap();
        let out = run(&input, &AgentTemplate::default())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .yaml;
        assert!(
            out.contains(AGENT_CONTAINER),
            "{}: not injected",
            path.display()
        );
        kubernetes_validate(&out).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        seen += 1;
    }
    assert!(seen >= 3, "expected the three examples, found {seen}");
}

/// The README's first command, through the real binary (file and stdin).
#[test]
fn binary_injects_the_readme_example() {
    let bin = env!("CARGO_BIN_EXE_secrets-injector-webhook");
    let example = workspace_root().join("examples/pod.yaml");
    let out = Command::new(bin)
        .args(["inject", "-f"])
        .arg(&example)
        .args(["--agent-image", "registry.example/agent:test"])
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pod = &docs(&stdout)[0];
    assert_eq!(
        container_names(pod, "initContainers"),
        vec![AGENT_CONTAINER]
    );
    assert_eq!(
        pod["spec"]["initContainers"][0]["image"],
        "registry.example/agent:test"
    );
    kubernetes_validate(&stdout).unwrap();

    let out = inject_stdin(b"apiVersion: v1\nkind: Pod\nmetadata:\n  name: bad\n  annotations:\n    secrets-injector.io/secret-db: \"has space\"\nspec:\n  containers:\n    - name: app\n      image: x\n");
    assert!(!out.status.success(), "a denied pod fails the command");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("document 1 (Pod/bad): denied") && stderr.contains("secret-db"),
        "{stderr}"
    );
}

/// `secrets-injector-webhook inject -f -` with `input` on stdin.
fn inject_stdin(input: &[u8]) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_secrets-injector-webhook"))
        .args(["inject", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn binary_reports_an_unknown_pod_template_on_stderr() {
    let out = inject_stdin(custom_resource("CloneSet", "c").as_bytes());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("warning: document 1 (CloneSet/c): has a pod template"),
        "{stderr}"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains(AGENT_CONTAINER));
}
