//! The agent binary copies the env wrapper found beside it into the volume
//! at start (`agent/src/wrapper.rs`) when its config asks for it, once, even
//! when the run then fails. No AWS needed: without an identity the agent stops
//! right after the copy.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use secrets_injector_agent::wrapper::{WRAPPER_BIN, WRAPPER_FILE};

const CONFIG: &str = r#"{"version":1,"mount_path":"/mnt/secrets","refresh_interval_secs":300,"startup_timeout_secs":60,"exec_wrapper":true,"secrets":[]}"#;
const NO_ENV_CONFIG: &str = r#"{"version":1,"mount_path":"/mnt/secrets","refresh_interval_secs":300,"startup_timeout_secs":60,"secrets":[]}"#;

/// A bin dir holding (a link to) the real agent binary; the wrapper is added per test.
fn bin_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let agent = dir.path().join("secrets-injector-agent");
    let real = Path::new(env!("CARGO_BIN_EXE_secrets-injector-agent"));
    if std::fs::hard_link(real, &agent).is_err() {
        std::fs::copy(real, &agent).unwrap();
    }
    (dir, agent)
}

fn run_agent(agent: &Path, root: &Path) -> Output {
    run_agent_with(agent, root, CONFIG)
}

fn run_agent_with(agent: &Path, root: &Path, config: &str) -> Output {
    Command::new(agent)
        .arg("--once")
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("SECRETS_INJECTOR_ROOT_PREFIX", root)
        .env("SECRETS_INJECTOR_LOG_FORMAT", "text")
        .env("SECRETS_INJECTOR_CONFIG", config)
        .output()
        .unwrap()
}

fn mount(root: &Path) -> PathBuf {
    let m = root.join("mnt/secrets");
    std::fs::create_dir_all(&m).unwrap();
    m
}

#[test]
fn agent_start_copies_the_wrapper_once() {
    let (bin, agent) = bin_dir();
    let root = tempfile::tempdir().unwrap();
    let m = mount(root.path());
    std::fs::write(bin.path().join(WRAPPER_BIN), b"wrapper v1").unwrap();
    let out = run_agent(&agent, root.path());
    // No identity: the run fails, after the copy.
    assert_eq!(out.status.code(), Some(1));
    let dest = m.join(WRAPPER_FILE);
    assert_eq!(std::fs::read(&dest).unwrap(), b"wrapper v1");
    let mode = std::fs::metadata(&dest).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o555);
    // A restarted agent from a newer image leaves the copy alone.
    std::fs::write(bin.path().join(WRAPPER_BIN), b"wrapper v2").unwrap();
    run_agent(&agent, root.path());
    assert_eq!(std::fs::read(&dest).unwrap(), b"wrapper v1");
}

#[test]
fn no_wrapper_beside_the_agent_fails_the_pod_that_needs_it() {
    let (_bin, agent) = bin_dir();
    let root = tempfile::tempdir().unwrap();
    let m = mount(root.path());
    std::fs::create_dir_all(root.path().join("dev")).unwrap();
    let out = run_agent(&agent, root.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("the env wrapper is not beside the agent"),
        "{stderr}"
    );
    let term = std::fs::read_to_string(root.path().join("dev/termination-log")).unwrap();
    assert!(term.contains("secrets-injector.io/env-*"), "{term}");
    assert_eq!(std::fs::read_dir(&m).unwrap().count(), 0);
}

#[test]
fn a_config_without_env_never_copies_the_wrapper() {
    let (bin, agent) = bin_dir();
    let root = tempfile::tempdir().unwrap();
    let m = mount(root.path());
    std::fs::write(bin.path().join(WRAPPER_BIN), b"wrapper v1").unwrap();
    let out = run_agent_with(&agent, root.path(), NO_ENV_CONFIG);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The run goes on to its real outcome (here: no identity).
    assert!(stderr.contains("no pod identity"), "{stderr}");
    assert!(!m.join(WRAPPER_FILE).exists());
}
