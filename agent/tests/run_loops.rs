//! run::run over a scripted fake `Fetch`: retries, fail-fast, optional
//! secrets, sidecar rewrite-on-change with `on-change`, and prompt shutdown.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use secrets_injector_agent::failure::{FailureKind, FetchFailure};
use secrets_injector_agent::fetch::{Fetch, FetchOutcome};
use secrets_injector_agent::run::{Exit, RunSettings, run};
use secrets_injector_agent::value::SecretValue as Value;
use secrets_injector_shared::{AgentConfig, JmesPathEntry, Mode, OnChange, SecretRef, SecretSpec};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

const CANARY: &str = "CANARY-run-91b2";
const WAIT: Duration = Duration::from_secs(30);

type Script = dyn Fn(usize, &[SecretSpec]) -> FetchOutcome + Send + Sync;

/// Answers each call with `script(call_number, specs)`; counts calls.
struct Fake {
    calls: Arc<AtomicUsize>,
    script: Box<Script>,
}

impl Fake {
    fn new(script: impl Fn(usize, &[SecretSpec]) -> FetchOutcome + Send + Sync + 'static) -> Fake {
        Fake {
            calls: Arc::new(AtomicUsize::new(0)),
            script: Box::new(script),
        }
    }
}

impl Fetch for Fake {
    async fn fetch(&self, specs: &[SecretSpec]) -> FetchOutcome {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        (self.script)(n, specs)
    }
}

fn ok_all(specs: &[SecretSpec], value: &str) -> FetchOutcome {
    specs
        .iter()
        .map(|_| Ok(Value::Text(value.to_string())))
        .collect()
}

fn failure(secret: &str, code: &str, kind: FailureKind) -> FetchFailure {
    FetchFailure {
        secret: secret.into(),
        code: code.into(),
        message: format!("{code} happened."),
        hint: Some(format!("fix {code}")),
        kind,
    }
}

fn cfg(mode: Mode, refs: &[&str]) -> AgentConfig {
    AgentConfig {
        mode,
        secrets: refs
            .iter()
            .enumerate()
            .map(|(i, r)| SecretSpec::new(SecretRef::parse(r).unwrap(), format!("s{i}")))
            .collect(),
        ..AgentConfig::default()
    }
}

fn settings(dir: &Path, cfg: &AgentConfig) -> RunSettings {
    let mount = dir.join("mnt");
    std::fs::create_dir_all(&mount).unwrap();
    let mut s = RunSettings::new(cfg, mount, dir.join("termination-log"));
    s.backoff_initial = Duration::from_millis(10);
    s.backoff_cap = Duration::from_millis(50);
    s.refresh = Duration::from_millis(50);
    s
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

async fn run_bounded<F: Fetch>(c: &AgentConfig, f: &F, s: &RunSettings) -> Exit {
    tokio::time::timeout(WAIT, run(c, f, s, CancellationToken::new()))
        .await
        .expect("run finished")
}

/// The secrets each call asked for, in call order.
fn asked(log: &Mutex<Vec<Vec<String>>>) -> Vec<Vec<String>> {
    log.lock().unwrap().clone()
}

#[tokio::test]
async fn transient_failures_are_retried_until_success_asking_only_for_what_failed() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(Mode::Init, &["prod/db", "ssm:/app/key", "prod/other"]);
    let s = settings(dir.path(), &c);
    let log = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&log);
    let fake = Fake::new(move |n, specs| {
        seen.lock()
            .unwrap()
            .push(specs.iter().map(|s| s.source.to_string()).collect());
        specs
            .iter()
            .map(|spec| match spec.source.to_string().as_str() {
                "ssm:/app/key" if n < 3 => Err(failure(
                    "ssm:/app/key",
                    "ThrottlingException",
                    FailureKind::Transient,
                )),
                name => Ok(Value::Text(format!("v{n}-{name}"))),
            })
            .collect()
    });
    assert_eq!(run_bounded(&c, &fake, &s).await, Exit::Done);
    assert_eq!(fake.calls.load(Ordering::SeqCst), 3);
    assert_eq!(
        asked(&log),
        vec![
            vec!["prod/db", "ssm:/app/key", "prod/other"],
            vec!["ssm:/app/key"],
            vec!["ssm:/app/key"],
        ],
        "a retry asks only for the secret that failed"
    );
    let read = |f: &str| std::fs::read_to_string(s.mount_dir.join(f)).unwrap();
    assert_eq!(read("s0"), "v1-prod/db", "kept from the first round");
    assert_eq!(read("s1"), "v3-ssm:/app/key");
    assert_eq!(read("s2"), "v1-prod/other", "kept from the first round");
    assert!(!s.termination_log.exists());
}

