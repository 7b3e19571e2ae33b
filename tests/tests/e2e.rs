//! End to end (issue 7): the real webhook over verified HTTPS mutates the
//! example pods; the real agent then runs with exactly the environment the
//! webhook gave its container, against the moto AWS emulator, and the files an
//! app container would see are checked. Nothing here is mocked: the only
//! stand-ins are the pod's filesystem (a temp root) and the EKS Pod Identity
//! endpoint (a loopback server), as no cluster can run on these machines.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::time::Duration;

use secrets_injector_shared::{AgentConfig, parse_annotations};
use secrets_injector_tests::agent::{
    AgentLaunch, CredentialsServer, POD_IDENTITY_TOKEN, collect, wait_until,
};
use secrets_injector_tests::pods::{
    admission_review, agent_container, annotations, apply_response, load_yaml, response_patch,
    to_yaml, volume_mounts,
};
use secrets_injector_tests::seed::{CANARY, check_files, file_modes, seed};
use secrets_injector_tests::webhook::WebhookProcess;
use secrets_injector_tests::{Moto, kubernetes_validate, workspace_root};
use serde_json::{Value, json};

const AGENT_IMAGE: &str = "registry.example/secrets-injector-agent:e2e";

fn example(name: &str) -> PathBuf {
    workspace_root().join("examples").join(name)
}

/// The pod (or a workload's pod template, as a Pod) in an example file.
fn example_pod(name: &str) -> Value {
    let doc = load_yaml(&example(name));
    if doc["kind"] == "Pod" {
        return doc;
    }
    let template = if doc["kind"] == "CronJob" {
        &doc["spec"]["jobTemplate"]["spec"]["template"]
    } else {
        &doc["spec"]["template"]
    };
    let mut meta = template["metadata"].clone();
    meta["name"] = json!(format!(
        "{}-abc12",
        doc["metadata"]["name"].as_str().unwrap_or("pod")
    ));
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": template["spec"]})
}

/// Send the pod as the API server would, apply the patch, validate, re-send.
fn inject(wh: &WebhookProcess, pod: &Value) -> Value {
    let (status, body) = wh.post_review(&admission_review(pod, "demo", "e2e-uid-1"));
    let review = body.expect("AdmissionReview JSON");
    assert_eq!(status, 200);
    assert_eq!(review["response"]["uid"], "e2e-uid-1");
    assert_eq!(review["response"]["allowed"], true, "{review}");
    let mutated = apply_response(pod, &review);
    kubernetes_validate(&to_yaml(&mutated))
        .unwrap_or_else(|e| panic!("mutated pod is invalid: {e}"));
    let (_, again) = wh.post_review(&admission_review(&mutated, "demo", "e2e-uid-2"));
    let again = again.expect("AdmissionReview JSON");
    assert_eq!(again["response"]["allowed"], true);
    assert!(
        response_patch(&again).is_none_or(|p| p.0.is_empty()),
        "re-sending the mutated pod must yield an empty patch: {again}"
    );
    mutated
}

fn agent_config(mutated: &Value) -> AgentConfig {
    let agent = agent_container(mutated).expect("agent injected");
    let env = secrets_injector_tests::pods::container_env(agent);
    let json = env
        .iter()
        .find(|(k, _)| k == "SECRETS_INJECTOR_CONFIG")
        .map(|(_, v)| v.clone())
        .expect("config env");
    AgentConfig::from_json(&json).expect("config parses")
}

/// `AWS_ROLE_ARN` the webhook copied into the agent (IRSA), if any.
fn role_arn(mutated: &Value) -> Option<String> {
    let agent = agent_container(mutated)?;
    secrets_injector_tests::pods::container_env(agent)
        .into_iter()
        .find(|(k, _)| k == "AWS_ROLE_ARN")
        .map(|(_, v)| v)
}

fn pod_region(mutated: &Value) -> String {
    let agent = agent_container(mutated).expect("agent injected");
    secrets_injector_tests::pods::container_env(agent)
        .into_iter()
        .find(|(k, _)| k == "AWS_REGION" || k == "AWS_DEFAULT_REGION")
        .map(|(_, v)| v)
        .unwrap_or_else(|| "us-east-1".into())
}

