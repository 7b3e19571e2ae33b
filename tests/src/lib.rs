//! Test harness shared by every crate's integration tests: the real tools the
//! test command installs (moto server, kubernetes-validate, helm), a test PKI
//! made with rcgen, and paths to the workspace's binaries.
//!
//! Nothing here is skipped when a tool is missing: a test that needs a tool
//! fails and says how to install it (`scripts/test.sh` does).
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

pub mod agent;
pub mod app;
pub mod https;
pub mod pods;
pub mod seed;
pub mod webhook;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Kubernetes versions every emitted object is validated against.
pub const KUBE_VERSIONS: &[&str] = &["1.29.0", "1.33.0"];

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Directory with the installed test tools (`scripts/install-test-tools.sh`).
pub fn tools_bin_dir() -> PathBuf {
    match std::env::var_os("SECRETS_INJECTOR_TOOLS") {
        Some(dir) => PathBuf::from(dir).join("bin"),
        None => workspace_root().join("target/tools/bin"),
    }
}

/// Path of an installed test tool; panics with the install hint when absent.
pub fn tool(name: &str) -> PathBuf {
    let p = tools_bin_dir().join(name);
    assert!(
        p.exists(),
        "test tool {name} is not installed at {}: run scripts/install-test-tools.sh \
         (scripts/test.sh does it for you)",
        p.display()
    );
    p
}

/// Path of a workspace binary built by `cargo build` (debug profile unless
/// `SECRETS_INJECTOR_PROFILE` says otherwise). `cargo test --workspace` builds
/// them too (cargo builds a package's binaries for its integration tests, and
/// the agent, webhook and env crates have some); `secrets-injector-env` must sit
/// beside the agent, where the agent looks for the wrapper it copies.
pub fn workspace_bin(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    let profile = std::env::var("SECRETS_INJECTOR_PROFILE").unwrap_or_else(|_| "debug".into());
    let p = target.join(profile).join(name);
    assert!(
        p.exists(),
        "{} is not built: run `cargo build --workspace` first",
        p.display()
    );
    p
}

/// A free loopback port (bound then released), never the same one twice in
/// this process: tests run in parallel, and the kernel may hand a released
/// port out again before the first caller's server has bound it. Racy only
/// against other processes.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// The admission and health addresses a webhook logged when it started
/// serving (its "serving admission requests" line, JSON or text format).
/// Harnesses start it on port 0 and read the ports here, so two tests can
/// never be handed the same one.
pub fn webhook_bound_addrs(log: &str) -> Option<(SocketAddr, SocketAddr)> {
    let line = log
        .lines()
        .find(|l| l.contains("serving admission requests"))?;
    Some((logged_addr(line, "listen")?, logged_addr(line, "health")?))
}

