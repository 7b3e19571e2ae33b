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
}
