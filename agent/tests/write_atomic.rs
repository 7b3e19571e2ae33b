//! write::write_atomic: layout, modes, owner, stale removal, change detection,
//! failure leaves the old set, and atomicity under a concurrent reader.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use secrets_injector_agent::split::OutFile;
use std::time::Duration;

use secrets_injector_agent::write::{DATA_DIR, write_atomic, write_atomic_with_grace};
use secrets_injector_shared::Owner;

fn f(path: &str, contents: &str, mode: u32) -> OutFile {
    OutFile {
        path: path.into(),
        contents: contents.as_bytes().to_vec(),
        mode,
    }
}

fn read(dir: &Path, p: &str) -> String {
    std::fs::read_to_string(dir.join(p)).unwrap()
}

fn hidden_dirs(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("..") && n != DATA_DIR)
        .collect()
}

#[test]
fn writes_symlinked_layout_with_modes() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path();
    let changed = write_atomic(
        m,
        &[
            f("a", "A", 0o440),
            f("d/x", "X", 0o400),
            f("d/sub/y", "Y", 0o444),
        ],
        None,
    )
    .unwrap();
    assert!(changed);
    assert_eq!(read(m, "a"), "A");
    assert_eq!(read(m, "d/x"), "X");
    assert_eq!(read(m, "d/sub/y"), "Y");
    assert_eq!(
        std::fs::read_link(m.join("a")).unwrap(),
        Path::new("..data/a")
    );
    assert_eq!(
        std::fs::read_link(m.join("d")).unwrap(),
        Path::new("..data/d")
    );
    let target = std::fs::read_link(m.join(DATA_DIR)).unwrap();
    assert_eq!(hidden_dirs(m), [target.to_string_lossy().into_owned()]);
    let mode = |p: &str| std::fs::metadata(m.join(p)).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode("a"), 0o440);
    assert_eq!(mode("d/x"), 0o400);
    assert_eq!(mode("d/sub/y"), 0o444);
    assert_eq!(mode("d"), 0o755);
    assert_eq!(mode("d/sub"), 0o755);
    assert_eq!(mode(DATA_DIR), 0o755);
}

#[test]
fn owner_is_applied_or_falls_back_without_failing() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path();
    let root = nix::unistd::geteuid().is_root();
    // As root any owner works; otherwise root ownership is refused and the write must still succeed.
    let (uid, gid) = if root { (12345, 23456) } else { (0, 0) };
    let owner = Owner {
        uid: Some(uid),
        gid: Some(gid),
    };
    write_atomic(m, &[f("a", "A", 0o440)], Some(owner)).unwrap();
    let meta = std::fs::metadata(m.join("a")).unwrap();
    if root {
        assert_eq!((meta.uid(), meta.gid()), (12345, 23456));
    } else {
        assert_eq!(meta.uid(), nix::unistd::geteuid().as_raw());
    }
    assert_eq!(meta.permissions().mode() & 0o7777, 0o440);
}

#[test]
fn unchanged_set_is_not_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path();
    let set = [f("a", "A", 0o440), f("b", "B", 0o440)];
    assert!(write_atomic(m, &set, None).unwrap());
    let before = std::fs::read_link(m.join(DATA_DIR)).unwrap();
    assert!(!write_atomic(m, &set, None).unwrap());
    assert_eq!(std::fs::read_link(m.join(DATA_DIR)).unwrap(), before);
    assert!(write_atomic(m, &[f("a", "A", 0o400), f("b", "B", 0o440)], None).unwrap());
    assert!(write_atomic(m, &[f("a", "A2", 0o400), f("b", "B", 0o440)], None).unwrap());
    assert!(write_atomic(m, &[f("a", "A2", 0o400)], None).unwrap());
}

#[test]
fn removes_names_no_longer_configured() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path();
    write_atomic(
        m,
        &[
            f("a", "A", 0o440),
            f("old", "O", 0o440),
            f("d/x", "X", 0o440),
        ],
        None,
    )
    .unwrap();
    write_atomic_with_grace(
        m,
        &[f("a", "A2", 0o440), f("new", "N", 0o440)],
        None,
        Duration::ZERO,
    )
    .unwrap();
    let mut names: Vec<_> = std::fs::read_dir(m)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with(".."))
        .collect();
    names.sort();
    assert_eq!(names, ["a", "new"]);
    assert_eq!(read(m, "a"), "A2");
    assert_eq!(hidden_dirs(m).len(), 1, "old hidden dir removed");
}

