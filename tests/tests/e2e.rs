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
    inject_with_warnings(wh, pod).0
}

/// [`inject`], also returning the admission warnings of the first answer.
fn inject_with_warnings(wh: &WebhookProcess, pod: &Value) -> (Value, Vec<String>) {
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
    let warnings = review["response"]["warnings"]
        .as_array()
        .map(|w| {
            w.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    (mutated, warnings)
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

// ---- Env vars from secret files (issue 14, DESIGN §3a) ----
//
// The pod's annotations go through the real webhook; its agent container runs
// the real agent (which copies the real `secrets-injector-env` from beside
// itself into the volume); then the app container's rewritten `command` +
// `args` run as the kubelet would, with the mount path mapped under the
// test's root (see `secrets_injector_tests::app` for the mapping), and the
// original command prints its arguments and its environment.

/// Values seeded for the env tests; every one carries the canary.
struct EnvValues {
    db_user: String,
    /// `=`, spaces, quotes, a `$`, newlines (one trailing): used byte for byte.
    db_password: String,
    db_host: String,
    /// SSM SecureString.
    api_key: String,
}

impl EnvValues {
    fn new() -> EnvValues {
        EnvValues {
            db_user: format!("orders-{CANARY}"),
            db_password: format!("{CANARY} p=ss word = 'x' \"y\" $HOME\n second line\n"),
            db_host: format!("db-{CANARY}.internal"),
            api_key: format!("ssm {CANARY} key=value"),
        }
    }

    fn db_json(&self, password: &str) -> String {
        json!({"DB_USER": self.db_user, "DB_PASSWORD": password, "DB_HOST": self.db_host})
            .to_string()
    }
}

const ENV_DB: &str = "e2e/env/db";
const ENV_SSM: &str = "/e2e/env/api-key";
const ENV_BLOB: &str = "e2e/env/blob";
/// The original `args` of the app container (`$0 $1 …` of its `sh -c`).
const APP_ARGS: &[&str] = &["app", "--port", "8080", "two words"];

/// Seed the JSON secret, the SSM parameter and a binary secret holding a NUL byte.
fn seed_env(moto: &Moto, v: &EnvValues) {
    use base64::Engine as _;
    let blob = base64::engine::general_purpose::STANDARD.encode(format!("bin-{CANARY}\0tail"));
    // JSON string literals are Python string literals too.
    let db = serde_json::to_string(&v.db_json(&v.db_password)).unwrap();
    let key = serde_json::to_string(&v.api_key).unwrap();
    moto.boto3(&format!(
        "sm = client('secretsmanager')\n\
         sm.create_secret(Name={ENV_DB:?}, SecretString={db})\n\
         sm.create_secret(Name={ENV_BLOB:?}, SecretBinary=base64.b64decode({blob:?}))\n\
         client('ssm').put_parameter(Name={ENV_SSM:?}, Value={key}, Type='SecureString')\n"
    ));
}

/// A Pod Identity pod naming the three secrets, with `extra` annotations
/// (the env ones); its app container prints its arguments and environment.
fn env_pod(name: &str, extra: &[(&str, &str)]) -> Value {
    let mut annotations = json!({
        "secrets-injector.io/secret-db": ENV_DB,
        "secrets-injector.io/format-db": "files",
        "secrets-injector.io/secret-api-key": format!("ssm:{ENV_SSM}"),
        "secrets-injector.io/secret-blob": ENV_BLOB,
    });
    for (k, v) in extra {
        annotations[format!("secrets-injector.io/{k}")] = json!(v);
    }
    let token_dir = "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount";
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": "demo",
            "labels": {"secrets-injector.io/inject": "enabled"},
            "annotations": annotations,
        },
        "spec": {
            "containers": [{
                "name": "app",
                "image": "registry.example/orders:1.4",
                "command": ["sh", "-c", secrets_injector_tests::app::PRINT_ARGS_AND_ENV],
                "args": APP_ARGS,
                "env": [
                    {"name": "API_KEY", "value": "from-the-pod-spec"},
                    {"name": "KEEP_ME", "value": "kept"},
                    {"name": "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                     "value": "http://169.254.170.23/v1/credentials"},
                    {"name": "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                     "value": format!("{token_dir}/eks-pod-identity-token")},
                    {"name": "AWS_REGION", "value": "us-east-1"},
                ],
                "volumeMounts": [{
                    "name": "eks-pod-identity-token",
                    "mountPath": token_dir,
                    "readOnly": true,
                }],
            }],
            "volumes": [{
                "name": "eks-pod-identity-token",
                "projected": {"sources": [{"serviceAccountToken": {
                    "audience": "pods.eks.amazonaws.com",
                    "expirationSeconds": 86400,
                    "path": "eks-pod-identity-token",
                }}]},
            }],
        }
    })
}

/// Inject `pod`, check the rewrite (wrapper first, `--mount-path`, the
/// original command after `--`, `args` untouched), run its agent in init mode.
fn env_pod_through_agent(
    wh: &WebhookProcess,
    pod: &Value,
    moto: &Moto,
    creds: &CredentialsServer,
    root: &std::path::Path,
) -> (Value, AgentLaunch) {
    let (mutated, _) = inject_with_warnings(wh, pod);
    assert_no_canary("mutated pod", &mutated.to_string());
    assert!(agent_config(&mutated).exec_wrapper, "exec_wrapper is set");
    let agent = agent_container(&mutated).unwrap();
    let launch = AgentLaunch::from_container(agent, root, moto, Some(creds));
    let out = launch.run(Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_no_canary("agent stdout", &String::from_utf8_lossy(&out.stdout));
    assert_no_canary("agent stderr", &stderr);
    assert_no_canary("agent termination message", &launch.termination_log());
    assert!(
        out.status.success(),
        "agent failed: {stderr}\n{}",
        launch.termination_log()
    );
    (mutated, launch)
}

/// The app container's rewritten command, checked against the original.
fn assert_rewritten(mutated: &Value, mount_path: &str) {
    let app = secrets_injector_tests::app::app_container(mutated, "app");
    let command: Vec<&str> = app["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(
        command[..3],
        [
            format!("{mount_path}/..secrets-injector-env").as_str(),
            "--mount-path",
            mount_path
        ],
        "{command:?}"
    );
    let dashes = command
        .iter()
        .position(|a| *a == "--")
        .expect("-- in the command");
    assert_eq!(
        command[dashes + 1..],
        ["sh", "-c", secrets_injector_tests::app::PRINT_ARGS_AND_ENV],
        "the original command follows --"
    );
    assert_eq!(app["args"], json!(APP_ARGS), "args are kept");
}

/// Every `(name, value)` is in `env` byte for byte; a failure names the
/// variable and lengths, never a value (test output is an output too).
fn assert_env_exact(env: &std::collections::BTreeMap<String, String>, want: &[(&str, &str)]) {
    for (name, value) in want {
        match env.get(*name) {
            None => panic!("{name} is not in the app's environment"),
            Some(got) if got != value => panic!(
                "{name} differs from the secret ({} bytes, expected {} bytes; values not shown)",
                got.len(),
                value.len()
            ),
            Some(_) => {}
        }
    }
}

/// Run the app; it must have exec'd the original command with its args.
fn run_app_ok(
    mutated: &Value,
    launch: &AgentLaunch,
    tlog: &std::path::Path,
) -> std::collections::BTreeMap<String, String> {
    let app = secrets_injector_tests::app::app_container(mutated, "app");
    let run =
        secrets_injector_tests::app::run_app(app, &launch.mount_path, &launch.mount_dir(), tlog);
    assert_no_canary("wrapper stderr", &run.stderr);
    assert_no_canary("app termination message", &run.termination);
    assert!(run.status.success(), "the app did not run: {}", run.stderr);
    assert!(run.stderr.is_empty(), "no output on stderr: {}", run.stderr);
    assert!(run.termination.is_empty(), "{}", run.termination);
    let (args, env) = run.args_and_env();
    assert_eq!(args, APP_ARGS, "the original args reach the command");
    env
}

/// Run the app; the wrapper must refuse before exec: exit 1, one line on
/// stderr equal to the termination message, the command never ran.
fn run_app_refused(mutated: &Value, launch: &AgentLaunch, tlog: &std::path::Path) -> String {
    let app = secrets_injector_tests::app::app_container(mutated, "app");
    let run =
        secrets_injector_tests::app::run_app(app, &launch.mount_path, &launch.mount_dir(), tlog);
    assert_no_canary("wrapper stderr", &run.stderr);
    assert_no_canary("app termination message", &run.termination);
    assert_eq!(run.status.code(), Some(1), "stderr: {}", run.stderr);
    assert!(run.stdout.is_empty(), "the command must not run");
    assert_eq!(run.stderr.lines().count(), 1, "one line: {}", run.stderr);
    assert_eq!(run.termination, run.stderr, "termination message");
    run.stderr
}

#[test]
fn env_vars_reach_the_rewritten_command_exactly() {
    let _ = secrets_injector_tests::workspace_bin("secrets-injector-env");
    let wh = WebhookProcess::start(AGENT_IMAGE, &[]);
    let moto = Moto::start();
    let v = EnvValues::new();
    seed_env(&moto, &v);
    let creds =
        CredentialsServer::start(POD_IDENTITY_TOKEN, "AKIDPODIDENTITY", "pod-identity-secret");

    let pod = env_pod(
        "orders",
        &[
            ("env-from", "db"),
            ("env-PASSWORD_COPY", "db/DB_PASSWORD"),
            ("env-API_KEY", "api-key"),
        ],
    );
    let (_, warnings) = inject_with_warnings(&wh, &pod);
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("API_KEY") && w.contains("\"app\"")),
        "a secret var shadowing the container's env is warned about: {warnings:?}"
    );
    let root = tempfile::tempdir().unwrap();
    let (mutated, launch) = env_pod_through_agent(&wh, &pod, &moto, &creds, root.path());
    assert_eq!(launch.mount_path, "/mnt/secrets");
    assert_rewritten(&mutated, "/mnt/secrets");
    let wrapper = launch.mount_dir().join("..secrets-injector-env");
    assert!(
        wrapper.is_file(),
        "the agent copied the wrapper into the volume"
    );

    let tlog = secrets_injector_tests::app::termination_log_path(root.path(), "app");
    let env = run_app_ok(&mutated, &launch, &tlog);
    assert_env_exact(
        &env,
        &[
            ("DB_USER", &v.db_user),
            ("DB_PASSWORD", &v.db_password),
            ("DB_HOST", &v.db_host),
            ("PASSWORD_COPY", &v.db_password),
            // From SSM, and it wins over the container's own `API_KEY`.
            ("API_KEY", &v.api_key),
            ("KEEP_ME", "kept"),
        ],
    );

    // A binary secret holding a NUL byte, as an env var: refused, naming var and file.
    let nul = env_pod("orders-nul", &[("env-BLOB", "blob")]);
    let root = tempfile::tempdir().unwrap();
    let (mutated, launch) = env_pod_through_agent(&wh, &nul, &moto, &creds, root.path());
    let blob = launch.mount_dir().join("blob");
    assert!(
        std::fs::read(&blob).is_ok_and(|b| b.contains(&0)),
        "the agent wrote the binary secret byte for byte"
    );
    let tlog = secrets_injector_tests::app::termination_log_path(root.path(), "app");
    let line = run_app_refused(&mutated, &launch, &tlog);
    assert!(
        line.starts_with(&format!(
            "secrets-injector-env: env BLOB: file {} contains a NUL byte",
            blob.display()
        )),
        "{line}"
    );
    assert!(!line.contains("tail"), "no part of the value: {line}");

    // A key the JSON secret does not have: no file, so no start.
    let missing = env_pod("orders-missing", &[("env-GONE", "db/NOT_A_KEY")]);
    let root = tempfile::tempdir().unwrap();
    let (mutated, launch) = env_pod_through_agent(&wh, &missing, &moto, &creds, root.path());
    let tlog = secrets_injector_tests::app::termination_log_path(root.path(), "app");
    let line = run_app_refused(&mutated, &launch, &tlog);
    assert!(
        line.starts_with(&format!(
            "secrets-injector-env: env GONE: cannot read file {}: no such file",
            launch.mount_dir().join("db/NOT_A_KEY").display()
        )),
        "{line}"
    );
}

#[test]
fn env_vars_in_sidecar_mode_follow_a_rotation_at_the_next_start() {
    let _ = secrets_injector_tests::workspace_bin("secrets-injector-env");
    let wh = WebhookProcess::start(AGENT_IMAGE, &[]);
    let moto = Moto::start();
    let v = EnvValues::new();
    seed_env(&moto, &v);
    let creds =
        CredentialsServer::start(POD_IDENTITY_TOKEN, "AKIDPODIDENTITY", "pod-identity-secret");
    // Another mount path than the default: the mapping follows the pod's.
    let mount_path = "/etc/orders/secrets";
    let pod = env_pod(
        "orders-sidecar",
        &[
            ("mode", "sidecar"),
            ("mount-path", mount_path),
            ("env-from", "db"),
            ("env-API_KEY", "api-key"),
        ],
    );
    let (mutated, _) = inject_with_warnings(&wh, &pod);
    assert_no_canary("mutated pod", &mutated.to_string());
    assert_rewritten(&mutated, mount_path);
    let agent = agent_container(&mutated).unwrap();
    assert_eq!(agent["restartPolicy"], "Always", "native sidecar");
    let root = tempfile::tempdir().unwrap();
    let launch = AgentLaunch::from_container(agent, root.path(), &moto, Some(&creds));
    assert_eq!(launch.mount_path, mount_path);
    let mut child = launch.spawn(&[("SECRETS_INJECTOR_REFRESH_OVERRIDE_MS", "300")]);
    let data = launch.mount_dir().join("..data");
    if !wait_until(Duration::from_secs(60), || data.exists()) {
        let _ = child.kill();
        let (_, err) = collect(child);
        panic!("sidecar never completed its first write: {err}");
    }
    let wrapper = launch.mount_dir().join("..secrets-injector-env");
    let ino = |p: &std::path::Path| {
        use std::os::unix::fs::MetadataExt as _;
        std::fs::metadata(p).unwrap().ino()
    };
    let wrapper_ino = ino(&wrapper);

    let tlog = secrets_injector_tests::app::termination_log_path(root.path(), "app");
    let env = run_app_ok(&mutated, &launch, &tlog);
    let mut want = vec![
        ("DB_USER", v.db_user.as_str()),
        ("DB_PASSWORD", v.db_password.as_str()),
        ("DB_HOST", v.db_host.as_str()),
        ("API_KEY", v.api_key.as_str()),
    ];
    assert_env_exact(&env, &want);

    // Rotate: PutSecretValue with a new password; wait for the agent's rewrite.
    let rotated = format!("rotated {CANARY} = new\nvalue");
    let db = serde_json::to_string(&v.db_json(&rotated)).unwrap();
    moto.boto3(&format!(
        "client('secretsmanager').put_secret_value(SecretId={ENV_DB:?}, SecretString={db})"
    ));
    let file = launch.mount_dir().join("db/DB_PASSWORD");
    let changed = wait_until(Duration::from_secs(30), || {
        std::fs::read_to_string(&file).is_ok_and(|s| s == rotated)
    });
    // The next start of the container (what `on-change: signal:SIGTERM` causes) sees it.
    let env = changed.then(|| run_app_ok(&mutated, &launch, &tlog));
    let same_wrapper = ino(&wrapper) == wrapper_ino;
    nix_terminate(&child);
    let exited = wait_until(Duration::from_secs(10), || {
        child.try_wait().ok().flatten().is_some()
    });
    let (stdout, stderr) = collect(child);
    assert_no_canary("sidecar stdout", &stdout);
    assert_no_canary("sidecar stderr", &stderr);
    assert_no_canary("sidecar termination message", &launch.termination_log());
    assert!(changed, "rotation not written: {stderr}");
    want[1].1 = &rotated;
    assert_env_exact(&env.unwrap(), &want);
    assert!(same_wrapper, "the wrapper is never replaced mid-flight");
    assert!(exited, "sidecar did not exit promptly on SIGTERM");
}
