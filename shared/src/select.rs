//! Selectors (§3c): one `secret-<dir>` reference that names many secrets — a
//! Secrets Manager name prefix, an SSM path, or exact tags — written as a
//! directory with one file per secret, named relative to the prefix.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::config::Format;
use crate::refs::SecretRef;

/// Most secrets one selector may return; more is an error, never a partial set.
pub const MAX_SELECTED: usize = 500;
/// Most selectors one pod may have: each may return [`MAX_SELECTED`] secrets.
pub const MAX_SELECTORS: usize = 20;
/// Most `key=value` pairs in one `tag:` selector.
pub const MAX_TAGS: usize = 10;
/// AWS's limits on a tag key and value.
const TAG_KEY_MAX: usize = 128;
const TAG_VALUE_MAX: usize = 256;

/// What a selector matches.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum Selector {
    /// Secrets Manager names starting with `prefix` (`prod/orders/*` → `prod/orders/`).
    Prefix { prefix: String },
    /// SSM parameters under `path`, recursively (`ssm:/prod/orders/*` → `/prod/orders`).
    SsmPath { path: String },
    /// Secrets Manager secrets carrying every tag, key and value together.
    Tags { tags: Vec<Tag> },
}

/// One `key=value` tag of a `tag:` selector.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

/// One `secret-<dir>` selector and how each selected secret is written.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SelectionSpec {
    pub select: Selector,
    /// Relative directory; each secret becomes `<path>/<relative name>`.
    pub path: String,
    /// Format of every selected secret (`files`: one directory per secret).
    #[serde(default)]
    pub format: Format,
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Selector::Prefix { prefix } => write!(f, "{prefix}*"),
            Selector::SsmPath { path } => write!(f, "ssm:{path}/*"),
            Selector::Tags { tags } => {
                let pairs: Vec<String> = tags
                    .iter()
                    .map(|t| format!("{}={}", t.key, t.value))
                    .collect();
                write!(f, "tag:{}", pairs.join(","))
            }
        }
    }
}

/// A reference that selects many secrets rather than naming one.
pub fn is_selector(value: &str) -> bool {
    let v = value.trim();
    v.starts_with("tag:") || v.contains('*')
}

impl Selector {
    /// Parse `prod/orders/*`, `ssm:/prod/orders/*` or `tag:k=v[,k=v…]`.
    pub fn parse(value: &str) -> Result<Selector, String> {
        let v = value.trim();
        let sel = if let Some(tags) = v.strip_prefix("tag:") {
            Selector::Tags {
                tags: parse_tags(tags)?,
            }
        } else if let Some(path) = v.strip_prefix("ssm:") {
            let Some(path) = path.strip_suffix("/*") else {
                return Err(format!(
                    "{v:?}: an SSM selector is a path ending in /* (ssm:/prod/orders/*); \
                     SSM selects by path, not by name prefix"
                ));
            };
            Selector::SsmPath {
                path: path.to_string(),
            }
        } else {
            let Some(prefix) = v.strip_suffix('*') else {
                return Err(format!(
                    "{v:?}: '*' may only end a selector (prod/orders/*)"
                ));
            };
            Selector::Prefix {
                prefix: prefix.to_string(),
            }
        };
        sel.check().map_err(|e| format!("{v:?}: {e}"))?;
        Ok(sel)
    }

    /// The invariants `parse` guarantees, also checked on a hand-written config.
    pub fn check(&self) -> Result<(), String> {
        match self {
            Selector::Prefix { prefix } => {
                if prefix.is_empty() {
                    return Err(
                        "selects every secret of the account; name a prefix (prod/orders/*)".into(),
                    );
                }
                if prefix.contains('*') {
                    return Err("'*' may only end a selector".into());
                }
                SecretRef::sm_name(prefix).map(|_| ())
            }
            Selector::SsmPath { path } => {
                if path.is_empty() || path == "/" {
                    return Err(
                        "selects every parameter of the account; name a path (ssm:/prod/orders/*)"
                            .into(),
                    );
                }
                if !path.starts_with('/') || path.ends_with('/') || path.contains('*') {
                    return Err(
                        "an SSM path starts with / and ends in /* (ssm:/prod/orders/*)".into(),
                    );
                }
                SecretRef::ssm_name(path, path).map(|_| ())
            }
            Selector::Tags { tags } => check_tags(tags),
        }
    }

    /// The IAM actions a selector needs, for hints and docs.
    pub fn actions(&self) -> &'static str {
        match self {
            Selector::Prefix { .. } => {
                "secretsmanager:ListSecrets and secretsmanager:BatchGetSecretValue (with secretsmanager:GetSecretValue on the secrets)"
            }
            Selector::SsmPath { .. } => "ssm:GetParametersByPath",
            Selector::Tags { .. } => {
                "secretsmanager:ListSecrets and secretsmanager:BatchGetSecretValue (with secretsmanager:GetSecretValue on the secrets)"
            }
        }
    }
}

fn parse_tags(s: &str) -> Result<Vec<Tag>, String> {
    let mut tags = Vec::new();
    for pair in s.split(',') {
        let Some((k, v)) = pair.split_once('=') else {
            return Err(format!("{s:?}: expected tag:key=value[,key=value…]"));
        };
        tags.push(Tag {
            key: k.trim().to_string(),
            value: v.trim().to_string(),
        });
    }
    Ok(tags)
}

