//! rustls server config with a certificate that hot-reloads from files: a
//! resolver backed by `ArcSwap`, a poller comparing content hashes (Secret
//! volumes swap a `..data` symlink, so mtimes alone are unreliable), and a bad
//! new pair never replaces a good one.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::error::Error;
use crate::metrics::{Metrics, ReloadResult};

/// A certificate pair read from disk, with what we need to know about it.
#[derive(Debug)]
pub struct LoadedPair {
    pub key: Arc<CertifiedKey>,
    /// `notAfter` of the leaf, Unix seconds.
    pub not_after: i64,
}

/// The two files' bytes and a content hash, to notice any change (including symlink swaps).
struct PairBytes {
    cert: Vec<u8>,
    key: Vec<u8>,
    hash: [u8; 32],
}

fn read_pair(cert: &Path, key: &Path) -> Result<PairBytes, Error> {
    let read = |p: &Path| {
        std::fs::read(p).map_err(|e| Error::Tls(format!("cannot read {}: {e}", p.display())))
    };
    // A `..data` swap between the two reads would pair an old cert with a new
    // key: read the cert again after the key, and retry when it moved.
    let (mut c, mut k) = (read(cert)?, read(key)?);
    for _ in 0..3 {
        let again = read(cert)?;
        if again == c {
            break;
        }
        (c, k) = (again, read(key)?);
    }
    let mut h = Sha256::new();
    h.update((c.len() as u64).to_be_bytes());
    h.update(&c);
    h.update(&k);
    Ok(PairBytes {
        cert: c,
        key: k,
        hash: h.finalize().into(),
    })
}

/// Parse a PEM chain and key; checks the key matches the leaf. Messages never contain key material.
pub fn parse_pair(
    cert_pem: &[u8],
    key_pem: &[u8],
    provider: &CryptoProvider,
) -> Result<LoadedPair, Error> {
    let certs = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::Tls(format!("certificate file is not valid PEM: {e}")))?;
    let leaf = certs
        .first()
        .ok_or_else(|| Error::Tls("certificate file holds no CERTIFICATE block".into()))?;
    let not_after = {
        let (_, parsed) = x509_parser::parse_x509_certificate(leaf)
            .map_err(|e| Error::Tls(format!("certificate is not valid X.509: {e}")))?;
        parsed.validity().not_after.timestamp()
    };
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|_| {
        Error::Tls("key file holds no PEM private key (PKCS#8, PKCS#1 or SEC1)".into())
    })?;
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| Error::Tls(format!("unsupported private key: {e}")))?;
    let certified = CertifiedKey::new(certs, signing);
    certified
        .keys_match()
        .map_err(|e| Error::Tls(format!("private key does not match the certificate: {e}")))?;
    Ok(LoadedPair {
        key: Arc::new(certified),
        not_after,
    })
}

/// The served certificate, swappable at any time without disturbing handshakes.
#[derive(Debug)]
pub struct CertStore {
    cert_path: PathBuf,
    key_path: PathBuf,
    provider: Arc<CryptoProvider>,
    current: ArcSwap<CertifiedKey>,
    /// Hash of the files last looked at (good or bad), so a bad pair is reported once.
    seen: Mutex<[u8; 32]>,
    metrics: Arc<Metrics>,
}

