//! `certs`: a development CA and a server certificate for the webhook Service (rcgen).

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use time::{Duration, OffsetDateTime};

use crate::error::Error;

/// PEM output of [`generate`].
#[derive(Debug, Clone)]
pub struct DevCerts {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

/// The names the API server may use for `service` in `namespace`, then `extra`.
pub fn service_names(service: &str, namespace: &str, extra: &[String]) -> Vec<String> {
    let mut names = vec![
        service.to_string(),
        format!("{service}.{namespace}"),
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}.svc.cluster.local"),
    ];
    for n in extra {
        if !names.contains(n) {
            names.push(n.clone());
        }
    }
    names
}

/// A fresh CA and a server certificate for `names`, valid for `days`.
pub fn generate(names: &[String], days: u32) -> Result<DevCerts, Error> {
    let err = |what: &str, e: rcgen::Error| Error::Certs(format!("{what}: {e}"));
    let now = OffsetDateTime::now_utc();
    // A little backdating tolerates clock skew between machines.
    let not_before = now - Duration::minutes(5);
    let not_after = now + Duration::days(i64::from(days));

    let ca_key = KeyPair::generate().map_err(|e| err("generating the CA key", e))?;
    let mut ca =
        CertificateParams::new(Vec::<String>::new()).map_err(|e| err("CA parameters", e))?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.distinguished_name
        .push(DnType::CommonName, "secrets-injector development CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.not_before = not_before;
    ca.not_after = not_after;
    let ca_cert = ca
        .self_signed(&ca_key)
        .map_err(|e| err("signing the CA", e))?;
    let issuer = Issuer::new(ca, ca_key);

    let key = KeyPair::generate().map_err(|e| err("generating the server key", e))?;
    let mut params = CertificateParams::new(names.to_vec())
        .map_err(|e| err("invalid DNS name or IP address", e))?;
    let cn = names.get(2).or(names.first()).cloned().unwrap_or_default();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.not_before = not_before;
    params.not_after = not_after;
    let cert = params
        .signed_by(&key, &issuer)
        .map_err(|e| err("signing the server certificate", e))?;
    Ok(DevCerts {
        ca_pem: ca_cert.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// Write `ca.crt`, `tls.crt` and `tls.key` (mode 0600) into `dir`, creating it.
pub fn write(dir: &Path, certs: &DevCerts) -> Result<(), Error> {
    let io =
        |p: &Path, e: std::io::Error| Error::Certs(format!("cannot write {}: {e}", p.display()));
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    for (name, pem, mode) in [
        ("ca.crt", &certs.ca_pem, 0o644),
        ("tls.crt", &certs.cert_pem, 0o644),
        ("tls.key", &certs.key_pem, 0o600),
    ] {
        let p = dir.join(name);
        write_mode(&p, pem.as_bytes(), mode).map_err(|e| io(&p, e))?;
    }
    Ok(())
}

fn write_mode(path: &Path, data: &[u8], mode: u32) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)?;
    // An existing file keeps its old mode on open; set it explicitly.
    f.set_permissions(std::fs::Permissions::from_mode(mode))?;
    f.write_all(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_names_cover_every_form_the_api_server_uses() {
        let n = service_names("svc", "ns", &["localhost".into(), "svc".into()]);
        assert_eq!(
            n,
            [
                "svc",
                "svc.ns",
                "svc.ns.svc",
                "svc.ns.svc.cluster.local",
                "localhost"
            ]
        );
    }

    #[test]
    fn generated_pair_parses_and_the_key_matches() {
        let names = service_names("svc", "ns", &[]);
        let c = generate(&names, 30).unwrap();
        let p = rustls::crypto::ring::default_provider();
        let pair = crate::tls::parse_pair(c.cert_pem.as_bytes(), c.key_pem.as_bytes(), &p).unwrap();
        let in_days = (pair.not_after - OffsetDateTime::now_utc().unix_timestamp()) / 86_400;
        assert!((29..=30).contains(&in_days), "{in_days}");
    }
}
