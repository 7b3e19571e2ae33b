//! Last resort: a panic anywhere in the agent still leaves a one-line cause
//! in the termination log, so a pod never shows a crashed agent without a
//! reason. The line names where it happened; a panic's *formatted* message is
//! withheld (it may quote data, e.g. the string being sliced or an `Err`
//! being unwrapped), a literal one (`&'static str`) is kept.

use std::any::Any;
use std::path::PathBuf;

use crate::termination;

/// Longest literal panic message quoted.
const MAX_LITERAL: usize = 200;

/// The termination line for a panic at `location` (`file:line:col`) with `payload`.
pub fn line(location: Option<String>, payload: &(dyn Any + Send)) -> String {
    let what = match payload.downcast_ref::<&'static str>() {
        Some(literal) => termination::cut(
            &literal.split_whitespace().collect::<Vec<_>>().join(" "),
            MAX_LITERAL,
        ),
        None => "message withheld, it may contain data".into(),
    };
    let at = location.map_or_else(String::new, |l| format!(" at {l}"));
    format!(
        "agent crashed: Panic: internal error{at}: {what}. hint: a bug in secrets-injector, \
         please report it with this line; the kubelet restarts the container\n"
    )
}

/// Replace the default panic hook (which prints the formatted message) with
/// one that logs and writes [`line`] to `termination_log`, replacing its content.
pub fn install(termination_log: PathBuf) {
    std::panic::set_hook(Box::new(move |info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
        let line = line(location, info.payload());
        tracing::error!(error = %line.trim_end(), "agent panicked");
        // Best effort: a read-only or missing log must not turn a panic into an abort.
        let _ = termination::write(&termination_log, &line);
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_messages_are_kept_formatted_ones_withheld() {
        let l = line(
            Some("agent/src/x.rs:1:2".into()),
            &"called `Option::unwrap()` on a `None` value",
        );
        assert_eq!(
            l,
            "agent crashed: Panic: internal error at agent/src/x.rs:1:2: called `Option::unwrap()` \
             on a `None` value. hint: a bug in secrets-injector, please report it with this line; \
             the kubelet restarts the container\n"
        );
        let secret = String::from("pw-CANARY-panic");
        let l = line(
            None,
            &format!("byte index 3 is not a char boundary of `{secret}`"),
        );
        assert!(!l.contains("CANARY"), "{l}");
        assert!(
            l.starts_with("agent crashed: Panic: internal error: message withheld"),
            "{l}"
        );
        assert_eq!(l.lines().count(), 1);
        let l = line(None, &"a\nmulti-line\nliteral");
        assert_eq!(l.lines().count(), 1, "{l}");
        let long: &'static str = "x".repeat(5000).leak();
        assert!(line(None, &long).len() < 400);
    }
}