/// App containers that got the secrets volume mount, read-only, at the mount path.
fn assert_app_mounts(mutated: &Value, mount_path: &str) {
    let apps: Vec<&Value> = mutated["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["name"] != "secrets-injector-agent")
        .collect();
    assert!(
        apps.iter().any(|c| volume_mounts(c)
            .iter()
            .any(|(_, p, ro)| p == mount_path && *ro)),
        "some app container mounts {mount_path} read-only"
    );
}

fn assert_no_canary(what: &str, text: &str) {
    assert!(
        !text.contains(CANARY),
        "a secret value leaked into {what}: {text}"
    );
}

#[test]
fn every_example_is_injected_valid_and_idempotent() {
    let wh = WebhookProcess::start(AGENT_IMAGE, &[]);
    let mut seen = 0;
    for entry in std::fs::read_dir(workspace_root().join("examples")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let pod = example_pod(&name);
        if parse_annotations(&annotations(&pod))
            .into_result()
            .ok()
            .flatten()
            .is_none()
        {
            continue;
        }
        let mutated = inject(&wh, &pod);
        let agent = agent_container(&mutated).unwrap_or_else(|| panic!("{name}: no agent"));
        assert_eq!(agent["image"], AGENT_IMAGE, "{name}");
        assert_app_mounts(&mutated, &agent_config(&mutated).mount_path);
        seen += 1;
    }
    assert!(
        seen >= 3,
        "expected at least three injectable examples, found {seen}"
    );
}

#[test]
fn irsa_init_pod_gets_its_files() {
    let wh = WebhookProcess::start(AGENT_IMAGE, &[]);
    let mutated = inject(&wh, &example_pod("pod.yaml"));
    let agent = agent_container(&mutated).unwrap();
    let env = secrets_injector_tests::pods::container_env(agent);
    assert!(
        env.iter().any(|(k, _)| k == "AWS_WEB_IDENTITY_TOKEN_FILE"),
        "IRSA env copied into the agent"
    );
    let moto = Moto::start();
    let seeded = seed(
        &moto,
        &agent_config(&mutated),
        &pod_region(&mutated),
        role_arn(&mutated).as_deref(),
    );
    let root = tempfile::tempdir().unwrap();
    let launch = AgentLaunch::from_container(agent, root.path(), &moto, None);
    let out = launch.run(Duration::from_secs(60));
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "agent failed: {stderr}\n{}",
        launch.termination_log()
    );
    let bad = check_files(&launch.mount_dir(), &seeded);
    assert!(
        bad.is_empty(),
        "files differ from the seeded secrets: {bad:#?}"
    );
    // No uid or fsGroup in the pod: nobody can own the files, so 0444.
    let modes = file_modes(&launch.mount_dir());
    assert!(
        !modes.is_empty() && modes.iter().all(|(_, m)| *m == 0o444),
        "unowned files must be 0444: {modes:?}"
    );
    assert_no_canary("agent stdout", &stdout);
    assert_no_canary("agent stderr", &stderr);
}

#[test]
fn pod_identity_workload_gets_its_files() {
    let wh = WebhookProcess::start(AGENT_IMAGE, &[]);
    let mutated = inject(&wh, &example_pod("deployment.yaml"));
    let agent = agent_container(&mutated).unwrap();
    let env = secrets_injector_tests::pods::container_env(agent);
    assert!(
        env.iter()
            .any(|(k, _)| k == "AWS_CONTAINER_CREDENTIALS_FULL_URI"),
        "Pod Identity env copied into the agent"
    );
    let moto = Moto::start();
    let seeded = seed(
        &moto,
        &agent_config(&mutated),
        &pod_region(&mutated),
        role_arn(&mutated).as_deref(),
    );
    let creds =
        CredentialsServer::start(POD_IDENTITY_TOKEN, "AKIDPODIDENTITY", "pod-identity-secret");
    let root = tempfile::tempdir().unwrap();
    let launch = AgentLaunch::from_container(agent, root.path(), &moto, Some(&creds));
    let out = launch.run(Duration::from_secs(60));
    assert!(
        out.status.success(),
        "agent failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        launch.termination_log()
    );
    assert!(
        creds.calls.load(std::sync::atomic::Ordering::SeqCst) >= 1,
        "Pod Identity endpoint was used"
    );
    assert_eq!(
        creds.rejected.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "token file sent as Authorization"
    );
    let bad = check_files(&launch.mount_dir(), &seeded);
    assert!(
        bad.is_empty(),
        "files differ from the seeded secrets: {bad:#?}"
    );
    // The deployment runs as uid 1000 with fsGroup 2000: files are 0440.
    let modes = file_modes(&launch.mount_dir());
    assert!(!modes.is_empty());
    assert!(
        modes.iter().all(|(_, m)| *m == 0o440),
        "owned files must be 0440: {modes:?}"
    );
}