#[test]
fn replaced_set_is_kept_for_the_grace_period_then_removed() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path();
    write_atomic(m, &[f("a", "A1", 0o440)], None).unwrap();
    let first = std::fs::read_link(m.join(DATA_DIR)).unwrap();
    let hour = Duration::from_secs(3600);
    write_atomic_with_grace(m, &[f("a", "A2", 0o440)], None, hour).unwrap();
    assert!(
        m.join(&first).join("a").exists(),
        "replaced set still readable"
    );
    assert_eq!(hidden_dirs(m).len(), 2);
    write_atomic_with_grace(m, &[f("a", "A3", 0o440)], None, Duration::ZERO).unwrap();
    let live = std::fs::read_link(m.join(DATA_DIR)).unwrap();
    assert_eq!(hidden_dirs(m), [live.to_string_lossy().into_owned()]);
    assert_eq!(read(m, "a"), "A3");
}

#[test]
fn failure_mid_write_leaves_the_old_set() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path();
    write_atomic(m, &[f("a", "A1", 0o440), f("b", "B1", 0o440)], None).unwrap();
    let before = hidden_dirs(m);
    // a and b are written into the new dir, then the OS refuses the 300-byte name.
    let long = "c".repeat(300);
    let err = write_atomic(
        m,
        &[
            f("a", "A2", 0o440),
            f("b", "B2", 0o440),
            f(&long, "C", 0o440),
        ],
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("writing"), "{err}");
    assert_eq!(read(m, "a"), "A1");
    assert_eq!(read(m, "b"), "B1");
    assert_eq!(hidden_dirs(m), before, "new hidden dir removed");
    assert!(!m.join("..data_tmp").exists());
    assert!(!m.join(&long).exists());
}

#[test]
fn rejects_clashing_and_unsafe_paths_before_touching_anything() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path();
    for set in [
        vec![f("a", "1", 0o440), f("a", "2", 0o440)],
        vec![f("a", "1", 0o440), f("a/b", "2", 0o440)],
        vec![f("../x", "1", 0o440)],
        vec![f("..data", "1", 0o440)],
        vec![f("/abs", "1", 0o440)],
    ] {
        assert!(write_atomic(m, &set, None).is_err(), "{set:?}");
    }
    assert_eq!(std::fs::read_dir(m).unwrap().count(), 0);
    std::fs::write(m.join("user-file"), "keep").unwrap();
    let err = write_atomic(m, &[f("user-file", "x", 0o440)], None).unwrap_err();
    assert!(err.to_string().contains("not a symlink"), "{err}");
    assert_eq!(read(m, "user-file"), "keep");
}

/// A generation's file: header, filler, trailer, so a partial read is detectable.
fn gen_file(path: &str, n: usize) -> OutFile {
    let body = format!("gen={n};{};end", "x".repeat(8192));
    OutFile {
        path: path.into(),
        contents: body.into_bytes(),
        mode: 0o444,
    }
}

fn parse_gen(s: &str) -> usize {
    assert!(s.ends_with(";end"), "partial file read ({} bytes)", s.len());
    s.strip_prefix("gen=")
        .and_then(|r| r.split(';').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("malformed file ({} bytes)", s.len()))
}

#[test]
fn concurrent_reader_always_sees_a_complete_consistent_set() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().to_path_buf();
    write_atomic(&m, &[gen_file("a", 0), gen_file("b", 0)], None).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (m, done) = (m.clone(), done.clone());
        std::thread::spawn(move || {
            let (mut consistent_reads, mut raced) = (0usize, 0usize);
            let mut last = 0;
            while !done.load(Ordering::SeqCst) {
                // Visible names always resolve to a complete file.
                let a = std::fs::read_to_string(m.join("a")).expect("visible a is always there");
                let g = parse_gen(&a);
                assert!(g >= last, "generation went backwards: {g} < {last}");
                last = g;
                // Within one ..data resolution, a and b carry the same generation.
                let target = std::fs::read_link(m.join(DATA_DIR)).expect("..data always exists");
                let set = m.join(&target);
                match (
                    std::fs::read_to_string(set.join("a")),
                    std::fs::read_to_string(set.join("b")),
                ) {
                    (Ok(a), Ok(b)) => {
                        assert_eq!(parse_gen(&a), parse_gen(&b), "mixed set");
                        consistent_reads += 1;
                    }
                    // Only allowed when the set was replaced and removed meanwhile.
                    _ => {
                        let now = std::fs::read_link(m.join(DATA_DIR)).unwrap();
                        assert_ne!(now, target, "file missing from the live set");
                        raced += 1;
                    }
                }
            }
            (consistent_reads, raced)
        })
    };
    for n in 1..=300 {
        write_atomic(&m, &[gen_file("a", n), gen_file("b", n)], None).unwrap();
    }
    done.store(true, Ordering::SeqCst);
    let (consistent, _raced) = reader.join().expect("reader saw a torn or missing file");
    assert!(consistent > 0, "the reader never completed a read");
    assert_eq!(parse_gen(&read(&m, "a")), 300);
    write_atomic_with_grace(
        &m,
        &[gen_file("a", 301), gen_file("b", 301)],
        None,
        Duration::ZERO,
    )
    .unwrap();
    assert_eq!(
        hidden_dirs(&m).len(),
        1,
        "replaced sets removed after the grace"
    );
}

