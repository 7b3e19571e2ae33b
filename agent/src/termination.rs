//! The termination message: one line per failing secret, in the file the
//! kubelet shows as the container's termination reason. Never a value.

use std::path::Path;

use crate::failure::FetchFailure;

/// Code of the line written when every secret was ready but the files could not be written.
const CODE_WRITE: &str = "WriteFailed";

/// `secret <ref>: <code>: <message>. hint: <hint>` on one line.
pub fn line(f: &FetchFailure) -> String {
    compose(
        &format!("secret {}", f.secret),
        &f.code,
        &f.message,
        f.hint.as_deref(),
    )
}

/// `writing the secrets: WriteFailed: <error>. hint: …` on one line.
pub fn write_failure_line(e: &crate::Error) -> String {
    compose(
        "writing the secrets",
        CODE_WRITE,
        &e.to_string(),
        Some("check that the secrets volume is mounted writable for the agent"),
    )
}

fn compose(subject: &str, code: &str, message: &str, hint: Option<&str>) -> String {
    let one_line = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let message = one_line(message);
    let message = message.trim_end_matches('.');
    match hint.map(one_line) {
        Some(hint) if !hint.is_empty() => format!("{subject}: {code}: {message}. hint: {hint}"),
        _ => format!("{subject}: {code}: {message}"),
    }
}

/// The whole message for a set of failures.
pub fn message(failures: &[FetchFailure]) -> String {
    failures.iter().map(|f| line(f) + "\n").collect()
}

/// Write `message` to the termination log, replacing what is there.
pub fn write(path: &Path, message: &str) -> std::io::Result<()> {
    std::fs::write(path, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failure::FailureKind;

    fn failure(hint: Option<&str>) -> FetchFailure {
        FetchFailure {
            secret: "prod/db".into(),
            code: "AccessDeniedException".into(),
            message: "User is not\nauthorized.".into(),
            hint: hint.map(str::to_string),
            kind: FailureKind::Denied,
        }
    }

    #[test]
    fn one_line_with_hint() {
        assert_eq!(
            line(&failure(Some("allow secretsmanager:GetSecretValue"))),
            "secret prod/db: AccessDeniedException: User is not authorized. \
             hint: allow secretsmanager:GetSecretValue"
        );
    }

    #[test]
    fn a_write_failure_names_the_files_not_a_secret() {
        let e = crate::Error::Write {
            path: "/mnt/secrets/..data".into(),
            message: "Read-only file system".into(),
        };
        assert_eq!(
            write_failure_line(&e),
            "writing the secrets: WriteFailed: writing /mnt/secrets/..data: Read-only file system. \
             hint: check that the secrets volume is mounted writable for the agent"
        );
    }

    #[test]
    fn no_hint_no_hint_suffix() {
        assert_eq!(
            line(&failure(None)),
            "secret prod/db: AccessDeniedException: User is not authorized"
        );
    }
}
