//! Turning one fetched value into output files: JMESPath entries and formats.
//! Knows nothing of AWS or of the disk. Errors name the secret and the key or
//! JMESPath expression at fault, never any part of the value.

use secrets_injector_shared::{Format, SecretSpec};
use serde_json::Value as Json;

use crate::Error;
use crate::value::SecretValue;

/// One file to write, relative to the mount path.
pub struct OutFile {
    pub path: String,
    pub contents: Vec<u8>,
    pub mode: u32,
}

impl std::fmt::Debug for OutFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "OutFile({}, <{} bytes>, {:o})",
            self.path,
            self.contents.len(),
            self.mode
        )
    }
}

/// Render `value` of `spec` into its files: the main file (or directory for
/// `files`) in the spec's format, then one file per JMESPath entry.
pub fn render(spec: &SecretSpec, value: &SecretValue, mode: u32) -> Result<Vec<OutFile>, Error> {
    let secret = spec.source.to_string();
    let err = |message: String| Error::Render {
        secret: secret.clone(),
        message,
    };
    let needs_json =
        !matches!(spec.format, Format::Raw | Format::NoFile) || !spec.jmes_path.is_empty();
    let json = if needs_json {
        Some(parse_json(value).ok_or_else(|| {
            err(format!(
                "the value is not JSON, but format {} or jmesPath needs a JSON value",
                spec.format.as_str()
            ))
        })?)
    } else {
        None
    };
    let file = |path: String, contents: Vec<u8>| OutFile {
        path,
        contents,
        mode,
    };
    let mut out = Vec::new();
    match (spec.format, &json) {
        (Format::Raw, _) => out.push(file(spec.path.clone(), value.bytes().to_vec())),
        // Fetched for templates only.
        (Format::NoFile, _) => {}
        (Format::Json, Some(j)) => out.push(file(spec.path.clone(), pretty_json(j))),
        (Format::Yaml, Some(j)) => {
            let yaml = serde_yaml_ng::to_string(j)
                .map_err(|_| err("the value cannot be rendered as YAML".into()))?;
            out.push(file(spec.path.clone(), yaml.into_bytes()));
        }
        (Format::Dotenv, Some(j)) => {
            out.push(file(
                spec.path.clone(),
                dotenv(object(j).map_err(err)?).map_err(err)?,
            ));
        }
        (Format::Properties, Some(j)) => {
            out.push(file(spec.path.clone(), properties(object(j).map_err(err)?)));
        }
        (Format::Files, Some(j)) => {
            for (i, (key, v)) in object(j).map_err(err)?.iter().enumerate() {
                secrets_injector_shared::paths::check_relative(key, false).map_err(|e| {
                    err(format!(
                        "format files: {} is not a safe file name: it {e}",
                        key_ref(i, key)
                    ))
                })?;
                out.push(file(format!("{}/{key}", spec.path), leaf(v)));
            }
        }
        // `json` is Some whenever the format is not raw.
        (_, None) => return Err(err("internal: JSON value missing".into())),
    }
    if let Some(j) = &json {
        for entry in &spec.jmes_path {
            out.push(file(
                entry.alias.clone(),
                jmes(j, &entry.path).map_err(err)?,
            ));
        }
    }
    Ok(out)
}

fn parse_json(value: &SecretValue) -> Option<Json> {
    serde_json::from_slice(value.bytes()).ok()
}

fn pretty_json(j: &Json) -> Vec<u8> {
    let mut s = serde_json::to_vec_pretty(j).unwrap_or_default();
    s.push(b'\n');
    s
}

fn object(j: &Json) -> Result<&serde_json::Map<String, Json>, String> {
    j.as_object()
        .ok_or_else(|| "the value is JSON but not an object; this format needs an object".into())
}

/// A string is written as its text, anything else as compact JSON.
fn leaf(v: &Json) -> Vec<u8> {
    match v {
        Json::String(s) => s.clone().into_bytes(),
        other => other.to_string().into_bytes(),
    }
}