fn check_tags(tags: &[Tag]) -> Result<(), String> {
    if tags.is_empty() || tags.len() > MAX_TAGS {
        return Err(format!(
            "a tag selector has 1 to {MAX_TAGS} key=value pairs"
        ));
    }
    let allowed = |c: char| c.is_alphanumeric() || " _.:/=+-@".contains(c);
    for (i, t) in tags.iter().enumerate() {
        if t.key.is_empty() || t.value.is_empty() {
            return Err("a tag key and value may not be empty".into());
        }
        if t.key.len() > TAG_KEY_MAX || t.value.len() > TAG_VALUE_MAX {
            return Err(format!(
                "a tag key is at most {TAG_KEY_MAX} and a value {TAG_VALUE_MAX} characters"
            ));
        }
        if !t.key.chars().chain(t.value.chars()).all(allowed) || t.key.starts_with('!') {
            return Err(format!(
                "tag {:?} has a character AWS tags do not allow (letters, digits, spaces and _.:/=+-@)",
                t.key
            ));
        }
        if tags[..i].iter().any(|o| o.key == t.key) {
            return Err(format!("tag key {:?} is given twice", t.key));
        }
    }
    Ok(())
}

/// Why a selected secret's relative name cannot be a file under the
/// directory: `..`/`.`/empty segments, NUL, absolute, a segment over 255 bytes.
pub fn check_name(relative: &str) -> Result<(), String> {
    crate::paths::check_relative(relative, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_forms() {
        assert_eq!(
            Selector::parse("prod/orders/*").unwrap(),
            Selector::Prefix {
                prefix: "prod/orders/".into()
            }
        );
        assert_eq!(
            Selector::parse(" ssm:/prod/orders/* ").unwrap(),
            Selector::SsmPath {
                path: "/prod/orders".into()
            }
        );
        let t = Selector::parse("tag:team=orders, env=prod").unwrap();
        assert_eq!(t.to_string(), "tag:team=orders,env=prod");
        assert_eq!(
            Selector::parse("prod/ord*").unwrap().to_string(),
            "prod/ord*"
        );
        assert!(is_selector("tag:a=b") && is_selector("x/*") && !is_selector("prod/db"));
    }

    #[test]
    fn rejects_every_bad_form() {
        for (v, want) in [
            ("*", "selects every secret"),
            ("prod/*/x*", "'*' may only end"),
            ("prod/*/x", "'*' may only end"),
            ("prod orders/*", "not a valid Secrets Manager name"),
            ("ssm:/*", "selects every parameter"),
            ("ssm:/prod/orders*", "path ending in /*"),
            ("ssm:prod/*", "starts with /"),
            ("ssm:/prod//x/*", "no empty segments"),
            ("ssm:/a/*/b/*", "starts with / and ends in /*"),
            ("tag:", "expected tag:key=value"),
            ("tag:team", "expected tag:key=value"),
            ("tag:team=", "may not be empty"),
            ("tag:=orders", "may not be empty"),
            ("tag:a=b,a=c", "given twice"),
            ("tag:a=b;c", "do not allow"),
            ("tag:!a=b", "do not allow"),
        ] {
            let e = Selector::parse(v).unwrap_err();
            assert!(e.contains(want), "{v:?}: {e}");
        }
        let many: Vec<String> = (0..=MAX_TAGS).map(|i| format!("k{i}=v")).collect();
        let e = Selector::parse(&format!("tag:{}", many.join(","))).unwrap_err();
        assert!(e.contains("1 to 10"), "{e}");
        let long = format!("tag:{}=v", "k".repeat(129));
        assert!(Selector::parse(&long).unwrap_err().contains("at most 128"));
        let long = format!("tag:k={}", "v".repeat(257));
        assert!(Selector::parse(&long).unwrap_err().contains("a value 256"));
    }

    #[test]
    fn tag_limits_hold_at_the_limit() {
        let ten: Vec<String> = (0..MAX_TAGS).map(|i| format!("k{i}=v")).collect();
        let sel = Selector::parse(&format!("tag:{}", ten.join(","))).unwrap();
        assert!(matches!(sel, Selector::Tags { ref tags } if tags.len() == MAX_TAGS));
        let longest = format!("tag:{}={}", "k".repeat(128), "v".repeat(256));
        Selector::parse(&longest).unwrap();
    }

    #[test]
    fn each_selector_names_the_iam_actions_it_needs() {
        let sm = "secretsmanager:ListSecrets and secretsmanager:BatchGetSecretValue (with secretsmanager:GetSecretValue on the secrets)";
        for (v, want) in [
            ("prod/*", sm),
            ("tag:team=orders", sm),
            ("ssm:/prod/*", "ssm:GetParametersByPath"),
        ] {
            assert_eq!(Selector::parse(v).unwrap().actions(), want, "{v}");
        }
    }

    #[test]
    fn unsafe_names_are_refused() {
        for n in [
            "a/../../etc/x",
            "a//b",
            "",
            "/abs",
            "..data",
            "a/\0",
            &"x".repeat(256),
        ] {
            assert!(check_name(n).is_err(), "{n:?}");
        }
        check_name("db/password").unwrap();
    }
}
