//! The real agent binary with a given environment and config, the pod's
//! paths under a temporary root (`SECRETS_INJECTOR_ROOT_PREFIX`).

// Test support: a broken helper should fail the test loudly; each test binary uses part of it.
#![allow(clippy::unwrap_used, dead_code)]

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use secrets_injector_shared::AgentConfig;
use secrets_injector_tests::agent::finish_within;

/// What one agent run left behind.
#[derive(Debug)]
pub struct Run {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
    pub termination_log: String,
    pub root: tempfile::TempDir,
}

impl Run {
    /// stdout, stderr and the termination log together.
    pub fn all(&self) -> String {
        format!("{}\n{}\n{}", self.stdout, self.stderr, self.termination_log)
    }

    /// A file the agent wrote under the pod's mount path.
    pub fn file(&self, cfg: &AgentConfig, name: &str) -> Option<String> {
        let mount = self
            .root
            .path()
            .join(cfg.mount_path.trim_start_matches('/'));
        std::fs::read_to_string(mount.join(name)).ok()
    }
}

/// Run the agent once (env cleared, then `env`), killed after 90 s.
pub fn run_agent(cfg: &AgentConfig, env: &[(&str, &str)]) -> Run {
    let root = tempfile::tempdir().unwrap();
    let mount: PathBuf = root.path().join(cfg.mount_path.trim_start_matches('/'));
    std::fs::create_dir_all(&mount).unwrap();
    std::fs::create_dir_all(root.path().join("dev")).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_secrets-injector-agent"))
        .env_clear()
        .env("SECRETS_INJECTOR_CONFIG", cfg.to_json())
        .env("SECRETS_INJECTOR_ROOT_PREFIX", root.path())
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = finish_within(child, Duration::from_secs(90));
    Run {
        success: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        termination_log: std::fs::read_to_string(root.path().join("dev/termination-log"))
            .unwrap_or_default(),
        root,
    }
}