impl CertStore {
    /// Load the initial pair; failing here is fatal (nothing to serve).
    pub fn load(
        cert_path: &Path,
        key_path: &Path,
        metrics: Arc<Metrics>,
    ) -> Result<CertStore, Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let PairBytes { cert, key, hash } = read_pair(cert_path, key_path)?;
        let pair = parse_pair(&cert, &key, &provider)?;
        metrics.cert_expiry(pair.not_after);
        Ok(CertStore {
            cert_path: cert_path.to_path_buf(),
            key_path: key_path.to_path_buf(),
            provider,
            current: ArcSwap::new(pair.key),
            seen: Mutex::new(hash),
            metrics,
        })
    }

    /// Reload when the files' content changed. `Ok(true)` when a new pair is served;
    /// on a bad pair the old one stays and the error is returned (and counted).
    pub fn reload_if_changed(&self) -> Result<bool, Error> {
        // Unreadable files (e.g. mid-swap) are retried next poll; the old pair stays.
        let PairBytes { cert, key, hash } = read_pair(&self.cert_path, &self.key_path)?;
        {
            let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            if *seen == hash {
                return Ok(false);
            }
            *seen = hash;
        }
        match parse_pair(&cert, &key, &self.provider) {
            Ok(pair) => {
                self.current.store(pair.key);
                self.metrics.cert_expiry(pair.not_after);
                self.metrics.tls_reload(ReloadResult::Success);
                Ok(true)
            }
            Err(e) => {
                self.metrics.tls_reload(ReloadResult::Failure);
                Err(e)
            }
        }
    }

    /// The pair served right now.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current.load_full()
    }

    /// Poll the files every `interval` until `shutdown`.
    pub async fn watch(self: Arc<Self>, interval: Duration, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let store = Arc::clone(&self);
            // File reads and parsing are blocking work.
            let res = tokio::task::spawn_blocking(move || store.reload_if_changed()).await;
            match res {
                Ok(Ok(true)) => {
                    tracing::info!(cert = %self.cert_path.display(), "TLS certificate reloaded")
                }
                Ok(Ok(false)) => {}
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "TLS certificate not reloaded; still serving the previous one")
                }
                Err(e) => tracing::error!(error = %e, "TLS reload task failed"),
            }
        }
    }

    /// A rustls server config (TLS 1.2 and 1.3, ALPN h2 and http/1.1) serving this store.
    pub fn server_config(self: &Arc<Self>) -> Result<rustls::ServerConfig, Error> {
        let mut cfg = rustls::ServerConfig::builder_with_provider(Arc::clone(&self.provider))
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| Error::Tls(format!("TLS configuration: {e}")))?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(Resolver(Arc::clone(self))));
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(cfg)
    }
}

/// Hands rustls whatever pair the store holds at handshake time.
#[derive(Debug)]
struct Resolver(Arc<CertStore>);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.current())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrets_injector_tests::TestPki;

    fn store(dir: &Path, pki: &TestPki) -> (CertStore, Arc<Metrics>) {
        pki.write_to(dir);
        let metrics = Arc::new(Metrics::new());
        let s = CertStore::load(
            &dir.join("tls.crt"),
            &dir.join("tls.key"),
            Arc::clone(&metrics),
        )
        .unwrap();
        (s, metrics)
    }

    #[test]
    fn unchanged_files_do_not_reload_and_changed_files_do() {
        let dir = tempfile::tempdir().unwrap();
        let (s, m) = store(dir.path(), &TestPki::new(&["localhost"]));
        assert!(!s.reload_if_changed().unwrap());
        let before = s.current();
        let next = TestPki::new(&["localhost"]);
        next.write_to(dir.path());
        assert!(s.reload_if_changed().unwrap());
        assert!(!Arc::ptr_eq(&before, &s.current()));
        assert!(
            m.encode()
                .contains("tls_reloads_total{result=\"success\"} 1")
        );
    }

    #[test]
    fn mismatched_key_keeps_the_old_pair_and_counts_a_failure() {
        let dir = tempfile::tempdir().unwrap();
        let (s, m) = store(dir.path(), &TestPki::new(&["localhost"]));
        let before = s.current();
        let other = TestPki::new(&["localhost"]);
        std::fs::write(dir.path().join("tls.key"), &other.key_pem).unwrap();
        let err = s.reload_if_changed().unwrap_err().to_string();
        assert!(err.contains("does not match"), "{err}");
        assert!(!err.contains("PRIVATE KEY-----"), "{err}");
        assert!(Arc::ptr_eq(&before, &s.current()));
        assert!(
            m.encode()
                .contains("tls_reloads_total{result=\"failure\"} 1")
        );
        // The same bad content is not recounted on the next poll.
        assert!(!s.reload_if_changed().unwrap());
    }

    #[test]
    fn garbage_is_rejected_with_a_clear_message() {
        let p = rustls::crypto::ring::default_provider();
        let pki = TestPki::new(&["localhost"]);
        let e = parse_pair(b"hello", pki.key_pem.as_bytes(), &p)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no CERTIFICATE"), "{e}");
        let e = parse_pair(pki.cert_pem.as_bytes(), b"nope", &p)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no PEM private key"), "{e}");
    }
}
