//! Chaos for the real agent binary against moto (issue 12): a sidecar's
//! refresh through injected AWS faults keeps the last good files and recovers;
//! a failing `on-change` target never stops rotations; the agent as a
//! non-root user falls back on ownership and still writes; `kill -9` during
//! writes never leaves a partial set behind `..data`, and the next start
//! removes what the killed writer left; 30 failing secrets and unparsable
//! arguments still give a useful termination message within 4 KiB. Each test
//! is bounded in seconds; no test asserts a timing (waits are generous upper bounds).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/fault_proxy.rs"]
mod fault_proxy;

use std::collections::BTreeSet;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use fault_proxy::{Fault, FaultProxy, Rule};
use secrets_injector_agent::write::DATA_DIR;
use secrets_injector_shared::{AgentConfig, Format, Mode, OnChange, Owner, SecretRef, SecretSpec};
use secrets_injector_tests::Moto;
use secrets_injector_tests::agent::{finish_within, wait_until};

const CANARY: &str = "CANARY-chaos-9e12";

/// A pod's volume and termination log under a temp root, as the kubelet makes them.
struct Pod {
    root: tempfile::TempDir,
}

impl Pod {
    fn new() -> Pod {
        let root = tempfile::tempdir().unwrap();
        for d in ["mnt/secrets", "dev"] {
            std::fs::create_dir_all(root.path().join(d)).unwrap();
        }
        Pod { root }
    }

    fn mount(&self) -> PathBuf {
        self.root.path().join("mnt/secrets")
    }

    fn termination_log(&self) -> String {
        std::fs::read_to_string(self.root.path().join("dev/termination-log")).unwrap_or_default()
    }

    /// The agent with `cfg`, AWS at `endpoint`, extra env; stdout/stderr piped.
    fn agent(
        &self,
        cfg: &AgentConfig,
        moto: &Moto,
        endpoint: &str,
        extra: &[(&str, &str)],
    ) -> Command {
        let bin = Path::new(env!("CARGO_BIN_EXE_secrets-injector-agent"));
        self.agent_as(bin, &[], cfg, moto, endpoint, extra)
    }

