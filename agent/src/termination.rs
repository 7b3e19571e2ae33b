//! The termination message: one line per failing secret, in the file the
//! kubelet shows as the container's termination reason. Never a value.

use std::path::Path;

use crate::fetch::FetchFailure;

/// `secret <ref>: <code>: <message>. hint: <hint>` on one line.
pub fn line(f: &FetchFailure) -> String {
    let one_line = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let message = one_line(&f.message);
    let message = message.trim_end_matches('.');
    match f.hint.as_deref().map(one_line) {
        Some(hint) if !hint.is_empty() => {
            format!("secret {}: {}: {message}. hint: {hint}", f.secret, f.code)
        }
        _ => format!("secret {}: {}: {message}", f.secret, f.code),
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

    fn failure(hint: Option<&str>) -> FetchFailure {
        FetchFailure {
            index: 0,
            secret: "prod/db".into(),
            code: "AccessDeniedException".into(),
            message: "User is not\nauthorized.".into(),
            hint: hint.map(str::to_string),
            transient: false,
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
    fn no_hint_no_hint_suffix() {
        assert_eq!(
            line(&failure(None)),
            "secret prod/db: AccessDeniedException: User is not authorized"
        );
    }
}