/// Wait until a webhook started on port 0 (stderr to `log`) logs its
/// addresses. When it exits first or `timeout` passes, it is killed and the
/// test fails with its log.
pub fn wait_for_webhook(
    child: &mut Child,
    log: &Path,
    timeout: Duration,
) -> (SocketAddr, SocketAddr) {
    let deadline = Instant::now() + timeout;
    let why = loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(addrs) = webhook_bound_addrs(&text) {
            return addrs;
        }
        if let Ok(Some(status)) = child.try_wait() {
            break format!("the webhook exited ({status}); its log:\n{text}");
        }
        if Instant::now() >= deadline {
            break format!(
                "the webhook logged no listening address within {timeout:?}; its log:\n{text}"
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = child.kill();
    let _ = child.wait();
    panic!("{why}");
}

/// `RUST_LOG` for a webhook under test: the caller's, with the start-up line
/// [`wait_for_webhook`] reads always enabled.
pub fn webhook_rust_log() -> String {
    match std::env::var("RUST_LOG") {
        Ok(v) if !v.trim().is_empty() => format!("{v},secrets_injector_webhook::server=info"),
        _ => "info".into(),
    }
}

/// `name`'s address in one log line: `"name":"ADDR"` (JSON) or ` name=ADDR` (text).
fn logged_addr(line: &str, name: &str) -> Option<SocketAddr> {
    let (json, text) = (format!("\"{name}\":\""), format!(" {name}="));
    let (_, rest) = line
        .split_once(json.as_str())
        .or_else(|| line.split_once(text.as_str()))?;
    let end = rest
        .find(|c: char| c == '"' || c.is_whitespace())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// Wait until something accepts TCP connections on `addr`.
pub fn wait_for_port(addr: SocketAddr, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// The port in werkzeug's start-up line ` * Running on http://127.0.0.1:PORT`.
fn moto_port(line: &str) -> Option<u16> {
    let (_, rest) = line.split_once("Running on http://127.0.0.1:")?;
    rest.trim().trim_end_matches('/').parse().ok()
}

/// A moto server (the AWS emulator) on a loopback port of its own, killed on drop.
#[derive(Debug)]
pub struct Moto {
    child: Child,
    pub port: u16,
}

impl Moto {
    /// Start a fresh moto server; its state is private to this instance.
    pub fn start() -> Moto {
        Self::start_with_env(&[])
    }

    /// Start with extra environment (e.g. `INITIAL_NO_AUTH_ACTION_COUNT`).
    ///
    /// The server binds port 0 and the port is read from its start-up line, so
    /// it is the one this child listens on: with a port picked beforehand, two
    /// tests starting at once could be handed the same port, and the second
    /// would talk to the first one's server until that one was dropped.
    pub fn start_with_env(env: &[(&str, &str)]) -> Moto {
        let mut child = Command::new(tool("moto_server"))
            .args(["-H", "127.0.0.1", "-p", "0"])
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start moto_server");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        // Reads on until the server exits: werkzeug logs every request to
        // stderr, and a full pipe would block the server.
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(port) = moto_port(&line)
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(port);
                }
            }
        });
        let mut moto = Moto { child, port: 0 };
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(port) => moto.port = port,
            Err(_) => panic!("moto_server did not report a listening port within 60 s"),
        }
        let addr: SocketAddr = ([127, 0, 0, 1], moto.port).into();
        assert!(
            wait_for_port(addr, Duration::from_secs(20)),
            "moto_server reported port {} but does not accept connections there",
            moto.port
        );
        moto
    }

    /// `http://127.0.0.1:<port>`, for `AWS_ENDPOINT_URL`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Environment for an AWS SDK/CLI process pointed at this emulator with static test keys.
    pub fn aws_env(&self) -> Vec<(String, String)> {
        vec![
            ("AWS_ENDPOINT_URL".into(), self.endpoint()),
            ("AWS_ACCESS_KEY_ID".into(), "testing".into()),
            ("AWS_SECRET_ACCESS_KEY".into(), "testing".into()),
            ("AWS_REGION".into(), "us-east-1".into()),
            ("AWS_DEFAULT_REGION".into(), "us-east-1".into()),
            ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
        ]
    }

    /// Run a short Python/boto3 snippet against this emulator (for seeding and
    /// rotating secrets the way a user would). `client(service)` is predefined.
    pub fn boto3(&self, code: &str) -> String {
        let out = output_within(&mut self.boto3_command(code), Duration::from_secs(120));
        assert!(
            out.status.success(),
            "boto3 snippet failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Moto {
    /// The command [`Moto::boto3`] runs, for a snippet that runs in the
    /// background (e.g. rotating a secret in a loop); the caller spawns it.
    pub fn boto3_command(&self, code: &str) -> Command {
        let prelude = format!(
            "import boto3, json, base64\n\
             def client(s, region='us-east-1'):\n    \
             return boto3.client(s, region_name=region, endpoint_url='{}', \
             aws_access_key_id='testing', aws_secret_access_key='testing')\n",
            self.endpoint()
        );
        let mut cmd = Command::new(tool("python"));
        cmd.arg("-c").arg(format!("{prelude}{code}"));
        cmd
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Run a command to completion with its output captured, killing it (and
/// failing the test) after `timeout`: a stuck tool must not hang CI.
pub fn output_within(cmd: &mut Command, timeout: Duration) -> std::process::Output {
    let what = format!("{:?}", cmd.get_program());
    let child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    wait_output_within(child, timeout, &what)
}

/// Wait for a child with piped output (drained while it runs, so a chatty
/// child never blocks on a full pipe), killing it after `timeout`.
pub fn wait_output_within(
    child: std::process::Child,
    timeout: Duration,
    what: &str,
) -> std::process::Output {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(timeout) {
        Ok(out) => out.unwrap_or_else(|e| panic!("waiting for {what}: {e}")),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("{what} did not finish within {timeout:?}");
        }
    }
}

/// Validate YAML (one or more documents) against the Kubernetes OpenAPI
/// schemas with `kubernetes-validate --strict` for every version in
/// [`KUBE_VERSIONS`]. Returns the tool's output on failure.
pub fn kubernetes_validate(yaml: &str) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("objects.yaml");
    std::fs::write(&file, yaml).unwrap();
    for v in KUBE_VERSIONS {
        let out = output_within(
            Command::new(tool("kubernetes-validate"))
                .args(["-k", v, "--strict", "--quiet"])
                .arg(&file),
            Duration::from_secs(120),
        );
        if !out.status.success() {
            return Err(format!(
                "kubernetes-validate -k {v} --strict failed:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    Ok(())
}

/// A throwaway CA and a server certificate signed by it, as PEM.
#[derive(Debug, Clone)]
pub struct TestPki {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

impl TestPki {
    /// CA + server cert for `names` (DNS names or IP addresses).
    pub fn new(names: &[&str]) -> TestPki {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "secrets-injector test CA");
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "secrets-injector-webhook");
        let cert = params.signed_by(&key, &issuer).unwrap();
        TestPki {
            ca_pem: ca_cert.pem(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// Write `ca.crt`, `tls.crt`, `tls.key` into `dir`.
    pub fn write_to(&self, dir: &Path) {
        std::fs::write(dir.join("ca.crt"), &self.ca_pem).unwrap();
        std::fs::write(dir.join("tls.crt"), &self.cert_pem).unwrap();
        std::fs::write(dir.join("tls.key"), &self.key_pem).unwrap();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pki_issues_a_cert_for_the_names() {
        let pki = TestPki::new(&["localhost", "127.0.0.1"]);
        assert!(pki.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(pki.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(pki.key_pem.contains("PRIVATE KEY"));
        assert_ne!(pki.ca_pem, pki.cert_pem);
    }

    #[test]
    fn the_moto_port_is_read_from_the_start_up_line_only() {
        assert_eq!(
            moto_port(" * Running on http://127.0.0.1:38353"),
            Some(38353)
        );
        assert_eq!(
            moto_port(" * Running on http://127.0.0.1:38353/\r"),
            Some(38353)
        );
        assert_eq!(moto_port("WARNING: This is a development server."), None);
        assert_eq!(moto_port("127.0.0.1 - - \"GET / HTTP/1.1\" 200 -"), None);
        assert_eq!(moto_port(" * Running on http://127.0.0.1:99999"), None);
    }

    #[test]
    fn the_webhook_addresses_are_read_from_either_log_format() {
        let json = r#"{"timestamp":"t","level":"INFO","message":"serving admission requests","listen":"127.0.0.1:40001","health":"127.0.0.1:40002","max_connections":1000,"target":"w"}"#;
        let text = "2026-12-01T00:00:00Z  INFO secrets_injector_webhook::server: serving admission requests listen=127.0.0.1:40001 health=127.0.0.1:40002 max_connections=1000";
        let want: (SocketAddr, SocketAddr) = (
            "127.0.0.1:40001".parse().unwrap(),
            "127.0.0.1:40002".parse().unwrap(),
        );
        for log in [json, text] {
            let log = format!("an earlier line listen=1.2.3.4:5\n{log}\n");
            assert_eq!(webhook_bound_addrs(&log), Some(want), "{log}");
        }
        assert_eq!(webhook_bound_addrs("starting\n"), None);
        assert_eq!(
            webhook_bound_addrs(r#"{"message":"serving admission requests","listen":"Some(x)"}"#),
            None
        );
    }

    #[test]
    fn free_port_never_hands_out_a_port_twice() {
        let ports: Vec<u16> = (0..200).map(|_| free_port()).collect();
        let mut unique = ports.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), ports.len());
    }

    #[test]
    fn two_moto_servers_started_at_once_listen_on_ports_of_their_own() {
        let (a, b) = std::thread::scope(|s| {
            let a = s.spawn(Moto::start);
            let b = s.spawn(Moto::start);
            (a.join().unwrap(), b.join().unwrap())
        });
        assert_ne!(a.port, b.port);
        drop(b);
        // The survivor still answers: each test's endpoint is its own server.
        let addr: SocketAddr = ([127, 0, 0, 1], a.port).into();
        assert!(TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok());
    }
}
