//! Safe relative output paths under the mount path.

/// Check a relative output path. `allow_dirs` permits `/`-separated sub-paths
/// (ASCP aliases); plain `secret-<file>` names must be single components.
/// Names starting with `..` are reserved for the agent's atomic-write internals.
pub fn check_relative(p: &str, allow_dirs: bool) -> Result<(), String> {
    if p.is_empty() {
        return Err("is empty".into());
    }
    if p.contains('\0') {
        return Err("contains a NUL byte".into());
    }
    if p.starts_with('/') {
        return Err("must be relative, not absolute".into());
    }
    if p.len() > 1024 {
        return Err("is longer than 1024 bytes".into());
    }
    if !allow_dirs && p.contains('/') {
        return Err("must be a plain file name without '/'".into());
    }
    for comp in p.split('/') {
        match comp {
            "" => return Err("has an empty path segment (// or trailing /)".into()),
            "." | ".." => return Err(format!("must not contain {comp:?} segments")),
            c if c.starts_with("..") => {
                return Err("must not start a segment with '..' (reserved for the agent)".into());
            }
            c if c.len() > 255 => return Err("has a segment longer than 255 bytes".into()),
            _ => {}
        }
    }
    Ok(())
}

/// Check an absolute mount path.
pub fn check_absolute(p: &str) -> Result<(), String> {
    if !p.starts_with('/') {
        return Err("must be an absolute path".into());
    }
    match p.trim_end_matches('/').strip_prefix('/') {
        Some(rest) if !rest.is_empty() => check_relative(rest, true),
        _ => Err("must not be the root directory".into()),
    }
}

/// Does `a` equal `b`, or is one a directory prefix of the other?
pub fn overlaps(a: &str, b: &str) -> bool {
    let under =
        |x: &str, y: &str| x.len() > y.len() && x.starts_with(y) && x.as_bytes()[y.len()] == b'/';
    a == b || under(a, b) || under(b, a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_safe_names() {
        assert!(check_relative("db.json", false).is_ok());
        assert!(check_relative("db/user", true).is_ok());
        assert!(check_relative(".env", false).is_ok());
    }

    #[test]
    fn rejects_unsafe_names() {
        let cases = [
            ("", false, "is empty"),
            ("a\0b", false, "NUL"),
            ("/etc/passwd", true, "must be relative"),
            ("a/b", false, "without '/'"),
            ("a//b", true, "empty path segment"),
            ("a/", true, "empty path segment"),
            ("../x", true, "\"..\" segments"),
            ("a/./b", true, "\".\" segments"),
            ("..data", false, "reserved"),
        ];
        for (p, dirs, want) in cases {
            let err = check_relative(p, dirs).unwrap_err();
            assert!(err.contains(want), "{p:?}: {err}");
        }
    }

    #[test]
    fn absolute_paths() {
        assert!(check_absolute("/mnt/secrets").is_ok());
        assert!(check_absolute("/mnt/secrets/").is_ok());
        assert!(check_absolute("mnt").unwrap_err().contains("absolute"));
        assert!(check_absolute("/").unwrap_err().contains("root"));
        assert!(check_absolute("//").unwrap_err().contains("root"));
        assert!(check_absolute("///").unwrap_err().contains("root"));
        assert!(check_absolute("//mnt").is_err());
        assert!(check_absolute("/a/../b").is_err());
    }

    #[test]
    fn overlap_is_prefix_by_segment() {
        assert!(overlaps("a", "a"));
        assert!(overlaps("a", "a/b"));
        assert!(overlaps("a/b", "a"));
        assert!(!overlaps("a", "ab"));
        assert!(!overlaps("a/b", "a/c"));
    }

    #[test]
    fn length_limits_are_pinned_on_both_sides() {
        let seg = "a".repeat(255);
        assert!(check_relative(&seg, false).is_ok());
        assert_eq!(
            check_relative(&format!("{seg}a"), false).unwrap_err(),
            "has a segment longer than 255 bytes"
        );
        assert_eq!(
            check_relative(&format!("x/{seg}a"), true).unwrap_err(),
            "has a segment longer than 255 bytes"
        );
        // 5 segments of 204 bytes and 4 slashes: exactly 1024 bytes.
        let at_limit = vec!["b".repeat(204); 5].join("/");
        assert_eq!(at_limit.len(), 1024);
        assert!(check_relative(&at_limit, true).is_ok());
        assert_eq!(
            check_relative(&format!("{at_limit}b"), true).unwrap_err(),
            "is longer than 1024 bytes"
        );
    }

    #[test]
    fn every_rejection_has_its_own_message() {
        for (p, dirs, want) in [
            ("", true, "is empty"),
            ("a\0", true, "contains a NUL byte"),
            ("/a", false, "must be relative, not absolute"),
            ("a/b", false, "must be a plain file name without '/'"),
            ("/", true, "must be relative, not absolute"),
            ("a/", true, "has an empty path segment (// or trailing /)"),
            (".", false, "must not contain \".\" segments"),
            ("..", false, "must not contain \"..\" segments"),
            ("a/..", true, "must not contain \"..\" segments"),
            (
                "...",
                false,
                "must not start a segment with '..' (reserved for the agent)",
            ),
            (
                "a/..b",
                true,
                "must not start a segment with '..' (reserved for the agent)",
            ),
        ] {
            assert_eq!(check_relative(p, dirs).unwrap_err(), want, "{p:?}");
        }
        for ok in ["a..", "a..b", ".a", "a.b/c.d"] {
            assert!(check_relative(ok, true).is_ok(), "{ok}");
        }
    }

    #[test]
    fn absolute_paths_check_what_follows_the_root() {
        assert!(check_absolute("/a").is_ok());
        assert!(check_absolute("/a/b/").is_ok());
        assert_eq!(check_absolute("").unwrap_err(), "must be an absolute path");
        assert_eq!(
            check_absolute("a/b").unwrap_err(),
            "must be an absolute path"
        );
        assert_eq!(
            check_absolute("/").unwrap_err(),
            "must not be the root directory"
        );
        assert_eq!(
            check_absolute("/a/./b").unwrap_err(),
            "must not contain \".\" segments"
        );
        assert_eq!(
            check_absolute(&format!("/{}", "a".repeat(256))).unwrap_err(),
            "has a segment longer than 255 bytes"
        );
    }

    #[test]
    fn overlap_needs_a_whole_segment_prefix() {
        for (a, b, want) in [
            ("a/b", "a/b", true),
            ("a", "a/b/c", true),
            ("a/b/c", "a/b", true),
            ("a/bc", "a/b", false),
            ("a/b", "a/bc", false),
            ("ab", "a", false),
            ("a", "b", false),
            ("b/a", "a", false),
        ] {
            assert_eq!(overlaps(a, b), want, "{a:?} {b:?}");
        }
    }
}
