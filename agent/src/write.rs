//! Atomic writes of a complete file set (kubelet AtomicWriter style).
//! Knows nothing of AWS or JMESPath.
//!
//! Layout under the mount directory:
//! ```text
//! ..1795400000.123456789_1a2b3c4d/   the current set: `..<secs>.<nanos>_<random>` (0755 dirs, files with their mode)
//! ..data -> ..1795400000.…            swapped with one rename(2)
//! db.json -> ..data/db.json                   one symlink per visible top-level name
//! ```
//! A reader opening `mount/x` resolves `..data` once, so it sees one complete set.
//! Unlike the kubelet, a replaced set is deleted only [`REPLACED_GRACE`] after
//! its replacement (by the next write or [`prune_replaced`]), so a reader that
//! resolved `..data` just before a swap never finds its file gone mid-lookup.
//!
//! Ownership: with an owner in the config the agent tries `chown(uid, gid)`;
//! when not permitted (EPERM, the agent is not root) it tries `chgrp(gid)`
//! (works when the agent is in that group, e.g. the pod's fsGroup), and when
//! that is refused too it leaves the files owned by the agent, which runs as
//! the app's uid when known. Ownership is not part of the change comparison.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use secrets_injector_shared::Owner;

use crate::Error;
use crate::split::OutFile;

/// The `..data` symlink that points at the current set.
pub const DATA_DIR: &str = "..data";
const DATA_TMP: &str = "..data_tmp";
/// A replaced set is kept this long, so a reader that resolved `..data` just
/// before the swap still finds its files (kubelet deletes it at once).
pub const REPLACED_GRACE: Duration = Duration::from_secs(2);

fn werr(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Write {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// Reject paths that could escape the mount or clash with the agent's internals.
fn check_paths(files: &[OutFile]) -> Result<(), Error> {
    let mut seen = BTreeSet::new();
    for f in files {
        let bad = f.path.is_empty()
            || f.path.starts_with('/')
            || f.path.starts_with("..")
            || f.path
                .split('/')
                .any(|c| c.is_empty() || c == "." || c == "..");
        if bad {
            return Err(werr(Path::new(&f.path), "unsafe output path"));
        }
        if !seen.insert(f.path.as_str()) {
            return Err(werr(
                Path::new(&f.path),
                "two secrets write the same output path",
            ));
        }
    }
    for a in &seen {
        if seen
            .iter()
            .any(|b| b.len() > a.len() && b.starts_with(a) && b.as_bytes()[a.len()] == b'/')
        {
            return Err(werr(
                Path::new(a),
                "is both a file and a directory of other output files",
            ));
        }
    }
    Ok(())
}

/// Visible top-level names of a file set.
fn top_names(files: &[OutFile]) -> BTreeSet<String> {
    files
        .iter()
        .map(|f| f.path.split('/').next().unwrap_or_default().to_string())
        .collect()
}

/// path → (mode, contents) of the set currently behind `..data`, if readable.
fn current_set(mount: &Path) -> Option<BTreeMap<String, (u32, Vec<u8>)>> {
    fn walk(
        dir: &Path,
        prefix: &str,
        out: &mut BTreeMap<String, (u32, Vec<u8>)>,
    ) -> std::io::Result<()> {
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            let meta = entry.metadata()?;
            if meta.is_dir() {
                walk(&entry.path(), &rel, out)?;
            } else {
                let contents = fs::read(entry.path())?;
                out.insert(rel, (meta.permissions().mode() & 0o7777, contents));
            }
        }
        Ok(())
    }
    let data = mount.join(DATA_DIR);
    let mut out = BTreeMap::new();
    walk(&data, "", &mut out).ok()?;
    Some(out)
}

fn unchanged(mount: &Path, files: &[OutFile]) -> bool {
    let Some(current) = current_set(mount) else {
        return false;
    };
    current.len() == files.len()
        && files.iter().all(|f| {
            current
                .get(&f.path)
                .is_some_and(|(mode, c)| *mode == f.mode & 0o7777 && *c == f.contents)
        })
        && top_names(files).iter().all(|n| is_our_link(mount, n))
}

/// Is `mount/name` the symlink `..data/name` the writer makes?
fn is_our_link(mount: &Path, name: &str) -> bool {
    fs::read_link(mount.join(name)).is_ok_and(|t| t == Path::new(DATA_DIR).join(name))
}

fn hidden_dir_name() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format!(
        "..{}.{:09}_{:08x}",
        now.as_secs(),
        now.subsec_nanos(),
        rand::random::<u32>()
    )
}

