//! Templates (§3b) in the run loops: rendered after the fetch, written in the
//! same atomic set, re-rendered on every sidecar refresh; render errors are
//! permanent, name the template and never a value.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use secrets_injector_agent::fetch::{Fetch, FetchOutcome};
use secrets_injector_agent::run::{Exit, RunSettings, run};
use secrets_injector_agent::value::SecretValue;
use secrets_injector_shared::{AgentConfig, Format, Mode, SecretRef, SecretSpec, TemplateSpec};
use tokio_util::sync::CancellationToken;

const CANARY: &str = "CANARY-tmpl-5e1d";
const WAIT: Duration = Duration::from_secs(30);

/// Answers every call with the current password (the same for every spec's `password`).
struct Fake(Arc<Mutex<String>>);

impl Fetch for Fake {
    async fn fetch(&self, specs: &[SecretSpec]) -> FetchOutcome {
        let pw = self.0.lock().unwrap().clone();
        specs
            .iter()
            .map(|s| {
                Ok(SecretValue::Text(match s.path.as_str() {
                    "db" => format!(r#"{{"user":"app","password":"{pw}"}}"#),
                    _ => "plain-host".into(),
                }))
            })
            .collect()
    }
}

fn cfg(mode: Mode, template: &str) -> AgentConfig {
    let mut db = SecretSpec::new(SecretRef::parse("prod/db").unwrap(), "db");
    db.format = Format::NoFile;
    AgentConfig {
        mode,
        secrets: vec![
            db,
            SecretSpec::new(SecretRef::parse("ssm:/prod/host").unwrap(), "host"),
        ],
        templates: vec![TemplateSpec {
            path: "dsn".into(),
            template: template.into(),
        }],
        ..AgentConfig::default()
    }
}

fn settings(dir: &Path, cfg: &AgentConfig) -> RunSettings {
    let mount = dir.join("mnt");
    std::fs::create_dir_all(&mount).unwrap();
    let mut s = RunSettings::new(cfg, mount, dir.join("termination-log"));
    s.backoff_initial = Duration::from_millis(10);
    s.refresh = Duration::from_millis(50);
    s
}

fn visible(dir: &Path) -> Vec<String> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with(".."))
        .collect();
    v.sort();
    v
}

const DSN: &str =
    "postgres://{{ secrets.db.user }}:{{ secrets.db.password | urlencode }}@{{ secrets.host }}/app";

#[tokio::test]
async fn a_template_is_written_with_the_files_and_format_none_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(Mode::Init, DSN);
    let s = settings(dir.path(), &c);
    let fake = Fake(Arc::new(Mutex::new("p@ss".into())));
    let exit = tokio::time::timeout(WAIT, run(&c, &fake, &s, CancellationToken::new()))
        .await
        .unwrap();
    assert_eq!(exit, Exit::Done);
    assert_eq!(visible(&s.mount_dir), ["dsn", "host"]);
    let dsn = std::fs::read_to_string(s.mount_dir.join("dsn")).unwrap();
    assert_eq!(dsn, "postgres://app:p%40ss@plain-host/app");
}

#[tokio::test]
async fn an_undefined_key_is_permanent_names_the_template_and_never_the_value() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(
        Mode::Init,
        "user={{ secrets.db.user }}\npw={{ secrets.db.pasword }}",
    );
    let s = settings(dir.path(), &c);
    let fake = Fake(Arc::new(Mutex::new(CANARY.into())));
    let exit = tokio::time::timeout(WAIT, run(&c, &fake, &s, CancellationToken::new()))
        .await
        .unwrap();
    assert_eq!(exit, Exit::Failed);
    let log = std::fs::read_to_string(&s.termination_log).unwrap();
    assert!(
        log.contains("secrets-injector.io/template-dsn: TemplateError: line 2: undefined value"),
        "{log}"
    );
    assert!(log.contains("pw={{ secrets.db.pasword }}"), "{log}");
    assert!(!log.contains(CANARY), "{log}");
    assert!(visible(&s.mount_dir).is_empty(), "nothing written");
}

#[tokio::test]
async fn a_sidecar_re_renders_on_every_change() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(Mode::Sidecar, DSN);
    let s = settings(dir.path(), &c);
    let pw = Arc::new(Mutex::new("one".to_string()));
    let fake = Arc::new(Fake(pw.clone()));
    let shutdown = CancellationToken::new();
    let task = {
        let (c, s, fake, shutdown) = (c.clone(), s.clone(), fake.clone(), shutdown.clone());
        tokio::spawn(async move { run(&c, &*fake, &s, shutdown).await })
    };
    let read = || std::fs::read_to_string(s.mount_dir.join("dsn")).unwrap_or_default();
    let wait_for = |want: &'static str| async move {
        for _ in 0..600 {
            if read().contains(want) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    };
    assert!(wait_for(":one@").await, "first render");
    *pw.lock().unwrap() = "two".into();
    assert!(wait_for(":two@").await, "re-rendered after rotation");
    shutdown.cancel();
    let exit = tokio::time::timeout(WAIT, task).await.unwrap().unwrap();
    assert_eq!(exit, Exit::Done);
}
