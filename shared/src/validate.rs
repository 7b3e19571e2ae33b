//! Small value checks for annotation values: durations, regions, role ARNs,
//! octal modes, Kubernetes quantities and names, `on-change` actions.

use crate::config::OnChange;

/// Parse a Go-style duration (`30s`, `5m`, `1h30m`, `1.5h`, `500ms`) into whole seconds,
/// rounding up sub-second remainders.
pub fn parse_duration_secs(s: &str) -> Result<u64, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("is empty; expected a duration such as 30s, 5m or 1h30m".into());
    }
    let bad = || format!("{s:?} is not a duration; expected e.g. 30s, 5m, 1h30m");
    let mut nanos: u128 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("{s:?} has no unit; write e.g. {s}s or {s}m"))?;
        if num_len == 0 {
            return Err(bad());
        }
        let (num, tail) = rest.split_at(num_len);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let scale: u128 = match unit {
            "ns" => 1,
            "us" | "µs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => {
                return Err(format!(
                    "{s:?} has unknown unit {unit:?}; use ns, us, ms, s, m or h"
                ));
            }
        };
        let (int, frac) = num.split_once('.').unwrap_or((num, ""));
        if (int.is_empty() && frac.is_empty()) || frac.contains('.') {
            return Err(bad());
        }
        let int: u128 = if int.is_empty() {
            0
        } else {
            int.parse().map_err(|_| bad())?
        };
        let mut part = int
            .checked_mul(scale)
            .ok_or_else(|| format!("{s:?} is too large"))?;
        let mut div = 1u128;
        for d in frac.bytes().take(18) {
            div *= 10;
            part += u128::from(d - b'0') * scale / div;
        }
        nanos = nanos
            .checked_add(part)
            .ok_or_else(|| format!("{s:?} is too large"))?;
        rest = tail;
    }
    let secs = nanos.div_ceil(1_000_000_000);
    u64::try_from(secs).map_err(|_| format!("{s:?} is too large"))
}

/// AWS region shape: `us-east-1`, `cn-north-1`, `us-gov-west-1`, `eu-isoe-west-1`.
pub fn is_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].parse::<u16>().is_ok()
}

pub fn check_region(s: &str) -> Result<String, String> {
    if is_region(s.trim()) {
        Ok(s.trim().to_string())
    } else {
        Err(format!("{s:?} is not an AWS region (e.g. us-east-1)"))
    }
}

/// `arn:<partition>:iam::<account>:role/<path/name>`.
pub fn check_role_arn(s: &str) -> Result<String, String> {
    let s = s.trim();
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    let ok = matches!(parts[..], ["arn", p, "iam", "", acct, res]
        if p.starts_with("aws")
            && acct.len() == 12 && acct.bytes().all(|b| b.is_ascii_digit())
            && res.strip_prefix("role/").is_some_and(|n| !n.is_empty() && !n.ends_with('/')));
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!(
            "{s:?} is not an IAM role ARN (arn:aws:iam::123456789012:role/name)"
        ))
    }
}

/// Octal file mode such as `0440`, `440` or `0o440`; at most `0777`, and readable by someone.
pub fn parse_mode(s: &str) -> Result<u32, String> {
    let t = s.trim();
    let digits = t.strip_prefix("0o").unwrap_or(t);
    let mode = u32::from_str_radix(digits, 8)
        .map_err(|_| format!("{s:?} is not an octal file mode (e.g. 0440)"))?;
    if digits.is_empty() || mode > 0o777 {
        return Err(format!(
            "{s:?} is not an octal file mode between 0000 and 0777"
        ));
    }
    if mode & 0o444 == 0 {
        return Err(format!(
            "{s:?} makes the files unreadable; include a read bit (e.g. 0440)"
        ));
    }
    Ok(mode)
}

/// Kubernetes resource quantity (`100m`, `0.5`, `64Mi`, `1e3`).
pub fn check_quantity(s: &str) -> Result<String, String> {
    let t = s.trim();
    let num_end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(t.len());
    let (num, suffix) = t.split_at(num_end);
    let num = num.strip_prefix(['+', '-']).unwrap_or(num);
    let num_ok = !num.is_empty()
        && num != "."
        && num.matches('.').count() <= 1
        && num.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    let suffix_ok = matches!(
        suffix,
        "" | "m" | "k" | "M" | "G" | "T" | "P" | "E" | "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei"
    ) || suffix.strip_prefix(['e', 'E']).is_some_and(|e| {
        !e.is_empty()
            && e.strip_prefix('-')
                .unwrap_or(e)
                .bytes()
                .all(|b| b.is_ascii_digit())
    });
    if num_ok && suffix_ok && !t.starts_with('-') {
        Ok(t.to_string())
    } else {
        Err(format!(
            "{s:?} is not a Kubernetes quantity (e.g. 50m, 0.1, 32Mi)"
        ))
    }
}