#[tokio::test]
async fn a_retry_answering_fewer_secrets_than_asked_fails_those_transiently() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(Mode::Init, &["prod/db", "ssm:/app/key"]);
    let mut s = settings(dir.path(), &c);
    s.startup_timeout = Duration::from_millis(300);
    let fake = Fake::new(|n, _| {
        if n == 1 {
            vec![
                Ok(Value::Text("v".into())),
                Err(failure(
                    "ssm:/app/key",
                    "ThrottlingException",
                    FailureKind::Transient,
                )),
            ]
        } else {
            Vec::new()
        }
    });
    assert_eq!(run_bounded(&c, &fake, &s).await, Exit::Failed);
    let log = std::fs::read_to_string(&s.termination_log).unwrap();
    assert_eq!(log.lines().count(), 1, "{log}");
    assert!(log.starts_with("secret ssm:/app/key: "), "{log}");
    assert!(entries(&s.mount_dir).is_empty(), "all or nothing");
}

#[tokio::test]
async fn permanent_failure_stops_at_once_and_explains_itself() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(Mode::Init, &["prod/db", "prod/other", "ssm:/app/key"]);
    let s = settings(dir.path(), &c);
    let fake = Fake::new(|_, _| {
        vec![
            Err(failure(
                "prod/db",
                "AccessDeniedException",
                FailureKind::Denied,
            )),
            Ok(Value::Text(CANARY.into())),
            Err(failure(
                "ssm:/app/key",
                "ThrottlingException",
                FailureKind::Transient,
            )),
        ]
    });
    assert_eq!(run_bounded(&c, &fake, &s).await, Exit::Failed);
    assert_eq!(
        fake.calls.load(Ordering::SeqCst),
        1,
        "no retry after a permanent error"
    );
    let log = std::fs::read_to_string(&s.termination_log).unwrap();
    assert_eq!(
        log,
        "secret prod/db: AccessDeniedException: AccessDeniedException happened. hint: fix AccessDeniedException\n\
         secret ssm:/app/key: ThrottlingException: ThrottlingException happened. hint: fix ThrottlingException\n"
    );
    assert!(entries(&s.mount_dir).is_empty(), "all or nothing");
}

#[tokio::test]
async fn transient_failures_give_up_at_the_startup_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(Mode::Init, &["prod/db"]);
    let mut s = settings(dir.path(), &c);
    s.startup_timeout = Duration::from_millis(300);
    let fake = Fake::new(|_, _| {
        vec![Err(failure(
            "prod/db",
            "InternalServiceError",
            FailureKind::Transient,
        ))]
    });
    assert_eq!(run_bounded(&c, &fake, &s).await, Exit::Failed);
    assert!(
        fake.calls.load(Ordering::SeqCst) >= 2,
        "retried before giving up"
    );
    let log = std::fs::read_to_string(&s.termination_log).unwrap();
    assert!(
        log.starts_with("secret prod/db: InternalServiceError:"),
        "{log}"
    );
    assert_eq!(log.lines().count(), 1);
    assert!(entries(&s.mount_dir).is_empty());
}

