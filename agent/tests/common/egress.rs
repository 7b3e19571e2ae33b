//! What stands between the agent and AWS in a locked-down cluster, on
//! loopback: an HTTP proxy that tunnels `CONNECT` and forwards absolute-form
//! requests (counting both), and a TLS front that terminates HTTPS for a
//! plain upstream (moto) with a certificate of a test CA.

// Test support: a broken helper should fail the test loudly; each test binary uses part of it.
#![allow(clippy::unwrap_used, dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use secrets_injector_tests::TestPki;
use tokio::io::{AsyncReadExt, AsyncWriteExt, copy_bidirectional};
use tokio::net::{TcpListener, TcpStream};

/// A forward proxy: `CONNECT host:port` opens a tunnel, `GET http://host:port/…` is forwarded.
#[derive(Debug)]
pub struct EgressProxy {
    pub addr: SocketAddr,
    tunnels: Arc<AtomicUsize>,
    forwards: Arc<AtomicUsize>,
    /// `host:port` of every tunnel and forwarded request, in order.
    targets: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl EgressProxy {
    pub async fn start() -> EgressProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let tunnels = Arc::new(AtomicUsize::new(0));
        let forwards = Arc::new(AtomicUsize::new(0));
        let targets = Arc::new(Mutex::new(Vec::new()));
        let (t, f, g) = (tunnels.clone(), forwards.clone(), targets.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                let (t, f, g) = (t.clone(), f.clone(), g.clone());
                tokio::spawn(async move {
                    let _ = serve(client, t, f, g).await;
                });
            }
        });
        EgressProxy {
            addr,
            tunnels,
            forwards,
            targets,
            task,
        }
    }

    /// `http://127.0.0.1:<port>`, for `HTTPS_PROXY`/`HTTP_PROXY`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn tunnels(&self) -> usize {
        self.tunnels.load(Ordering::SeqCst)
    }

    pub fn forwards(&self) -> usize {
        self.forwards.load(Ordering::SeqCst)
    }

    pub fn targets(&self) -> Vec<String> {
        self.targets.lock().unwrap().clone()
    }
}

impl Drop for EgressProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    mut client: TcpStream,
    tunnels: Arc<AtomicUsize>,
    forwards: Arc<AtomicUsize>,
    targets: Arc<Mutex<Vec<String>>>,
) -> std::io::Result<()> {
    let head = read_head(&mut client).await?;
    let text = String::from_utf8_lossy(&head).into_owned();
    let first = text.lines().next().unwrap_or_default().to_string();
    let mut parts = first.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if method == "CONNECT" {
        tunnels.fetch_add(1, Ordering::SeqCst);
        targets.lock().unwrap().push(target.to_string());
        let mut upstream = TcpStream::connect(target).await?;
        client
            .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            .await?;
        copy_bidirectional(&mut client, &mut upstream).await?;
        return Ok(());
    }
    // Absolute form: `GET http://host:port/path HTTP/1.1` → origin form to host:port.
    let rest = target.strip_prefix("http://").unwrap_or(target);
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    forwards.fetch_add(1, Ordering::SeqCst);
    targets.lock().unwrap().push(authority.to_string());
    let mut upstream = TcpStream::connect(authority).await?;
    let version = parts.next().unwrap_or("HTTP/1.1");
    let rewritten = text.replacen(&first, &format!("{method} {path} {version}"), 1);
    upstream.write_all(rewritten.as_bytes()).await?;
    copy_bidirectional(&mut client, &mut upstream).await?;
    Ok(())
}

/// Read up to and including the blank line that ends the request head.
async fn read_head(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).await? == 0 || head.len() > 64 * 1024 {
            return Err(std::io::Error::other("incomplete request head"));
        }
        head.push(byte[0]);
    }
    Ok(head)
}

/// HTTPS on loopback in front of a plain-HTTP upstream port, serving a
/// certificate for `localhost` and `127.0.0.1` signed by its own test CA.
#[derive(Debug)]
pub struct TlsFront {
    pub port: u16,
    /// PEM of the CA that signed the served certificate.
    pub ca_pem: String,
    handshakes: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl TlsFront {
    pub async fn start(upstream_port: u16) -> TlsFront {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let pki = TestPki::new(&["localhost", "127.0.0.1"]);
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(pki.cert_pem.as_bytes())
                .collect::<Result<_, _>>()
                .unwrap();
        let key = PrivateKeyDer::from_pem_slice(pki.key_pem.as_bytes()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let handshakes = Arc::new(AtomicUsize::new(0));
        let h = handshakes.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let (acceptor, h) = (acceptor.clone(), h.clone());
                tokio::spawn(async move {
                    h.fetch_add(1, Ordering::SeqCst);
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let Ok(mut upstream) = TcpStream::connect(("127.0.0.1", upstream_port)).await
                    else {
                        return;
                    };
                    let _ = copy_bidirectional(&mut tls, &mut upstream).await;
                });
            }
        });
        TlsFront {
            port,
            ca_pem: pki.ca_pem,
            handshakes,
            task,
        }
    }

    /// `https://localhost:<port>`, for `AWS_ENDPOINT_URL`.
    pub fn endpoint(&self) -> String {
        format!("https://localhost:{}", self.port)
    }

    /// TLS handshakes attempted (one per connection the agent opened) since start or [`Self::reset`].
    pub fn handshakes_since_reset(&self) -> usize {
        self.handshakes.load(Ordering::SeqCst)
    }

    pub fn reset(&self) {
        self.handshakes.store(0, Ordering::SeqCst);
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.task.abort();
    }
}