/// RFC 1123 label, as Kubernetes requires of container names.
pub fn check_container_name(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!("{s:?} is not a valid container name"))
    }
}

/// Signals an `on-change` action may send.
pub const SIGNALS: &[&str] = &[
    "SIGHUP", "SIGINT", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGTERM", "SIGWINCH",
];

/// `signal:<SIG>:<process-name>` or `http:<loopback-url>`.
pub fn parse_on_change(s: &str) -> Result<OnChange, String> {
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
    let port_ok = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || authority.ends_with(']') => {
            authority.ends_with(']') || p.parse::<u16>().is_ok_and(|p| p > 0)
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
    fn durations() {
        for (s, want) in [
            ("30s", 30),
            ("5m", 300),
            ("1h30m", 5400),
            ("1.5h", 5400),
            ("500ms", 1),
            ("2m30s", 150),
            ("0s", 0),
        ] {
            assert_eq!(parse_duration_secs(s).unwrap(), want, "{s}");
        }
        for (s, want) in [
            ("", "is empty"),
            ("5", "has no unit"),
            ("5d", "unknown unit"),
            ("m5", "not a duration"),
            ("1..5s", "not a duration"),
            ("-5s", "not a duration"),
        ] {
            let err = parse_duration_secs(s).unwrap_err();
            assert!(err.contains(want), "{s:?}: {err}");
        }
        assert!(
            parse_duration_secs("999999999999999999999h")
                .unwrap_err()
                .contains("too large")
        );
    }

    #[test]
    fn regions() {
        for r in [
            "us-east-1",
            "cn-north-1",
            "us-gov-west-1",
            "eu-isoe-west-1",
            "ap-southeast-5",
        ] {
            assert!(is_region(r), "{r}");
        }
        for r in ["", "us-east", "US-EAST-1", "us--1", "useast1", "us-east-x"] {
            assert!(!is_region(r), "{r}");
        }
        assert!(
            check_region("mars")
                .unwrap_err()
                .contains("not an AWS region")
        );
    }

    #[test]
    fn role_arns() {
        assert!(check_role_arn("arn:aws:iam::123456789012:role/reader").is_ok());
        assert!(check_role_arn("arn:aws-cn:iam::123456789012:role/path/reader").is_ok());
        for bad in [
            "reader",
            "arn:aws:iam::123:role/x",
            "arn:aws:iam::123456789012:user/x",
            "arn:aws:iam::123456789012:role/",
        ] {
            assert!(
                check_role_arn(bad)
                    .unwrap_err()
                    .contains("not an IAM role ARN"),
                "{bad}"
            );
        }
    }

    #[test]
    fn modes() {
        assert_eq!(parse_mode("0440").unwrap(), 0o440);
        assert_eq!(parse_mode("644").unwrap(), 0o644);
        assert_eq!(parse_mode("0o400").unwrap(), 0o400);
        assert!(parse_mode("0999").unwrap_err().contains("not an octal"));
        assert!(
            parse_mode("1777")
                .unwrap_err()
                .contains("between 0000 and 0777")
        );
        assert!(parse_mode("0200").unwrap_err().contains("unreadable"));
    }

    #[test]
    fn quantities() {
        for q in ["100m", "0.5", "64Mi", "1", "1e3", "1G", ".5"] {
            assert!(check_quantity(q).is_ok(), "{q}");
        }
        for q in ["", "abc", "10 Mi", "-1", "1.2.3", "5mb"] {
            assert!(check_quantity(q).is_err(), "{q}");
        }
    }

    #[test]
    fn container_names() {
        assert!(check_container_name("app-1").is_ok());
        for bad in ["", "App", "-a", "a-", "a_b", &"a".repeat(64)] {
            assert!(check_container_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn on_change_actions() {
        assert_eq!(
            parse_on_change("signal:HUP:nginx").unwrap(),
            OnChange::Signal {
                signal: "SIGHUP".into(),
                process: "nginx".into()
            }
        );
        assert_eq!(
            parse_on_change("http:http://localhost:8080/-/reload").unwrap(),
            OnChange::Http {
                url: "http://localhost:8080/-/reload".into()
            }
        );
        assert!(parse_on_change("http:http://[::1]:9090/reload").is_ok());
        assert!(parse_on_change("http:http://127.0.0.1/x").is_ok());
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
            let err = parse_on_change(s).unwrap_err();
            assert!(err.contains(want), "{s:?}: {err}");
        }
    }
}
