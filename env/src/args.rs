//! Hand-parsed command line (docs/env-vars.md; no clap, to stay tiny):
//! `secrets-injector-env [--mount-path P] [--env NAME=PATH]... [--env-from DIR]... -- CMD [ARG]...`
//! Flags also take the `--flag=value` form; every flag has an env var.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::Error;

/// Default mount path, mirrors `secrets-injector.io/mount-path`'s default in the contract.
pub const DEFAULT_MOUNT_PATH: &str = "/mnt/secrets";
/// Env var for `--mount-path` (the agent's `SECRETS_INJECTOR_…` naming).
pub const MOUNT_PATH_ENV: &str = "SECRETS_INJECTOR_MOUNT_PATH";
/// Env var for `--termination-log`, the same name as the agent's flag uses.
pub const TERMINATION_LOG_ENV: &str = "SECRETS_INJECTOR_TERMINATION_LOG";
/// Where the kubelet reads a container's termination message.
pub const DEFAULT_TERMINATION_LOG: &str = "/dev/termination-log";

pub const HELP: &str = "\
secrets-injector-env: set env vars from the secrets volume, then exec the command

Usage: secrets-injector-env [--mount-path P] [--env NAME=PATH]... [--env-from DIR]... -- CMD [ARG]...

Every file is read from one snapshot (<mount-path>/..data), so a rotation
between two reads can never mix old and new values. The command replaces this
process (same PID, signals untouched); a name set here wins over the inherited
env. Values must be UTF-8 text without NUL; they are used byte for byte (no
trailing newline is trimmed). Any problem: no exec, exit 1 (126/127 when the
command cannot be executed / is not found), one line on stderr and in the
termination log naming the variable and the file, never the value.

Options:
  --mount-path P       Secrets volume mount path [env: SECRETS_INJECTOR_MOUNT_PATH]
                       [default: /mnt/secrets]
  --env NAME=PATH      Set NAME to the content of PATH, relative to the mount path
                       (a secrets-injector output, e.g. db/password). Repeatable.
  --env-from DIR       Every regular file directly in DIR (relative to the mount path,
                       a `format: files` output) becomes an env var of the same name,
                       in name order; a later DIR wins, --env wins over --env-from.
                       A file name that is not [A-Za-z_][A-Za-z0-9_]* is an error.
                       Repeatable.
  --termination-log F  Where the one-line failure cause is written
                       [env: SECRETS_INJECTOR_TERMINATION_LOG] [default: /dev/termination-log]
  -h, --help           Print this help
  -V, --version        Print the version
  --                   End of options; CMD [ARG]... follows (required)
";

/// A parsed command line that runs a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    pub mount_path: PathBuf,
    /// `(NAME, PATH)` in command-line order.
    pub env: Vec<(String, String)>,
    pub env_from: Vec<String>,
    /// CMD and its ARGs; never empty.
    pub command: Vec<OsString>,
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Run(Args),
    Help,
    Version,
}

/// The termination-log path, from argv when given there (even if the rest of
/// argv is broken, so a usage error still lands in the right file), else env.
pub fn termination_log(argv: &[OsString], env: Option<OsString>) -> PathBuf {
    let mut it = argv.iter().skip(1);
    while let Some(a) = it.next() {
        if a == "--" {
            break;
        }
        if a == "--termination-log" {
            if let Some(v) = it.next() {
                return PathBuf::from(v);
            }
        } else if let Some(v) = a
            .to_str()
            .and_then(|s| s.strip_prefix("--termination-log="))
        {
            return PathBuf::from(v);
        }
    }
    env.filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_TERMINATION_LOG))
}

/// Parse `argv` (including argv[0]); `mount_env` is `SECRETS_INJECTOR_MOUNT_PATH`.
pub fn parse(argv: &[OsString], mount_env: Option<OsString>) -> Result<Parsed, Error> {
    let usage = |m: String| Error::Usage(m);
    let mut mount_path = mount_env.filter(|v| !v.is_empty()).map(PathBuf::from);
    let mut env: Vec<(String, String)> = Vec::new();
    let mut env_from = Vec::new();
    let mut it = argv.iter().skip(1);
    let command: Vec<OsString> = loop {
        let Some(arg) = it.next() else {
            return Err(usage(
                "missing `-- CMD [ARG]...`: the command to run comes after --".into(),
            ));
        };
        if arg == "--" {
            break it.cloned().collect();
        }
        let Some(s) = arg.to_str() else {
            return Err(usage(format!(
                "argument {} is not valid UTF-8 before --",
                arg.to_string_lossy().escape_debug()
            )));
        };
        if s == "-h" || s == "--help" {
            return Ok(Parsed::Help);
        }
        if s == "-V" || s == "--version" {
            return Ok(Parsed::Version);
        }
        let (flag, value) = flag_and_value(s, &mut it)?;
        match flag {
            "--mount-path" => {
                if value.is_empty() {
                    return Err(usage("--mount-path must not be empty".into()));
                }
                mount_path = Some(PathBuf::from(value));
            }
            "--env" => {
                let (name, path) = env_pair(&value)?;
                if env.iter().any(|(n, _)| *n == name) {
                    return Err(usage(format!("--env {name} is given twice")));
                }
                env.push((name, path));
            }
            "--env-from" => {
                check_relative(&value).map_err(|why| {
                    usage(format!("--env-from: path {} {why}", value.escape_debug()))
                })?;
                env_from.push(value);
            }
            // Read by `termination_log` before parsing.
            _ => {}
        }
    };
    if command.is_empty() {
        return Err(usage("no command after --".into()));
    }
    Ok(Parsed::Run(Args {
        mount_path: mount_path.unwrap_or_else(|| PathBuf::from(DEFAULT_MOUNT_PATH)),
        env,
        env_from,
        command,
    }))
}

