//! The real agent binary against the moto AWS emulator: init writes the tree,
//! failures explain themselves in the termination log, a sidecar sees a
//! rotation and runs `on-change` once, and no secret value is ever printed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use secrets_injector_shared::{
    AgentConfig, Format, JmesPathEntry, Mode, OnChange, SecretRef, SecretSpec,
};
use secrets_injector_tests::Moto;
use secrets_injector_tests::agent::{finish_within, wait_until};

const CANARY: &str = "CANARY-bin-3c8e";
const BIN: &[u8] = &[0, 1, 2, 200, 255, b'\n'];

fn spec(r: &str, path: &str) -> SecretSpec {
    SecretSpec::new(SecretRef::parse(r).unwrap(), path)
}

fn seed(moto: &Moto) {
    moto.boto3(&format!(
        "sm = client('secretsmanager')\n\
         sm.create_secret(Name='app/db', SecretString=json.dumps({{'username': 'admin', 'password': 'pw-{CANARY}', 'conn': {{'host': 'db.internal', 'port': 5432}}}}))\n\
         sm.create_secret(Name='app/bin', SecretBinary=bytes({BIN:?}))\n\
         client('ssm').put_parameter(Name='/app/key', Value='key-{CANARY}', Type='SecureString')\n"
    ));
}

fn db_spec() -> SecretSpec {
    let mut db = spec("app/db", "db");
    db.format = Format::Files;
    db.jmes_path.push(JmesPathEntry {
        path: "conn.host".into(),
        alias: "conf/host".into(),
    });
    db
}

/// A pod's agent, with the pod's paths under a temp root.
struct Agent {
    root: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Agent {
    fn new(moto: &Moto, cfg: &AgentConfig) -> Agent {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("dev")).unwrap();
        std::fs::create_dir_all(root.path().join("mnt/secrets")).unwrap();
        let mut env = moto.aws_env();
        env.push(("SECRETS_INJECTOR_CONFIG".into(), cfg.to_json()));
        env.push((
            "SECRETS_INJECTOR_ROOT_PREFIX".into(),
            root.path().to_string_lossy().into_owned(),
        ));
        Agent { root, env }
    }

    fn mount(&self) -> PathBuf {
        self.root.path().join("mnt/secrets")
    }

    fn termination_log(&self) -> String {
        std::fs::read_to_string(self.root.path().join("dev/termination-log")).unwrap_or_default()
    }