#[tokio::test]
async fn optional_missing_secret_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(Mode::Init, &["prod/db", "prod/maybe"]);
    c.secrets[1].optional = true;
    let s = settings(dir.path(), &c);
    let fake = Fake::new(|_, _| {
        vec![
            Ok(Value::Text("db".into())),
            Err(failure(
                "prod/maybe",
                "ResourceNotFoundException",
                FailureKind::NotFound,
            )),
        ]
    });
    assert_eq!(run_bounded(&c, &fake, &s).await, Exit::Done);
    assert_eq!(
        entries(&s.mount_dir)
            .iter()
            .filter(|n| !n.starts_with(".."))
            .collect::<Vec<_>>(),
        ["s0"]
    );

    // The same secret, not optional, fails the pod.
    let dir = tempfile::tempdir().unwrap();
    c.secrets[1].optional = false;
    let s = settings(dir.path(), &c);
    assert_eq!(run_bounded(&c, &fake, &s).await, Exit::Failed);
    let log = std::fs::read_to_string(&s.termination_log).unwrap();
    assert!(
        log.contains("prod/maybe: ResourceNotFoundException"),
        "{log}"
    );
}

#[tokio::test]
async fn optional_secret_still_failing_at_the_startup_timeout_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    // The second secret is throttled on every attempt.
    let throttled = || {
        Fake::new(|_, specs| {
            specs
                .iter()
                .map(|spec| match spec.source.to_string().as_str() {
                    "prod/extra" => Err(failure(
                        "prod/extra",
                        "ThrottlingException",
                        FailureKind::Transient,
                    )),
                    _ => Ok(Value::Text("v".into())),
                })
                .collect()
        })
    };
    let mut c = cfg(Mode::Init, &["prod/db", "prod/extra"]);
    c.secrets[1].optional = true;
    let mut s = settings(dir.path(), &c);
    s.startup_timeout = Duration::from_millis(300);
    let fake = throttled();
    assert_eq!(run_bounded(&c, &fake, &s).await, Exit::Done);
    assert!(
        fake.calls.load(Ordering::SeqCst) > 1,
        "retried until the timeout"
    );
    assert_eq!(
        std::fs::read_to_string(s.mount_dir.join("s0")).unwrap(),
        "v"
    );
    assert!(!s.mount_dir.join("s1").exists());

    // The same throttling on a required secret fails the pod.
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(Mode::Init, &["prod/db", "prod/extra"]);
    let mut s = settings(dir.path(), &c);
    s.startup_timeout = Duration::from_millis(300);
    assert_eq!(run_bounded(&c, &throttled(), &s).await, Exit::Failed);
}

#[tokio::test]
async fn render_failure_is_permanent_and_never_shows_the_value() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(Mode::Init, &["prod/db"]);
    c.secrets[0].jmes_path.push(JmesPathEntry {
        path: "password.missing".into(),
        alias: "pw".into(),
    });
    let s = settings(dir.path(), &c);
    let fake = Fake::new(|_, specs| ok_all(specs, &format!(r#"{{"password":"{CANARY}"}}"#)));
    assert_eq!(run_bounded(&c, &fake, &s).await, Exit::Failed);
    assert_eq!(fake.calls.load(Ordering::SeqCst), 1);
    let log = std::fs::read_to_string(&s.termination_log).unwrap();
    assert!(log.contains("secret prod/db: InvalidSecretValue:"), "{log}");
    assert!(log.contains("\"password.missing\""), "{log}");
    assert!(!log.contains(CANARY), "{log}");
    assert!(entries(&s.mount_dir).is_empty());
}

/// A loopback HTTP server that counts POSTs and answers 200.
async fn counting_server() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/reload", listener.local_addr().unwrap());
    let posts = Arc::new(AtomicUsize::new(0));
    let p = posts.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let mut buf = vec![0u8; 1024];
            let n = s.read(&mut buf).await.unwrap_or(0);
            if buf[..n].starts_with(b"POST /reload ") {
                p.fetch_add(1, Ordering::SeqCst);
            }
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .await;
        }
    });
    (url, posts)
}