/// One known option and its value (`--flag=value` or `--flag value`).
fn flag_and_value<'a, 'b>(
    s: &'a str,
    it: &mut impl Iterator<Item = &'b OsString>,
) -> Result<(&'a str, String), Error> {
    let (flag, inline) = match s.split_once('=') {
        Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
        _ => (s, None),
    };
    if !matches!(
        flag,
        "--mount-path" | "--env" | "--env-from" | "--termination-log"
    ) {
        let hint = if flag.starts_with('-') {
            "unknown option"
        } else {
            "unexpected argument; put the command after --"
        };
        return Err(Error::Usage(format!("{}: {hint}", s.escape_debug())));
    }
    let value = match inline {
        Some(v) => v,
        None => match it.next() {
            Some(v) => v
                .to_str()
                .ok_or_else(|| Error::Usage(format!("{flag}: value is not valid UTF-8")))?
                .to_string(),
            None => return Err(Error::Usage(format!("{flag} needs a value"))),
        },
    };
    Ok((flag, value))
}

/// One `--env NAME=PATH` value: a valid name and a safe relative path.
fn env_pair(value: &str) -> Result<(String, String), Error> {
    let Some((name, path)) = value.split_once('=') else {
        return Err(Error::Usage(format!(
            "--env {}: expected NAME=PATH",
            value.escape_debug()
        )));
    };
    if !valid_name(name) {
        return Err(Error::Usage(format!(
            "--env {}: {} is not a valid env var name ([A-Za-z_][A-Za-z0-9_]*)",
            value.escape_debug(),
            name.escape_debug()
        )));
    }
    check_relative(path)
        .map_err(|why| Error::Usage(format!("--env {name}: path {} {why}", path.escape_debug())))?;
    Ok((name.to_string(), path.to_string()))
}

