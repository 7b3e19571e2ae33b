//! Reading env values from ONE snapshot of the secrets volume.
//!
//! The agent's layout (`agent/src/write.rs`): `<mount>/..<secs>.<nanos>_<rand>/`
//! holds a complete set, `<mount>/..data` is a symlink to it, swapped with one
//! rename. `..data` is resolved once here and every file is read from that
//! directory, so a rotation between two reads can never mix two sets.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read as _};
use std::path::{Component, Path, PathBuf};

use crate::Error;
use crate::args::{Args, valid_name};
use crate::error::reason;

/// The `..data` symlink, mirrors `DATA_DIR` in `agent/src/write.rs`.
pub const DATA_LINK: &str = "..data";
/// Linux `MAX_ARG_STRLEN` (32 pages): the longest single `NAME=value\0` string exec accepts.
pub const MAX_ENV_STRING: u64 = 32 * 4096;

/// One resolved snapshot directory.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The mount path as the user knows it (for messages).
    mount: PathBuf,
    /// `<mount>/..<timestamp>…`, what `..data` pointed at when opened.
    dir: PathBuf,
}

impl Snapshot {
    /// Resolve `<mount>/..data` once.
    pub fn open(mount: &Path) -> Result<Snapshot, Error> {
        let err = |reason: String| Error::Snapshot {
            mount: mount.display().to_string(),
            reason,
        };
        let link = mount.join(DATA_LINK);
        let target = fs::read_link(&link).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => err(format!("{DATA_LINK} does not exist")),
            io::ErrorKind::InvalidInput => err(format!("{DATA_LINK} is not a symlink")),
            _ => err(format!("{DATA_LINK}: {}", reason(&e))),
        })?;
        // The agent links a sibling directory; anything else is not its layout.
        let mut comps = target.components();
        let sibling = matches!(
            (comps.next(), comps.next()),
            (Some(Component::Normal(n)), None) if n.to_string_lossy().starts_with("..")
        );
        if !sibling {
            return Err(err(format!(
                "{DATA_LINK} points to {}, not to a snapshot directory beside it",
                target.display()
            )));
        }
        let dir = mount.join(&target);
        if !dir.is_dir() {
            return Err(err(format!(
                "{DATA_LINK} points to {}, which is not a directory",
                target.display()
            )));
        }
        Ok(Snapshot {
            mount: mount.to_path_buf(),
            dir,
        })
    }

    /// The snapshot directory `..data` pointed at.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path users see for `rel` (`<mount>/<rel>`), for messages.
    fn shown(&self, rel: &str) -> String {
        self.mount.join(rel).display().to_string()
    }

    /// The value of env var `var` from file `rel` (relative to the mount path).
    pub fn read_var(&self, var: &str, rel: &str) -> Result<String, Error> {
        let file = self.shown(rel);
        let read_err = |reason: String| Error::Read {
            var: var.to_string(),
            file: file.clone(),
            reason,
        };
        let path = self.dir.join(rel);
        let mut f = fs::File::open(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => read_err(
                "no such file in the secrets volume (no secret-*/objects/template-* \
                 annotation writes it, or an optional secret was skipped)"
                    .into(),
            ),
            io::ErrorKind::PermissionDenied => read_err(format!(
                "{}: this container's user cannot read it (see secrets-injector.io/file-permission \
                 and the pod's runAsUser/fsGroup)",
                reason(&e)
            )),
            _ => read_err(reason(&e)),
        })?;
        let meta = f.metadata().map_err(|e| read_err(reason(&e)))?;
        if !meta.is_file() {
            return Err(read_err(if meta.is_dir() {
                "is a directory (use --env-from for a `format: files` directory)".into()
            } else {
                "is not a regular file".into()
            }));
        }
        // NAME=value plus the NUL terminator must fit in one exec string.
        let limit = MAX_ENV_STRING - var.len() as u64 - 2;
        let mut bytes = Vec::new();
        f.by_ref()
            .take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| read_err(reason(&e)))?;
        if bytes.len() as u64 > limit {
            return Err(Error::TooLarge {
                var: var.to_string(),
                file,
                bytes: meta.len().max(bytes.len() as u64),
            });
        }
        if bytes.contains(&0) {
            return Err(Error::Nul {
                var: var.to_string(),
                file,
            });
        }
        String::from_utf8(bytes).map_err(|_| Error::NotUtf8 {
            var: var.to_string(),
            file,
        })
    }

    /// `(NAME, value)` for every regular file directly in `rel`, sorted by name.
    pub fn env_from(&self, rel: &str) -> Result<Vec<(String, String)>, Error> {
        let shown = self.shown(rel);
        let dir_err = |e: io::Error| Error::EnvFromDir {
            dir: shown.clone(),
            reason: match e.kind() {
                io::ErrorKind::NotFound => {
                    "no such directory in the secrets volume (is it a `format: files` output?)"
                        .into()
                }
                _ => reason(&e),
            },
        };
        let mut names = Vec::new();
        for entry in fs::read_dir(self.dir.join(rel)).map_err(dir_err)? {
            let entry = entry.map_err(dir_err)?;
            // Regular files only (file_type does not follow symlinks): nested keys are directories.
            if !entry.file_type().map_err(dir_err)?.is_file() {
                continue;
            }
            let name = entry.file_name();
            match name.to_str().filter(|n| valid_name(n)) {
                Some(n) => names.push(n.to_string()),
                None => {
                    return Err(Error::BadName {
                        name: name.to_string_lossy().escape_debug().to_string(),
                        dir: shown,
                    });
                }
            }
        }
        names.sort();
        names
            .into_iter()
            .map(|n| {
                let v = self.read_var(&n, &format!("{rel}/{n}"))?;
                Ok((n, v))
            })
            .collect()
    }
}