fn leaf_string(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// ASCP `jmesPath`: evaluate `path`; null or no match is an error naming the path.
fn jmes(j: &Json, path: &str) -> Result<Vec<u8>, String> {
    let expr = jmespath::compile(path)
        .map_err(|_| format!("jmesPath {path:?} is not a valid JMESPath expression"))?;
    // The runtime error text can quote parts of the value, so it is not passed on.
    let found = expr
        .search(j)
        .map_err(|_| format!("jmesPath {path:?} could not be evaluated on the value"))?;
    if found.is_null() {
        return Err(format!(
            "jmesPath {path:?} matched nothing (null) in the value"
        ));
    }
    Ok(match found.as_string() {
        Some(s) => s.clone().into_bytes(),
        None => serde_json::to_vec(&*found).unwrap_or_default(),
    })
}

fn is_env_name(k: &str) -> bool {
    let mut chars = k.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A JSON key named by position and length: keys are part of the secret
/// string, and a malformed one may well be a value pasted in the wrong place.
fn key_ref(index: usize, key: &str) -> String {
    format!(
        "key #{} of the JSON object ({} bytes)",
        index + 1,
        key.len()
    )
}

/// `KEY='value'` lines, POSIX-shell quoted so the file can be `source`d; values
/// containing `'` use double quotes with `\ " $ `` ` escaped.
fn dotenv(obj: &serde_json::Map<String, Json>) -> Result<Vec<u8>, String> {
    let mut out = String::new();
    for (i, (k, v)) in obj.iter().enumerate() {
        if !is_env_name(k) {
            return Err(format!(
                "format dotenv: {} is not a valid environment variable name \
                 (letters, digits and _, not starting with a digit)",
                key_ref(i, k)
            ));
        }
        let v = leaf_string(v);
        out.push_str(k);
        out.push('=');
        if v.contains('\'') {
            out.push('"');
            for c in v.chars() {
                if matches!(c, '\\' | '"' | '$' | '`') {
                    out.push('\\');
                }
                out.push(c);
            }
            out.push('"');
        } else {
            out.push('\'');
            out.push_str(&v);
            out.push('\'');
        }
        out.push('\n');
    }
    Ok(out.into_bytes())
}

/// Java `.properties` escaping (as `Properties.store` writes it): ISO-8859-1
/// safe, everything outside printable ASCII as `\uXXXX`.
fn properties(obj: &serde_json::Map<String, Json>) -> Vec<u8> {
    let mut out = String::new();
    for (k, v) in obj {
        prop_escape(&mut out, k, true);
        out.push('=');
        prop_escape(&mut out, &leaf_string(v), false);
        out.push('\n');
    }
    out.into_bytes()
}

fn prop_escape(out: &mut String, s: &str, is_key: bool) {
    for (i, c) in s.chars().enumerate() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\x0c' => out.push_str("\\f"),
            '=' | ':' | '#' | '!' => {
                out.push('\\');
                out.push(c);
            }
            ' ' if is_key || i == 0 => out.push_str("\\ "),
            c if (' '..='~').contains(&c) => out.push(c),
            c => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{unit:04X}"));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names() {
        assert!(is_env_name("DB_HOST"));
        assert!(is_env_name("_x1"));
        assert!(!is_env_name("1X"));
        assert!(!is_env_name("a-b"));
        assert!(!is_env_name(""));
    }

    #[test]
    fn property_escapes() {
        let mut s = String::new();
        prop_escape(&mut s, "a b=c:é", true);
        assert_eq!(s, "a\\ b\\=c\\:\\u00E9");
        let mut s = String::new();
        prop_escape(&mut s, " x y😀", false);
        assert_eq!(s, "\\ x y\\uD83D\\uDE00");
    }

    #[test]
    fn every_property_escape() {
        for (input, key, want) in [
            ("\\\t\n\r\x0c", false, "\\\\\\t\\n\\r\\f"),
            ("=:#!", false, "\\=\\:\\#\\!"),
            ("a b", false, "a b"),
            ("a b", true, "a\\ b"),
            (" a", false, "\\ a"),
            ("~}", false, "~}"),
            ("\x7f\x1f", false, "\\u007F\\u001F"),
        ] {
            let mut s = String::new();
            prop_escape(&mut s, input, key);
            assert_eq!(s, want, "{input:?}");
        }
    }

    #[test]
    fn debug_shows_path_size_and_mode_never_contents() {
        let f = OutFile {
            path: "db".into(),
            contents: b"CANARY".to_vec(),
            mode: 0o440,
        };
        assert_eq!(format!("{f:?}"), "OutFile(db, <6 bytes>, 440)");
    }

    #[test]
    fn keys_are_named_from_one() {
        assert_eq!(key_ref(0, "abc"), "key #1 of the JSON object (3 bytes)");
    }

    #[test]
    fn dotenv_quotes_by_content() {
        let obj = serde_json::json!({"A": "it's $x `y` \"z\" \\", "B": "plain $x", "C": 5});
        let out = String::from_utf8(dotenv(obj.as_object().unwrap()).unwrap()).unwrap();
        assert_eq!(
            out,
            "A=\"it's \\$x \\`y\\` \\\"z\\\" \\\\\"\nB='plain $x'\nC='5'\n"
        );
    }
}
