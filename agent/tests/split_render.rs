//! split::render: every format and JMESPath case, errors name the key or path
//! and never contain the value.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use secrets_injector_agent::split::{OutFile, render};
use secrets_injector_agent::value::SecretValue as Value;
use secrets_injector_shared::{Format, JmesPathEntry, SecretRef, SecretSpec};

const CANARY: &str = "CANARY-split-5d1e";

fn spec(format: Format) -> SecretSpec {
    let mut s = SecretSpec::new(SecretRef::parse("prod/db").unwrap(), "db");
    s.format = format;
    s
}

fn text(s: &str) -> Value {
    Value::Text(s.to_string())
}

fn db() -> Value {
    text(&format!(
        r#"{{"username":"admin","password":"{CANARY}","port":5432,"tags":{{"env":"prod"}}}}"#
    ))
}

fn one(files: &[OutFile]) -> String {
    assert_eq!(files.len(), 1, "{files:?}");
    String::from_utf8(files[0].contents.clone()).unwrap()
}

fn err_of(spec: &SecretSpec, value: &Value) -> String {
    let e = render(spec, value, 0o440).unwrap_err().to_string();
    assert!(!e.contains(CANARY), "value leaked into error: {e}");
    assert!(e.contains("prod/db"), "error names the secret: {e}");
    e
}

#[test]
fn raw_text_and_binary_are_written_as_stored() {
    let f = render(&spec(Format::Raw), &text("not json {"), 0o400).unwrap();
    assert_eq!(f[0].path, "db");
    assert_eq!(f[0].mode, 0o400);
    assert_eq!(f[0].contents, b"not json {");
    let bin = vec![0u8, 159, 146, 150, 255];
    let f = render(&spec(Format::Raw), &Value::Binary(bin.clone()), 0o440).unwrap();
    assert_eq!(f[0].contents, bin);
}

#[test]
fn json_is_pretty() {
    let out = one(&render(&spec(Format::Json), &db(), 0o440).unwrap());
    assert!(out.contains("\n  \"username\": \"admin\""), "{out}");
    let back: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(back["port"], 5432);
}

#[test]
fn yaml_round_trips() {
    let out = one(&render(&spec(Format::Yaml), &db(), 0o440).unwrap());
    let back: serde_json::Value = serde_yaml_ng::from_str(&out).unwrap();
    assert_eq!(back["password"], CANARY);
    assert_eq!(back["tags"]["env"], "prod");
}

#[test]
fn dotenv_quotes_safely() {
    let v = text(r#"{"A":"plain","B":"it's $HOME \"q\"","N":3,"O":{"k":1}}"#);
    let out = one(&render(&spec(Format::Dotenv), &v, 0o440).unwrap());
    assert_eq!(
        out,
        "A='plain'\nB=\"it's \\$HOME \\\"q\\\"\"\nN='3'\nO='{\"k\":1}'\n"
    );
}

#[test]
fn dotenv_is_read_back_by_a_shell() {
    let v = text(r#"{"A":"x y","B":"it's $HOME `id` \\ \"q\"","C":"line1\nline2"}"#);
    let out = one(&render(&spec(Format::Dotenv), &v, 0o440).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("env");
    std::fs::write(&f, out).unwrap();
    let got = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            ". {}; printf '%s|%s|%s' \"$A\" \"$B\" \"$C\"",
            f.display()
        ))
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&got.stdout),
        "x y|it's $HOME `id` \\ \"q\"|line1\nline2"
    );
}