#[test]
fn sidecar_pod_sees_rotation() {
    let wh = WebhookProcess::start(AGENT_IMAGE, &[]);
    let mutated = inject(&wh, &example_pod("pod-sidecar.yaml"));
    let agent = agent_container(&mutated).unwrap();
    assert_eq!(agent["restartPolicy"], "Always", "native sidecar");
    assert!(
        agent["startupProbe"].is_object(),
        "startup probe gates the app"
    );
    let cfg = agent_config(&mutated);
    let moto = Moto::start();
    let seeded = seed(
        &moto,
        &cfg,
        &pod_region(&mutated),
        role_arn(&mutated).as_deref(),
    );
    let root = tempfile::tempdir().unwrap();
    let creds =
        CredentialsServer::start(POD_IDENTITY_TOKEN, "AKIDPODIDENTITY", "pod-identity-secret");
    let launch = AgentLaunch::from_container(agent, root.path(), &moto, Some(&creds));
    let mut child = launch.spawn(&[("SECRETS_INJECTOR_REFRESH_OVERRIDE_MS", "300")]);
    let first_done = wait_until(Duration::from_secs(60), || {
        launch.mount_dir().join("..data").exists()
    });
    if !first_done {
        let _ = child.kill();
        let (_, err) = collect(child);
        panic!("sidecar never completed its first write: {err}");
    }
    let bad = check_files(&launch.mount_dir(), &seeded);
    assert!(bad.is_empty(), "first write: {bad:#?}");

    // Rotate the first Secrets Manager secret the way a rotation would: PutSecretValue.
    let target = seeded
        .iter()
        .find(|s| {
            matches!(
                s.source,
                secrets_injector_shared::SecretRef::SecretsManager { .. }
            )
        })
        .expect("the sidecar example names a Secrets Manager secret");
    let main_file = launch
        .mount_dir()
        .join(&cfg.secrets[target.spec_index].path);
    let rotated =
        format!("{{\"username\":\"rotated\",\"password\":\"pw-rotated-{CANARY}\",\"host\":\"h\"}}");
    moto.boto3(&format!(
        "{}client('secretsmanager', {:?}).put_secret_value(SecretId={:?}, SecretString={rotated:?})",
        secrets_injector_tests::seed::as_role(&moto, role_arn(&mutated).as_deref()),
        target.region,
        target.source.id()
    ));
    let changed = wait_until(Duration::from_secs(30), || {
        let p = if main_file.is_dir() {
            main_file.join("username")
        } else {
            main_file.clone()
        };
        std::fs::read_to_string(p).is_ok_and(|s| s.contains("rotated"))
    });
    nix_terminate(&child);
    let exited = wait_until(Duration::from_secs(10), || {
        child.try_wait().ok().flatten().is_some()
    });
    let (stdout, stderr) = collect(child);
    assert!(changed, "rotation not seen: {stderr}");
    assert!(exited, "sidecar did not exit promptly on SIGTERM");
    assert_no_canary("sidecar stdout", &stdout);
    assert_no_canary("sidecar stderr", &stderr);
}

fn nix_terminate(child: &std::process::Child) {
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
}

