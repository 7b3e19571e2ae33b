//! Loading the `AgentConfig` (from `--config FILE` or env
//! `SECRETS_INJECTOR_CONFIG`) and mapping the pod's paths on this machine.
//!
//! `SECRETS_INJECTOR_ROOT_PREFIX` is a testing/debugging override: a directory
//! prepended to the config's `mount_path` and to the termination-log path, so
//! the agent can run outside a pod with the pod's paths under a temp dir.

use std::path::{Path, PathBuf};

use secrets_injector_shared::AgentConfig;
use secrets_injector_shared::keys::CONFIG_ENV;

use crate::Error;

/// Read the config from `file` when given, else from the JSON in `env_json`.
pub fn load(file: Option<&Path>, env_json: Option<&str>) -> Result<AgentConfig, Error> {
    let json = match (file, env_json) {
        (Some(path), _) => std::fs::read_to_string(path)
            .map_err(|e| Error::Io(format!("cannot read --config file {}: {e}", path.display())))?,
        (None, Some(json)) => json.to_string(),
        (None, None) => {
            return Err(Error::Io(format!(
                "no agent config: set env {CONFIG_ENV} (the webhook does) or pass --config FILE"
            )));
        }
    };
    Ok(AgentConfig::from_json(&json)?)
}

/// `path` (absolute, as in the pod) under `prefix`, or as is without a prefix.
pub fn under_root(prefix: Option<&Path>, path: &Path) -> PathBuf {
    match prefix {
        Some(root) => root.join(path.strip_prefix("/").unwrap_or(path)),
        None => path.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"{"version":1,"mount_path":"/mnt/secrets","refresh_interval_secs":300,"startup_timeout_secs":60,"secrets":[]}"#;

    #[test]
    fn file_wins_over_env() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.json");
        std::fs::write(&f, MINIMAL.replace("/mnt/secrets", "/from/file")).unwrap();
        let cfg = load(Some(&f), Some(MINIMAL)).unwrap();
        assert_eq!(cfg.mount_path, "/from/file");
        assert_eq!(
            load(None, Some(MINIMAL)).unwrap().mount_path,
            "/mnt/secrets"
        );
    }

    #[test]
    fn missing_config_says_where_to_put_it() {
        let err = load(None, None).unwrap_err().to_string();
        assert!(
            err.contains(CONFIG_ENV) && err.contains("--config"),
            "{err}"
        );
        let err = load(Some(Path::new("/nonexistent/c.json")), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/c.json"), "{err}");
    }

    #[test]
    fn root_prefix_maps_absolute_paths() {
        assert_eq!(
            under_root(Some(Path::new("/tmp/x")), Path::new("/mnt/secrets")),
            PathBuf::from("/tmp/x/mnt/secrets")
        );
        assert_eq!(
            under_root(None, Path::new("/dev/termination-log")),
            PathBuf::from("/dev/termination-log")
        );
    }
}
