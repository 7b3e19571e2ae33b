//! Local demo (`bash scripts/demo.sh`): moto as AWS, the real webhook over
//! HTTPS, the real agent with the env the webhook gave it — then the file tree
//! an app container would see, with every value masked.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::Duration;

use secrets_injector_shared::{AgentConfig, Mode};
use secrets_injector_tests::agent::{AgentLaunch, CredentialsServer, POD_IDENTITY_TOKEN};
use secrets_injector_tests::pods::{
    admission_review, agent_container, apply_response, container_env, load_yaml,
};
use secrets_injector_tests::seed::seed;
use secrets_injector_tests::webhook::WebhookProcess;
use secrets_injector_tests::{Moto, workspace_root};

fn main() {
    let example = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "examples/pod.yaml".into());
    let pod = load_yaml(&workspace_root().join(&example));
    println!("1. AWS emulator (moto) starting on loopback …");
    let moto = Moto::start();
    println!("2. webhook serving HTTPS with a throwaway CA …");
    let wh = WebhookProcess::start("secrets-injector-agent:demo", &[]);
    let (status, review) = wh.post_review(&admission_review(&pod, "demo", "demo-1"));
    let review = review.unwrap_or_else(|t| panic!("webhook answered {status}: {t}"));
    if review["response"]["allowed"] != true {
        panic!(
            "webhook denied {example}: {}",
            review["response"]["status"]["message"]
        );
    }
    let mutated = apply_response(&pod, &review);
    let agent =
        agent_container(&mutated).expect("the example names secrets, so an agent is injected");
    let env = container_env(agent);
    let cfg = env
        .iter()
        .find(|(k, _)| k == "SECRETS_INJECTOR_CONFIG")
        .map(|(_, v)| v.as_str())
        .unwrap();
    let cfg = AgentConfig::from_json(cfg).unwrap();
    println!(
        "   injected agent in {} mode; {} secret(s) requested",
        cfg.mode.as_str(),
        cfg.secrets.len()
    );
    let region = env
        .iter()
        .find(|(k, _)| k == "AWS_REGION")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| "us-east-1".into());
    println!("3. seeding the emulator with a value for each secret …");
    let role = env
        .iter()
        .find(|(k, _)| k == "AWS_ROLE_ARN")
        .map(|(_, v)| v.as_str());
    seed(&moto, &cfg, &region, role);
    let root = tempfile::tempdir().unwrap();
    // A Pod Identity pod gets a loopback stand-in for the EKS Pod Identity
    // agent, handing out keys the emulator accepts.
    let pod_identity = env
        .iter()
        .any(|(k, _)| k == "AWS_CONTAINER_CREDENTIALS_FULL_URI");
    let creds = pod_identity
        .then(|| CredentialsServer::start(POD_IDENTITY_TOKEN, "AKIDDEMO", "demo-secret"));
    let mut launch = AgentLaunch::from_container(agent, root.path(), &moto, creds.as_ref());
    if cfg.mode == Mode::Sidecar {
        // In a pod the sidecar keeps refreshing; the demo stops after the first write.
        launch
            .env
            .push(("SECRETS_INJECTOR_ONCE".into(), "true".into()));
    }
    println!(
        "4. running the agent with exactly its container's env ({}) …",
        if pod_identity {
            "EKS Pod Identity via a loopback credentials endpoint"
        } else if role.is_some() {
            "IRSA via the emulator's STS"
        } else {
            "the emulator's keys"
        }
    );
    let out = launch.run(Duration::from_secs(60));
    if !out.status.success() {
        panic!("agent failed: {}", launch.termination_log());
    }
    println!(
        "\nFiles the app sees under {} (values masked):",
        cfg.mount_path
    );
    print_tree(&launch.mount_dir(), 1);
}

fn print_tree(dir: &Path, depth: usize) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("..") {
            continue;
        }
        let indent = "  ".repeat(depth);
        if p.is_dir() {
            println!("{indent}{name}/");
            print_tree(&p, depth + 1);
        } else {
            use std::os::unix::fs::PermissionsExt;
            let meta = std::fs::metadata(&p).unwrap();
            println!(
                "{indent}{name}  {:o}  {} bytes  ********",
                meta.permissions().mode() & 0o777,
                meta.len()
            );
        }
    }
}