/// Moto enforcing IAM: the pod's identity (a role session without Secrets
/// Manager permissions, handed out by the Pod Identity endpoint) is denied.
#[test]
fn access_denied_and_missing_secret_explain_themselves() {
    let wh = WebhookProcess::start(AGENT_IMAGE, &[]);
    let mut pod = example_pod("deployment.yaml");
    pod["metadata"]["annotations"] = json!({
        "secrets-injector.io/secret-db": "e2e/db",
        "secrets-injector.io/secret-missing": "e2e/does-not-exist",
    });
    let mutated = inject(&wh, &pod);
    let agent = agent_container(&mutated).unwrap();

    // First three calls unauthenticated: a role that may only read SSM, and
    // a session of it (Pod Identity hands out role sessions).
    let moto = Moto::start_with_env(&[("INITIAL_NO_AUTH_ACTION_COUNT", "3")]);
    let keys = moto.boto3(
        "iam = client('iam')\n\
         trust = {'Version': '2012-10-17', 'Statement': [{'Effect': 'Allow', 'Principal': {'Service': 'pods.eks.amazonaws.com'}, 'Action': ['sts:AssumeRole', 'sts:TagSession']}]}\n\
         iam.create_role(RoleName='no-secrets', AssumeRolePolicyDocument=json.dumps(trust))\n\
         iam.put_role_policy(RoleName='no-secrets', PolicyName='ssm-only', PolicyDocument=json.dumps({'Version': '2012-10-17', 'Statement': [{'Effect': 'Allow', 'Action': 'ssm:GetParameters', 'Resource': '*'}]}))\n\
         c = client('sts').assume_role(RoleArn='arn:aws:iam::123456789012:role/no-secrets', RoleSessionName='pod')['Credentials']\n\
         print(c['AccessKeyId'], c['SecretAccessKey'], c['SessionToken'])\n",
    );
    let mut keys = keys.split_whitespace();
    let (ak, sk, st) = (
        keys.next().unwrap(),
        keys.next().unwrap(),
        keys.next().unwrap(),
    );
    let creds = CredentialsServer::start_with_session(POD_IDENTITY_TOKEN, ak, sk, st);
    let (msg, stderr) = failing_init(
        agent,
        &moto,
        &creds,
        "an identity without permissions must fail the init container",
    );
    assert!(
        msg.contains("e2e/db"),
        "termination message names the secret: {msg}"
    );
    assert!(
        msg.contains("AccessDenied"),
        "termination message names the AWS error: {msg}"
    );
    assert!(
        msg.contains("secretsmanager:GetSecretValue"),
        "termination message names the IAM action: {msg}"
    );
    assert_no_canary("agent stderr", &stderr);

    // Same pod, an identity that may read: the missing secret is named with ResourceNotFound.
    let moto = Moto::start();
    moto.boto3(&format!(
        "client('secretsmanager').create_secret(Name='e2e/db', SecretString='{CANARY}')"
    ));
    let (msg, stderr) = failing_init(
        agent,
        &moto,
        &creds,
        "a missing secret must fail the init container",
    );
    assert!(
        msg.contains("e2e/does-not-exist"),
        "names the missing secret: {msg}"
    );
    assert!(
        msg.contains("ResourceNotFound"),
        "names the AWS error: {msg}"
    );
    assert_no_canary("termination message", &msg);
    assert_no_canary("agent stderr", &stderr);
}

/// Run an init agent that must fail: no file may be left behind. Returns the
/// termination message (what `kubectl describe pod` shows) and stderr.
fn failing_init(
    agent: &Value,
    moto: &Moto,
    creds: &CredentialsServer,
    why: &str,
) -> (String, String) {
    let root = tempfile::tempdir().unwrap();
    let launch = AgentLaunch::from_container(agent, root.path(), moto, Some(creds));
    let out = launch.run(Duration::from_secs(90));
    assert!(!out.status.success(), "{why}");
    // The env wrapper (`agent/src/wrapper.rs`) is copied at start; it holds no secret.
    assert!(
        std::fs::read_dir(launch.mount_dir())
            .unwrap()
            .all(|e| e.unwrap().file_name() == "..secrets-injector-env"),
        "no partial files"
    );
    (
        launch.termination_log(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
