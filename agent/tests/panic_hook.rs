//! The agent's last-resort panic hook, installed as the binary installs it:
//! a panic writes one line to the termination log, never a formatted message
//! (which may quote data), and no panic leaves the log empty. Its own test
//! binary: a panic hook is process-wide.
#![allow(clippy::unwrap_used, clippy::panic)]

use secrets_injector_agent::panic_hook;

const CANARY: &str = "CANARY-panic-41d2";

#[test]
fn a_panic_leaves_a_one_line_cause_without_data() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("termination-log");
    std::fs::write(&log, "an earlier message\n").unwrap();
    panic_hook::install(log.clone());

    let value = format!("pw-{CANARY}");
    let r = std::panic::catch_unwind(|| {
        // The kind of panic that quotes data: slicing inside a multi-byte char.
        let s = format!("é{value}");
        s[1..].len()
    });
    assert!(r.is_err());
    let written = std::fs::read_to_string(&log).unwrap();
    assert_eq!(written.lines().count(), 1, "{written}");
    assert!(
        written.starts_with("agent crashed: Panic: internal error at agent/tests/panic_hook.rs:"),
        "{written}"
    );
    assert!(written.contains("message withheld"), "{written}");
    assert!(!written.contains(CANARY), "{written}");

    let r = std::panic::catch_unwind(|| -> u8 { panic!("literal cause") });
    assert!(r.is_err());
    let written = std::fs::read_to_string(&log).unwrap();
    assert!(written.contains(": literal cause. hint: "), "{written}");

    // An unwritable log (a directory): the hook must not abort the process.
    panic_hook::install(dir.path().to_path_buf());
    assert!(std::panic::catch_unwind(|| panic!("again")).is_err());
    drop(std::panic::take_hook());
}