fn set_owner(path: &Path, owner: Option<Owner>) -> Result<(), Error> {
    let Some(owner) = owner else { return Ok(()) };
    let uid = owner.uid.map(nix::unistd::Uid::from_raw);
    let gid = owner.gid.map(nix::unistd::Gid::from_raw);
    if uid.is_none() && gid.is_none() {
        return Ok(());
    }
    match nix::unistd::chown(path, uid, gid) {
        Ok(()) => Ok(()),
        Err(nix::errno::Errno::EPERM) => match nix::unistd::chown(path, None, gid) {
            Ok(()) | Err(nix::errno::Errno::EPERM) => Ok(()),
            Err(e) => Err(werr(path, e)),
        },
        Err(e) => Err(werr(path, e)),
    }
}

fn sync_dir(dir: &Path) -> Result<(), Error> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| werr(dir, e))
}

/// Fill the new hidden directory `dir` with `files`.
fn fill(dir: &Path, files: &[OutFile], owner: Option<Owner>) -> Result<(), Error> {
    fs::create_dir(dir).map_err(|e| werr(dir, e))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).map_err(|e| werr(dir, e))?;
    let mut dirs = BTreeSet::new();
    for f in files {
        let path = dir.join(&f.path);
        if let Some(parent) = path.parent()
            && parent != dir
            && dirs.insert(parent.to_path_buf())
        {
            fs::create_dir_all(parent).map_err(|e| werr(parent, e))?;
            // Every directory level below the hidden dir gets 0755, whatever the umask.
            let mut p = parent;
            while p != dir {
                fs::set_permissions(p, fs::Permissions::from_mode(0o755))
                    .map_err(|e| werr(p, e))?;
                p = p.parent().unwrap_or(dir);
            }
        }
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| werr(&path, e))?;
        file.write_all(&f.contents).map_err(|e| werr(&path, e))?;
        set_owner(&path, owner)?;
        // Mode after chown: chown may clear setuid bits, and the umask must not apply.
        file.set_permissions(fs::Permissions::from_mode(f.mode & 0o7777))
            .map_err(|e| werr(&path, e))?;
        file.sync_all().map_err(|e| werr(&path, e))?;
    }
    for d in &dirs {
        sync_dir(d)?;
    }
    sync_dir(dir)
}

/// Atomically replace the file set under `mount` with `files`. Returns whether
/// anything changed (paths, modes or contents); an unchanged set is not rewritten.
/// On an error before the `..data` swap, the previous set is left untouched.
pub fn write_atomic(mount: &Path, files: &[OutFile], owner: Option<Owner>) -> Result<bool, Error> {
    write_atomic_with_grace(mount, files, owner, REPLACED_GRACE)
}