#[test]
fn dotenv_bad_key_is_named_by_position_never_by_content() {
    let v = text(&format!(r#"{{"GOOD":"x","bad-key":"{CANARY}"}}"#));
    let e = err_of(&spec(Format::Dotenv), &v);
    assert!(e.contains("key #2 of the JSON object (7 bytes)"), "{e}");
    assert!(!e.contains("bad-key") && !e.contains(CANARY), "{e}");
}

#[test]
fn properties_escape() {
    let v = text(r#"{"a key":"v=1:#!","b":"x\ny","c":"é"}"#);
    let out = one(&render(&spec(Format::Properties), &v, 0o440).unwrap());
    assert_eq!(out, "a\\ key=v\\=1\\:\\#\\!\nb=x\\ny\nc=\\u00E9\n");
}

#[test]
fn files_makes_one_file_per_key() {
    let f = render(&spec(Format::Files), &db(), 0o440).unwrap();
    let got: std::collections::BTreeMap<_, _> = f
        .iter()
        .map(|f| {
            (
                f.path.as_str(),
                String::from_utf8(f.contents.clone()).unwrap(),
            )
        })
        .collect();
    assert_eq!(got["db/username"], "admin");
    assert_eq!(got["db/password"], CANARY);
    assert_eq!(got["db/port"], "5432");
    assert_eq!(got["db/tags"], r#"{"env":"prod"}"#);
    assert_eq!(got.len(), 4);
}

#[test]
fn files_unsafe_key_is_an_error_naming_its_position_not_its_content() {
    for key in ["../escape-KEY", "a/b-KEY", "..data-KEY", ""] {
        let v = text(&format!(r#"{{"{key}":"{CANARY}"}}"#));
        let e = err_of(&spec(Format::Files), &v);
        assert!(
            e.contains(&format!("key #1 of the JSON object ({} bytes)", key.len())),
            "{key}: {e}"
        );
        assert!(!e.contains("KEY") && !e.contains(CANARY), "{key}: {e}");
    }
}

#[test]
fn formats_needing_json_reject_non_json_without_content() {
    for f in [
        Format::Json,
        Format::Yaml,
        Format::Dotenv,
        Format::Properties,
        Format::Files,
    ] {
        let e = err_of(&spec(f), &text(&format!("{CANARY} is not json")));
        assert!(e.contains("not JSON"), "{f:?}: {e}");
        assert!(e.contains(f.as_str()), "{f:?}: {e}");
    }
    let e = err_of(&spec(Format::Dotenv), &text(&format!("[\"{CANARY}\"]")));
    assert!(e.contains("not an object"), "{e}");
}

fn with_jmes(paths: &[(&str, &str)]) -> SecretSpec {
    let mut s = spec(Format::Raw);
    s.jmes_path = paths
        .iter()
        .map(|(p, a)| JmesPathEntry {
            path: p.to_string(),
            alias: a.to_string(),
        })
        .collect();
    s
}

#[test]
fn jmespath_entries_write_their_aliases() {
    let s = with_jmes(&[
        ("username", "user"),
        ("tags", "conf/tags"),
        ("port", "port"),
    ]);
    let f = render(&s, &db(), 0o400).unwrap();
    let paths: Vec<_> = f.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["db", "user", "conf/tags", "port"]);
    assert_eq!(f[1].contents, b"admin");
    assert_eq!(f[2].contents, br#"{"env":"prod"}"#);
    assert_eq!(f[3].contents, b"5432");
    assert!(f.iter().all(|f| f.mode == 0o400));
}

#[test]
fn jmespath_nested_and_binary_json() {
    let s = with_jmes(&[("tags.env", "env")]);
    let bytes = db();
    let Value::Text(t) = bytes else {
        unreachable!()
    };
    let f = render(&s, &Value::Binary(t.into_bytes()), 0o440).unwrap();
    assert_eq!(f[1].contents, b"prod");
}

#[test]
fn jmespath_missing_or_null_names_the_path() {
    for path in ["nope", "tags.missing", "username.deeper"] {
        let e = err_of(&with_jmes(&[(path, "x")]), &db());
        assert!(e.contains(&format!("{path:?}")), "{path}: {e}");
        assert!(e.contains("matched nothing"), "{path}: {e}");
    }
    let e = err_of(&with_jmes(&[("[[[", "x")]), &db());
    assert!(e.contains("not a valid JMESPath"), "{e}");
}

#[test]
fn jmespath_on_non_json_says_not_json() {
    let e = err_of(&with_jmes(&[("a", "x")]), &text(CANARY));
    assert!(e.contains("not JSON"), "{e}");
}

#[test]
fn format_none_writes_no_main_file_and_needs_no_json() {
    let f = render(&spec(Format::NoFile), &text("not json {"), 0o440).unwrap();
    assert!(f.is_empty(), "{f:?}");
    let mut s = with_jmes(&[("username", "user")]);
    s.format = Format::NoFile;
    let f = render(&s, &db(), 0o440).unwrap();
    let got: Vec<_> = f
        .iter()
        .map(|f| (f.path.as_str(), &f.contents[..]))
        .collect();
    assert_eq!(got, [("user", &b"admin"[..])]);
}

#[test]
fn each_format_needs_json_exactly_when_it_parses_it() {
    // (format, jmesPath entries?, needs a JSON value)
    for (format, jmes, needs_json) in [
        (Format::Raw, false, false),
        (Format::NoFile, false, false),
        (Format::Raw, true, true),
        (Format::NoFile, true, true),
        (Format::Json, false, true),
        (Format::Yaml, false, true),
        (Format::Dotenv, false, true),
        (Format::Properties, false, true),
        (Format::Files, false, true),
    ] {
        let mut s = if jmes {
            with_jmes(&[("a", "x")])
        } else {
            spec(format)
        };
        s.format = format;
        let r = render(&s, &text(CANARY), 0o440);
        assert_eq!(r.is_err(), needs_json, "{format:?}, jmesPath: {jmes}");
        if let Err(e) = r {
            let e = e.to_string();
            assert!(e.contains("not JSON") && !e.contains(CANARY), "{e}");
        }
    }
}
