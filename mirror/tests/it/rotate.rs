//! Hard-link snapshots: `fs_mirror rotate` makes one beside the mirror, later changes on the
//! source (content, chmod, delete, new files) reach the mirror but never the snapshot (same
//! content, same inodes, same modes), `--keep` drops the oldest, a running fs_mirror keeps
//! the directory to itself, and `--rotate-at` takes the day's snapshot in the running client.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::*;

/// Every path of a snapshot with its inode, mode and content (links: their target).
fn state(root: &Path) -> BTreeMap<PathBuf, (u64, u32, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let content = if m.file_type().is_symlink() {
                std::fs::read_link(&p)
                    .unwrap()
                    .into_os_string()
                    .into_encoded_bytes()
            } else if m.is_dir() {
                stack.push(p.clone());
                Vec::new()
            } else {
                std::fs::read(&p).unwrap()
            };
            out.insert(
                p.strip_prefix(root).unwrap().to_path_buf(),
                (m.ino(), m.mode(), content),
            );
        }
    }
    out
}

fn rotate(dir: &Path, keep: &str) -> std::process::Output {
    Command::new(bin("fs_mirror"))
        .arg("rotate")
        .arg(dir)
        .args(["--keep", keep])
        .output()
        .unwrap()
}

fn settled(m: &Path) -> bool {
    // SESSION,SERIAL (`applied` pads the serial to a fixed width).
    let read = |p: &str| {
        let s = std::fs::read_to_string(m.join(p)).ok()?;
        let (session, serial) = s.trim().split_once(',')?;
        Some((session.to_string(), serial.trim().to_string()))
    };
    matches!((read("sn"), read(".fs_mirror/applied")), (Some(a), Some(b)) if a == b)
}

#[test]
fn a_snapshot_never_changes_after_and_keep_drops_the_oldest() {
    let s = Setup::new();
    std::fs::create_dir_all(s.src.join("d/e")).unwrap();
    std::fs::write(s.src.join("a"), b"one").unwrap();
    std::fs::write(s.src.join("c"), b"chmod me").unwrap();
    std::fs::write(s.src.join("d/e/b"), b"deep").unwrap();
    std::os::unix::fs::symlink("a", s.src.join("l")).unwrap();
    let d = s.mirrord(&[]);
    let m = s.path("fs_mirror/www1");
    std::fs::create_dir_all(&m).unwrap();
    let mut c = FsMirror::start(d.port, &m, &[]);
    converge(&s.src, &s.mirrored(&m), 30, &|| c.log());
    eventually(30, "sn settled", || {
        settled(&m).then_some(()).ok_or_else(|| c.log())
    });

    // A running fs_mirror has the directory to itself.
    let out = rotate(&m, "2");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--rotate-at"), "{err}");
    c.kill();

    let out = rotate(&m, "2");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let first = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    assert!(
        first.starts_with(s.path("fs_mirror/snapshots/www1")),
        "{}",
        first.display()
    );
    let snapped = state(&first);
    assert!(
        !snapped.contains_key(Path::new("sn")) && !snapped.contains_key(Path::new(".fs_mirror"))
    );
    let src_rel = s.src.strip_prefix("/").unwrap();
    let mirror_a = std::fs::metadata(s.mirrored(&m).join("a")).unwrap();
    assert_eq!(
        snapped[&src_rel.join("a")].0,
        mirror_a.ino(),
        "not a hard link"
    );
    assert_eq!(snapped[&src_rel.join("a")].2, b"one");

    // Later changes reach the mirror, never the snapshot.
    let c = FsMirror::start(d.port, &m, &[]);
    std::fs::write(s.src.join("a"), b"two").unwrap();
    std::fs::set_permissions(s.src.join("c"), std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::remove_dir_all(s.src.join("d")).unwrap();
    std::fs::write(s.src.join("new"), b"new").unwrap();
    converge(&s.src, &s.mirrored(&m), 30, &|| c.log());
    assert_eq!(state(&first), snapped, "the snapshot changed");
    let c_mode = std::fs::metadata(s.mirrored(&m).join("c")).unwrap().mode() & 0o777;
    assert_eq!(c_mode, 0o600);
    eventually(30, "sn settled", || {
        settled(&m).then_some(()).ok_or_else(|| c.log())
    });
    drop(c);

    // Two more: the first is dropped, the second is the mirror as it is now.
    let second = PathBuf::from(String::from_utf8_lossy(&rotate(&m, "2").stdout).trim());
    let third = PathBuf::from(String::from_utf8_lossy(&rotate(&m, "2").stdout).trim());
    assert!(!first.exists(), "--keep 2 kept the oldest");
    assert!(second.exists() && third.exists() && second != third);
    assert_eq!(
        std::fs::read(second.join(src_rel).join("a")).unwrap(),
        b"two"
    );
    let names = std::fs::read_dir(s.path("fs_mirror/snapshots/www1"))
        .unwrap()
        .count();
    assert_eq!(names, 2);
}

#[test]
fn rotate_at_takes_the_days_snapshot_between_batches_once() {
    let s = Setup::new();
    std::fs::write(s.src.join("a"), b"one").unwrap();
    let d = s.mirrord(&[]);
    let m = s.path("fs_mirror/www2");
    std::fs::create_dir_all(&m).unwrap();
    // 00:00 has passed today whenever the test runs: due at once, then not again today.
    let c = FsMirror::start(d.port, &m, &["--rotate-at", "00:00", "--keep", "3"]);
    let snaps = s.path("fs_mirror/snapshots/www2");
    let count = || std::fs::read_dir(&snaps).map_or(0, |rd| rd.count());
    eventually(30, "the day's snapshot", || {
        if count() == 1 { Ok(()) } else { Err(c.log()) }
    });
    std::fs::write(s.src.join("b"), b"after").unwrap();
    converge(&s.src, &s.mirrored(&m), 30, &|| c.log());
    assert_eq!(count(), 1, "a second snapshot the same day");
    assert!(c.log().contains("snapshot "), "{}", c.log());
}