/// Every var the command line asks for, from one snapshot: `--env-from`
/// directories in order (a later one wins), then `--env` (wins over all).
pub fn collect(args: &Args) -> Result<Vec<(String, String)>, Error> {
    let snap = Snapshot::open(&args.mount_path)?;
    let mut vars = BTreeMap::new();
    for dir in &args.env_from {
        vars.extend(snap.env_from(dir)?);
    }
    for (name, rel) in &args.env {
        vars.insert(name.clone(), snap.read_var(name, rel)?);
    }
    Ok(vars.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    const CANARY: &str = "canary-7f3a9c-value";

    /// A mount dir in the agent's layout with `files` (path → bytes).
    fn mount(files: &[(&str, &[u8])]) -> tempfile::TempDir {
        let m = tempfile::tempdir().unwrap();
        let snap = m.path().join("..1795400000.000000001_0a0b0c0d");
        fs::create_dir(&snap).unwrap();
        for (p, v) in files {
            let p = snap.join(p);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, v).unwrap();
        }
        symlink("..1795400000.000000001_0a0b0c0d", m.path().join(DATA_LINK)).unwrap();
        m
    }

    fn args(m: &Path, env: &[(&str, &str)], env_from: &[&str]) -> Args {
        Args {
            mount_path: m.to_path_buf(),
            env: env
                .iter()
                .map(|(n, p)| (n.to_string(), p.to_string()))
                .collect(),
            env_from: env_from.iter().map(|d| d.to_string()).collect(),
            command: vec!["true".into()],
        }
    }

    /// The error's message, checked for the one-line and no-value rules.
    fn msg(e: Error) -> String {
        let s = e.to_string();
        assert!(!s.contains(CANARY), "value leaked: {s}");
        assert!(!s.contains('\n'), "not one line: {s}");
        s
    }

    #[test]
    fn env_and_env_from_with_precedence() {
        let m = mount(&[
            ("db/password", b"pw-1\n"),
            ("db/user", b"app"),
            ("db/nested/x", b"skipped"),
            ("cfg/user", b"cfg-user"),
            ("cfg/empty", b""),
            ("api", "ключ ✓".as_bytes()),
        ]);
        let vars = collect(&args(
            m.path(),
            &[("API_KEY", "api"), ("user", "db/password")],
            &["cfg", "db"],
        ))
        .unwrap();
        let want: Vec<(String, String)> = [
            ("API_KEY", "ключ ✓"),
            ("empty", ""),
            ("password", "pw-1\n"),
            // db (later) wins over cfg, --env wins over both.
            ("user", "pw-1\n"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        assert_eq!(vars, want);
    }

    #[test]
    fn reads_come_from_the_snapshot_resolved_at_open() {
        let m = mount(&[("a", b"old")]);
        let snap = Snapshot::open(m.path()).unwrap();
        // A rotation after open: new set, ..data swapped.
        fs::create_dir(m.path().join("..1795400001.000000001_0a0b0c0d")).unwrap();
        fs::write(m.path().join("..1795400001.000000001_0a0b0c0d/a"), b"new").unwrap();
        fs::remove_file(m.path().join(DATA_LINK)).unwrap();
        symlink("..1795400001.000000001_0a0b0c0d", m.path().join(DATA_LINK)).unwrap();
        assert_eq!(snap.read_var("A", "a").unwrap(), "old");
        assert_eq!(
            Snapshot::open(m.path())
                .unwrap()
                .read_var("A", "a")
                .unwrap(),
            "new"
        );
    }

    #[test]
    fn snapshot_errors() {
        let m = tempfile::tempdir().unwrap();
        let e = msg(Snapshot::open(m.path()).unwrap_err());
        assert!(
            e.starts_with(&format!(
                "no secrets snapshot under {}: ..data does not exist",
                m.path().display()
            )),
            "{e}"
        );
        fs::create_dir(m.path().join(DATA_LINK)).unwrap();
        let e = msg(Snapshot::open(m.path()).unwrap_err());
        assert!(e.contains("..data is not a symlink"), "{e}");
        fs::remove_dir(m.path().join(DATA_LINK)).unwrap();
        symlink("/etc", m.path().join(DATA_LINK)).unwrap();
        let e = msg(Snapshot::open(m.path()).unwrap_err());
        assert!(
            e.contains("..data points to /etc, not to a snapshot directory"),
            "{e}"
        );
        fs::remove_file(m.path().join(DATA_LINK)).unwrap();
        symlink("..gone", m.path().join(DATA_LINK)).unwrap();
        let e = msg(Snapshot::open(m.path()).unwrap_err());
        assert!(
            e.contains("..data points to ..gone, which is not a directory"),
            "{e}"
        );
    }

    #[test]
    fn value_errors_name_var_and_file_never_the_value() {
        let big = vec![b'x'; MAX_ENV_STRING as usize];
        let nul = format!("{CANARY}\0tail");
        let bad_utf8 = [CANARY.as_bytes(), b"\xff\xfe"].concat();
        let m = mount(&[
            ("nul", nul.as_bytes()),
            ("bin", &bad_utf8),
            ("big", &big),
            ("d/k", CANARY.as_bytes()),
        ]);
        let snap = Snapshot::open(m.path()).unwrap();
        let shown = |p: &str| m.path().join(p).display().to_string();
        let cases = [
            (
                "nul",
                format!("env V: file {} contains a NUL byte", shown("nul")),
            ),
            (
                "bin",
                format!("env V: file {} is not valid UTF-8 text", shown("bin")),
            ),
            (
                "big",
                format!(
                    "env V: file {} is 131072 bytes, over the kernel's 128 KiB",
                    shown("big")
                ),
            ),
            (
                "missing",
                format!(
                    "env V: cannot read file {}: no such file in the secrets volume",
                    shown("missing")
                ),
            ),
            (
                "d",
                format!(
                    "env V: cannot read file {}: is a directory (use --env-from",
                    shown("d")
                ),
            ),
        ];
        for (rel, want) in cases {
            let e = msg(snap.read_var("V", rel).unwrap_err());
            assert!(e.starts_with(&want), "{rel}: {e}");
        }
    }

    #[test]
    fn largest_value_that_fits_is_accepted() {
        let v = vec![b'x'; (MAX_ENV_STRING - 3) as usize];
        let m = mount(&[("v", &v)]);
        let snap = Snapshot::open(m.path()).unwrap();
        assert_eq!(snap.read_var("V", "v").unwrap().len(), v.len());
        let e = msg(snap.read_var("VV", "v").unwrap_err());
        assert!(e.contains("over the kernel's 128 KiB limit"), "{e}");
    }

    #[test]
    fn env_from_errors() {
        let m = mount(&[
            ("d/OK", b"1"),
            ("d/not-valid", CANARY.as_bytes()),
            ("e/A", b"\0"),
        ]);
        let snap = Snapshot::open(m.path()).unwrap();
        let d = m.path().join("d").display().to_string();
        let e = msg(snap.env_from("d").unwrap_err());
        assert_eq!(
            e,
            format!(
                "env-from {d}: file not-valid is not a valid env var name \
                 ([A-Za-z_][A-Za-z0-9_]*); rename the key, or map it with env-<NAME> (--env NAME=PATH)"
            )
        );
        let e = msg(snap.env_from("nope").unwrap_err());
        assert!(
            e.starts_with(&format!(
                "env-from {}: cannot list the directory: no such directory",
                m.path().join("nope").display()
            )),
            "{e}"
        );
        let e = msg(snap.env_from("e").unwrap_err());
        assert!(
            e.starts_with(&format!(
                "env A: file {} contains a NUL byte",
                m.path().join("e/A").display()
            )),
            "{e}"
        );
        let e = msg(snap.env_from("d/OK").unwrap_err());
        assert!(e.contains("cannot list the directory"), "{e}");
    }

    #[test]
    fn env_from_name_with_newline_stays_one_line() {
        let m = mount(&[("d/a\nb", b"1")]);
        let e = msg(Snapshot::open(m.path()).unwrap().env_from("d").unwrap_err());
        assert!(e.contains("a\\nb"), "{e}");
    }
}
