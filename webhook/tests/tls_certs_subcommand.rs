//! `secrets-injector-webhook certs`: the files parse, carry the Service's DNS
//! names, the key is private, and the server serves with them (verified via the CA).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use common::{Proto, Server};
use x509_parser::extensions::GeneralName;

#[test]
fn certs_are_valid_for_the_service_names_and_serve_https() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("certs");
    let run = Command::new(env!("CARGO_BIN_EXE_secrets-injector-webhook"))
        .args([
            "certs",
            "--service",
            "svc",
            "--namespace",
            "ns",
            "--dns-name",
            "localhost",
        ])
        .args(["--days", "30", "--out-dir"])
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(stderr.contains("svc.ns.svc.cluster.local"), "{stderr}");

    let pem = std::fs::read_to_string(out.join("tls.crt")).unwrap();
    let der = common::der(&pem);
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    let san = cert
        .subject_alternative_name()
        .unwrap()
        .expect("SAN extension");
    let names: Vec<String> = san
        .value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::DNSName(d) => Some(d.to_string()),
            _ => None,
        })
        .collect();
    for n in [
        "svc",
        "svc.ns",
        "svc.ns.svc",
        "svc.ns.svc.cluster.local",
        "localhost",
    ] {
        assert!(names.iter().any(|x| x == n), "{n} missing from {names:?}");
    }
    let ca_pem = std::fs::read_to_string(out.join("ca.crt")).unwrap();
    let ca_der = common::der(&ca_pem);
    let (_, ca) = x509_parser::parse_x509_certificate(&ca_der).unwrap();
    assert!(ca.is_ca());
    assert_eq!(cert.issuer(), ca.subject());
    let mode = std::fs::metadata(out.join("tls.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    let server = Server::start(&out.join("tls.crt"), &out.join("tls.key"), dir.path(), &[]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let body = serde_json::to_vec(&common::review(&common::simple_pod(), "CREATE", "c")).unwrap();
    let mut conn = rt
        .block_on(common::Conn::open(
            server.addr,
            "svc.ns.svc",
            common::client_config(&[&ca_pem], Proto::H2),
            Proto::H2,
        ))
        .expect("TLS verified against ca.crt for svc.ns.svc");
    let (status, _) = rt.block_on(conn.post("/mutate", body)).unwrap();
    assert_eq!(status, 200);
}
