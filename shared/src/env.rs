//! Env vars from secret files: `env-<NAME>: <path>` and `env-from: <dir>,…`
//! are a view over the files the other annotations produce, so every path is
//! checked against those outputs here, at admission.

use std::collections::BTreeMap;

use crate::config::{Format, SecretSpec};
use crate::error::Problems;
use crate::keys;

/// The exec wrapper's file name inside the secrets volume (reserved: `..`).
pub const WRAPPER_FILE: &str = "..secrets-injector-env";

/// One `env-<NAME>: <path>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvFile {
    pub name: String,
    /// Relative to the mount path.
    pub path: String,
}

/// The env a pod asked for; empty when it asked for none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvRequest {
    pub vars: Vec<EnvFile>,
    /// `format: files` output directories whose every file becomes a var.
    pub from: Vec<String>,
}

impl EnvRequest {
    pub fn is_empty(&self) -> bool {
        self.vars.is_empty() && self.from.is_empty()
    }

    /// The wrapper's arguments before `--`: `--env NAME=PATH`… then `--env-from DIR`….
    pub fn wrapper_args(&self) -> Vec<String> {
        let vars = self
            .vars
            .iter()
            .flat_map(|v| ["--env".to_string(), format!("{}={}", v.name, v.path)]);
        let from = self
            .from
            .iter()
            .flat_map(|d| ["--env-from".to_string(), d.clone()]);
        vars.chain(from).collect()
    }
}

/// A portable environment variable name, as shells and the wrapper accept it.
pub fn is_env_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Is `key` one of the env annotations?
pub(crate) fn is_env_key(key: &str) -> bool {
    key.starts_with(keys::ENV_PREFIX)
}

/// Read every `env-*` annotation (names checked; paths checked later by
/// [`check_paths`], once the outputs are known).
pub(crate) fn read(annotations: &BTreeMap<String, String>, p: &mut Problems) -> EnvRequest {
    let mut env = EnvRequest::default();
    for (key, value) in annotations.range(keys::ENV_PREFIX.to_string()..) {
        let Some(name) = key.strip_prefix(keys::ENV_PREFIX) else {
            break;
        };
        let value = value.trim();
        if key == keys::ENV_FROM {
            env.from = value
                .split(',')
                .map(|d| d.trim().trim_end_matches('/').to_string())
                .filter(|d| !d.is_empty())
                .collect();
            if env.from.is_empty() {
                p.push(key, "lists no directories");
            }
        } else if !is_env_name(name) {
            p.push(
                key,
                format!(
                    "{name:?} is not a portable environment variable name \
                     (letters, digits and _, not starting with a digit)"
                ),
            );
        } else {
            env.vars.push(EnvFile {
                name: name.to_string(),
                path: value.to_string(),
            });
        }
    }
    env
}

