//! Copies the `secrets-injector-env` exec wrapper (docs/env-vars.md) into the
//! secrets volume, where the webhook's rewritten `command` runs it.
//!
//! - Source: beside the agent's own executable (`/secrets-injector-env` in
//!   the image, `target/{debug,release}/` in a build tree).
//! - Target: `<mount>/..secrets-injector-env` ([`WRAPPER_FILE`]). Names
//!   starting with `..` are reserved for the agent, so no secret output can
//!   collide; it is a file, and the writer only ever removes `..` directories.
//! - Copied once: temp file, fsync, mode 0555, rename. A present copy is never
//!   replaced, so a restarted sidecar never changes the wrapper under an app.
//! - Called at agent start, before the first write, so it is in place when
//!   `..data` appears (what the startup probe and init ordering wait for).

use std::fs;
use std::io;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use crate::Error;

/// The wrapper's binary name beside the agent.
pub const WRAPPER_BIN: &str = "secrets-injector-env";
/// The wrapper's name in the volume: the webhook runs `<mount-path>/..secrets-injector-env`.
pub use secrets_injector_shared::env::WRAPPER_FILE;
/// Readable and executable by every uid: target containers may run as other users.
pub const WRAPPER_MODE: u32 = 0o555;

/// What [`install_wrapper_from`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Installed {
    /// Copied into the volume now.
    Copied,
    /// A copy was already there (an earlier run of this pod's agent); left as is.
    AlreadyPresent,
    /// No wrapper binary at the source path; nothing done.
    NoSource,
}

/// `secrets-injector-env` beside the running executable, if that can be located.
pub fn default_source() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    Some(exe.parent()?.join(WRAPPER_BIN))
}

/// Copy the wrapper from beside the agent into `mount_dir`; only called when
/// the config asks for it (a container reads env from the files), so a missing
/// wrapper is an error: those containers could not start.
pub fn install_wrapper(mount_dir: &Path) -> Result<(), Error> {
    let src = default_source().ok_or_else(|| Error::Write {
        path: WRAPPER_BIN.into(),
        message: "cannot locate the agent executable to find the env wrapper beside it".into(),
    })?;
    match install_wrapper_from(&src, mount_dir)? {
        Installed::Copied => tracing::info!(
            path = %mount_dir.join(WRAPPER_FILE).display(),
            "env wrapper copied into the secrets volume"
        ),
        Installed::AlreadyPresent => {}
        Installed::NoSource => {
            return Err(Error::Write {
                path: src.display().to_string(),
                message: "the env wrapper is not beside the agent (an agent image without \
                          secrets-injector-env?), so containers using \
                          secrets-injector.io/env-* cannot start"
                    .into(),
            });
        }
    }
    Ok(())
}

