//! End to end: the agent's real writer and wrapper copy build the volume, then
//! the wrapper is run from the volume (as the webhook's rewritten `command`
//! runs it) with a command that prints its PID, argv and environment.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use secrets_injector_agent::split::OutFile;
use secrets_injector_agent::wrapper::{Installed, WRAPPER_FILE, install_wrapper_from};
use secrets_injector_agent::write::write_atomic_with_grace;

const CANARY: &str = "CANARY-env-5b1e0c77";

struct Volume {
    _dir: tempfile::TempDir,
    mount: PathBuf,
    tlog: PathBuf,
}

impl Volume {
    /// A mount dir holding `files` in the agent's layout, plus the wrapper copy.
    fn new(files: &[(&str, &[u8])]) -> Volume {
        let dir = tempfile::tempdir().unwrap();
        let mount = dir.path().join("mnt/secrets");
        std::fs::create_dir_all(&mount).unwrap();
        let installed = install_wrapper_from(
            Path::new(env!("CARGO_BIN_EXE_secrets-injector-env")),
            &mount,
        )
        .unwrap();
        assert_eq!(installed, Installed::Copied);
        let files: Vec<OutFile> = files
            .iter()
            .map(|(p, v)| OutFile {
                path: p.to_string(),
                contents: v.to_vec(),
                mode: 0o440,
            })
            .collect();
        if !files.is_empty() {
            write_atomic_with_grace(&mount, &files, None, Duration::ZERO).unwrap();
        }
        let tlog = dir.path().join("termination-log");
        Volume {
            _dir: dir,
            mount,
            tlog,
        }
    }

    /// `<mount>/..secrets-injector-env --mount-path <mount> <args>`, termination log redirected.
    fn wrapper(&self, args: &[&str]) -> Command {
        let mut c = Command::new(self.mount.join(WRAPPER_FILE));
        c.arg("--mount-path")
            .arg(&self.mount)
            .args(args)
            .env("SECRETS_INJECTOR_TERMINATION_LOG", &self.tlog)
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        output(&mut self.wrapper(args))
    }

    fn shown(&self, rel: &str) -> String {
        self.mount.join(rel).display().to_string()
    }
}

/// Another test thread's fork may briefly hold the just-copied wrapper open
/// for writing (ETXTBSY, rust-lang/rust#114554); retry only that.
fn spawn(c: &mut Command) -> std::process::Child {
    for _ in 0..100 {
        match c.spawn() {
            Err(e) if e.raw_os_error() == Some(26) => std::thread::sleep(Duration::from_millis(10)),
            r => return r.unwrap(),
        }
    }
    panic!("wrapper stayed busy (ETXTBSY)")
}

fn output(c: &mut Command) -> Output {
    spawn(c.stdout(Stdio::piped()).stderr(Stdio::piped()))
        .wait_with_output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

/// The run failed before exec: exit `code`, one line on stderr and in the
/// termination log, starting with `want`, no value; returns the line.
fn assert_failed(v: &Volume, o: &Output, code: i32, want: &str) -> String {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "stderr: {err}");
    assert!(o.stdout.is_empty(), "the command must not run");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(
        err.starts_with(&format!("secrets-injector-env: {want}")),
        "{err}"
    );
    assert!(!err.contains(CANARY), "value leaked to stderr: {err}");
    let tlog = std::fs::read_to_string(&v.tlog).unwrap();
    assert_eq!(tlog, err, "termination log");
    err
}

#[test]
fn sets_exact_values_keeps_args_and_execs_in_place() {
    let password = format!("{CANARY} p@ss = 'w\"rd' $HOME\nsecond line\n");
    let v = Volume::new(&[
        ("db/password", password.as_bytes()),
        ("db/user", b"app"),
        ("db/nested/skipped", b"not an env var"),
        ("api-key", "ключ ✓".as_bytes()),
        ("empty", b""),
        ("cfg/user", b"overridden by db"),
        ("cfg/LOG_LEVEL", b"debug"),
    ]);
    let script = r#"echo "$$"; echo "$#|$1|$2"; exec env -0"#;
    let mut cmd = v.wrapper(&[
        "--env",
        "DB_PASSWORD=db/password",
        "--env=API_KEY=api-key",
        "--env",
        "EMPTY=empty",
        "--env-from",
        "cfg",
        "--env-from",
        "db",
        "--",
        "sh",
        "-c",
        script,
        "sh",
        "one",
        "two words",
    ]);
    cmd.env("DB_PASSWORD", "inherited, must lose")
        .env("KEEP_ME", "inherited")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = spawn(&mut cmd);
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    assert!(out.stderr.is_empty(), "{}", stderr(&out));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let mut parts = stdout.splitn(3, '\n');
    // exec, not spawn: the shell runs with the wrapper's PID.
    assert_eq!(parts.next().unwrap(), pid.to_string(), "same PID");
    assert_eq!(parts.next().unwrap(), "2|one|two words", "args kept");
    let env: BTreeMap<&str, &str> = parts
        .next()
        .unwrap()
        .split('\0')
        .filter(|kv| !kv.is_empty())
        .map(|kv| kv.split_once('=').unwrap())
        .collect();
    assert_eq!(env["DB_PASSWORD"], password, "byte for byte, newlines kept");
    assert_eq!(env["API_KEY"], "ключ ✓");
    assert_eq!(env["EMPTY"], "");
    assert_eq!(env["user"], "app", "a later --env-from wins");
    assert_eq!(env["password"], password);
    assert_eq!(env["LOG_LEVEL"], "debug");
    assert_eq!(env["KEEP_ME"], "inherited");
    assert!(!env.contains_key("skipped") && !env.contains_key("nested"));
    assert!(!v.tlog.exists(), "no termination message on success");
}

