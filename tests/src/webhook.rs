//! The real webhook binary, serving HTTPS with a throwaway CA, as the API server sees it.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::{TestPki, https, wait_for_webhook, webhook_rust_log, workspace_bin};

/// `secrets-injector-webhook serve` on loopback ports, killed on drop.
#[derive(Debug)]
pub struct WebhookProcess {
    child: Child,
    pub addr: SocketAddr,
    pub health: SocketAddr,
    pub pki: TestPki,
    _dir: tempfile::TempDir,
}

impl WebhookProcess {
    /// Start with `--agent-image` and any extra flags.
    pub fn start(agent_image: &str, extra: &[&str]) -> WebhookProcess {
        let dir = tempfile::tempdir().unwrap();
        let pki = TestPki::new(&["localhost", "127.0.0.1"]);
        pki.write_to(dir.path());
        let log = dir.path().join("webhook.log");
        // Port 0, read back from the start-up line: no two tests share a port.
        let mut child = Command::new(workspace_bin("secrets-injector-webhook"))
            .arg("serve")
            .args(["--listen", "127.0.0.1:0", "--health-listen", "127.0.0.1:0"])
            .arg("--tls-cert-file")
            .arg(dir.path().join("tls.crt"))
            .arg("--tls-key-file")
            .arg(dir.path().join("tls.key"))
            .args(["--agent-image", agent_image, "--log-format", "text"])
            .args(extra)
            .env("RUST_LOG", webhook_rust_log())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start secrets-injector-webhook serve");
        let (addr, health) = wait_for_webhook(&mut child, &log, Duration::from_secs(30));
        WebhookProcess {
            child,
            addr,
            health,
            pki,
            _dir: dir,
        }
    }

    /// POST an AdmissionReview to `/mutate` over verified HTTPS; returns (status, body JSON or text).
    pub fn post_review(&self, review: &Value) -> (u16, Result<Value, String>) {
        let body = serde_json::to_vec(review).unwrap();
        let resp = https::post(self.addr, "localhost", &self.pki.ca_pem, "/mutate", &body)
            .expect("HTTPS POST /mutate");
        let parsed = serde_json::from_slice(&resp.body).map_err(|_| resp.text());
        (resp.status, parsed)
    }
}

impl Drop for WebhookProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
