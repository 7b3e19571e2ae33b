//! Run the real agent binary with exactly the environment the webhook gave its
//! container, with the pod's paths mapped under a temporary root
//! (`SECRETS_INJECTOR_ROOT_PREFIX`, a documented test/debug override of the agent),
//! token files written where the pod's projected volumes would put them, and
//! AWS pointed at the emulator.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::pods::{container_env, volume_mounts};
use crate::{Moto, workspace_bin};

/// Web identity token written into the IRSA token file (no trailing newline).
pub const IRSA_TOKEN: &str = "e2e-web-identity-token";
/// Authorization token written into the Pod Identity token file.
pub const POD_IDENTITY_TOKEN: &str = "e2e-pod-identity-token";

/// A loopback stand-in for the EKS Pod Identity agent: answers the container
/// credentials call with fixed keys when the `Authorization` header carries the token.
#[derive(Debug)]
pub struct CredentialsServer {
    pub url: String,
    pub calls: Arc<AtomicUsize>,
    pub rejected: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    port: u16,
}

impl CredentialsServer {
    pub fn start(token: &str, access_key: &str, secret_key: &str) -> CredentialsServer {
        Self::start_with_session(token, access_key, secret_key, "e2e-session")
    }

    /// Like [`CredentialsServer::start`], handing out `session_token` too
    /// (an emulator that checks it needs the one its STS issued).
    pub fn start_with_session(
        token: &str,
        access_key: &str,
        secret_key: &str,
        session_token: &str,
    ) -> CredentialsServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let calls = Arc::new(AtomicUsize::new(0));
        let rejected = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (c, r, s) = (calls.clone(), rejected.clone(), stop.clone());
        let (token, ak, sk, st) = (
            token.to_string(),
            access_key.to_string(),
            secret_key.to_string(),
            session_token.to_string(),
        );
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut auth = None;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some((name, v)) = line.split_once(':')
                        && name.eq_ignore_ascii_case("authorization")
                    {
                        auth = Some(v.trim().to_string());
                    }
                }
                let body = if auth.as_deref() == Some(token.as_str()) {
                    c.fetch_add(1, Ordering::SeqCst);
                    let exp = "2099-01-01T00:00:00Z";
                    (
                        200,
                        format!(
                            r#"{{"AccessKeyId":"{ak}","SecretAccessKey":"{sk}","Token":"{st}","Expiration":"{exp}"}}"#
                        ),
                    )
                } else {
                    r.fetch_add(1, Ordering::SeqCst);
                    (401, r#"{"message":"bad token"}"#.to_string())
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
                    body.0,
                    body.1.len(),
                    body.1
                );
            }
        });
        CredentialsServer {
            url: format!("http://127.0.0.1:{port}/v1/credentials"),
            calls,
            rejected,
            stop,
            port,
        }
    }
}

impl Drop for CredentialsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// The agent container of a mutated pod, ready to run under `root`.
#[derive(Debug)]
pub struct AgentLaunch {
    pub env: Vec<(String, String)>,
    pub root: PathBuf,
    /// The pod's mount path, as the app containers see it.
    pub mount_path: String,
}

impl AgentLaunch {
    /// Build the agent's environment from its container spec. Token files
    /// named by the identity env are written under `root` and the env points
    /// there; they must sit under one of the agent's volume mounts (the
    /// webhook copies the projected token mounts), which is asserted.
    pub fn from_container(
        agent: &Value,
        root: &Path,
        moto: &Moto,
        creds: Option<&CredentialsServer>,
    ) -> AgentLaunch {
        let mounts = volume_mounts(agent);
        let mut env = container_env(agent);
        let config = env
            .iter()
            .find(|(k, _)| k == secrets_injector_shared::keys::CONFIG_ENV)
            .map(|(_, v)| v.clone())
            .expect("agent container has SECRETS_INJECTOR_CONFIG");
        let config =
            secrets_injector_shared::AgentConfig::from_json(&config).expect("agent config parses");
        assert!(
            mounts
                .iter()
                .any(|(_, path, ro)| *path == config.mount_path && !ro),
            "agent mounts the secrets volume read-write at {}",
            config.mount_path
        );
        for (key, token) in [
            ("AWS_WEB_IDENTITY_TOKEN_FILE", IRSA_TOKEN),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", POD_IDENTITY_TOKEN),
        ] {
            if let Some((_, v)) = env.iter_mut().find(|(k, _)| k == key) {
                assert!(
                    mounts
                        .iter()
                        .any(|(_, path, _)| v
                            .starts_with(&format!("{}/", path.trim_end_matches('/')))),
                    "{key}={v} is not under any of the agent's volume mounts {mounts:?}"
                );
                let file = root.join(v.trim_start_matches('/'));
                std::fs::create_dir_all(file.parent().unwrap()).unwrap();
                std::fs::write(&file, token).unwrap();
                *v = file.to_string_lossy().into_owned();
            }
        }
        if let Some((_, v)) = env
            .iter_mut()
            .find(|(k, _)| k == "AWS_CONTAINER_CREDENTIALS_FULL_URI")
        {
            *v = creds
                .expect("a Pod Identity pod needs the credentials server")
                .url
                .clone();
        }
        env.push(("AWS_ENDPOINT_URL".into(), moto.endpoint()));
        env.push((
            "SECRETS_INJECTOR_ROOT_PREFIX".into(),
            root.to_string_lossy().into_owned(),
        ));
        env.push(("SECRETS_INJECTOR_LOG_FORMAT".into(), "text".into()));
        AgentLaunch {
            env,
            root: root.to_path_buf(),
            mount_path: config.mount_path,
        }
    }

    /// Where the app containers' mount path lives on this machine.
    pub fn mount_dir(&self) -> PathBuf {
        self.root.join(self.mount_path.trim_start_matches('/'))
    }

    /// The termination log as the kubelet would read it (`/dev/termination-log` under the root).
    pub fn termination_log(&self) -> String {
        std::fs::read_to_string(self.root.join("dev/termination-log")).unwrap_or_default()
    }

    fn command(&self, extra_env: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(workspace_bin("secrets-injector-agent"));
        cmd.env_clear()
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .envs(extra_env.iter().copied());
        std::fs::create_dir_all(self.root.join("dev")).unwrap();
        std::fs::create_dir_all(self.mount_dir()).unwrap();
        cmd
    }

    /// Run to completion (init mode), killing it after `timeout`.
    pub fn run(&self, timeout: Duration) -> Output {
        let child = self
            .command(&[])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start secrets-injector-agent");
        finish_within(child, timeout)
    }

    /// Start in the background (sidecar mode); the caller stops it.
    pub fn spawn(&self, extra_env: &[(&str, &str)]) -> Child {
        self.command(extra_env)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start secrets-injector-agent")
    }
}

/// Wait for a child with piped output, killing it (and failing) after `timeout`.
pub fn finish_within(child: Child, timeout: Duration) -> Output {
    crate::wait_output_within(child, timeout, "secrets-injector-agent")
}

/// Read all of a finished child's output.
pub fn collect(mut child: Child) -> (String, String) {
    let mut out = String::new();
    let mut err = String::new();
    if let Some(mut s) = child.stdout.take() {
        let _ = s.read_to_string(&mut out);
    }
    if let Some(mut s) = child.stderr.take() {
        let _ = s.read_to_string(&mut err);
    }
    let _ = child.wait();
    (out, err)
}

/// Poll `cond` every 50 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    cond()
}
