//! The wrapper's one error type. Hand-written `Display` (no thiserror: the
//! crate is std only). Every message is one line and names the variable and
//! the file at fault, never a value.

use std::fmt;
use std::io;

/// Why the wrapper did not exec the command.
#[derive(Debug)]
pub enum Error {
    /// The command line is wrong (a webhook or hand-written pod spec bug).
    Usage(String),
    /// `<mount>/..data` is missing or is not the agent's snapshot link.
    Snapshot { mount: String, reason: String },
    /// A `--env` file could not be read.
    Read {
        var: String,
        file: String,
        reason: String,
    },
    /// A value contains a NUL byte, which no env var can hold.
    Nul { var: String, file: String },
    /// A value is not valid UTF-8 (see docs/env-vars.md for why this is refused).
    NotUtf8 { var: String, file: String },
    /// `NAME=value` exceeds the kernel's limit for one env string.
    TooLarge {
        var: String,
        file: String,
        bytes: u64,
    },
    /// An `--env-from` directory could not be listed.
    EnvFromDir { dir: String, reason: String },
    /// A file in an `--env-from` directory is not a valid env var name.
    BadName { name: String, dir: String },
    /// `exec` of the command failed.
    Exec { command: String, source: io::Error },
}

impl Error {
    /// Exit code, as a shell would use it: 127 command not found, 126 found
    /// but not executable, 1 for everything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Exec { source, .. } => match source.kind() {
                io::ErrorKind::NotFound => 127,
                // E2BIG/ENOMEM are not about the command itself.
                _ if matches!(source.raw_os_error(), Some(7 | 12)) => 1,
                _ => 126,
            },
            _ => 1,
        }
    }
}

/// `io::Error` without the redundant " (os error N)" suffix.
pub(crate) fn reason(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(m) => write!(f, "usage: {m} (see --help)"),
            Error::Snapshot { mount, reason } => write!(
                f,
                "no secrets snapshot under {mount}: {reason}; is the secrets-injector agent \
                 running first and is --mount-path the pod's secrets-injector.io/mount-path?"
            ),
            Error::Read { var, file, reason } => {
                write!(f, "env {var}: cannot read file {file}: {reason}")
            }
            Error::Nul { var, file } => write!(
                f,
                "env {var}: file {file} contains a NUL byte, which an env var cannot hold; \
                 read it as a file instead"
            ),
            Error::NotUtf8 { var, file } => write!(
                f,
                "env {var}: file {file} is not valid UTF-8 text; read binary secrets as files \
                 (or store them base64-encoded)"
            ),
            Error::TooLarge { var, file, bytes } => write!(
                f,
                "env {var}: file {file} is {bytes} bytes, over the kernel's 128 KiB limit for \
                 one env var; read it as a file instead"
            ),
            Error::EnvFromDir { dir, reason } => {
                write!(f, "env-from {dir}: cannot list the directory: {reason}")
            }
            Error::BadName { name, dir } => write!(
                f,
                "env-from {dir}: file {name} is not a valid env var name \
                 ([A-Za-z_][A-Za-z0-9_]*); rename the key, or map it with env-<NAME> (--env NAME=PATH)"
            ),
            Error::Exec { command, source } => {
                write!(f, "cannot exec {command}: {}", reason(source))?;
                match self.exit_code() {
                    127 if !command.contains('/') => write!(f, " (searched PATH)"),
                    127 => Ok(()),
                    126 => write!(f, " (is it an executable file for this platform?)"),
                    _ if source.raw_os_error() == Some(7) => {
                        write!(f, " (the environment and arguments together are too large)")
                    }
                    _ => Ok(()),
                }
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Exec { source, .. } => Some(source),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exec_err(kind_or_errno: io::Error, command: &str) -> Error {
        Error::Exec {
            command: command.into(),
            source: kind_or_errno,
        }
    }

    #[test]
    fn exec_failures_map_to_shell_exit_codes() {
        let cases = [
            (
                exec_err(io::Error::from_raw_os_error(2), "app"),
                127,
                "cannot exec app: No such file or directory (searched PATH)",
            ),
            (
                exec_err(io::Error::from_raw_os_error(2), "/bin/app"),
                127,
                "cannot exec /bin/app: No such file or directory",
            ),
            (
                exec_err(io::Error::from_raw_os_error(13), "/x"),
                126,
                "cannot exec /x: Permission denied (is it an executable file for this platform?)",
            ),
            (
                exec_err(io::Error::from_raw_os_error(8), "/x"),
                126,
                "cannot exec /x: Exec format error (is it an executable file for this platform?)",
            ),
            (
                exec_err(io::Error::from_raw_os_error(7), "/x"),
                1,
                "cannot exec /x: Argument list too long (the environment and arguments together are too large)",
            ),
        ];
        for (e, code, want) in cases {
            assert_eq!(e.exit_code(), code, "{e}");
            assert_eq!(e.to_string(), want);
        }
        assert_eq!(Error::Usage("x".into()).exit_code(), 1);
    }
}
