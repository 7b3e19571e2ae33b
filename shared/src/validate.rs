//! Small value checks for annotation values: durations, regions, role ARNs,
//! octal modes, Kubernetes quantities and names, `on-change` actions.

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
            // Checked: at the u128 edge the fraction alone overflows (found by fuzzing).
            part = part
                .checked_add(u128::from(d - b'0') * scale / div)
                .ok_or_else(|| format!("{s:?} is too large"))?;
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

/// The characters of `s` outside quoted text (`'…'`, `"…"`, `` `…` ``, with
/// backslash escapes).
fn unquoted(s: &str) -> impl Iterator<Item = char> + '_ {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    s.chars().filter(move |&c| {
        if let Some(q) = quote {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                _ if c == q => quote = None,
                _ => {}
            }
            return false;
        }
        if matches!(c, '\'' | '"' | '`') {
            quote = Some(c);
            return false;
        }
        true
    })
}

/// Deepest bracket nesting (`[`, `(`, `{`) outside quoted text (`'…'`,
/// `"…"`, `` `…` ``, with backslash escapes): what recursive-descent parsers
/// (JMESPath, YAML flow collections) recurse on.
pub fn nesting_depth(s: &str) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    for c in unquoted(s) {
        match c {
            '[' | '(' | '{' => {
                depth += 1;
                max = max.max(depth);
            }
            ']' | ')' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// Deepest nesting a `jmesPath` expression may have: real ones use 2 or 3,
/// and the agent's JMESPath parser recurses per level.
pub const MAX_JMES_PATH_DEPTH: usize = 16;
/// Longest `jmesPath` expression.
pub const MAX_JMES_PATH_BYTES: usize = 1024;
/// Most operator characters (`.|&!*?[({,=<>`) outside quotes in a `jmesPath`:
/// the parse tree grows a level per operator even without brackets (`!!!!a`,
/// `a.a.a.a`), and the agent's parser and evaluator recurse per level (1 KiB
/// of `!` overflowed an 8 MiB stack; found by fuzzing). Real ones use under 10.
pub const MAX_JMES_PATH_OPERATORS: usize = 64;

/// A `jmesPath` expression the agent can compile without deep recursion.
pub fn check_jmes_path(path: &str) -> Result<(), String> {
    if path.len() > MAX_JMES_PATH_BYTES {
        return Err(format!(
            "is {} bytes; the limit is {MAX_JMES_PATH_BYTES}",
            path.len()
        ));
    }
    let depth = nesting_depth(path);
    if depth > MAX_JMES_PATH_DEPTH {
        return Err(format!(
            "is nested {depth} levels deep; the limit is {MAX_JMES_PATH_DEPTH}"
        ));
    }
    let operators = unquoted(path)
        .filter(|c| ".|&!*?[({,=<>".contains(*c))
        .count();
    if operators > MAX_JMES_PATH_OPERATORS {
        return Err(format!(
            "has {operators} operators; the limit is {MAX_JMES_PATH_OPERATORS}"
        ));
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
        // The fraction pushes an integer part at the u128 edge over it (overflowed before).
        for s in [
            "340282366920938463463374607431768211.5us",
            "340282366920938463463374607431.9s",
        ] {
            let err = parse_duration_secs(s).unwrap_err();
            assert!(err.contains("too large"), "{s}: {err}");
        }
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
    fn container_names() {
        assert!(check_container_name("app-1").is_ok());
        for bad in ["", "App", "-a", "a-", "a_b", &"a".repeat(64)] {
            assert!(check_container_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn nesting_depth_ignores_quoted_text() {
        assert_eq!(nesting_depth("a.b"), 0);
        assert_eq!(nesting_depth("a[0].b"), 1);
        assert_eq!(nesting_depth("a[?b == `[[[`].c"), 1);
        assert_eq!(nesting_depth("x[?y == '\\'[[['].z"), 1);
        assert_eq!(nesting_depth("{a: [b, (c)]}"), 3);
        assert_eq!(
            nesting_depth("]]]][["),
            2,
            "unbalanced closers never go negative"
        );
    }

    #[test]
    fn jmes_paths_are_bounded() {
        assert!(check_jmes_path("credentials[?type == 'db'].password | [0]").is_ok());
        let at_limit = format!("{}a{}", "[".repeat(16), "]".repeat(16));
        assert!(check_jmes_path(&at_limit).is_ok());
        let deep = format!("{}a{}", "[".repeat(17), "]".repeat(17));
        assert_eq!(
            check_jmes_path(&deep).unwrap_err(),
            "is nested 17 levels deep; the limit is 16"
        );
        assert_eq!(
            check_jmes_path(&"[?".repeat(10_000)).unwrap_err(),
            "is 20000 bytes; the limit is 1024"
        );
        assert!(check_jmes_path(&"a".repeat(1024)).is_ok());
        assert!(check_jmes_path(&"a".repeat(1025)).is_err());
    }

    #[test]
    fn jmes_path_operators_are_bounded_outside_quotes() {
        // 1 KiB of `!` passed the depth check and overflowed the agent's stack (found by fuzzing).
        for unit in ["!", "a.", "a|", "*.", "& ", "[*]", "a[?b]"] {
            let path = format!("{}a", unit.repeat(1023 / unit.len()));
            let err = check_jmes_path(&path).unwrap_err();
            assert!(err.contains("operators; the limit is 64"), "{unit}: {err}");
        }
        assert!(check_jmes_path(&format!("{}a", "!".repeat(64))).is_ok());
        assert_eq!(
            check_jmes_path(&format!("{}a", "!".repeat(65))).unwrap_err(),
            "has 65 operators; the limit is 64"
        );
        // Quoted text is not counted.
        assert!(check_jmes_path(&format!("'{}'", ".".repeat(500))).is_ok());
        assert!(check_jmes_path(&format!("a.\"{}\"", "!".repeat(500))).is_ok());
    }

    #[test]
    fn every_duration_unit_and_fraction() {
        for (s, want) in [
            ("1ns", 1),
            ("1000000000ns", 1),
            ("1000000001ns", 2),
            ("2000000000ns", 2),
            ("1000000us", 1),
            ("1500000us", 2),
            ("3000000µs", 3),
            ("2000ms", 2),
            ("2001ms", 3),
            ("2s", 2),
            ("2m", 120),
            ("2h", 7200),
            ("1h1m1s", 3661),
            (".5m", 30),
            ("5.m", 300),
            ("0.25h", 900),
            ("1.000000001s", 2),
            (" 10s ", 10),
        ] {
            assert_eq!(parse_duration_secs(s), Ok(want), "{s}");
        }
        for (s, want) in [
            (
                ".s",
                "\".s\" is not a duration; expected e.g. 30s, 5m, 1h30m",
            ),
            (
                "1.5.5s",
                "\"1.5.5s\" is not a duration; expected e.g. 30s, 5m, 1h30m",
            ),
            ("s", "\"s\" is not a duration; expected e.g. 30s, 5m, 1h30m"),
            ("1s5", "\"1s5\" has no unit; write e.g. 1s5s or 1s5m"),
            (
                "5 s",
                "\"5 s\" has unknown unit \" s\"; use ns, us, ms, s, m or h",
            ),
            (
                "5S",
                "\"5S\" has unknown unit \"S\"; use ns, us, ms, s, m or h",
            ),
            (
                " ",
                "is empty; expected a duration such as 30s, 5m or 1h30m",
            ),
        ] {
            assert_eq!(parse_duration_secs(s).unwrap_err(), want, "{s:?}");
        }
        // Overflow of the sum, not only of one part.
        let big = format!("{}h", u128::MAX / 3_600_000_000_000);
        assert!(
            parse_duration_secs(&format!("{big}{big}"))
                .unwrap_err()
                .contains("too large")
        );
        // Seconds beyond u64.
        let secs = format!("{}s", u128::from(u64::MAX) + 1);
        assert_eq!(
            parse_duration_secs(&secs).unwrap_err(),
            format!("{secs:?} is too large")
        );
        assert_eq!(parse_duration_secs(&format!("{}s", u64::MAX)), Ok(u64::MAX));
    }

    #[test]
    fn region_shapes() {
        for r in ["a-b-1", "us-east-65535", "us-iso-b-east-1"] {
            assert!(is_region(r), "{r}");
        }
        for r in [
            "us-1",
            "us-east-65536",
            "us-east-",
            "-east-1",
            "us-e1-1",
            "us-east-1a",
        ] {
            assert!(!is_region(r), "{r}");
        }
        assert_eq!(check_region(" eu-west-1 ").unwrap(), "eu-west-1");
        assert_eq!(
            check_region("us-east").unwrap_err(),
            "\"us-east\" is not an AWS region (e.g. us-east-1)"
        );
    }

    #[test]
    fn role_arn_fields_are_each_checked() {
        assert_eq!(
            check_role_arn(" arn:aws-us-gov:iam::123456789012:role/a/b ").unwrap(),
            "arn:aws-us-gov:iam::123456789012:role/a/b"
        );
        for bad in [
            "arn:gcp:iam::123456789012:role/x",
            "arn:aws:sts::123456789012:role/x",
            "arn:aws:iam:us-east-1:123456789012:role/x",
            "arn:aws:iam::12345678901:role/x",
            "arn:aws:iam::1234567890123:role/x",
            "arn:aws:iam::12345678901x:role/x",
            "arn:aws:iam::123456789012:role/a/",
            "arn:aws:iam::123456789012:rolex",
            "urn:aws:iam::123456789012:role/x",
            "arn:aws:iam::123456789012",
        ] {
            assert_eq!(
                check_role_arn(bad).unwrap_err(),
                format!("{bad:?} is not an IAM role ARN (arn:aws:iam::123456789012:role/name)")
            );
        }
    }

    #[test]
    fn mode_bounds_and_read_bits() {
        for (s, want) in [
            ("0777", 0o777),
            ("0o777", 0o777),
            ("4", 0o4),
            ("040", 0o40),
            (" 0440 ", 0o440),
        ] {
            assert_eq!(parse_mode(s), Ok(want), "{s}");
        }
        for (s, want) in [
            (
                "01000",
                "\"01000\" is not an octal file mode between 0000 and 0777",
            ),
            ("", "\"\" is not an octal file mode (e.g. 0440)"),
            ("0o", "\"0o\" is not an octal file mode (e.g. 0440)"),
            ("8", "\"8\" is not an octal file mode (e.g. 0440)"),
            (
                "0",
                "\"0\" makes the files unreadable; include a read bit (e.g. 0440)",
            ),
            (
                "0333",
                "\"0333\" makes the files unreadable; include a read bit (e.g. 0440)",
            ),
        ] {
            assert_eq!(parse_mode(s).unwrap_err(), want, "{s:?}");
        }
    }

    #[test]
    fn container_name_bounds() {
        for ok in ["a", "0", "a-b", &"a".repeat(63)] {
            assert_eq!(check_container_name(ok), Ok(()), "{ok}");
        }
        assert_eq!(
            check_container_name("a.b").unwrap_err(),
            "\"a.b\" is not a valid container name"
        );
    }

    #[test]
    fn quotes_of_every_kind_hide_brackets() {
        assert_eq!(nesting_depth(r#"["[[\"[[" ]"#), 1);
        assert_eq!(nesting_depth("('((' (x))"), 2);
        assert_eq!(nesting_depth(r"[`\`[[`]"), 1);
        assert_eq!(nesting_depth("{'a' {b}} ["), 2);
        assert_eq!(nesting_depth("'unclosed [[["), 0);
    }
}