/// What `kill -9` mid-write leaves: a half-filled set newer than the live one
/// and a `..data_tmp` link. The next start removes exactly those; the live
/// set and a replaced one still in its grace period stay.
#[test]
fn leftovers_of_an_interrupted_write_are_removed_at_start() {
    use secrets_injector_agent::write::remove_interrupted;
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path();
    assert_eq!(remove_interrupted(&m.join("missing")).unwrap(), 0);
    write_atomic_with_grace(m, &[f("a", "1", 0o444)], None, Duration::from_secs(60)).unwrap();
    write_atomic_with_grace(m, &[f("a", "2", 0o444)], None, Duration::from_secs(60)).unwrap();
    let live = std::fs::read_link(m.join(DATA_DIR)).unwrap();
    let live = live.to_string_lossy().into_owned();
    let mut before = hidden_dirs(m);
    before.sort();
    assert_eq!(before.len(), 2, "live + replaced: {before:?}");
    // Interrupted writes: a newer set (half filled) and the temp link.
    let half = "..9999999999.000000000_deadbeef";
    std::fs::create_dir(m.join(half)).unwrap();
    std::fs::write(m.join(half).join("a"), "half").unwrap();
    std::os::unix::fs::symlink(half, m.join("..data_tmp")).unwrap();
    assert_eq!(remove_interrupted(m).unwrap(), 2);
    let mut after = hidden_dirs(m);
    after.sort();
    assert_eq!(after, before, "only the leftovers go");
    assert_eq!(read(m, "a"), "2");
    assert_eq!(
        std::fs::read_link(m.join(DATA_DIR))
            .unwrap()
            .to_string_lossy(),
        live
    );
    assert_eq!(remove_interrupted(m).unwrap(), 0, "idempotent");

    // Killed during the very first write: no `..data`, every set is a leftover.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join(half)).unwrap();
    std::fs::write(dir.path().join("..secrets-injector-env"), "w").unwrap();
    assert_eq!(remove_interrupted(dir.path()).unwrap(), 1);
    assert!(hidden_dirs(dir.path()) == vec!["..secrets-injector-env".to_string()]);
}

/// As root every owner can be set: each part of an owner is applied on its
/// own, and what the owner leaves out stays the agent's.
#[test]
fn each_part_of_an_owner_is_applied() {
    if !nix::unistd::geteuid().is_root() {
        // Not root: chown to another uid is refused; the fallback is tested above.
        return;
    }
    let me = (
        nix::unistd::geteuid().as_raw(),
        nix::unistd::getegid().as_raw(),
    );
    for (uid, gid, want) in [
        (Some(12345), None, (12345, me.1)),
        (None, Some(23456), (me.0, 23456)),
        (Some(12345), Some(23456), (12345, 23456)),
        (None, None, me),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let m = dir.path();
        write_atomic(m, &[f("d/a", "A", 0o440)], Some(Owner { uid, gid })).unwrap();
        let meta = std::fs::metadata(m.join("d/a")).unwrap();
        assert_eq!((meta.uid(), meta.gid()), want, "{uid:?} {gid:?}");
        assert_eq!(meta.permissions().mode() & 0o7777, 0o440);
    }
}

/// The set's directories are 0755 even under a umask that would strip them
/// (the app may run as another user than the agent). The umask is the
/// process's: no other test here depends on it (every mode the writer sets is
/// explicit, and tempdirs are 0700 anyway).
#[test]
fn nested_directories_are_0755_whatever_the_umask() {
    use nix::sys::stat::{Mode, umask};
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path();
    let old = umask(Mode::from_bits_truncate(0o077));
    let result = write_atomic(
        m,
        &[f("d/sub/deeper/x", "X", 0o444), f("e/y", "Y", 0o444)],
        None,
    );
    umask(old);
    result.unwrap();
    let mode = |p: &str| std::fs::metadata(m.join(p)).unwrap().permissions().mode() & 0o7777;
    for d in [DATA_DIR, "d", "d/sub", "d/sub/deeper", "e"] {
        assert_eq!(mode(d), 0o755, "{d}");
    }
    assert_eq!(read(m, "d/sub/deeper/x"), "X");
}
