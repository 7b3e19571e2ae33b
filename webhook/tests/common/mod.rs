//! Shared helpers of the webhook's HTTP/HTTPS tests: settings, fixtures, an
//! AdmissionReview builder, a CA-verifying HTTPS client (HTTP/1.1 or HTTP/2)
//! and the real binary as a child process.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use secrets_injector_tests::{TestPki, wait_for_webhook, webhook_rust_log};
use secrets_injector_webhook::settings::AgentFlags;
use secrets_injector_webhook::template::AgentTemplate;
use serde_json::{Value, json};

#[derive(Parser)]
struct FlagsCli {
    #[command(flatten)]
    agent: AgentFlags,
}

/// The agent template as `serve` would build it from `args`.
pub fn template(args: &[&str]) -> AgentTemplate {
    let argv = std::iter::once("webhook").chain(args.iter().copied());
    FlagsCli::try_parse_from(argv)
        .unwrap()
        .agent
        .template()
        .unwrap()
}

pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A fixture pod (`fixtures/<stem>.pod.yaml`) as JSON.
pub fn fixture(stem: &str) -> Value {
    let p = fixtures_dir().join(format!("{stem}.pod.yaml"));
    serde_yaml_ng::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

/// A fixture's recorded outcome (`patched`, `unchanged` or `denied`).
pub fn expected_outcome(stem: &str) -> String {
    let p = fixtures_dir().join(format!("{stem}.expected.yaml"));
    let v: Value = serde_yaml_ng::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    v["outcome"].as_str().unwrap().to_string()
}

/// Every fixture stem with its extra `serve` flags (`<stem>.args`), sorted.
pub fn fixture_stems() -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = std::fs::read_dir(fixtures_dir())
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            let stem = name.strip_suffix(".pod.yaml")?.to_string();
            let args = std::fs::read_to_string(fixtures_dir().join(format!("{stem}.args")))
                .unwrap_or_default();
            Some((stem, args.split_whitespace().map(String::from).collect()))
        })
        .collect();
    out.sort();
    out
}

/// A minimal pod naming one secret (injected once the logic is in).
pub fn simple_pod() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "app",
            "namespace": "team-a",
            "annotations": {"secrets-injector.io/secret-db": "prod/db"}
        },
        "spec": {"containers": [{"name": "app", "image": "registry.example/app:1"}]}
    })
}

/// An AdmissionReview v1 for `operation` of `pod`.
pub fn review(pod: &Value, operation: &str, uid: &str) -> Value {
    let mut r = secrets_injector_tests::pods::admission_review(pod, "team-a", uid);
    r["request"]["operation"] = json!(operation);
    if operation == "UPDATE" {
        r["request"]["oldObject"] = pod.clone();
    }
    r
}

/// HTTP version a client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    H1,
    H2,
}

/// A response and the certificate the server presented.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    pub peer_cert: Vec<u8>,
    pub alpn: Option<Vec<u8>>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

/// TLS client config trusting only the given CA PEMs, offering `proto` via ALPN.
pub fn client_config(ca_pems: &[&str], proto: Proto) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for pem in ca_pems {
        for c in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            roots.add(c.unwrap()).unwrap();
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![match proto {
        Proto::H1 => b"http/1.1".to_vec(),
        Proto::H2 => b"h2".to_vec(),
    }];
    Arc::new(cfg)
}