/// A POSIX-portable env var name: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn valid_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// A safe path relative to the mount path. Mirrors `check_relative` in
/// `shared/src/paths.rs` (kept local so the wrapper has no dependencies).
pub fn check_relative(p: &str) -> Result<(), &'static str> {
    if p.is_empty() {
        return Err("is empty");
    }
    if p.starts_with('/') {
        return Err("must be relative to the mount path, not absolute");
    }
    for comp in p.split('/') {
        match comp {
            "" => return Err("has an empty path segment (// or trailing /)"),
            "." | ".." => return Err("must not contain . or .. segments"),
            c if c.starts_with("..") => {
                return Err("must not start a segment with .. (reserved for the agent)");
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn argv(a: &[&str]) -> Vec<OsString> {
        std::iter::once("secrets-injector-env")
            .chain(a.iter().copied())
            .map(OsString::from)
            .collect()
    }

    fn run(a: &[&str]) -> Args {
        match parse(&argv(a), None) {
            Ok(Parsed::Run(args)) => args,
            other => panic!("{a:?}: {other:?}"),
        }
    }

    fn usage_err(a: &[&str]) -> String {
        match parse(&argv(a), None) {
            Err(e @ Error::Usage(_)) => e.to_string(),
            other => panic!("{a:?}: expected a usage error, got {other:?}"),
        }
    }

    #[test]
    fn full_command_line() {
        let a = run(&[
            "--mount-path",
            "/m",
            "--env",
            "DB_PASSWORD=db/password",
            "--env=API_KEY=api",
            "--env-from",
            "db",
            "--env-from=cfg/app",
            "--",
            "/app",
            "--port",
            "--",
            "8080",
        ]);
        assert_eq!(a.mount_path, PathBuf::from("/m"));
        assert_eq!(
            a.env,
            vec![
                ("DB_PASSWORD".to_string(), "db/password".to_string()),
                ("API_KEY".to_string(), "api".to_string())
            ]
        );
        assert_eq!(a.env_from, vec!["db".to_string(), "cfg/app".to_string()]);
        // Everything after the first -- belongs to the command, flags and -- included.
        assert_eq!(a.command, argv(&["/app", "--port", "--", "8080"])[1..]);
    }

    #[test]
    fn mount_path_default_env_and_flag_precedence() {
        assert_eq!(
            run(&["--", "true"]).mount_path,
            PathBuf::from(DEFAULT_MOUNT_PATH)
        );
        let from_env = parse(&argv(&["--", "true"]), Some("/e".into())).unwrap();
        assert!(matches!(from_env, Parsed::Run(a) if a.mount_path == Path::new("/e")));
        let flag_wins = parse(&argv(&["--mount-path=/f", "--", "true"]), Some("/e".into()));
        assert!(matches!(flag_wins, Ok(Parsed::Run(a)) if a.mount_path == Path::new("/f")));
    }

    #[test]
    fn help_and_version() {
        assert_eq!(parse(&argv(&["--help"]), None).unwrap(), Parsed::Help);
        assert_eq!(
            parse(&argv(&["--env", "A=a", "-h", "--", "x"]), None).unwrap(),
            Parsed::Help
        );
        assert_eq!(parse(&argv(&["-V"]), None).unwrap(), Parsed::Version);
        // After --, --help is the command's.
        assert_eq!(run(&["--", "app", "--help"]).command[1], "--help");
    }

    #[test]
    fn help_documents_every_flag_and_env() {
        for f in [
            "--mount-path",
            "--env NAME=PATH",
            "--env-from DIR",
            "--termination-log",
            "--help",
            "--version",
            MOUNT_PATH_ENV,
            TERMINATION_LOG_ENV,
            DEFAULT_MOUNT_PATH,
        ] {
            assert!(HELP.contains(f), "--help does not mention {f}");
        }
    }

    #[test]
    fn every_usage_error_is_named() {
        let cases: &[(&[&str], &str)] = &[
            (&[], "missing `-- CMD [ARG]...`"),
            (&["--env", "A=a"], "missing `-- CMD [ARG]...`"),
            (&["--"], "no command after --"),
            (
                &["app"],
                "app: unexpected argument; put the command after --",
            ),
            (&["--bogus", "--", "x"], "--bogus: unknown option"),
            (&["--env"], "--env needs a value"),
            (&["--mount-path"], "--mount-path needs a value"),
            (
                &["--mount-path=", "--", "x"],
                "--mount-path must not be empty",
            ),
            (&["--env", "A", "--", "x"], "--env A: expected NAME=PATH"),
            (
                &["--env", "1A=a", "--", "x"],
                "1A is not a valid env var name",
            ),
            (
                &["--env", "A-B=a", "--", "x"],
                "A-B is not a valid env var name",
            ),
            (&["--env", "=a", "--", "x"], "is not a valid env var name"),
            (
                &["--env", "A=/etc/passwd", "--", "x"],
                "--env A: path /etc/passwd must be relative",
            ),
            (
                &["--env", "A=db/../../etc", "--", "x"],
                "must not contain . or .. segments",
            ),
            (
                &["--env", "A=..data/x", "--", "x"],
                "reserved for the agent",
            ),
            (&["--env", "A=", "--", "x"], "--env A: path  is empty"),
            (&["--env", "A=a//b", "--", "x"], "empty path segment"),
            (
                &["--env", "A=a", "--env", "A=b", "--", "x"],
                "--env A is given twice",
            ),
            (
                &["--env-from", "../x", "--", "x"],
                "--env-from: path ../x must not contain",
            ),
            (&["--env-from", "/x", "--", "x"], "must be relative"),
        ];
        for (a, want) in cases {
            let e = usage_err(a);
            assert!(e.contains(want), "{a:?}: {e}");
            assert!(
                e.starts_with("usage: ") && e.ends_with("(see --help)"),
                "{e}"
            );
            assert!(!e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn non_utf8_flag_value_is_a_usage_error() {
        use std::os::unix::ffi::OsStringExt;
        let mut a = argv(&["--env"]);
        a.push(OsString::from_vec(b"A=\xff".to_vec()));
        a.extend(argv(&["--", "x"]).into_iter().skip(1));
        let e = parse(&a, None).unwrap_err().to_string();
        assert!(e.contains("--env: value is not valid UTF-8"), "{e}");
        // The command's own arguments may be any bytes.
        let mut a = argv(&["--", "x"]);
        a.push(OsString::from_vec(b"\xff".to_vec()));
        assert!(matches!(parse(&a, None), Ok(Parsed::Run(_))));
    }

    #[test]
    fn env_names() {
        for ok in ["A", "_", "_a1", "DB_PASSWORD", "lower"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "1", "A-B", "A.B", "A B", "Ä", "A=B"] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn termination_log_from_argv_env_or_default() {
        let dflt = termination_log(&argv(&["--", "x"]), None);
        assert_eq!(dflt, PathBuf::from(DEFAULT_TERMINATION_LOG));
        let env = termination_log(&argv(&["--", "x"]), Some("/e".into()));
        assert_eq!(env, PathBuf::from("/e"));
        let flag = termination_log(
            &argv(&["--termination-log", "/f", "--bogus"]),
            Some("/e".into()),
        );
        assert_eq!(flag, PathBuf::from("/f"));
        let inline = termination_log(&argv(&["--termination-log=/g", "--", "x"]), None);
        assert_eq!(inline, PathBuf::from("/g"));
        // The command's own flag is not ours.
        let after = termination_log(&argv(&["--", "x", "--termination-log", "/h"]), None);
        assert_eq!(after, PathBuf::from(DEFAULT_TERMINATION_LOG));
    }
}
