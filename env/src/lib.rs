//! `secrets-injector-env`: the exec wrapper of docs/env-vars.md. Reads env values
//! from one snapshot of the secrets volume, sets them and `exec`s the
//! command: same PID, no child, signals as if started directly.
//!
//! std only (no runtime, no clap, no AWS SDK) so it stays small and static.
//! Constants that mirror the contract (`/mnt/secrets`, `..data`, env names)
//! are kept local on purpose; `shared` would pull serde into every app start.

#![forbid(unsafe_code)]

pub mod args;
pub mod error;
pub mod snapshot;

use std::ffi::OsString;
use std::io::Write as _;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Command, ExitCode};

pub use error::Error;

use args::Parsed;

/// Prefix of every line the wrapper prints.
pub const PREFIX: &str = "secrets-injector-env";

/// Run the wrapper: only returns when it does not exec (help, version, error).
pub fn main_with(argv: Vec<OsString>) -> ExitCode {
    let termination_log = args::termination_log(&argv, std::env::var_os(args::TERMINATION_LOG_ENV));
    let parsed = args::parse(&argv, std::env::var_os(args::MOUNT_PATH_ENV));
    let args = match parsed {
        Ok(Parsed::Run(a)) => a,
        Ok(Parsed::Help) => {
            print!("{}", args::HELP);
            return ExitCode::SUCCESS;
        }
        Ok(Parsed::Version) => {
            println!("{PREFIX} {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(e) => return fail(&termination_log, &e),
    };
    let e = match snapshot::collect(&args) {
        Ok(vars) => exec(&args.command, vars),
        Err(e) => e,
    };
    fail(&termination_log, &e)
}

/// Replace this process with `command`, `vars` set over the inherited env.
/// PATH is searched as `execvp` does when the program has no `/`.
pub fn exec(command: &[OsString], vars: Vec<(String, String)>) -> Error {
    let Some((program, rest)) = command.split_first() else {
        return Error::Usage("no command after --".into());
    };
    let source = Command::new(program).args(rest).envs(vars).exec();
    Error::Exec {
        command: program.to_string_lossy().escape_debug().to_string(),
        source,
    }
}

/// Report `e` on stderr and in the termination log (best effort), return its exit code.
pub fn fail(termination_log: &Path, e: &Error) -> ExitCode {
    let line = format!("{PREFIX}: {e}\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
    // Not in a pod, or a read-only path: stderr already has it.
    let _ = std::fs::write(termination_log, &line);
    ExitCode::from(e.exit_code())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    // Only failing execs here: a successful one would replace the test process.
    #[test]
    fn exec_not_found_and_not_executable() {
        let dir = tempfile::tempdir().unwrap();
        let e = exec(&["secrets-injector-no-such-cmd".into()], Vec::new());
        assert_eq!(e.exit_code(), 127, "{e}");
        let missing = dir.path().join("missing");
        let e = exec(&[missing.clone().into()], Vec::new());
        assert_eq!(e.exit_code(), 127, "{e}");
        assert!(
            e.to_string().contains(&missing.display().to_string()),
            "{e}"
        );
        let plain = dir.path().join("plain");
        std::fs::write(&plain, "not a program").unwrap();
        std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = exec(&[plain.into()], Vec::new());
        assert_eq!(e.exit_code(), 126, "{e}");
        let e = exec(&[dir.path().into()], Vec::new());
        assert_eq!(e.exit_code(), 126, "{e}");
    }

    #[test]
    fn failure_goes_to_the_termination_log_and_survives_an_unwritable_one() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("termination-log");
        let e = Error::Nul {
            var: "V".into(),
            file: "/m/f".into(),
        };
        assert_eq!(fail(&log, &e), ExitCode::from(1));
        let written = std::fs::read_to_string(&log).unwrap();
        assert_eq!(written, format!("{PREFIX}: {e}\n"));
        assert_eq!(written.lines().count(), 1);
        // A directory cannot be written: still the exit code, no panic.
        assert_eq!(fail(dir.path(), &e), ExitCode::from(1));
    }
}
