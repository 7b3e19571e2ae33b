//! Run an app container of a mutated pod as the kubelet would: its `command`
//! followed by its `args`, with its literal env, and the pod's mount path
//! mapped under the test's root (the only stand-in: no container runtime).
//!
//! Mapping: every argv element that is the mount path or starts with
//! `<mount path>/` is rewritten to the same path under the agent's temp root,
//! so the wrapper path (`<mount>/..secrets-injector-env`) and its
//! `--mount-path <mount>` argument point at the volume the agent wrote. The
//! wrapper's termination log (`/dev/termination-log` in a pod) is redirected
//! with its documented override, `SECRETS_INJECTOR_TERMINATION_LOG`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::Duration;

use serde_json::Value;

use crate::output_within;
use crate::pods::container_env;

/// The wrapper's override for its termination log path (env/src/args.rs).
pub const TERMINATION_LOG_ENV: &str = "SECRETS_INJECTOR_TERMINATION_LOG";

/// Marker the printing command puts before each of its arguments.
pub const ARG_MARK: &str = "@arg=";

/// A shell script for `command: [sh, -c, SCRIPT]` that prints every
/// positional argument (`$0` is `args[0]`), then its whole environment, as
/// NUL-terminated records: values may hold newlines, `=` and spaces.
pub const PRINT_ARGS_AND_ENV: &str = r#"printf '@arg=%s\0' "$0" "$@"; exec /usr/bin/env -0"#;

/// The app container named `name` in `spec.containers`.
pub fn app_container<'a>(pod: &'a Value, name: &str) -> &'a Value {
    pod["spec"]["containers"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("no container {name:?} in the pod"))
}

/// `command` + `args` of `container`, mount-path arguments mapped to `mount_dir`.
pub fn mapped_argv(container: &Value, mount_path: &str, mount_dir: &Path) -> Vec<String> {
    let strings = |key: &str| -> Vec<String> {
        container[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|s| s.as_str().expect("argv entries are strings").to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    let mount_path = mount_path.trim_end_matches('/');
    let dir = mount_dir.to_string_lossy();
    let prefix = format!("{mount_path}/");
    strings("command")
        .into_iter()
        .chain(strings("args"))
        .map(|a| {
            if a == mount_path {
                dir.to_string()
            } else if let Some(rest) = a.strip_prefix(&prefix) {
                format!("{dir}/{rest}")
            } else {
                a
            }
        })
        .collect()
}

/// What one run of an app container's command did.
#[derive(Debug)]
pub struct AppRun {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
    /// The container's termination message (empty when nothing was written).
    pub termination: String,
}

impl AppRun {
    /// NUL-terminated records from [`PRINT_ARGS_AND_ENV`]: the arguments and the env.
    pub fn args_and_env(&self) -> (Vec<String>, BTreeMap<String, String>) {
        let text = String::from_utf8(self.stdout.clone()).expect("the app printed UTF-8");
        let mut args = Vec::new();
        let mut env = BTreeMap::new();
        for rec in text.split_terminator('\0') {
            if let Some(a) = rec.strip_prefix(ARG_MARK) {
                args.push(a.to_string());
            } else if let Some((k, v)) = rec.split_once('=') {
                env.insert(k.to_string(), v.to_string());
            } else {
                panic!("the app printed a record that is neither an argument nor NAME=value");
            }
        }
        (args, env)
    }
}

/// Run `container`'s mapped `command` + `args` with its literal env plus a
/// `PATH` (the image's, in a pod), its termination log at `termination_log`.
pub fn run_app(
    container: &Value,
    mount_path: &str,
    mount_dir: &Path,
    termination_log: &Path,
) -> AppRun {
    let argv = mapped_argv(container, mount_path, mount_dir);
    let (program, rest) = argv.split_first().expect("the container has a command");
    let _ = std::fs::remove_file(termination_log);
    let out = output_within(
        Command::new(program)
            .args(rest)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .envs(container_env(container))
            .env(TERMINATION_LOG_ENV, termination_log),
        Duration::from_secs(30),
    );
    AppRun {
        status: out.status,
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        termination: std::fs::read_to_string(termination_log).unwrap_or_default(),
    }
}

/// `<root>/dev/<name>`: a per-container termination log under the test root.
pub fn termination_log_path(root: &Path, name: &str) -> PathBuf {
    let dev = root.join("dev");
    std::fs::create_dir_all(&dev).unwrap();
    dev.join(format!("termination-log-{name}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn maps_only_the_mount_path_and_paths_under_it() {
        let c = json!({
            "command": ["/mnt/secrets/..secrets-injector-env", "--mount-path", "/mnt/secrets",
                        "--env", "A=db/a", "--", "/mnt/secretsX/app"],
            "args": ["/mnt/secrets/db", "plain"]
        });
        let argv = mapped_argv(&c, "/mnt/secrets", Path::new("/tmp/r/mnt/secrets"));
        assert_eq!(
            argv,
            [
                "/tmp/r/mnt/secrets/..secrets-injector-env",
                "--mount-path",
                "/tmp/r/mnt/secrets",
                "--env",
                "A=db/a",
                "--",
                "/mnt/secretsX/app",
                "/tmp/r/mnt/secrets/db",
                "plain"
            ]
        );
    }
}