/// One request on a sender, either protocol.
pub enum Sender {
    H1(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
    H2(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
}

/// An open HTTPS connection (verified against the CA) to the webhook.
pub struct Conn {
    sender: Sender,
    pub peer_cert: Vec<u8>,
    pub alpn: Option<Vec<u8>>,
}

impl Conn {
    pub async fn open(
        addr: SocketAddr,
        server_name: &str,
        cfg: Arc<rustls::ClientConfig>,
        proto: Proto,
    ) -> std::io::Result<Conn> {
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        let name = ServerName::try_from(server_name.to_string()).unwrap();
        let tls = tokio_rustls::TlsConnector::from(cfg)
            .connect(name, tcp)
            .await?;
        let (_, session) = tls.get_ref();
        let peer_cert = session.peer_certificates().unwrap()[0].to_vec();
        let alpn = session.alpn_protocol().map(<[u8]>::to_vec);
        let io = TokioIo::new(tls);
        let sender = match proto {
            Proto::H1 => {
                let (s, conn) = hyper::client::conn::http1::handshake(io)
                    .await
                    .map_err(std::io::Error::other)?;
                tokio::spawn(conn);
                Sender::H1(s)
            }
            Proto::H2 => {
                let (s, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                    .await
                    .map_err(std::io::Error::other)?;
                tokio::spawn(conn);
                Sender::H2(s)
            }
        };
        Ok(Conn {
            sender,
            peer_cert,
            alpn,
        })
    }

    /// POST `body` to `path`; returns status and body.
    pub async fn post(&mut self, path: &str, body: Vec<u8>) -> std::io::Result<(u16, Vec<u8>)> {
        let req = hyper::Request::post(format!("https://localhost{path}"))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        let resp = match &mut self.sender {
            Sender::H1(s) => {
                s.ready().await.map_err(std::io::Error::other)?;
                s.send_request(req).await
            }
            Sender::H2(s) => {
                s.ready().await.map_err(std::io::Error::other)?;
                s.send_request(req).await
            }
        }
        .map_err(std::io::Error::other)?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(std::io::Error::other)?
            .to_bytes()
            .to_vec();
        Ok((status, body))
    }
}

/// One request on a fresh connection.
pub async fn post_once(
    addr: SocketAddr,
    ca_pems: &[&str],
    proto: Proto,
    path: &str,
    body: Vec<u8>,
) -> std::io::Result<Reply> {
    let mut conn = Conn::open(addr, "localhost", client_config(ca_pems, proto), proto).await?;
    let (status, body) = conn.post(path, body).await?;
    Ok(Reply {
        status,
        body,
        peer_cert: conn.peer_cert,
        alpn: conn.alpn,
    })
}

/// DER of the first certificate in a PEM.
pub fn der(pem: &str) -> Vec<u8> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()
        .unwrap()
        .unwrap()
        .to_vec()
}

/// Plain-HTTP GET on the health port: (status, body).
pub fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let r = secrets_injector_tests::https::get_plain(addr, path).unwrap();
    (r.status, r.text())
}

/// The value of one sample line of the Prometheus text, e.g. `name{label="x"}`.
pub fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no series {series} in:\n{text}"))
        .trim()
        .parse()
        .unwrap()
}

/// The real `secrets-injector-webhook serve`, killed on drop.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub health: SocketAddr,
    pub log: PathBuf,
}

impl Server {
    /// Start with the cert/key at the given paths and extra flags; waits for both ports.
    pub fn start(cert: &Path, key: &Path, log_dir: &Path, extra: &[&str]) -> Server {
        Server::launch(&[], cert, key, log_dir, extra)
    }

    /// [`Server::start`] through a launcher command (e.g. `prlimit --nofile=…`).
    pub fn launch(
        launcher: &[&str],
        cert: &Path,
        key: &Path,
        log_dir: &Path,
        extra: &[&str],
    ) -> Server {
        // Port 0, read back from the start-up line: no two tests share a port.
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let n = STARTED.fetch_add(1, Ordering::Relaxed);
        let log = log_dir.join(format!("webhook-{}-{n}.log", std::process::id()));
        let bin = env!("CARGO_BIN_EXE_secrets-injector-webhook");
        let (program, args) = match launcher.split_first() {
            Some((p, rest)) => (*p, [rest, &[bin]].concat()),
            None => (bin, Vec::new()),
        };
        let mut child = Command::new(program)
            .args(args)
            .arg("serve")
            .args(["--listen", "127.0.0.1:0", "--health-listen", "127.0.0.1:0"])
            .arg("--tls-cert-file")
            .arg(cert)
            .arg("--tls-key-file")
            .arg(key)
            .args(if extra.contains(&"--agent-image") {
                &[][..]
            } else {
                &[
                    "--agent-image",
                    "registry.example/secrets-injector-agent:test",
                ][..]
            })
            .args(extra)
            .env("RUST_LOG", webhook_rust_log())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let (addr, health) = wait_for_webhook(&mut child, &log, Duration::from_secs(60));
        Server {
            child,
            addr,
            health,
            log,
        }
    }

    /// Start with a fresh test PKI (SAN localhost, 127.0.0.1) written to `dir`.
    pub fn with_pki(dir: &Path, extra: &[&str]) -> (Server, TestPki) {
        let pki = TestPki::new(&["localhost", "127.0.0.1"]);
        pki.write_to(dir);
        let s = Server::start(&dir.join("tls.crt"), &dir.join("tls.key"), dir, extra);
        (s, pki)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn metrics(&self) -> String {
        let (status, text) = get(self.health, "/metrics");
        assert_eq!(status, 200);
        text
    }

    pub fn sigterm(&self) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap());
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    }

    /// Wait (bounded) for the process to exit; its status.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if let Some(st) = self.child.try_wait().unwrap() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