    /// Like [`Pod::agent`], the binary `bin` started through `prefix` (e.g. `setpriv … --`).
    fn agent_as(
        &self,
        bin: &Path,
        prefix: &[&str],
        cfg: &AgentConfig,
        moto: &Moto,
        endpoint: &str,
        extra: &[(&str, &str)],
    ) -> Command {
        let mut cmd = match prefix.split_first() {
            Some((p, rest)) => {
                let mut c = Command::new(p);
                c.args(rest).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        cmd.env_clear()
            .envs(moto.aws_env())
            .env("AWS_ENDPOINT_URL", endpoint)
            .env("SECRETS_INJECTOR_CONFIG", cfg.to_json())
            .env("SECRETS_INJECTOR_ROOT_PREFIX", self.root.path())
            .env("SECRETS_INJECTOR_LOG_FORMAT", "text")
            .envs(extra.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// The set `..data` points at, if any.
    fn live(&self) -> Option<String> {
        std::fs::read_link(self.mount().join(DATA_DIR))
            .ok()
            .map(|t| t.to_string_lossy().into_owned())
    }

    /// Hidden set directories (`..<secs>.<nanos>_<random>`), by name.
    fn sets(&self) -> BTreeSet<String> {
        std::fs::read_dir(self.mount())
            .unwrap()
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("..") && n.contains('_'))
            .collect()
    }
}

fn spec(r: &str, path: &str, format: Format) -> SecretSpec {
    let mut s = SecretSpec::new(SecretRef::parse(r).unwrap(), path);
    s.format = format;
    s
}

/// SIGTERM, then collect everything the agent printed.
fn stop(mut child: Child) -> (Option<i32>, String) {
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
    let _ = child.stdout.take().unwrap().read_to_string(&mut all);
    let _ = child.stderr.take().unwrap().read_to_string(&mut all);
    let status = child.wait().unwrap();
    assert!(exited, "no prompt exit on SIGTERM");
    (status.code(), all)
}

/// Loopback HTTP server counting the `on-change: http:` POSTs, answering 200.
fn counting_server() -> (String, Arc<AtomicUsize>) {
    counting_server_with(200)
}

/// Like [`counting_server`], answering `status`.
fn counting_server_with(status: u16) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/-/reload", listener.local_addr().unwrap());
    let posts = Arc::new(AtomicUsize::new(0));
    let p = posts.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut first = String::new();
            let _ = BufReader::new(stream.try_clone().unwrap()).read_line(&mut first);
            if first.starts_with("POST /-/reload ") {
                p.fetch_add(1, Ordering::SeqCst);
            }
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    (url, posts)
}

fn assert_no_canary(what: &str, s: &str) {
    assert!(!s.contains(CANARY), "a secret value leaked into {what}");
}

/// Faults on every AWS call during sidecar refreshes: the files stay the last
/// good set (same `..data`, same contents) while rounds keep failing, the
/// agent keeps running, and once the faults stop a rotation done meanwhile arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sidecar_keeps_the_last_good_files_through_faults_and_recovers() {
    let moto = Moto::start();
    moto.boto3(&format!(
        "client('secretsmanager').create_secret(Name='chaos/db', SecretString=json.dumps({{'user': 'v1', 'password': 'pw1-{CANARY}'}}))\n\
         client('ssm').put_parameter(Name='/chaos/key', Value='key1-{CANARY}', Type='SecureString')\n"
    ));
    let proxy = FaultProxy::start(moto.port).await;
    let (url, posts) = counting_server();
    let cfg = AgentConfig {
        mode: Mode::Sidecar,
        on_change: Some(OnChange::Http { url }),
        secrets: vec![
            spec("chaos/db", "db", Format::Files),
            spec("ssm:/chaos/key", "key", Format::Raw),
        ],
        ..AgentConfig::default()
    };
    let pod = Pod::new();
    let mut child = pod
        .agent(
            &cfg,
            &moto,
            &proxy.endpoint(),
            &[("SECRETS_INJECTOR_REFRESH_OVERRIDE_MS", "100")],
        )
        .spawn()
        .unwrap();
    let user = pod.mount().join("db/user");
    let first = wait_until(Duration::from_secs(60), || {
        std::fs::read_to_string(&user).is_ok_and(|s| s == "v1")
    });
    if !first {
        panic!("no first write: {}", stop(child).1);
    }
    let live = pod.live().unwrap();
    let snapshot = |p: &Pod| {
        (
            p.live(),
            std::fs::read_to_string(p.mount().join("db/user")).ok(),
            std::fs::read_to_string(p.mount().join("db/password")).ok(),
            std::fs::read_to_string(p.mount().join("key")).ok(),
        )
    };
    let good = snapshot(&pod);

    // Rotate while AWS is unreachable: the new value must wait for recovery.
    let faults = [
        Fault::Error(500, "InternalServiceError"),
        Fault::Error(400, "ThrottlingException"),
        Fault::Reset,
        Fault::Error(403, "AccessDeniedException"),
    ];
    let mut first_fault = true;
    for fault in faults {
        proxy.set_rules(vec![Rule {
            action: None,
            region: None,
            fault: fault.clone(),
        }]);
        if std::mem::take(&mut first_fault) {
            // Through moto directly, not the proxy.
            moto.boto3(&format!(
                "client('secretsmanager').put_secret_value(SecretId='chaos/db', SecretString=json.dumps({{'user': 'v2', 'password': 'pw2-{CANARY}'}}))\n"
            ));
        }
        let before = proxy.total();
        // Several faulted calls: rounds (and the SDK's own retries) ran into it.
        let hit = wait_until(Duration::from_secs(30), || proxy.total() >= before + 3);
        let now = snapshot(&pod);
        let running = child.try_wait().unwrap().is_none();
        if !(hit && running && now == good) {
            let (_, out) = stop(child);
            assert_no_canary("agent output", &out);
            panic!(
                "under {fault:?}: faulted calls seen {hit}, agent running {running}, \
                 files kept {}: {out}",
                now == good
            );
        }
    }
    assert_eq!(
        pod.live().as_deref(),
        Some(live.as_str()),
        "no rewrite during faults"
    );
    assert_eq!(
        posts.load(Ordering::SeqCst),
        0,
        "no on-change while faults last"
    );

    proxy.set_rules(Vec::new());
    let recovered = wait_until(Duration::from_secs(30), || {
        std::fs::read_to_string(&user).is_ok_and(|s| s == "v2")
    });
    let notified = wait_until(Duration::from_secs(30), || {
        posts.load(Ordering::SeqCst) >= 1
    });
    let (code, out) = stop(child);
    assert_no_canary("agent output", &out);
    assert_no_canary("termination message", &pod.termination_log());
    assert!(
        recovered,
        "the rotation did not arrive after the faults: {out}"
    );
    assert!(notified, "on-change after the recovered rotation: {out}");
    assert_eq!(
        posts.load(Ordering::SeqCst),
        1,
        "one change, one on-change: {out}"
    );
    assert_eq!(
        std::fs::read_to_string(pod.mount().join("db/password")).unwrap(),
        format!("pw2-{CANARY}")
    );
    assert!(
        out.contains("refresh failed, keeping the last good files"),
        "failed rounds are logged: {out}"
    );
    for code_name in [
        "InternalServiceError",
        "ThrottlingException",
        "AccessDeniedException",
    ] {
        assert!(out.contains(code_name), "{code_name} logged: {out}");
    }
    assert_eq!(code, Some(0), "clean exit on SIGTERM: {out}");
    assert!(
        pod.termination_log().is_empty(),
        "a sidecar's refresh faults are not its death"
    );
}

/// Tests run as root; the agent in a pod often does not. Run it as uid/gid
/// 65532 with an owner it may not give away: `chown` is refused (EPERM), so
/// it falls back to `chgrp` (allowed when it is in the group, e.g. fsGroup)
/// and, when that is refused too, keeps its own ownership — and still writes.
#[test]
fn non_root_agent_writes_with_the_ownership_fallback() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test switches users with setpriv and must run as root (CI and scripts/test.sh do)"
    );
    let moto = Moto::start();
    moto.boto3(&format!(
        "client('secretsmanager').create_secret(Name='chaos/db', SecretString=json.dumps({{'user': 'u', 'password': 'pw-{CANARY}'}}))\n"
    ));
    let cfg = AgentConfig {
        owner: Some(Owner {
            uid: Some(1000),
            gid: Some(2000),
        }),
        // The env wrapper is copied too, as the same user.
        exec_wrapper: true,
        secrets: vec![spec("chaos/db", "db", Format::Files)],
        ..AgentConfig::default()
    };
    // The agent finds the wrapper beside itself: a bin dir 65532 can read.
    let bin_dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    std::fs::set_permissions(bin_dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let agent = bin_dir.path().join("secrets-injector-agent");
    std::fs::copy(env!("CARGO_BIN_EXE_secrets-injector-agent"), &agent).unwrap();
    let wrapper = b"#!/bin/sh\nexec \"$@\"\n";
    std::fs::write(bin_dir.path().join("secrets-injector-env"), wrapper).unwrap();
    for (groups, want_gid) in [(None, 65532), (Some("2000"), 2000)] {
        let pod = Pod::new();
        // An emptyDir is world-writable; the temp root is not, by default.
        for (p, mode) in [
            (pod.root.path().to_path_buf(), 0o755),
            (pod.mount(), 0o777),
            (pod.root.path().join("dev"), 0o777),
        ] {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        let mut prefix = vec!["setpriv", "--reuid", "65532", "--regid", "65532"];
        match groups {
            Some(g) => prefix.extend(["--groups", g]),
            None => prefix.push("--clear-groups"),
        }
        prefix.push("--");
        let child = pod
            .agent_as(&agent, &prefix, &cfg, &moto, &moto.endpoint(), &[])
            .spawn()
            .unwrap();
        let out = finish_within(child, Duration::from_secs(60));
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_no_canary("agent output", &all);
        assert!(
            out.status.success(),
            "groups {groups:?}: {all}\n{}",
            pod.termination_log()
        );
        let password = pod.mount().join("db/password");
        assert_eq!(
            std::fs::read_to_string(&password).unwrap(),
            format!("pw-{CANARY}")
        );
        let set = pod.mount().join(pod.live().unwrap());
        for f in ["db/user", "db/password"] {
            let meta = std::fs::metadata(set.join(f)).unwrap();
            assert_eq!(
                (meta.uid(), meta.gid(), meta.permissions().mode() & 0o7777),
                (65532, want_gid, 0o440),
                "{f} with groups {groups:?}"
            );
        }
        assert_eq!(std::fs::metadata(&set).unwrap().uid(), 65532);
        let copied = pod.mount().join("..secrets-injector-env");
        let meta = std::fs::metadata(&copied).unwrap();
        assert_eq!(
            (meta.uid(), meta.permissions().mode() & 0o7777),
            (65532, 0o555),
            "the wrapper copy: the agent's, runnable by any container user"
        );
        assert_eq!(std::fs::read(&copied).unwrap(), wrapper);
    }
}

/// Every file of `db/` in the set `name`: `k00`…`k39`, all of one version.
fn assert_complete(mount: &Path, name: &str, keys: usize) -> u64 {
    let dir = mount.join(name).join("db");
    let mut versions = BTreeSet::new();
    let mut seen = 0;
    for e in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{name}: {e}")) {
        let e = e.unwrap();
        let text = std::fs::read_to_string(e.path()).unwrap();
        let v = text
            .strip_prefix('v')
            .and_then(|t| t.split('-').next())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("{name}: unexpected content in {:?}", e.file_name()));
        versions.insert(v);
        seen += 1;
    }
    assert_eq!(seen, keys, "{name}: a partial set behind ..data");
    assert_eq!(
        versions.len(),
        1,
        "{name}: a mixed set behind ..data: {versions:?}"
    );
    versions.into_iter().next().unwrap()
}