/// Every env path must be a file some secret writes (an exact output, or one
/// key of a `format: files` directory); every `env-from` entry a `files`
/// directory.
pub(crate) fn check_paths(
    env: &EnvRequest,
    secrets: &[SecretSpec],
    rendered: &[&str],
    p: &mut Problems,
) {
    let dirs: Vec<&str> = secrets
        .iter()
        .filter(|s| s.format == Format::Files)
        .map(|s| s.path.as_str())
        .collect();
    let is_file = |path: &str| {
        rendered.contains(&path)
            || secrets.iter().any(|s| {
                (!matches!(s.format, Format::Files | Format::NoFile) && s.path == path)
                    || s.jmes_path.iter().any(|j| j.alias == path)
            })
    };
    let in_dir = |path: &str| {
        path.rsplit_once('/')
            .is_some_and(|(dir, key)| !key.is_empty() && dirs.contains(&dir))
    };
    for v in &env.vars {
        let key = format!("{}{}", keys::ENV_PREFIX, v.name);
        if v.path.is_empty() {
            p.push(&key, "names no file");
        } else if !(is_file(&v.path) || in_dir(&v.path)) {
            p.push(
                &key,
                format!(
                    "{:?} is not a file any secret-*, objects or template-* annotation writes \
                     (a secret's file name, a jmesPath alias, or <dir>/<key> of a format: files secret)",
                    v.path
                ),
            );
        }
    }
    for dir in &env.from {
        if !dirs.contains(&dir.as_str()) {
            p.push(
                keys::ENV_FROM,
                format!("{dir:?} is not the directory of a format: files secret"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::JmesPathEntry;
    use crate::refs::SecretRef;

    fn spec(path: &str, format: Format) -> SecretSpec {
        let mut s = SecretSpec::new(SecretRef::parse("prod/x").unwrap(), path);
        s.format = format;
        s
    }

    fn ann(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn env_names() {
        for ok in ["A", "_A", "DB_PASSWORD", "a1"] {
            assert!(is_env_name(ok), "{ok}");
        }
        for bad in ["", "1A", "A-B", "A.B", "A B", "Ä"] {
            assert!(!is_env_name(bad), "{bad}");
        }
    }

    #[test]
    fn reads_vars_and_from_and_reports_bad_names() {
        let mut p = Problems::default();
        let env = read(
            &ann(&[
                ("secrets-injector.io/env-DB_PASSWORD", " db/password "),
                ("secrets-injector.io/env-from", "db/, api ,"),
                ("secrets-injector.io/env-BAD-NAME", "x"),
                ("secrets-injector.io/secret-db", "prod/db"),
            ]),
            &mut p,
        );
        assert_eq!(
            env.vars,
            vec![EnvFile {
                name: "DB_PASSWORD".into(),
                path: "db/password".into()
            }]
        );
        assert_eq!(env.from, vec!["db", "api"]);
        assert_eq!(p.0.len(), 1, "{p}");
        assert_eq!(p.0[0].annotation, "secrets-injector.io/env-BAD-NAME");
        assert!(
            p.0[0]
                .message
                .contains("not a portable environment variable name")
        );
        let mut p = Problems::default();
        read(&ann(&[("secrets-injector.io/env-from", " , ")]), &mut p);
        assert_eq!(
            p.to_string(),
            "secrets-injector: 1 invalid annotation: [1] secrets-injector.io/env-from: lists no directories"
        );
    }

    #[test]
    fn paths_must_be_outputs() {
        let mut jm = spec("raw.json", Format::Raw);
        jm.jmes_path.push(JmesPathEntry {
            path: "a".into(),
            alias: "conf/user".into(),
        });
        let secrets = [spec("db", Format::Files), spec("token", Format::Raw), jm];
        let env = |vars: &[(&str, &str)], from: &[&str]| EnvRequest {
            vars: vars
                .iter()
                .map(|(n, p)| EnvFile {
                    name: n.to_string(),
                    path: p.to_string(),
                })
                .collect(),
            from: from.iter().map(|d| d.to_string()).collect(),
        };
        let check = |e: &EnvRequest| {
            let mut p = Problems::default();
            check_paths(e, &secrets, &[], &mut p);
            p
        };
        let ok = env(
            &[
                ("A", "db/password"),
                ("B", "token"),
                ("C", "conf/user"),
                ("D", "raw.json"),
            ],
            &["db"],
        );
        assert!(check(&ok).is_empty(), "{}", check(&ok));
        let cases = [
            (env(&[("A", "db")], &[]), "env-A: \"db\" is not a file"),
            (
                env(&[("A", "db/a/b")], &[]),
                "env-A: \"db/a/b\" is not a file",
            ),
            (env(&[("A", "db/")], &[]), "env-A: \"db/\" is not a file"),
            (
                env(&[("A", "token/x")], &[]),
                "env-A: \"token/x\" is not a file",
            ),
            (
                env(&[("A", "missing")], &[]),
                "env-A: \"missing\" is not a file",
            ),
            (env(&[("A", "")], &[]), "env-A: names no file"),
            (
                env(&[], &["token"]),
                "env-from: \"token\" is not the directory of a format: files secret",
            ),
            (
                env(&[], &["nope"]),
                "env-from: \"nope\" is not the directory of a format: files secret",
            ),
        ];
        for (e, want) in cases {
            let msg = check(&e).to_string();
            assert!(msg.contains(want), "{want}: {msg}");
        }
    }

    #[test]
    fn wrapper_args_keep_order() {
        let e = EnvRequest {
            vars: vec![
                EnvFile {
                    name: "B".into(),
                    path: "b".into(),
                },
                EnvFile {
                    name: "A".into(),
                    path: "db/a".into(),
                },
            ],
            from: vec!["db".into()],
        };
        assert_eq!(
            e.wrapper_args(),
            vec!["--env", "B=b", "--env", "A=db/a", "--env-from", "db"]
        );
    }
}