async fn wait_for(mut cond: impl FnMut() -> bool) -> bool {
    for _ in 0..600 {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cond()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sidecar_rewrites_only_on_change_and_notifies_once_per_change() {
    let dir = tempfile::tempdir().unwrap();
    let (url, posts) = counting_server().await;
    let mut c = cfg(Mode::Sidecar, &["prod/db"]);
    c.on_change = Some(OnChange::Http { url });
    let s = settings(dir.path(), &c);
    let value = Arc::new(Mutex::new("v1".to_string()));
    let failing = Arc::new(AtomicUsize::new(0));
    let (v, fl) = (value.clone(), failing.clone());
    let fake = Arc::new(Fake::new(move |_, specs| {
        if fl.load(Ordering::SeqCst) == 1 {
            return vec![Err(failure(
                "prod/db",
                "ThrottlingException",
                FailureKind::Transient,
            ))];
        }
        ok_all(specs, &v.lock().unwrap())
    }));
    let calls = fake.calls.clone();
    let shutdown = CancellationToken::new();
    let task = {
        let (c, s, fake, shutdown) = (c.clone(), s.clone(), fake.clone(), shutdown.clone());
        tokio::spawn(async move { run(&c, &*fake, &s, shutdown).await })
    };
    let file = s.mount_dir.join("s0");
    let read = || std::fs::read_to_string(&file).unwrap_or_default();
    assert!(wait_for(|| read() == "v1").await, "first write");
    let link = || std::fs::read_link(s.mount_dir.join("..data")).unwrap();
    let first = link();

    // Several unchanged rounds: no rewrite, no notification.
    let seen = calls.load(Ordering::SeqCst);
    assert!(wait_for(|| calls.load(Ordering::SeqCst) >= seen + 3).await);
    assert_eq!(link(), first, "unchanged content is not rewritten");
    assert_eq!(posts.load(Ordering::SeqCst), 0);

    // Failing rounds keep the last good files.
    failing.store(1, Ordering::SeqCst);
    let seen = calls.load(Ordering::SeqCst);
    assert!(wait_for(|| calls.load(Ordering::SeqCst) >= seen + 3).await);
    assert_eq!(read(), "v1");
    failing.store(0, Ordering::SeqCst);

    // A rotation: rewritten once, notified once.
    *value.lock().unwrap() = "v2".into();
    assert!(wait_for(|| read() == "v2").await, "rotation seen");
    // The replaced set holds the old value: it goes after the grace period,
    // not only at the next rotation.
    let hidden_sets = || {
        entries(&s.mount_dir)
            .into_iter()
            .filter(|n| n.starts_with("..") && n != "..data")
            .count()
    };
    assert!(
        wait_for(|| hidden_sets() == 1).await,
        "the replaced set outlived the rotation: {:?}",
        entries(&s.mount_dir)
    );
    assert!(
        wait_for(|| posts.load(Ordering::SeqCst) >= 1).await,
        "on-change ran"
    );
    let seen = calls.load(Ordering::SeqCst);
    assert!(wait_for(|| calls.load(Ordering::SeqCst) >= seen + 3).await);
    assert_eq!(posts.load(Ordering::SeqCst), 1, "exactly once per change");

    shutdown.cancel();
    let exit = tokio::time::timeout(WAIT, task)
        .await
        .expect("stops promptly")
        .unwrap();
    assert_eq!(exit, Exit::Done);
}

#[tokio::test]
async fn cancel_during_startup_retries_exits_promptly() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(Mode::Init, &["prod/db"]);
    let mut s = settings(dir.path(), &c);
    s.backoff_initial = Duration::from_secs(3600);
    s.backoff_cap = Duration::from_secs(3600);
    s.startup_timeout = Duration::from_secs(3600);
    let fake = Fake::new(|_, _| {
        vec![Err(failure(
            "prod/db",
            "ThrottlingException",
            FailureKind::Transient,
        ))]
    });
    let shutdown = CancellationToken::new();
    let cancel = shutdown.clone();
    let calls = fake.calls.clone();
    let waiter = async move {
        while calls.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        cancel.cancel();
    };
    let (exit, ()) = tokio::time::timeout(WAIT, async {
        tokio::join!(run(&c, &fake, &s, shutdown), waiter)
    })
    .await
    .expect("exits promptly on cancel");
    assert_eq!(exit, Exit::Interrupted);
    assert!(entries(&s.mount_dir).is_empty());
}