/// [`write_atomic`] with an explicit grace period for replaced sets (tests use zero).
pub fn write_atomic_with_grace(
    mount: &Path,
    files: &[OutFile],
    owner: Option<Owner>,
    grace: Duration,
) -> Result<bool, Error> {
    check_paths(files)?;
    if unchanged(mount, files) {
        return Ok(false);
    }
    let names = top_names(files);
    for n in &names {
        let p = mount.join(n);
        if let Ok(meta) = fs::symlink_metadata(&p)
            && !meta.file_type().is_symlink()
        {
            return Err(werr(
                &p,
                "exists and is not a symlink managed by the agent; remove it",
            ));
        }
    }
    let name = hidden_dir_name();
    let new_dir = mount.join(&name);
    let tmp = mount.join(DATA_TMP);
    let swap = || -> Result<(), Error> {
        fill(&new_dir, files, owner)?;
        match fs::remove_file(&tmp) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(werr(&tmp, e)),
        }
        std::os::unix::fs::symlink(&name, &tmp).map_err(|e| werr(&tmp, e))?;
        fs::rename(&tmp, mount.join(DATA_DIR)).map_err(|e| werr(&tmp, e))
    };
    // Visible names first (dangling until the swap, harmless): once `..data`
    // moves, every file is already reachable, so a probe that sees `..data`
    // never races the links.
    let mut created = Vec::new();
    let mut link_all = || -> Result<(), Error> {
        for n in &names {
            if !is_our_link(mount, n) {
                let p = mount.join(n);
                let _ = fs::remove_file(&p);
                std::os::unix::fs::symlink(Path::new(DATA_DIR).join(n), &p)
                    .map_err(|e| werr(&p, e))?;
                created.push(p);
            }
        }
        Ok(())
    };
    if let Err(e) = link_all().and_then(|()| swap()) {
        let _ = fs::remove_file(&tmp);
        let _ = fs::remove_dir_all(&new_dir);
        // Links to names the previous set does not have would dangle: drop them.
        for p in created.iter().filter(|p| fs::metadata(p).is_err()) {
            let _ = fs::remove_file(p);
        }
        return Err(e);
    }
    remove_stale(mount, &names, &name, grace)?;
    sync_dir(mount)?;
    Ok(true)
}

/// Remove visible symlinks of names no longer configured, and hidden sets
/// replaced more than `grace` ago (plus leftovers of interrupted runs).
fn remove_stale(
    mount: &Path,
    names: &BTreeSet<String>,
    current: &str,
    grace: Duration,
) -> Result<(), Error> {
    let entries = fs::read_dir(mount).map_err(|e| werr(mount, e))?;
    for entry in entries.flatten() {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if !file_name.starts_with("..")
            && !names.contains(&file_name)
            && fs::read_link(&path).is_ok_and(|t| t.starts_with(DATA_DIR))
        {
            fs::remove_file(&path).map_err(|e| werr(&path, e))?;
        }
    }
    remove_replaced(mount, current, grace)
}

/// Delete the hidden sets replaced at least `grace` ago, so old secret values
/// do not outlive a rotation on the volume. Sidecars call this once the grace
/// period after a swap has passed; a set newer than the live one (a write in
/// progress) is never touched.
pub fn prune_replaced(mount: &Path, grace: Duration) -> Result<(), Error> {
    let link = mount.join(DATA_DIR);
    let current = fs::read_link(&link).map_err(|e| werr(&link, e))?;
    remove_replaced(mount, &current.to_string_lossy(), grace)
}

fn remove_replaced(mount: &Path, current: &str, grace: Duration) -> Result<(), Error> {
    let mut sets = Vec::new();
    let entries = fs::read_dir(mount).map_err(|e| werr(mount, e))?;
    for entry in entries.flatten() {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        if file_name.starts_with("..")
            && file_name != DATA_DIR
            && file_name != current
            && entry.file_type().is_ok_and(|t| t.is_dir())
        {
            sets.push(file_name);
        }
    }
    let now = SystemTime::now();
    let current_time = set_time(current);
    let mut times: Vec<SystemTime> = sets.iter().filter_map(|n| set_time(n)).collect();
    times.extend(current_time);
    times.sort();
    for name in sets {
        let made = set_time(&name);
        if let (Some(made), Some(live)) = (made, current_time)
            && made > live
        {
            continue; // being written right now
        }
        // A set was replaced when its successor was made; unparsable names are leftovers.
        let replaced_at = made.and_then(|ts| times.iter().find(|t| **t > ts).copied());
        let expired =
            replaced_at.is_none_or(|t| now.duration_since(t).unwrap_or_default() >= grace);
        if expired {
            let p = mount.join(&name);
            fs::remove_dir_all(&p).map_err(|e| werr(&p, e))?;
        }
    }
    Ok(())
}

