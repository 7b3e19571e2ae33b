//! Start overhead of the env wrapper (`secrets-injector-env`, DESIGN §3a):
//! spawn → exit of `true` run directly vs through the wrapper with a typical
//! set of vars, interleaved so both series share the machine's noise.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::Error;
use crate::stats::Summary;

/// Vars set with `--env` and keys of the `--env-from` directory.
pub const ENV_VARS: usize = 5;
pub const ENV_FROM_KEYS: usize = 5;

/// A temp secrets volume in the agent's layout (`..data` → snapshot dir),
/// mirroring `agent/src/write.rs`.
#[derive(Debug)]
pub struct Volume {
    dir: tempfile::TempDir,
}

impl Volume {
    pub fn new() -> Result<Volume, Error> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("temp dir", e))?;
        let snap = dir.path().join("..1795400000.000000001_0a0b0c0d");
        let write = |rel: String, value: &str| -> Result<(), Error> {
            let p = snap.join(rel);
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| Error::io(&parent.display().to_string(), e))?;
            }
            std::fs::write(&p, value).map_err(|e| Error::io(&p.display().to_string(), e))
        };
        for i in 0..ENV_VARS {
            write(format!("secret{i}"), "a-typical-secret-value-of-32-chr")?;
        }
        for i in 0..ENV_FROM_KEYS {
            write(format!("db/KEY_{i}"), "postgres://app@db.internal:5432/app")?;
        }
        std::os::unix::fs::symlink("..1795400000.000000001_0a0b0c0d", dir.path().join("..data"))
            .map_err(|e| Error::io("..data symlink", e))?;
        Ok(Volume { dir })
    }

    /// The wrapper's arguments before `--`.
    pub fn args(&self) -> Vec<String> {
        let mut a = vec![
            "--mount-path".to_string(),
            self.dir.path().display().to_string(),
        ];
        for i in 0..ENV_VARS {
            a.extend(["--env".to_string(), format!("SECRET_{i}=secret{i}")]);
        }
        a.extend(["--env-from".to_string(), "db".to_string()]);
        a
    }
}

/// `true` by absolute path (no PATH search on either side).
pub fn true_bin() -> PathBuf {
    ["/usr/bin/true", "/bin/true"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("/bin/true"))
}

fn time(cmd: &mut Command) -> Result<Duration, Error> {
    let start = Instant::now();
    let status = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| Error::io("spawn", e))?;
    let took = start.elapsed();
    if !status.success() {
        return Err(Error::Measure(format!("{cmd:?} exited with {status}")));
    }
    Ok(took)
}

/// `runs` interleaved pairs: (direct, through the wrapper).
pub fn measure(env_bin: &Path, runs: usize) -> Result<(Summary, Summary), Error> {
    let vol = Volume::new()?;
    let truth = true_bin();
    let args = vol.args();
    let direct = || Command::new(&truth);
    let wrapped = || {
        let mut c = Command::new(env_bin);
        c.args(&args).arg("--").arg(&truth);
        c
    };
    // Warm the page cache and the dynamic loader for both.
    for _ in 0..20 {
        time(&mut direct())?;
        time(&mut wrapped())?;
    }
    let (mut d, mut w) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
    for _ in 0..runs {
        d.push(time(&mut direct())?);
        w.push(time(&mut wrapped())?);
    }
    let none = || Error::Measure("no runs".into());
    Ok((
        Summary::of(d).ok_or_else(none)?,
        Summary::of(w).ok_or_else(none)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_has_the_agent_layout_and_every_file_the_args_name() {
        let v = Volume::new().unwrap();
        let data = v.dir.path().join("..data");
        let target = std::fs::read_link(&data).unwrap();
        assert!(target.to_string_lossy().starts_with("..1795"), "{target:?}");
        let args = v.args();
        for pair in args.windows(2).filter(|w| w[0] == "--env") {
            let (_, rel) = pair[1].split_once('=').unwrap();
            assert!(data.join(rel).is_file(), "{rel}");
        }
        let keys = std::fs::read_dir(data.join("db")).unwrap().count();
        assert_eq!(keys, ENV_FROM_KEYS);
    }
}