/// Creation time in a set's name, as the writer encodes it (`..<secs>.<nanos>_<rand>`).
fn set_nanos(name: &str) -> u128 {
    let ts = name.trim_start_matches("..").split('_').next().unwrap();
    let (s, n) = ts.split_once('.').unwrap();
    s.parse::<u128>().unwrap() * 1_000_000_000 + n.parse::<u128>().unwrap()
}

/// `kill -9` a sidecar that rewrites 40 files on every round (the secret
/// rotates continuously), at varying moments, again and again on one volume:
/// after every kill `..data` points at a complete set of one version, and
/// the next start has removed the sets the killed writer left half-filled
/// before its own first write shows.
#[test]
fn kill_9_during_writes_never_leaves_a_partial_set() {
    const KEYS: usize = 40;
    const ITERATIONS: u64 = 12;
    let moto = Moto::start();
    let value = |n: &str| {
        format!("json.dumps({{'k%02d' % i: 'v%d-%d-{CANARY}' % ({n}, i) for i in range({KEYS})}})")
    };
    moto.boto3(&format!(
        "client('secretsmanager').create_secret(Name='chaos/many', SecretString={})\n",
        value("0")
    ));
    let stop_file = tempfile::tempdir().unwrap();
    let stop_path = stop_file.path().join("stop");
    let rotator = moto
        .boto3_command(&format!(
            "import os\nsm = client('secretsmanager')\nn = 0\n\
             while not os.path.exists({:?}):\n    n += 1\n    \
             sm.put_secret_value(SecretId='chaos/many', SecretString={})\n",
            stop_path.to_string_lossy(),
            value("n")
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let cfg = AgentConfig {
        mode: Mode::Sidecar,
        secrets: vec![spec("chaos/many", "db", Format::Files)],
        ..AgentConfig::default()
    };
    let pod = Pod::new();
    let fast = [("SECRETS_INJECTOR_REFRESH_OVERRIDE_MS", "1")];
    let mut leftovers: BTreeSet<String> = BTreeSet::new();
    let mut interrupted_kills = 0;
    let mut outputs = String::new();
    for i in 0..ITERATIONS {
        let before = pod.live();
        let mut child = pod
            .agent(&cfg, &moto, &moto.endpoint(), &fast)
            .spawn()
            .unwrap();
        // This start's first write shows as a new `..data` target.
        let wrote = wait_until(Duration::from_secs(30), || {
            pod.live().is_some() && pod.live() != before
        });
        if wrote {
            let still = leftovers
                .iter()
                .filter(|l| pod.mount().join(l).exists())
                .count();
            if still > 0 {
                let _ = child.kill();
                panic!(
                    "start {i}: {still} half-filled set(s) of the killed writer still there \
                     after the first write: {:?}",
                    pod.sets()
                );
            }
        }
        // Varying moments into the rewrite loop (deterministic, no timing asserted).
        std::thread::sleep(Duration::from_millis((i * 53) % 400));
        child.kill().unwrap(); // SIGKILL
        let _ = child.wait();
        let mut out = String::new();
        let _ = child.stderr.take().unwrap().read_to_string(&mut out);
        let _ = child.stdout.take().unwrap().read_to_string(&mut out);
        outputs.push_str(&out);
        assert!(wrote, "start {i}: no first write within the wait: {out}");

        let live = pod.live().expect("..data survives the kill");
        assert_complete(&pod.mount(), &live, KEYS);
        let visible = std::fs::read_dir(pod.mount().join("db")).unwrap().count();
        assert_eq!(
            visible, KEYS,
            "the visible db/ resolves to the complete set"
        );
        leftovers = pod
            .sets()
            .into_iter()
            .filter(|s| s != &live && set_nanos(s) > set_nanos(&live))
            .collect();
        if !leftovers.is_empty() {
            interrupted_kills += 1;
        }
    }
    std::fs::write(&stop_path, "").unwrap();
    let rot = finish_within(rotator, Duration::from_secs(30));
    assert!(
        rot.status.success(),
        "rotator: {}",
        String::from_utf8_lossy(&rot.stderr)
    );

    // One more start with nothing left to rotate: leftovers go even when the
    // set behind `..data` is current and nothing is rewritten.
    let child = pod
        .agent(&cfg, &moto, &moto.endpoint(), &[])
        .arg("--once")
        .spawn()
        .unwrap();
    let out = finish_within(child, Duration::from_secs(60));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    outputs.push_str(&text);
    assert!(out.status.success(), "{text}");
    let still: Vec<&String> = leftovers
        .iter()
        .filter(|l| pod.mount().join(l).exists())
        .collect();
    assert!(still.is_empty(), "leftovers {still:?} not removed: {text}");
    let live = pod.live().unwrap();
    assert_complete(&pod.mount(), &live, KEYS);
    assert_no_canary("agent output", &outputs);
    eprintln!(
        "kill -9 loop: {ITERATIONS} kills, {interrupted_kills} left a half-filled set behind \
         (removed by the next start)"
    );
}

/// A bad setting the agent cannot even parse (here a log format from the
/// operator's `--agent-env`) still leaves a cause where the kubelet looks.
#[test]
fn unparsable_arguments_still_leave_a_termination_message() {
    let pod = Pod::new();
    let out = Command::new(env!("CARGO_BIN_EXE_secrets-injector-agent"))
        .env_clear()
        .env("SECRETS_INJECTOR_ROOT_PREFIX", pod.root.path())
        .env("SECRETS_INJECTOR_LOG_FORMAT", "xml")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let msg = pod.termination_log();
    assert_eq!(msg.lines().count(), 1, "{msg}");
    assert!(
        msg.starts_with("invalid agent arguments: invalid value 'xml' for '--log-format"),
        "{msg}"
    );
    // `--help` and a probe's bad arguments are not the container's death.
    let pod = Pod::new();
    for args in [&["--help"][..], &["probe", "--bogus"][..]] {
        let _ = Command::new(env!("CARGO_BIN_EXE_secrets-injector-agent"))
            .args(args)
            .env_clear()
            .env("SECRETS_INJECTOR_ROOT_PREFIX", pod.root.path())
            .output()
            .unwrap();
        assert!(pod.termination_log().is_empty(), "{args:?}");
    }
}

/// 30 failing secrets with long names, against the real agent: the
/// termination message stays within the kubelet's 4 KiB and names every one,
/// for AWS errors (not found) and for network errors (no debug dumps).
#[test]
fn thirty_failing_secrets_are_each_named_within_4_kib() {
    let moto = Moto::start();
    let secrets: Vec<SecretSpec> = (0..30)
        .map(|i| {
            let r = if i % 5 == 4 {
                format!("ssm:/prod/team-{i:02}/service/database-credentials-{i:02}")
            } else {
                format!("prod/team-{i:02}/service/database-credentials-{i:02}")
            };
            spec(&r, &format!("s{i:02}"), Format::Raw)
        })
        .collect();
    let closed = format!("http://127.0.0.1:{}", secrets_injector_tests::free_port());
    // Not found is permanent: the first answer ends the run. Connection
    // refused is retried until the startup timeout, then reported.
    for (endpoint, timeout, code) in [
        (moto.endpoint(), 30, "NotFound"),
        (closed, 1, "NetworkError"),
    ] {
        let cfg = AgentConfig {
            startup_timeout_secs: timeout,
            secrets: secrets.clone(),
            ..AgentConfig::default()
        };
        let pod = Pod::new();
        let child = pod.agent(&cfg, &moto, &endpoint, &[]).spawn().unwrap();
        let out = finish_within(child, Duration::from_secs(90));
        assert!(!out.status.success());
        let msg = pod.termination_log();
        assert!(msg.len() <= 4096, "{} bytes:\n{msg}", msg.len());
        for s in &cfg.secrets {
            assert!(
                msg.contains(&format!("secret {}: ", s.source)),
                "{} not named:\n{msg}",
                s.source
            );
        }
        assert!(msg.contains(code), "{msg}");
        assert!(!msg.contains("DispatchFailure("), "no debug dumps:\n{msg}");
        assert!(msg.contains("hint for "), "room for the hints:\n{msg}");
        assert!(!msg.contains("more failing secrets"), "all 30 fit:\n{msg}");
    }
}

/// `on-change` under faults: a target that answers 500 fails every
/// notification, yet each rotation is written, notified once (no retry
/// storm), and the sidecar keeps running and exits cleanly.
#[test]
fn a_failing_on_change_target_never_stops_the_rotations() {
    let moto = Moto::start();
    let put = |v: u32| {
        moto.boto3(&format!(
            "client('secretsmanager').put_secret_value(SecretId='chaos/db', SecretString=json.dumps({{'user': 'v{v}', 'password': 'pw{v}-{CANARY}'}}))\n"
        ))
    };
    moto.boto3(&format!(
        "client('secretsmanager').create_secret(Name='chaos/db', SecretString=json.dumps({{'user': 'v1', 'password': 'pw1-{CANARY}'}}))\n"
    ));
    let (url, posts) = counting_server_with(500);
    let cfg = AgentConfig {
        mode: Mode::Sidecar,
        on_change: Some(OnChange::Http { url }),
        secrets: vec![spec("chaos/db", "db", Format::Files)],
        ..AgentConfig::default()
    };
    let pod = Pod::new();
    let mut child = pod
        .agent(
            &cfg,
            &moto,
            &moto.endpoint(),
            &[("SECRETS_INJECTOR_REFRESH_OVERRIDE_MS", "100")],
        )
        .spawn()
        .unwrap();
    let user = pod.mount().join("db/user");
    let mut seen = Vec::new();
    for v in 1..=3u32 {
        if v > 1 {
            put(v);
        }
        let ok = wait_until(Duration::from_secs(30), || {
            std::fs::read_to_string(&user).is_ok_and(|s| s == format!("v{v}"))
        });
        let notified = v == 1
            || wait_until(Duration::from_secs(30), || {
                posts.load(Ordering::SeqCst) >= (v - 1) as usize
            });
        let running = child.try_wait().unwrap().is_none();
        seen.push((v, ok, notified, running));
    }
    // A few more rounds: unchanged files, no more notifications.
    std::thread::sleep(Duration::from_millis(500));
    let (code, out) = stop(child);
    assert_no_canary("agent output", &out);
    for (v, ok, notified, running) in seen {
        assert!(
            ok && notified && running,
            "v{v}: written {ok}, notified {notified}, running {running}: {out}"
        );
    }
    assert_eq!(
        posts.load(Ordering::SeqCst),
        2,
        "one attempt per change: {out}"
    );
    assert_eq!(out.matches("on-change failed").count(), 2, "{out}");
    assert_eq!(code, Some(0), "{out}");
    assert!(pod.termination_log().is_empty());
}
