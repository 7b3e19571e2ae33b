//! Property-based fuzzing of what the agent does with a value (issue 12):
//! every `jmesPath` the config check admits compiles and evaluates (through
//! `split::render`, as after a fetch) to a file or a render error, and every
//! format renders any value or says why — no panic, no stack overflow, and
//! no error quoting the value. `FUZZ_CASES` sets the cases per target.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../shared/tests/generators/mod.rs"]
mod generators;

use generators::{Tally, fuzz};
use proptest::prelude::*;
use secrets_injector_agent::Error;
use secrets_injector_agent::split::render;
use secrets_injector_agent::value::SecretValue;
use secrets_injector_shared::validate::{MAX_JMES_PATH_OPERATORS, check_jmes_path};
use secrets_injector_shared::{Format, JmesPathEntry, SecretRef, SecretSpec};

/// A secret value no error may quote.
const CANARY: &str = "canary-Zq8v";

/// Keys the JMESPath generator names, so expressions find something.
const KEYS: &[&str] = &[
    "a",
    "b",
    "user",
    "password",
    "db",
    "x1",
    "_z",
    "quoted id",
    CANARY,
];

/// A secret value: JSON built around the generator's keys (the canary inside), or any bytes.
fn value() -> impl Strategy<Value = SecretValue> {
    prop_oneof![
        4 => generators::any_json(KEYS).prop_map(|v| {
            let doc = serde_json::json!({"a": v, "user": CANARY, "db": {"password": CANARY}});
            SecretValue::Text(doc.to_string())
        }),
        1 => generators::any_json(KEYS).prop_map(|v| SecretValue::Text(v.to_string())),
        1 => generators::hostile().prop_map(SecretValue::Text),
        1 => prop::collection::vec(any::<u8>(), 0..64).prop_map(SecretValue::Binary),
    ]
}

fn spec(format: Format, jmes: Vec<String>) -> SecretSpec {
    let mut s = SecretSpec::new(SecretRef::parse("prod/db").unwrap(), "db");
    s.format = format;
    s.jmes_path = jmes
        .into_iter()
        .enumerate()
        .map(|(i, path)| JmesPathEntry {
            path,
            alias: format!("j{i}"),
        })
        .collect();
    s
}

/// Ok with files, or a render error naming the secret and never the value.
fn check_render(spec: &SecretSpec, value: &SecretValue) -> Result<&'static str, TestCaseError> {
    match render(spec, value, 0o440) {
        Ok(files) => {
            prop_assert!(files.iter().all(|f| f.mode == 0o440));
            Ok("rendered")
        }
        Err(Error::Render { secret, message }) => {
            prop_assert_eq!(secret, "prod/db");
            prop_assert!(!message.contains(CANARY), "the value in: {message}");
            Ok("render error")
        }
        Err(other) => Err(TestCaseError::fail(format!("untyped error: {other}"))),
    }
}

#[test]
fn fuzz_jmes_path() {
    // The agent's own check first (as its config load does), then compile and search.
    let tally = Tally::default();
    fuzz(
        "jmes-path",
        (generators::jmes_path(), value()),
        |(path, value)| {
            if check_jmes_path(&path).is_ok() && !path.trim().is_empty() {
                tally.add(check_render(&spec(Format::Raw, vec![path]), &value)?);
            } else {
                tally.add("refused by the check");
            }
            Ok(())
        },
    );
    tally.print("jmes-path");
}

#[test]
fn fuzz_formats() {
    let input = (
        prop::sample::select(Format::ALL.to_vec()),
        prop::collection::vec(generators::jmes_path(), 0..2),
        value(),
    );
    let tally = Tally::default();
    fuzz("formats", input, |(format, jmes, value)| {
        let jmes: Vec<String> = jmes
            .into_iter()
            .filter(|p| check_jmes_path(p).is_ok() && !p.trim().is_empty())
            .collect();
        tally.add(check_render(&spec(format, jmes), &value)?);
        Ok(())
    });
    tally.print("formats");
}

#[test]
fn the_deepest_admitted_jmes_paths_evaluate_on_a_small_stack() {
    // Every shape that nests without brackets, at the operator limit, on the
    // test thread's 2 MiB (the agent has 8): 1 KiB of `!` passed the check and
    // overflowed 8 MiB until operators were counted (found by fuzzing).
    let value = SecretValue::Text(r#"{"a":[{"a":1,"b":true}],"b":"x"}"#.into());
    for unit in [
        "!", "a.", "a|", "a||", "a&&", "*.", "& ", "[*]", "a[?b]", "[]", "a[0]",
    ] {
        let ops = unit
            .chars()
            .filter(|c| ".|&!*?[({,=<>".contains(*c))
            .count();
        let path = format!("{}a", unit.repeat(MAX_JMES_PATH_OPERATORS / ops));
        assert!(check_jmes_path(&path).is_ok(), "{path}");
        check_render(&spec(Format::Raw, vec![path]), &value).unwrap();
    }
}
