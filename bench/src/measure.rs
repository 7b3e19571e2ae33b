//! Run a command under the `measure` subcommand (a fresh process whose only
//! child is the command), so its wall time and tree-wide peak RSS are exact.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::Error;

/// What `measure` prints as one JSON line.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Measured {
    pub wall_ns: u64,
    pub max_rss_kib: u64,
    /// User + system CPU of the command's tree.
    #[serde(default)]
    pub cpu_ns: u64,
    pub success: bool,
}

impl Measured {
    pub fn wall(&self) -> Duration {
        Duration::from_nanos(self.wall_ns)
    }

    pub fn cpu(&self) -> Duration {
        Duration::from_nanos(self.cpu_ns)
    }
}

/// Run `program args` with exactly `env` via `self_exe measure --`.
pub fn run(
    self_exe: &Path,
    program: &Path,
    args: &[String],
    env: &[(String, String)],
) -> Result<Measured, Error> {
    let out = Command::new(self_exe)
        .arg("measure")
        .arg("--")
        .arg(program)
        .args(args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::io(&format!("run {}", program.display()), e))?;
    let line = String::from_utf8_lossy(&out.stdout);
    let m: Measured = serde_json::from_str(line.trim()).map_err(|e| {
        Error::Measure(format!(
            "{}: no measurement ({e}); stderr: {}",
            program.display(),
            tail(&String::from_utf8_lossy(&out.stderr), 600)
        ))
    })?;
    if !m.success {
        return Err(Error::Measure(format!(
            "{} failed; stderr: {}",
            program.display(),
            tail(&String::from_utf8_lossy(&out.stderr), 600)
        )));
    }
    Ok(m)
}

/// The last `n` bytes of `s` (on a char boundary).
pub fn tail(s: &str, n: usize) -> &str {
    let mut start = s.len().saturating_sub(n);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_end_on_char_boundaries() {
        assert_eq!(tail("hello", 3), "llo");
        assert_eq!(tail("hé", 1), "");
        assert_eq!(tail("ab", 10), "ab");
    }
}
