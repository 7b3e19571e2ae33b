//! Memory of a process: `/proc/<pid>/status` (VmRSS now, VmHWM peak) and,
//! for short-lived commands, the peak RSS of a whole process tree via `getrusage`.

use std::path::Path;
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use crate::Error;

/// Resident memory of a live process, in KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mem {
    pub rss_kib: u64,
    pub hwm_kib: u64,
}

/// Parse `VmRSS` and `VmHWM` out of a `/proc/<pid>/status` text.
pub fn parse_status(text: &str) -> Option<Mem> {
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
    };
    Some(Mem {
        rss_kib: field("VmRSS:")?,
        hwm_kib: field("VmHWM:")?,
    })
}

/// Read the memory of process `pid`.
pub fn of_pid(pid: u32) -> Result<Mem, Error> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    parse_status(&text).ok_or_else(|| Error::Measure(format!("{path}: no VmRSS/VmHWM")))
}

/// One finished command: wall time from spawn to exit and the peak RSS of
/// the largest process in its tree.
#[derive(Debug, Clone, Copy)]
pub struct Run {
    pub wall: Duration,
    pub max_rss_kib: u64,
    /// User + system CPU time of the tree.
    pub cpu: Duration,
    pub status: ExitStatus,
}

/// Run `cmd` to completion and measure it. The peak RSS comes from
/// `getrusage(RUSAGE_CHILDREN)`, so call this only from a process whose sole
/// child is `cmd` (the `measure` subcommand does exactly that).
pub fn run_measured(mut cmd: Command) -> Result<Run, Error> {
    let start = Instant::now();
    let status = cmd
        .status()
        .map_err(|e| Error::io(&format!("{cmd:?}"), e))?;
    let wall = start.elapsed();
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .map_err(|e| Error::Measure(format!("getrusage: {e}")))?;
    Ok(Run {
        wall,
        max_rss_kib: u64::try_from(usage.max_rss()).unwrap_or(0),
        cpu: timeval(usage.user_time()) + timeval(usage.system_time()),
        status,
    })
}

fn timeval(t: nix::sys::time::TimeVal) -> Duration {
    let micros = t.tv_sec() as i128 * 1_000_000 + t.tv_usec() as i128;
    Duration::from_micros(u64::try_from(micros).unwrap_or(0))
}

/// File size in bytes.
pub fn file_size(path: &Path) -> Result<u64, Error> {
    std::fs::metadata(path)
        .map(|m| m.len())
        .map_err(|e| Error::io(&path.display().to_string(), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_status_fields() {
        let text = "Name:\tx\nVmPeak:\t  9999 kB\nVmHWM:\t    5120 kB\nVmRSS:\t    4096 kB\n";
        assert_eq!(
            parse_status(text),
            Some(Mem {
                rss_kib: 4096,
                hwm_kib: 5120
            })
        );
        assert_eq!(parse_status("Name:\tx\n"), None);
    }

    #[test]
    fn reads_own_memory() {
        let m = of_pid(std::process::id()).unwrap();
        assert!(m.rss_kib > 0 && m.hwm_kib >= m.rss_kib, "{m:?}");
    }

    #[test]
    fn a_missing_process_is_an_error_not_a_panic() {
        assert!(of_pid(u32::MAX).is_err());
    }
}
