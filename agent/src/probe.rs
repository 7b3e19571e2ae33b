//! `secrets-injector-agent probe`: the native sidecar's startup probe. Succeeds
//! once the first complete file set is live (`<mount>/..data` exists).

use std::path::Path;

use crate::write::DATA_DIR;

/// `Ok` when the first write is done, else a one-line reason.
pub fn probe(mount_dir: &Path) -> Result<(), String> {
    let data = mount_dir.join(DATA_DIR);
    if data.is_dir() {
        Ok(())
    } else {
        Err(format!(
            "not ready: {} does not exist yet (first write of the secrets not done)",
            data.display()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_after_data_link() {
        let dir = tempfile::tempdir().unwrap();
        let err = probe(dir.path()).unwrap_err();
        assert!(err.contains("..data"), "{err}");
        std::fs::create_dir(dir.path().join("..x")).unwrap();
        std::os::unix::fs::symlink("..x", dir.path().join(DATA_DIR)).unwrap();
        assert!(probe(dir.path()).is_ok());
    }
}