/// Remove what a writer killed mid-write (`kill -9`, OOM, node crash) left:
/// hidden sets newer than the live one (or every set when there is no
/// `..data` yet) and a `..data_tmp` link. `..data` never pointed at them, so
/// no reader can be inside one. Call once at start, before the first write:
/// the agent is the volume's only writer. Returns how many were removed.
pub fn remove_interrupted(mount: &Path) -> Result<usize, Error> {
    let live = fs::read_link(mount.join(DATA_DIR))
        .ok()
        .map(|t| t.to_string_lossy().into_owned());
    let live_time = live.as_deref().and_then(set_time);
    let mut removed = 0;
    let entries = match fs::read_dir(mount) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(werr(mount, e)),
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if name == DATA_TMP {
            fs::remove_file(&path).map_err(|e| werr(&path, e))?;
            removed += 1;
            continue;
        }
        let Some(made) = set_time(&name) else {
            continue;
        };
        let interrupted = live.as_deref() != Some(name.as_str())
            && live_time.is_none_or(|live| made > live)
            && entry.file_type().is_ok_and(|t| t.is_dir());
        if interrupted {
            fs::remove_dir_all(&path).map_err(|e| werr(&path, e))?;
            removed += 1;
        }
    }
    if removed > 0 {
        sync_dir(mount)?;
    }
    Ok(removed)
}

