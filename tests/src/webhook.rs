//! The real webhook binary, serving HTTPS with a throwaway CA, as the API server sees it.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::{TestPki, free_port, https, wait_for_port, workspace_bin};

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
        let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let health: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let child = Command::new(workspace_bin("secrets-injector-webhook"))
            .arg("serve")
            .args([
                "--listen",
                &addr.to_string(),
                "--health-listen",
                &health.to_string(),
            ])
            .arg("--tls-cert-file")
            .arg(dir.path().join("tls.crt"))
            .arg("--tls-key-file")
            .arg(dir.path().join("tls.key"))
            .args(["--agent-image", agent_image, "--log-format", "text"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start secrets-injector-webhook serve");
        let wh = WebhookProcess {
            child,
            addr,
            health,
            pki,
            _dir: dir,
        };
        assert!(
            wait_for_port(addr, Duration::from_secs(30)),
            "webhook did not listen on {addr}"
        );
        assert!(
            wait_for_port(health, Duration::from_secs(30)),
            "webhook health port {health} not up"
        );
        wh
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