fn werr(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Write {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// Copy `src` to `<mount_dir>/..secrets-injector-env` atomically, once.
pub fn install_wrapper_from(src: &Path, mount_dir: &Path) -> Result<Installed, Error> {
    let dest = mount_dir.join(WRAPPER_FILE);
    match fs::symlink_metadata(&dest) {
        Ok(m) if m.is_file() => return Ok(Installed::AlreadyPresent),
        Ok(_) => return Err(werr(&dest, "exists and is not a regular file; remove it")),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(werr(&dest, e)),
    }
    let mut input = match fs::File::open(src) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Installed::NoSource),
        Err(e) => return Err(werr(src, e)),
    };
    if !input.metadata().map_err(|e| werr(src, e))?.is_file() {
        return Err(werr(src, "is not a regular file"));
    }
    // A `..` name: hidden from the secret outputs and never mistaken for a set.
    let tmp = mount_dir.join(format!("{WRAPPER_FILE}.tmp"));
    let mut copy = || -> Result<(), Error> {
        match fs::remove_file(&tmp) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(werr(&tmp, e)),
        }
        let mut out = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o700)
            .open(&tmp)
            .map_err(|e| werr(&tmp, e))?;
        io::copy(&mut input, &mut out).map_err(|e| werr(&tmp, e))?;
        // After writing, so the umask cannot narrow it.
        out.set_permissions(fs::Permissions::from_mode(WRAPPER_MODE))
            .map_err(|e| werr(&tmp, e))?;
        out.sync_all().map_err(|e| werr(&tmp, e))?;
        fs::rename(&tmp, &dest).map_err(|e| werr(&dest, e))?;
        fs::File::open(mount_dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| werr(mount_dir, e))
    };
    copy().inspect_err(|_| {
        let _ = fs::remove_file(&tmp);
    })?;
    Ok(Installed::Copied)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt as _;

    fn source(dir: &Path, bytes: &[u8]) -> PathBuf {
        let p = dir.join(WRAPPER_BIN);
        fs::write(&p, bytes).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn copies_same_bytes_with_mode_0555_and_nothing_else() {
        let (bin, mount) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let src = source(bin.path(), b"\x7fELF wrapper bytes");
        assert_eq!(
            install_wrapper_from(&src, mount.path()).unwrap(),
            Installed::Copied
        );
        let dest = mount.path().join(WRAPPER_FILE);
        assert_eq!(fs::read(&dest).unwrap(), b"\x7fELF wrapper bytes");
        let meta = fs::symlink_metadata(&dest).unwrap();
        assert!(meta.is_file());
        assert_eq!(meta.permissions().mode() & 0o7777, 0o555);
        // No temp file left behind.
        assert_eq!(names(mount.path()), vec![WRAPPER_FILE.to_string()]);
    }

    #[test]
    fn idempotent_and_never_replaced() {
        let (bin, mount) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let src = source(bin.path(), b"v1");
        install_wrapper_from(&src, mount.path()).unwrap();
        let dest = mount.path().join(WRAPPER_FILE);
        let ino = fs::metadata(&dest).unwrap().ino();
        // A restarted sidecar from a newer image: the copy apps run stays.
        let src = source(bin.path(), b"v2");
        assert_eq!(
            install_wrapper_from(&src, mount.path()).unwrap(),
            Installed::AlreadyPresent
        );
        assert_eq!(fs::metadata(&dest).unwrap().ino(), ino);
        assert_eq!(fs::read(&dest).unwrap(), b"v1");
    }

    #[test]
    fn interrupted_copy_leftover_is_replaced_atomically() {
        let (bin, mount) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let tmp = mount.path().join(format!("{WRAPPER_FILE}.tmp"));
        fs::write(&tmp, b"half a bin").unwrap();
        // The final name never exists until the full copy is renamed onto it.
        assert!(!mount.path().join(WRAPPER_FILE).exists());
        let src = source(bin.path(), b"whole binary");
        install_wrapper_from(&src, mount.path()).unwrap();
        assert_eq!(
            fs::read(mount.path().join(WRAPPER_FILE)).unwrap(),
            b"whole binary"
        );
        assert!(!tmp.exists());
    }

    #[test]
    fn missing_source_is_not_an_error_and_copies_nothing() {
        let mount = tempfile::tempdir().unwrap();
        let src = mount.path().join("nope").join(WRAPPER_BIN);
        assert_eq!(
            install_wrapper_from(&src, mount.path()).unwrap(),
            Installed::NoSource
        );
        assert!(names(mount.path()).is_empty());
    }

    #[test]
    fn errors_name_the_path_and_leave_no_temp_file() {
        let (bin, mount) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        // Source is a directory.
        let e = install_wrapper_from(bin.path(), mount.path())
            .unwrap_err()
            .to_string();
        assert!(e.contains("is not a regular file"), "{e}");
        // Destination taken by something else.
        fs::create_dir(mount.path().join(WRAPPER_FILE)).unwrap();
        let src = source(bin.path(), b"x");
        let e = install_wrapper_from(&src, mount.path())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(WRAPPER_FILE) && e.contains("not a regular file; remove it"),
            "{e}"
        );
        // Missing mount dir: error, nothing created.
        let gone = mount.path().join("missing");
        let e = install_wrapper_from(&src, &gone).unwrap_err().to_string();
        assert!(e.contains("missing"), "{e}");
        assert!(!gone.exists());
    }

    #[test]
    fn survives_the_writer_replacing_and_pruning_sets() {
        use crate::split::OutFile;
        let (bin, mount) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        install_wrapper_from(&source(bin.path(), b"w"), mount.path()).unwrap();
        for v in [b"1", b"2"] {
            let files = vec![OutFile {
                path: "a".into(),
                contents: v.to_vec(),
                mode: 0o444,
            }];
            crate::write::write_atomic_with_grace(
                mount.path(),
                &files,
                None,
                std::time::Duration::ZERO,
            )
            .unwrap();
        }
        crate::write::prune_replaced(mount.path(), std::time::Duration::ZERO).unwrap();
        assert_eq!(fs::read(mount.path().join(WRAPPER_FILE)).unwrap(), b"w");
    }
}
