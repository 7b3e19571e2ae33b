//! The sidecar's `on-change` action: the type the agent runs and
//! the parser the webhook validates the annotation with.

use serde::{Deserialize, Serialize};

/// Action run by a sidecar agent after it rewrote the files.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum OnChange {
    /// Send `signal` (e.g. `SIGHUP`) to every process whose name is `process`
    /// (needs `shareProcessNamespace: true`, set by the webhook).
    Signal { signal: String, process: String },
    /// POST to a loopback URL.
    Http { url: String },
}

/// Signals an `on-change` action may send.
pub const SIGNALS: &[&str] = &[
    "SIGHUP", "SIGINT", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGTERM", "SIGWINCH",
];

impl OnChange {
    /// `signal:<SIG>:<process-name>` or `http:<loopback-url>`.
    pub fn parse(s: &str) -> Result<OnChange, String> {
        let s = s.trim();
        if let Some(rest) = s.strip_prefix("signal:") {
            let (sig, process) = rest.split_once(':').ok_or_else(|| {
                format!("{s:?}: expected signal:<SIG>:<process-name>, e.g. signal:SIGHUP:nginx")
            })?;
            let sig = sig.to_ascii_uppercase();
            let sig = if sig.starts_with("SIG") {
                sig
            } else {
                format!("SIG{sig}")
            };
            if !SIGNALS.contains(&sig.as_str()) {
                return Err(format!(
                    "{s:?}: signal {sig} is not one of {}",
                    SIGNALS.join(", ")
                ));
            }
            if process.is_empty() || process.len() > 15 || process.contains(['/', '\0']) {
                return Err(format!(
                    "{s:?}: process name {process:?} must be 1-15 characters without '/' (as in /proc/<pid>/comm)"
                ));
            }
            return Ok(OnChange::Signal {
                signal: sig,
                process: process.to_string(),
            });
        }
        if let Some(url) = s.strip_prefix("http:") {
            check_loopback_url(url).map_err(|e| format!("{s:?}: {e}"))?;
            return Ok(OnChange::Http {
                url: url.to_string(),
            });
        }
        Err(format!(
            "{s:?}: expected signal:<SIG>:<process-name> or http:<loopback-url>"
        ))
    }
}

fn check_loopback_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or("the URL must start with http:// (loopback only, no TLS)")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']')
            .next()
            .map(|h| format!("[{h}]"))
            .unwrap_or_default()
    } else {
        authority.split(':').next().unwrap_or("").to_string()
    };
    // After a closing `]` or in a name, the last `:` starts the port; inside `[…]` it does not.
    let port_ok = match authority.rsplit_once(':') {
        Some((h, p)) if h.ends_with(']') || !authority.starts_with('[') => {
            p.parse::<u16>().is_ok_and(|p| p > 0)
        }
        _ => true,
    };
    if !matches!(host.as_str(), "localhost" | "127.0.0.1" | "[::1]") {
        return Err(format!(
            "host {host:?} is not loopback (use localhost, 127.0.0.1 or [::1])"
        ));
    }
    if !port_ok {
        return Err("the port is not a number between 1 and 65535".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_change_actions() {
        assert_eq!(
            OnChange::parse("signal:HUP:nginx").unwrap(),
            OnChange::Signal {
                signal: "SIGHUP".into(),
                process: "nginx".into()
            }
        );
        assert_eq!(
            OnChange::parse("http:http://localhost:8080/-/reload").unwrap(),
            OnChange::Http {
                url: "http://localhost:8080/-/reload".into()
            }
        );
        assert!(OnChange::parse("http:http://[::1]:9090/reload").is_ok());
        assert!(OnChange::parse("http:http://127.0.0.1/x").is_ok());
        let cases = [
            ("signal:SIGKILL:app", "not one of"),
            ("signal:HUP", "expected signal:<SIG>:<process-name>"),
            ("signal:HUP:averyveryverylongname", "1-15 characters"),
            ("http:https://localhost/x", "must start with http://"),
            ("http:http://example.com/x", "not loopback"),
            ("http:http://localhost:99999/x", "port"),
            ("exec:/bin/true", "expected signal"),
        ];
        for (s, want) in cases {
            let err = OnChange::parse(s).unwrap_err();
            assert!(err.contains(want), "{s:?}: {err}");
        }
    }

    #[test]
    fn process_names_are_1_to_15_bytes() {
        let name = "p".repeat(15);
        assert_eq!(
            OnChange::parse(&format!("signal:USR1:{name}")).unwrap(),
            OnChange::Signal {
                signal: "SIGUSR1".into(),
                process: name.clone()
            }
        );
        for bad in [
            format!("{name}p"),
            String::new(),
            "a/b".into(),
            "a\0b".into(),
        ] {
            let s = format!("signal:SIGHUP:{bad}");
            assert_eq!(
                OnChange::parse(&s).unwrap_err(),
                format!(
                    "{s:?}: process name {bad:?} must be 1-15 characters without '/' (as in /proc/<pid>/comm)"
                )
            );
        }
    }

    #[test]
    fn loopback_ports_are_checked_for_every_host_form() {
        for ok in [
            "http://localhost",
            "http://localhost:1/x",
            "http://localhost:65535",
            "http://127.0.0.1:8080?a=b",
            "http://[::1]",
            "http://[::1]/x",
            "http://[::1]:9090#f",
        ] {
            assert!(check_loopback_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://localhost:0",
            "http://localhost:",
            "http://localhost:65536",
            "http://localhost:x",
            "http://[::1]:0",
            "http://[::1]:99999/x",
            "http://[::1]:",
        ] {
            assert_eq!(
                check_loopback_url(bad).unwrap_err(),
                "the port is not a number between 1 and 65535",
                "{bad}"
            );
        }
        assert_eq!(
            check_loopback_url("http://[::2]:80").unwrap_err(),
            "host \"[::2]\" is not loopback (use localhost, 127.0.0.1 or [::1])"
        );
    }
}
