//! Faults of the backup host: a full disk and an immutable directory stop the client at the
//! record that failed, with a message naming the file and what to do; `sn` never passes that
//! record; once the cause is mended the client converges by itself.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::*;

fn root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// A small tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(at).unwrap();
        let st = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size}"),
                "fs_mirror-test",
            ])
            .arg(at)
            .status()
            .unwrap();
        assert!(st.success(), "mount -t tmpfs on {}", at.display());
        Tmpfs(at.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// The serial in `DIR/sn` once it caught up with the last record applied (sn is written
/// after each batch is synced, so it may lag a moment).
fn settled_sn(datadir: &Path) -> Option<u64> {
    let applied = std::fs::read_to_string(datadir.join(".fs_mirror/applied")).ok()?;
    let applied: u64 = applied.trim().split_once(',')?.1.parse().ok()?;
    sn_serial(datadir).filter(|sn| *sn == applied)
}

/// N of the message's "stopped applying after serial N": the last record carried out.
fn applied_in(line: &str) -> u64 {
    line.split("stopped applying after serial ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no serial in {line:?}"))
}

/// The serial in `DIR/sn`, once one is written.
fn sn_serial(datadir: &Path) -> Option<u64> {
    std::fs::read_to_string(datadir.join("sn"))
        .ok()
        .and_then(|s| s.trim().split_once(',')?.1.parse().ok())
}

#[test]
fn a_full_disk_stops_at_the_serial_says_so_and_converges_once_space_is_freed() {
    if !root() {
        eprintln!("SKIPPED: mounting a small tmpfs needs root");
        return;
    }
    let s = Setup::new();
    let small = Tmpfs::mount(&s.path("small"), "8m");
    let ballast = small.0.join("ballast");
    std::fs::write(&ballast, vec![7u8; 5 << 20]).unwrap();
    let m = small.0.join("mirror");
    std::fs::write(s.src.join("a"), b"fits").unwrap();
    let d = s.mirrord(&[]);
    let c = FsMirror::start(d.port, &m, &[]);
    let logs = || format!("{}\n{}", d.log(), c.log());
    converge(&s.src, &s.mirrored(&m), 30, &logs);
    let before = eventually(30, "sn written", || settled_sn(&m).ok_or_else(|| c.log()));

    // 4 MiB into the 3 MiB left.
    std::fs::write(s.src.join("big"), vec![1u8; 4 << 20]).unwrap();
    eventually(30, "the full disk reported twice", || {
        let l = c.log();
        if l.matches("No space left on device").count() >= 2 {
            Ok(())
        } else {
            Err(l)
        }
    });
    let log = c.log();
    let line = log
        .lines()
        .rfind(|l| l.contains("No space left"))
        .unwrap()
        .to_string();
    eprintln!("the client said: {line}");
    for want in [".fs_mirror/", "df -h", "retrying in", "nothing is skipped"] {
        assert!(line.contains(want), "{want:?} not in {line:?}");
    }
    // The record that failed comes after the last one applied; sn is not past it.
    let applied = applied_in(&line);
    let sn = sn_serial(&m).unwrap();
    assert!(
        sn >= before && sn <= applied,
        "sn at {sn}, past the last record applied ({applied})"
    );
    // (An earlier record may have brought a part of it, written while it grew.)
    let copy = std::fs::metadata(s.mirrored(&m).join("big")).map_or(0, |m| m.len());
    assert!(copy < 4 << 20, "the file that does not fit is there");

    std::fs::remove_file(&ballast).unwrap();
    converge(&s.src, &s.mirrored(&m), 120, &logs);
    eventually(30, "sn past the record", || {
        if sn_serial(&m) > Some(before) {
            Ok(())
        } else {
            Err(c.log())
        }
    });
}

#[test]
fn an_immutable_directory_is_retried_until_it_is_writable_again() {
    if !root() {
        eprintln!("SKIPPED: chattr +i needs root");
        return;
    }
    let s = Setup::new();
    std::fs::create_dir_all(s.src.join("locked")).unwrap();
    let d = s.mirrord(&[]);
    let m = s.path("mirror");
    let c = FsMirror::start(d.port, &m, &[]);
    let logs = || format!("{}\n{}", d.log(), c.log());
    converge(&s.src, &s.mirrored(&m), 30, &logs);
    let locked = s.mirrored(&m).join("locked");
    let chattr = |flag: &str| {
        let st = Command::new("chattr")
            .arg(flag)
            .arg(&locked)
            .status()
            .unwrap();
        st.success()
    };
    if !chattr("+i") {
        eprintln!("SKIPPED: chattr +i is not supported here");
        return;
    }
    let before = eventually(30, "sn written", || settled_sn(&m).ok_or_else(|| c.log()));
    std::fs::write(s.src.join("locked/f"), b"content").unwrap();
    // (Its content may come in more than one record: sn may pass the earlier ones.)
    let seen = std::panic::catch_unwind(|| {
        eventually(30, "the refusal reported", || {
            let l = c.log();
            match l.lines().rfind(|l| l.contains("Operation not permitted")) {
                Some(line) => Ok(line.to_string()),
                None => Err(l),
            }
        })
    });
    let sn_then = sn_serial(&m);
    chattr("-i");
    let line = seen.unwrap();
    assert!(line.contains("chattr -i"), "{line}");
    assert!(line.contains("locked"), "{line}");
    let applied = applied_in(&line);
    let sn = sn_then.unwrap();
    assert!(
        sn >= before && sn <= applied,
        "sn at {sn}, past the last record applied ({applied})"
    );
    converge(&s.src, &s.mirrored(&m), 120, &logs);
}