#[test]
fn searches_path_for_a_bare_command_name() {
    let v = Volume::new(&[("a", b"from-a")]);
    let o = v.run(&["--env", "A=a", "--", "printenv", "A"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(o.stdout, b"from-a\n");
}

#[test]
fn nul_value_is_rejected() {
    let v = Volume::new(&[("bin", format!("{CANARY}\0rest").as_bytes())]);
    let o = v.run(&["--env", "BLOB=bin", "--", "echo", "ran"]);
    assert_failed(
        &v,
        &o,
        1,
        &format!("env BLOB: file {} contains a NUL byte", v.shown("bin")),
    );
}

#[test]
fn invalid_utf8_value_is_rejected() {
    let v = Volume::new(&[("bin", &[CANARY.as_bytes(), b"\xc3\x28"].concat())]);
    let o = v.run(&["--env", "BLOB=bin", "--", "echo", "ran"]);
    assert_failed(
        &v,
        &o,
        1,
        &format!("env BLOB: file {} is not valid UTF-8 text", v.shown("bin")),
    );
}

#[test]
fn missing_file_names_the_variable_and_the_file() {
    let v = Volume::new(&[("db/password", CANARY.as_bytes())]);
    let o = v.run(&[
        "--env",
        "DB_PASSWORD=db/password",
        "--env",
        "DB_HOST=db/host",
        "--",
        "echo",
        "ran",
    ]);
    assert_failed(
        &v,
        &o,
        1,
        &format!(
            "env DB_HOST: cannot read file {}: no such file in the secrets volume",
            v.shown("db/host")
        ),
    );
}

#[test]
fn no_snapshot_yet() {
    let v = Volume::new(&[]);
    let o = v.run(&["--env", "A=a", "--", "echo", "ran"]);
    assert_failed(
        &v,
        &o,
        1,
        &format!(
            "no secrets snapshot under {}: ..data does not exist",
            v.mount.display()
        ),
    );
}

#[test]
fn invalid_name_from_env_from() {
    let v = Volume::new(&[
        ("db/OK", CANARY.as_bytes()),
        ("db/bad-key", CANARY.as_bytes()),
    ]);
    let o = v.run(&["--env-from", "db", "--", "echo", "ran"]);
    assert_failed(
        &v,
        &o,
        1,
        &format!(
            "env-from {}: file bad-key is not a valid env var name",
            v.shown("db")
        ),
    );
}

#[test]
fn unsafe_path_is_a_usage_error() {
    let v = Volume::new(&[("a", CANARY.as_bytes())]);
    let o = v.run(&["--env", "A=../secrets/a", "--", "echo", "ran"]);
    assert_failed(
        &v,
        &o,
        1,
        "usage: --env A: path ../secrets/a must not contain",
    );
}

#[test]
fn unwritable_termination_log_still_fails_right() {
    let v = Volume::new(&[("a", CANARY.as_bytes())]);
    let o = output(v.wrapper(&["--env", "A=missing", "--", "echo", "ran"]).env(
        "SECRETS_INJECTOR_TERMINATION_LOG",
        "/nonexistent-dir/termination-log",
    ));
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.starts_with("secrets-injector-env: env A: cannot read file"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn exec_failures_exit_like_a_shell() {
    let v = Volume::new(&[("a", CANARY.as_bytes())]);
    let o = v.run(&["--env", "A=a", "--", "secrets-injector-no-such-command"]);
    assert_failed(
        &v,
        &o,
        127,
        "cannot exec secrets-injector-no-such-command: No such file or directory (searched PATH)",
    );
    // A data file is not executable.
    let data = v.shown("a");
    let o = v.run(&["--env", "A=a", "--", &data]);
    assert_failed(
        &v,
        &o,
        126,
        &format!("cannot exec {data}: Permission denied"),
    );
}

#[test]
fn help_lists_every_flag() {
    let v = Volume::new(&[]);
    let o = v.run(&["--help"]);
    assert!(o.status.success());
    let help = String::from_utf8(o.stdout).unwrap();
    for flag in [
        "--mount-path",
        "--env NAME=PATH",
        "--env-from DIR",
        "--termination-log",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help");
    }
}
