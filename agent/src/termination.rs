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

/// The kubelet keeps at most this many bytes of a termination message (the
/// file's tail), so the agent never writes more.
pub const MAX_MESSAGE: usize = 4096;
/// In the compact form a message is cut to this many bytes.
const COMPACT_MESSAGE: usize = 64;
/// A reference longer than this is cut in the middle (SSM names reach 2 KiB).
const COMPACT_REF: usize = 160;
/// Codes named in the "…and N more" line.
const MORE_CODES: usize = 4;

/// The whole message for a set of failures, at most [`MAX_MESSAGE`] bytes:
/// one full line per secret when they fit; else one short line per secret
/// (code and the start of the message), then one hint per code while room
/// remains, and when not every secret fits, a last line counting the rest by code.
pub fn message(failures: &[FetchFailure]) -> String {
    let full: String = failures.iter().map(|f| line(f) + "\n").collect();
    if full.len() <= MAX_MESSAGE {
        return full;
    }
    compact(failures, MAX_MESSAGE)
}

/// `secret <ref>: <code>: <message start>`, short; `secret <ref>: <code>
/// (as above)` when the previous line had the same code and message (a
/// failed batch or an unreachable endpoint fails many secrets alike).
fn short_line(f: &FetchFailure, prev: Option<&FetchFailure>) -> String {
    let secret = cut_middle(&f.secret, COMPACT_REF);
    let code = cut(&f.code, 64);
    if prev.is_some_and(|p| p.code == f.code && p.message == f.message) {
        return format!("secret {secret}: {code} (as above)\n");
    }
    let message = f.message.split_whitespace().collect::<Vec<_>>().join(" ");
    let message = cut(message.trim_end_matches('.'), COMPACT_MESSAGE);
    format!("secret {secret}: {code}: {message}\n")
}

/// `…and N more failing secrets (Code ×n, …)`, codes by count.
fn more_line(rest: &[FetchFailure]) -> String {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for f in rest {
        match counts.iter_mut().find(|(c, _)| *c == f.code) {
            Some((_, n)) => *n += 1,
            None => counts.push((&f.code, 1)),
        }
    }
    counts.sort_by_key(|c| std::cmp::Reverse(c.1));
    let mut codes: Vec<String> = counts
        .iter()
        .take(MORE_CODES)
        .map(|(c, n)| format!("{} ×{n}", cut(c, 64)))
        .collect();
    if counts.len() > MORE_CODES {
        codes.push("…".into());
    }
    format!(
        "…and {} more failing secrets ({})\n",
        rest.len(),
        codes.join(", ")
    )
}

fn compact(failures: &[FetchFailure], budget: usize) -> String {
    let lines: Vec<String> = failures
        .iter()
        .enumerate()
        .map(|(i, f)| short_line(f, i.checked_sub(1).map(|p| &failures[p])))
        .collect();
    let mut out = String::new();
    let mut shown = 0;
    for (i, l) in lines.iter().enumerate() {
        let rest = &failures[i + 1..];
        let tail = if rest.is_empty() {
            0
        } else {
            more_line(rest).len()
        };
        if out.len() + l.len() + tail > budget {
            break;
        }
        out.push_str(l);
        shown = i + 1;
    }
    let more = (shown < failures.len()).then(|| more_line(&failures[shown..]));
    let reserve = more.as_ref().map_or(0, String::len);
    // One hint per code among the shown secrets, while they fit.
    let mut hinted: Vec<&str> = Vec::new();
    for f in &failures[..shown] {
        let Some(hint) = f.hint.as_deref() else {
            continue;
        };
        if hinted.contains(&f.code.as_str()) {
            continue;
        }
        hinted.push(&f.code);
        let hint = hint.split_whitespace().collect::<Vec<_>>().join(" ");
        let h = format!(
            "hint for {} (e.g. {}): {}\n",
            cut(&f.code, 64),
            cut_middle(&f.secret, COMPACT_REF),
            hint
        );
        if out.len() + h.len() + reserve <= budget {
            out.push_str(&h);
        }
    }
    out.extend(more);
    out
}

/// `s` cut to at most `max` bytes on a char boundary, `…` marking the cut.
pub(crate) fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// `s` at most `max` bytes, its middle replaced by `…` (both ends of a name matter).
fn cut_middle(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let half = max.saturating_sub('…'.len_utf8()) / 2;
    let mut head = half;
    while !s.is_char_boundary(head) {
        head -= 1;
    }
    let mut tail = s.len() - half;
    while !s.is_char_boundary(tail) {
        tail += 1;
    }
    format!("{}…{}", &s[..head], &s[tail..])
}