    fn command(&self, args: &[&str], extra: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_secrets-injector-agent"));
        cmd.args(args)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .envs(extra.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    fn run(&self, args: &[&str], extra: &[(&str, &str)]) -> Output {
        let child = self.command(args, extra).spawn().unwrap();
        finish_within(child, Duration::from_secs(90))
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn assert_no_canary(what: &str, s: &str) {
    assert!(!s.contains(CANARY), "secret value leaked into {what}: {s}");
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

#[test]
fn init_writes_the_expected_tree_and_the_probe_follows() {
    let moto = Moto::start();
    seed(&moto);
    let cfg = AgentConfig {
        secrets: vec![
            db_spec(),
            spec("ssm:/app/key", "key"),
            spec("app/bin", "bin.der"),
        ],
        ..AgentConfig::default()
    };
    let agent = Agent::new(&moto, &cfg);
    let probe = agent.run(&["probe"], &[]);
    assert_eq!(probe.status.code(), Some(1), "probe before the first write");
    assert!(text(&probe).contains("..data"), "{}", text(&probe));

    let out = agent.run(&[], &[]);
    let all = text(&out);
    assert!(out.status.success(), "{all}\n{}", agent.termination_log());
    let m = agent.mount();
    let read = |p: &str| std::fs::read_to_string(m.join(p)).unwrap();
    assert_eq!(visible(&m), ["bin.der", "conf", "db", "key"]);
    assert_eq!(read("db/username"), "admin");
    assert_eq!(read("db/password"), format!("pw-{CANARY}"));
    assert_eq!(read("db/conn"), r#"{"host":"db.internal","port":5432}"#);
    assert_eq!(read("conf/host"), "db.internal");
    assert_eq!(read("key"), format!("key-{CANARY}"));
    assert_eq!(std::fs::read(m.join("bin.der")).unwrap(), BIN);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(m.join("key"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o444, "default mode without a known owner");
    assert_no_canary("stdout/stderr", &all);
    assert!(
        all.lines().any(|l| l.contains("first write done")),
        "one JSON line for the round: {all}"
    );
    assert!(
        all.trim_start().starts_with('{'),
        "JSON logs by default: {all}"
    );

    assert!(
        agent.run(&["probe"], &[]).status.success(),
        "probe after the first write"
    );
}

#[test]
fn missing_secret_fails_with_a_termination_line_and_no_files() {
    let moto = Moto::start();
    seed(&moto);
    let cfg = AgentConfig {
        startup_timeout_secs: 20,
        secrets: vec![db_spec(), spec("app/missing", "missing")],
        ..AgentConfig::default()
    };
    let agent = Agent::new(&moto, &cfg);
    let out = agent.run(&[], &[]);
    assert!(!out.status.success());
    let log = agent.termination_log();
    let lines: Vec<_> = log.lines().collect();
    assert_eq!(lines.len(), 1, "one line per failing secret: {log}");
    assert!(
        lines[0].starts_with("secret app/missing: ResourceNotFoundException:"),
        "{log}"
    );
    assert!(visible(&agent.mount()).is_empty() && !agent.mount().join("..data").exists());
    assert_no_canary("termination log", &log);
    assert_no_canary("stdout/stderr", &text(&out));
}

#[test]
fn render_failures_never_print_the_value() {
    let moto = Moto::start();
    seed(&moto);
    moto.boto3(&format!(
        "client('secretsmanager').create_secret(Name='app/env', SecretString=json.dumps({{'bad-key': '{CANARY}'}}))\n"
    ));
    let mut jmes = spec("app/db", "db");
    jmes.jmes_path.push(JmesPathEntry {
        path: "password.nope".into(),
        alias: "pw".into(),
    });
    let mut dotenv = spec("app/env", ".env");
    dotenv.format = Format::Dotenv;
    for (s, want) in [
        (jmes, "\"password.nope\""),
        (dotenv, "key #1 of the JSON object"),
    ] {
        let cfg = AgentConfig {
            secrets: vec![s],
            ..AgentConfig::default()
        };
        let agent = Agent::new(&moto, &cfg);
        let out = agent.run(&["--log-format", "text"], &[]);
        assert!(!out.status.success());
        let log = agent.termination_log();
        assert!(
            log.contains(want) && log.contains("InvalidSecretValue"),
            "{log}"
        );
        assert_no_canary("termination log", &log);
        assert_no_canary("stdout/stderr", &text(&out));
        assert!(visible(&agent.mount()).is_empty());
    }
}

/// Loopback HTTP server counting POSTs.
fn counting_server() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/-/reload", listener.local_addr().unwrap());
    let posts = Arc::new(AtomicUsize::new(0));
    let p = posts.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut first = String::new();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let _ = reader.read_line(&mut first);
            if first.starts_with("POST /-/reload ") {
                p.fetch_add(1, Ordering::SeqCst);
            }
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    (url, posts)
}

fn finish(mut child: Child) -> (Option<i32>, String) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let exited = wait_until(Duration::from_secs(20), || {
        child.try_wait().ok().flatten().is_some()
    });
    if !exited {
        let _ = child.kill();
    }
    let mut all = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut all)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut all)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(exited, "no prompt exit on SIGTERM: {all}");
    (status.code(), all)
}

#[test]
fn sidecar_sees_rotation_and_notifies_once() {
    let moto = Moto::start();
    seed(&moto);
    let (url, posts) = counting_server();
    let cfg = AgentConfig {
        mode: Mode::Sidecar,
        refresh_interval_secs: 30,
        on_change: Some(OnChange::Http { url }),
        secrets: vec![db_spec(), spec("ssm:/app/key", "key")],
        ..AgentConfig::default()
    };
    let agent = Agent::new(&moto, &cfg);
    let interval = Duration::from_millis(300);
    let child = agent
        .command(&[], &[("SECRETS_INJECTOR_REFRESH_OVERRIDE_MS", "300")])
        .spawn()
        .unwrap();
    let user = agent.mount().join("db/username");
    let first = wait_until(Duration::from_secs(60), || {
        std::fs::read_to_string(&user).is_ok_and(|s| s == "admin")
    });
    if !first {
        panic!("no first write: {}", finish(child).1);
    }
    assert!(agent.run(&["probe"], &[]).status.success());
    // Unchanged rounds do not notify.
    std::thread::sleep(interval * 4);
    assert_eq!(posts.load(Ordering::SeqCst), 0, "no change, no on-change");

    moto.boto3(&format!(
        "client('secretsmanager').put_secret_value(SecretId='app/db', SecretString=json.dumps({{'username': 'rotated', 'password': 'pw2-{CANARY}', 'conn': {{'host': 'db2'}}}}))\n"
    ));
    let rotated = wait_until(Duration::from_secs(30), || {
        std::fs::read_to_string(&user).is_ok_and(|s| s == "rotated")
    });
    let notified = wait_until(Duration::from_secs(30), || {
        posts.load(Ordering::SeqCst) >= 1
    });
    // Give it several more rounds to prove it notifies once per change, not per round.
    std::thread::sleep(interval * 5);
    let (code, all) = finish(child);
    assert!(rotated, "rotation not seen within the wait: {all}");
    assert!(notified, "on-change not run: {all}");
    assert_eq!(
        posts.load(Ordering::SeqCst),
        1,
        "exactly one on-change: {all}"
    );
    assert_eq!(
        std::fs::read_to_string(agent.mount().join("conf/host")).unwrap(),
        "db2"
    );
    assert_eq!(code, Some(0), "clean exit on SIGTERM: {all}");
    assert_no_canary("sidecar output", &all);
}

#[test]
fn once_flag_makes_a_sidecar_fetch_once() {
    let moto = Moto::start();
    seed(&moto);
    let cfg = AgentConfig {
        mode: Mode::Sidecar,
        secrets: vec![spec("ssm:/app/key", "key")],
        ..AgentConfig::default()
    };
    let agent = Agent::new(&moto, &cfg);
    let out = agent.run(&["--once"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(agent.mount().join("key").exists());
}
