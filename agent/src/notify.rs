//! `on-change` actions run by a sidecar agent after a rewrite:
//! `signal:<SIG>:<process-name>` (shared PID namespace) or `http:<url>` (POST).

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use nix::sys::signal::Signal;
use nix::unistd::Pid;
use secrets_injector_shared::OnChange;
use secrets_injector_shared::on_change::LoopbackUrl;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::Error;

/// How long an `http:` on-change may take in total.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(5);

/// What an action did, for the round's log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notified {
    /// Number of processes signalled.
    Signalled(usize),
    /// HTTP status code of the 2xx answer.
    Http(u16),
}

/// Run `action`; an error means the action did not reach its target.
pub async fn run(action: &OnChange) -> Result<Notified, Error> {
    match action {
        OnChange::Signal { signal, process } => {
            signal_processes(Path::new("/proc"), signal, process).map(Notified::Signalled)
        }
        OnChange::Http { url } => post(url).await.map(Notified::Http),
    }
}

fn nerr(action: String, message: impl Into<String>) -> Error {
    Error::Notify {
        action,
        message: message.into(),
    }
}

/// `SIGHUP` or `HUP`.
pub fn parse_signal(name: &str) -> Option<Signal> {
    let upper = name.trim().to_ascii_uppercase();
    let full = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    Signal::from_str(&full).ok()
}

/// Send `signal` to every process under `proc_root` whose `comm` is `process`
/// (the kernel truncates `comm` to 15 bytes, so the name is compared truncated).
pub fn signal_processes(proc_root: &Path, signal: &str, process: &str) -> Result<usize, Error> {
    let action = format!("signal:{signal}:{process}");
    let sig = parse_signal(signal).ok_or_else(|| nerr(action.clone(), "unknown signal name"))?;
    let want = &process.as_bytes()[..process.len().min(15)];
    let me = std::process::id();
    let entries = std::fs::read_dir(proc_root).map_err(|e| {
        nerr(
            action.clone(),
            format!("cannot list {}: {e}", proc_root.display()),
        )
    })?;
    let mut sent = 0;
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        if pid as u32 == me {
            continue;
        }
        // Processes come and go while scanning; a vanished one is not an error.
        let Ok(comm) = std::fs::read(entry.path().join("comm")) else {
            continue;
        };
        if comm.strip_suffix(b"\n").unwrap_or(&comm) == want {
            match nix::sys::signal::kill(Pid::from_raw(pid), sig) {
                Ok(()) => sent += 1,
                Err(nix::errno::Errno::ESRCH) => {}
                Err(e) => {
                    return Err(nerr(action, format!("kill {pid}: {e}")));
                }
            }
        }
    }
    if sent == 0 {
        return Err(nerr(
            action,
            format!(
                "no process named {process:?} found (is shareProcessNamespace: true set on the pod?)"
            ),
        ));
    }
    Ok(sent)
}

/// POST with an empty body; 2xx is success. Whole exchange bounded by [`HTTP_TIMEOUT`].
pub async fn post(url: &str) -> Result<u16, Error> {
    let action = format!("http:{url}");
    let LoopbackUrl { host, port, target } =
        LoopbackUrl::parse(url).map_err(|e| nerr(action.clone(), e))?;
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
        let host_header = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let request = format!(
            "POST {target} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: secrets-injector-agent\r\n\
             Content-Length: 0\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await?;
        let mut head = Vec::new();
        let mut buf = [0u8; 512];
        // The status line is all we need; stop reading once it is complete.
        while !head.contains(&b'\n') && head.len() < 8192 {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        Ok::<_, std::io::Error>(head)
    };
    let head = tokio::time::timeout(HTTP_TIMEOUT, exchange)
        .await
        .map_err(|_| nerr(action.clone(), format!("no answer within {HTTP_TIMEOUT:?}")))?
        .map_err(|e| nerr(action.clone(), e.to_string()))?;
    let status = String::from_utf8_lossy(&head)
        .lines()
        .next()
        .and_then(|l| {
            l.split_whitespace()
                .nth(1)
                .and_then(|c| c.parse::<u16>().ok())
        })
        .ok_or_else(|| nerr(action.clone(), "answer is not HTTP"))?;
    if (200..300).contains(&status) {
        Ok(status)
    } else {
        Err(nerr(action, format!("answered HTTP {status}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_names() {
        assert_eq!(parse_signal("SIGHUP"), Some(Signal::SIGHUP));
        assert_eq!(parse_signal("usr1"), Some(Signal::SIGUSR1));
        assert_eq!(parse_signal("NOPE"), None);
    }

    #[test]
    fn signals_only_processes_with_that_name() {
        let dir = tempfile::tempdir().unwrap();
        // A private copy of `sleep` with a unique name, so no other process can match.
        let name = format!("sit{:08x}", rand::random::<u32>());
        let exe = dir.path().join(&name);
        std::fs::copy("/bin/sleep", &exe).unwrap();
        let mut child = std::process::Command::new(&exe).arg("600").spawn().unwrap();
        let comm = std::path::PathBuf::from(format!("/proc/{}/comm", child.id()));
        let ok = (0..200).any(|_| {
            std::thread::sleep(Duration::from_millis(25));
            std::fs::read_to_string(&comm).is_ok_and(|c| c.trim() == name)
        });
        assert!(ok, "child never showed its comm");
        let n = signal_processes(Path::new("/proc"), "SIGTERM", &name).unwrap();
        assert_eq!(n, 1);
        let status = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc_sigterm()));
        let err = signal_processes(Path::new("/proc"), "SIGTERM", &name)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no process named"), "{err}");
    }

    fn libc_sigterm() -> i32 {
        Signal::SIGTERM as i32
    }

    #[tokio::test]
    async fn http_status_decides() {
        for (answer, ok) in [("204 No Content", true), ("500 Oops", false)] {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let server = tokio::spawn(async move {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = vec![0u8; 1024];
                let n = s.read(&mut buf).await.unwrap();
                let req = String::from_utf8_lossy(&buf[..n]).into_owned();
                s.write_all(format!("HTTP/1.1 {answer}\r\nContent-Length: 0\r\n\r\n").as_bytes())
                    .await
                    .unwrap();
                req
            });
            let got = post(&format!("http://127.0.0.1:{port}/reload")).await;
            let req = server.await.unwrap();
            assert!(req.starts_with("POST /reload HTTP/1.1\r\n"), "{req}");
            assert_eq!(got.is_ok(), ok, "{answer}: {got:?}");
        }
    }
}