/// Write `message` to the termination log, replacing what is there; anything
/// over [`MAX_MESSAGE`] bytes is cut (the kubelet would keep only the tail).
pub fn write(path: &Path, message: &str) -> std::io::Result<()> {
    if message.len() <= MAX_MESSAGE {
        return std::fs::write(path, message);
    }
    std::fs::write(path, cut(message, MAX_MESSAGE - 1) + "\n")
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

    /// `n` failing secrets with long names, messages and hints (as NetworkError lines were).
    fn many(n: usize, code: impl Fn(usize) -> &'static str) -> Vec<FetchFailure> {
        (0..n)
            .map(|i| FetchFailure {
                secret: format!("prod/team-{i:03}/service/database-credentials-{i:03}"),
                code: code(i).into(),
                message: format!(
                    "dispatch failure: io error: {}",
                    "connection refused ".repeat(20)
                ),
                hint: Some(format!(
                    "check that the pod can reach the secretsmanager endpoint of eu-west-1 ({i})"
                )),
                kind: FailureKind::Transient,
            })
            .collect()
    }

    #[test]
    fn twenty_failures_fit_in_4_kib_and_each_is_named() {
        let failures = many(24, |i| {
            if i % 3 == 0 {
                "AccessDeniedException"
            } else {
                "NetworkError"
            }
        });
        assert!(failures.iter().map(|f| line(f).len() + 1).sum::<usize>() > MAX_MESSAGE);
        let m = message(&failures);
        assert!(m.len() <= MAX_MESSAGE, "{} bytes", m.len());
        for f in &failures {
            assert!(
                m.contains(&format!("secret {}: {}", f.secret, f.code)),
                "{} missing:\n{m}",
                f.secret
            );
        }
        assert!(!m.contains("more failing secrets"), "{m}");
        // A run of alike failures repeats the message once.
        assert!(
            m.contains("NetworkError: dispatch failure")
                && m.contains("credentials-002: NetworkError (as above)\n"),
            "{m}"
        );
        // One hint per code, not one per secret.
        assert_eq!(m.matches("hint for NetworkError").count(), 1, "{m}");
        assert_eq!(
            m.matches("hint for AccessDeniedException").count(),
            1,
            "{m}"
        );
        assert!(m.lines().all(|l| l.len() < 300), "short lines:\n{m}");
    }

    #[test]
    fn too_many_failures_end_with_counts_by_code() {
        let failures = many(500, |i| match i % 10 {
            0 => "AccessDeniedException",
            1 | 2 => "ResourceNotFoundException",
            _ => "NetworkError",
        });
        let m = message(&failures);
        assert!(m.len() <= MAX_MESSAGE, "{} bytes", m.len());
        let last = m.lines().last().unwrap();
        let shown = m.lines().filter(|l| l.starts_with("secret ")).count();
        assert!(shown >= 20, "{shown} named:\n{m}");
        assert!(
            last.starts_with(&format!(
                "…and {} more failing secrets (NetworkError ×",
                500 - shown
            )),
            "{last}"
        );
        assert!(
            last.contains("ResourceNotFoundException ×")
                && last.contains("AccessDeniedException ×"),
            "{last}"
        );
        // The named ones are the first, in config order.
        for f in &failures[..shown] {
            assert!(m.contains(&f.secret), "{}", f.secret);
        }
    }

    #[test]
    fn a_huge_reference_or_code_is_cut_not_the_budget() {
        let mut failures = many(30, |_| "NetworkError");
        failures[0].secret = format!("ssm:/{}", "p".repeat(2048));
        failures[1].code = "C".repeat(5000);
        let m = message(&failures);
        assert!(m.len() <= MAX_MESSAGE, "{} bytes", m.len());
        assert!(m.contains("ssm:/ppp") && m.contains("…"), "{m}");
        // A message too long for anything is still cut, on a char boundary.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t");
        write(&p, &"é".repeat(5000)).unwrap();
        let written = std::fs::read_to_string(&p).unwrap();
        assert!(written.len() <= MAX_MESSAGE && written.ends_with("…\n"));
        assert_eq!(cut_middle("abcdefghij", 7), "ab…ij");
    }

    #[test]
    fn no_hint_no_hint_suffix() {
        assert_eq!(
            line(&failure(None)),
            "secret prod/db: AccessDeniedException: User is not authorized"
        );
    }
}
