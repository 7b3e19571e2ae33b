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
            LoopbackUrl::parse(url).map_err(|e| format!("{s:?}: {e}"))?;
            return Ok(OnChange::Http {
                url: url.to_string(),
            });
        }
        Err(format!(
            "{s:?}: expected signal:<SIG>:<process-name> or http:<loopback-url>"
        ))
    }
}

/// An `on-change` URL split for the request the agent sends: one parser for
/// the webhook's check and the agent's POST, so a URL admitted is a URL the
/// agent can call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoopbackUrl {
    /// As connected to: `localhost`, `127.0.0.1` or `::1` (no brackets).
    pub host: String,
    /// 80 when the URL names none.
    pub port: u16,
    /// Path and query, `/` when empty; the fragment stays with the client.
    pub target: String,
}

impl LoopbackUrl {
    /// `http://` + a loopback host + an optional port in 1..=65535 + an
    /// optional path, query and fragment; no whitespace or control characters.
    pub fn parse(url: &str) -> Result<LoopbackUrl, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or("the URL must start with http:// (loopback only, no TLS)")?;
        if rest.contains(|c: char| c.is_whitespace() || c.is_control()) {
            return Err("the URL contains whitespace or control characters".into());
        }
        let (authority, tail) = rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()));
        let (host, shown, port) = match authority.strip_prefix('[') {
            Some(v6) => {
                let (h, after) = v6.split_once(']').ok_or("the IPv6 host has no closing ]")?;
                let port =
                    match after {
                        "" => None,
                        _ => Some(after.strip_prefix(':').ok_or_else(|| {
                            format!("{after:?} after the IPv6 host is not a :port")
                        })?),
                    };
                (h, format!("[{h}]"), port)
            }
            None => match authority.split_once(':') {
                Some((h, p)) => (h, h.to_string(), Some(p)),
                None => (authority, authority.to_string(), None),
            },
        };
        if !matches!(shown.as_str(), "localhost" | "127.0.0.1" | "[::1]") {
            return Err(format!(
                "host {shown:?} is not loopback (use localhost, 127.0.0.1 or [::1])"
            ));
        }
        let port = match port {
            None => 80,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or("the port is not a number between 1 and 65535")?,
        };
        let target = tail.split('#').next().unwrap_or_default();
        let target = if target.starts_with('/') {
            target.to_string()
        } else {
            format!("/{target}")
        };
        Ok(LoopbackUrl {
            host: host.to_string(),
            port,
            target,
        })
    }
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
            assert!(LoopbackUrl::parse(ok).is_ok(), "{ok}");
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
                LoopbackUrl::parse(bad).unwrap_err(),
                "the port is not a number between 1 and 65535",
                "{bad}"
            );
        }
        assert_eq!(
            LoopbackUrl::parse("http://[::2]:80").unwrap_err(),
            "host \"[::2]\" is not loopback (use localhost, 127.0.0.1 or [::1])"
        );
    }

    #[test]
    fn a_url_splits_into_what_the_agent_connects_to_and_asks_for() {
        let url = |host: &str, port, target: &str| LoopbackUrl {
            host: host.into(),
            port,
            target: target.into(),
        };
        for (s, want) in [
            (
                "http://localhost:8080/-/reload",
                url("localhost", 8080, "/-/reload"),
            ),
            ("http://127.0.0.1", url("127.0.0.1", 80, "/")),
            ("http://127.0.0.1/", url("127.0.0.1", 80, "/")),
            ("http://[::1]:9/x", url("::1", 9, "/x")),
            ("http://[::1]", url("::1", 80, "/")),
            ("http://127.0.0.1:8080?a=b", url("127.0.0.1", 8080, "/?a=b")),
            (
                "http://localhost/r?x=1#frag",
                url("localhost", 80, "/r?x=1"),
            ),
            ("http://localhost#frag", url("localhost", 80, "/")),
        ] {
            assert_eq!(LoopbackUrl::parse(s), Ok(want), "{s}");
        }
    }

    #[test]
    fn malformed_urls_are_refused_with_the_reason() {
        for (bad, want) in [
            ("http://[::1/x", "the IPv6 host has no closing ]"),
            ("http://[::1", "the IPv6 host has no closing ]"),
            ("http://[::1]x/", "\"x\" after the IPv6 host is not a :port"),
            (
                "http://[::1]]:80",
                "\"]:80\" after the IPv6 host is not a :port",
            ),
            (
                "http://localhost:80:90/",
                "the port is not a number between 1 and 65535",
            ),
            (
                "http://localhost/a b",
                "the URL contains whitespace or control characters",
            ),
            (
                "http://localhost/a\r\nX: y",
                "the URL contains whitespace or control characters",
            ),
            (
                "http://",
                "host \"\" is not loopback (use localhost, 127.0.0.1 or [::1])",
            ),
            (
                "http://:80/",
                "host \"\" is not loopback (use localhost, 127.0.0.1 or [::1])",
            ),
            (
                "http://user@localhost/",
                "host \"user@localhost\" is not loopback (use localhost, 127.0.0.1 or [::1])",
            ),
            (
                "HTTP://localhost/",
                "the URL must start with http:// (loopback only, no TLS)",
            ),
        ] {
            assert_eq!(LoopbackUrl::parse(bad).unwrap_err(), want, "{bad:?}");
        }
    }
}