/// Creation time encoded in a hidden set's name (`..<secs>.<nanos>_<random>`).
fn set_time(name: &str) -> Option<SystemTime> {
    let rest = name.strip_prefix("..")?;
    let (ts, _) = rest.split_once('_')?;
    let (secs, nanos) = ts.split_once('.')?;
    let d = Duration::new(secs.parse().ok()?, nanos.parse().ok()?);
    UNIX_EPOCH.checked_add(d)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn f(path: &str, contents: &str, mode: u32) -> OutFile {
        OutFile {
            path: path.into(),
            contents: contents.as_bytes().to_vec(),
            mode,
        }
    }

    fn paths_error(paths: &[&str]) -> Option<String> {
        let files: Vec<OutFile> = paths.iter().map(|p| f(p, "x", 0o400)).collect();
        check_paths(&files).err().map(|e| e.to_string())
    }

    #[test]
    fn every_unsafe_path_is_refused() {
        for p in [
            "", "/a", "..a", "..", ".", "a/..", "a/../b", "a/.", "a/./b", "a//b", "a/", "./a",
        ] {
            assert_eq!(
                paths_error(&[p]),
                Some(format!("writing {p}: unsafe output path")),
                "{p:?}"
            );
        }
        for p in ["a", "a/b", ".a", "a..", "a/.b", "a/b..c/d"] {
            assert_eq!(paths_error(&[p]), None, "{p:?}");
        }
    }

    #[test]
    fn clashing_paths_are_refused() {
        assert_eq!(
            paths_error(&["a", "b", "a"]),
            Some("writing a: two secrets write the same output path".into())
        );
        for set in [&["a", "a/b"][..], &["a/b/c", "a/b"], &["x", "a/b", "a"]] {
            let want = if set.contains(&"a/b/c") { "a/b" } else { "a" };
            assert_eq!(
                paths_error(set),
                Some(format!(
                    "writing {want}: is both a file and a directory of other output files"
                )),
                "{set:?}"
            );
        }
        for set in [
            &["a", "ab"][..],
            &["a/b", "a/bc"],
            &["ab/c", "a"],
            &["a/b", "a/c"],
        ] {
            assert_eq!(paths_error(set), None, "{set:?}");
        }
    }

    #[test]
    fn top_names_are_first_segments() {
        let names = top_names(&[f("a", "", 0), f("d/x", "", 0), f("d/y/z", "", 0)]);
        assert_eq!(names.into_iter().collect::<Vec<_>>(), ["a", "d"]);
    }

    #[test]
    fn set_names_encode_their_creation_time() {
        let before = SystemTime::now() - Duration::from_secs(1);
        let name = hidden_dir_name();
        let made = set_time(&name).unwrap();
        assert!(made >= before && made <= SystemTime::now() + Duration::from_secs(1));
        assert_eq!(
            set_time("..100.000000005_0000abcd"),
            Some(UNIX_EPOCH + Duration::new(100, 5))
        );
        for bad in [
            "100.5_x", "..100_x", "..100.5", "..x.5_y", "..1.x_y", DATA_DIR, DATA_TMP,
        ] {
            assert_eq!(set_time(bad), None, "{bad}");
        }
    }

    /// A hidden set dir named as made `age` ago (suffix tells sets of one instant apart).
    fn set_dir(mount: &Path, made: SystemTime, suffix: &str) -> String {
        let d = made.duration_since(UNIX_EPOCH).unwrap();
        let name = format!("..{}.{:09}_{suffix}", d.as_secs(), d.subsec_nanos());
        fs::create_dir(mount.join(&name)).unwrap();
        fs::write(mount.join(&name).join("f"), "old").unwrap();
        name
    }

    fn hidden(mount: &Path) -> BTreeSet<String> {
        fs::read_dir(mount)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".."))
            .collect()
    }

    #[test]
    fn a_replaced_set_lives_for_the_grace_after_its_successor() {
        let dir = tempfile::tempdir().unwrap();
        let m = dir.path();
        let now = SystemTime::now();
        let old = set_dir(m, now - Duration::from_secs(100), "00000001");
        let live = set_dir(m, now - Duration::from_secs(10), "00000002");
        std::os::unix::fs::symlink(&live, m.join(DATA_DIR)).unwrap();
        // Replaced 10 s ago: kept for a grace of a minute, gone for 5 s.
        prune_replaced(m, Duration::from_secs(60)).unwrap();
        assert!(hidden(m).contains(&old), "{:?}", hidden(m));
        prune_replaced(m, Duration::from_secs(5)).unwrap();
        assert_eq!(
            hidden(m),
            BTreeSet::from([live.clone(), DATA_DIR.to_string()])
        );
    }

    #[test]
    fn sets_newer_than_the_live_one_are_never_removed() {
        let dir = tempfile::tempdir().unwrap();
        let m = dir.path();
        let now = SystemTime::now();
        let live = set_dir(m, now - Duration::from_secs(100), "00000001");
        let writing = set_dir(m, now - Duration::from_secs(50), "00000002");
        remove_replaced(m, &live, Duration::ZERO).unwrap();
        assert_eq!(hidden(m), BTreeSet::from([live, writing]));
    }

    #[test]
    fn leftovers_are_removed_at_once_and_other_entries_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let m = dir.path();
        let now = SystemTime::now();
        let live = set_dir(m, now, "00000001");
        // Same instant as the live set but not it: a leftover with no successor.
        let twin = set_dir(m, now, "00000002");
        fs::create_dir(m.join("..junk")).unwrap();
        fs::write(m.join("..file"), "not a set").unwrap();
        fs::create_dir(m.join("visible")).unwrap();
        remove_replaced(m, &live, Duration::from_secs(3600)).unwrap();
        assert_eq!(
            hidden(m),
            BTreeSet::from([live.clone(), "..file".to_string()])
        );
        assert!(!hidden(m).contains(&twin));
        assert!(m.join("visible").is_dir());
    }

    #[test]
    fn stale_links_are_removed_but_not_other_links() {
        let dir = tempfile::tempdir().unwrap();
        let m = dir.path();
        write_atomic(m, &[f("a", "A", 0o440), f("gone", "G", 0o440)], None).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", m.join("mine")).unwrap();
        std::os::unix::fs::symlink("..data_elsewhere/x", m.join("near")).unwrap();
        write_atomic_with_grace(m, &[f("a", "A2", 0o440)], None, Duration::ZERO).unwrap();
        assert!(fs::symlink_metadata(m.join("gone")).is_err());
        assert_eq!(
            fs::read_link(m.join("mine")).unwrap(),
            Path::new("/etc/hostname")
        );
        // `..data_elsewhere` starts with `..data` as text, not as a path component.
        assert!(fs::symlink_metadata(m.join("near")).is_ok());
    }

    #[test]
    fn a_missing_link_or_changed_mode_is_a_change() {
        let dir = tempfile::tempdir().unwrap();
        let m = dir.path();
        let set = [f("a", "A", 0o440), f("d/x", "X", 0o400)];
        assert!(write_atomic(m, &set, None).unwrap());
        assert!(unchanged(m, &set));
        assert!(!write_atomic(m, &set, None).unwrap());
        fs::remove_file(m.join("d")).unwrap();
        assert!(!unchanged(m, &set));
        assert!(write_atomic(m, &set, None).unwrap());
        assert_eq!(fs::read_to_string(m.join("d/x")).unwrap(), "X");
        // Only the low 12 bits of the mode count.
        let same = [f("a", "A", 0o100440), f("d/x", "X", 0o400)];
        assert!(unchanged(m, &same));
        let other = [f("a", "A", 0o444), f("d/x", "X", 0o400)];
        assert!(!unchanged(m, &other));
        let more = [f("a", "A", 0o440), f("d/x", "X", 0o400), f("b", "B", 0o440)];
        assert!(!unchanged(m, &more));
        let fewer = [f("a", "A", 0o440)];
        assert!(!unchanged(m, &fewer));
        let renamed = [f("a", "A", 0o440), f("d/y", "X", 0o400)];
        assert!(!unchanged(m, &renamed));
        assert!(!unchanged(&m.join("nowhere"), &set));
    }

    #[test]
    fn prune_needs_a_live_set() {
        let dir = tempfile::tempdir().unwrap();
        let err = prune_replaced(dir.path(), Duration::ZERO)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("writing ") && err.contains("..data"),
            "{err}"
        );
    }

    #[test]
    fn syncing_a_missing_directory_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("gone");
        let err = sync_dir(&gone).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("writing {}: ", gone.display())),
            "{err}"
        );
        sync_dir(dir.path()).unwrap();
    }

    #[test]
    fn with_zero_grace_a_set_replaced_by_a_future_dated_one_goes_at_once() {
        // The clock stepped back after the live set was made: its successor's
        // time is in the future, so the elapsed time since the replacement is
        // zero, which a zero grace has already reached.
        let dir = tempfile::tempdir().unwrap();
        let m = dir.path();
        let now = SystemTime::now();
        let old = set_dir(m, now - Duration::from_secs(100), "00000001");
        let live = set_dir(m, now + Duration::from_secs(3600), "00000002");
        remove_replaced(m, &live, Duration::from_secs(1)).unwrap();
        assert!(hidden(m).contains(&old), "a positive grace keeps it");
        remove_replaced(m, &live, Duration::ZERO).unwrap();
        assert_eq!(hidden(m), BTreeSet::from([live]));
    }

    #[test]
    fn an_interrupted_write_is_only_a_set_newer_than_the_live_one() {
        let dir = tempfile::tempdir().unwrap();
        let m = dir.path();
        let now = SystemTime::now();
        let older = set_dir(m, now - Duration::from_secs(100), "00000001");
        let live = set_dir(m, now, "00000002");
        // Made in the same instant as the live set: not newer, so not interrupted.
        let twin = set_dir(m, now, "00000003");
        let newer = set_dir(m, now + Duration::from_secs(1), "00000004");
        std::os::unix::fs::symlink(&live, m.join(DATA_DIR)).unwrap();
        assert_eq!(remove_interrupted(m).unwrap(), 1);
        assert_eq!(
            hidden(m),
            BTreeSet::from([older, live, twin, DATA_DIR.to_string()])
        );
        assert!(!hidden(m).contains(&newer));
    }

    #[test]
    fn an_unreadable_mount_is_an_error_not_nothing_to_clean() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        fs::write(&file, "not a directory").unwrap();
        let err = remove_interrupted(&file).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("writing {}: ", file.display())),
            "{err}"
        );
        assert_eq!(remove_interrupted(&dir.path().join("missing")).unwrap(), 0);
    }

    #[test]
    fn a_directory_in_the_way_of_the_swap_link_is_reported_as_such() {
        let dir = tempfile::tempdir().unwrap();
        let m = dir.path();
        write_atomic(m, &[f("a", "A1", 0o440)], None).unwrap();
        fs::create_dir(m.join(DATA_TMP)).unwrap();
        let before = hidden(m);
        let err = write_atomic(m, &[f("a", "A2", 0o440)], None)
            .unwrap_err()
            .to_string();
        // The cause, not the later symlink(2) failure it would lead to (EEXIST).
        assert!(
            err.contains("..data_tmp") && err.contains("Is a directory"),
            "{err}"
        );
        assert_eq!(fs::read_to_string(m.join("a")).unwrap(), "A1");
        assert_eq!(hidden(m), before);
    }
}
