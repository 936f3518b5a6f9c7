//! The last checks of an install, run as root on what it left (also after a failed or killed
//! install), so that no root step the recipe did not allow can leave a hole:
//!
//! - [`setid`]: no setuid or setgid file stays a package user's. A bit on a file a package user
//!   still owns (no allowed `chown root` made it root's) is removed and reported, saying what
//!   to add to `root.allow`.
//! - [`system_files`]: the files root tools keep for every package (`install.system_files`: the
//!   linker cache and its temporary file, the info `dir` file) are never claimed by a package,
//!   and given back to root when a tool run by the package wrote them — however it was called,
//!   even by absolute path past the wrappers. A touched linker cache is rebuilt as root.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::unistd::{Gid, Uid};

use crate::ctx::Ctx;
use crate::db::ReportRow;
use crate::fsutil::on_host;
use crate::manifest::Entry;
use crate::pathtext::quoted;
use crate::pkguser::{Ids, PkgUser};
use crate::recipe::RootStep;
use crate::track::Tracked;
use crate::wrap::Step;

use super::{Error, io, setup};

/// Whether `uid` is a package user's (this package's or another's).
fn package_uid(ids: &Ids, uid: u32) -> bool {
    (ids.first..=ids.last).contains(&uid)
}

/// Whether `gid` lets a package write where it should not: a package's group or the install
/// group (which may write every install directory).
fn package_gid(ids: &Ids, gid: u32) -> bool {
    gid == ids.install_gid || (ids.first..=ids.last).contains(&gid)
}

/// The setuid/setgid bits of a file that must go: setuid on a file a package user owns; setgid
/// on one a package user owns or whose group is a package's or the install group.
fn bits_to_remove(ids: &Ids, mode: u32, uid: u32, gid: u32) -> u32 {
    let mut bits = 0;
    if mode & 0o4000 != 0 && package_uid(ids, uid) {
        bits |= 0o4000;
    }
    if mode & 0o2000 != 0 && (package_uid(ids, uid) || package_gid(ids, gid)) {
        bits |= 0o2000;
    }
    bits
}

/// Whether a recorded chown (or chgrp, for setgid) step covers `path`.
fn covered(steps: &[Step], step: &str, path: &Path) -> bool {
    steps.iter().any(|s| {
        s.step == step
            && (s.path == path || (s.arg.starts_with("-R ") && path.starts_with(&s.path)))
    })
}

/// What to tell the user about a removed bit: what the recipe lacks to keep it.
fn advice(allow: &[RootStep], recorded: &[Step], path: &Path, bits: u32) -> String {
    let mut missing = Vec::new();
    for (kind, bit) in [
        (RootStep::Chown, 0),
        (RootStep::Setuid, 0o4000),
        (RootStep::Setgid, 0o2000),
    ] {
        if (bit == 0 || bits & bit != 0) && !allow.contains(&kind) {
            missing.push(format!("\"{}\"", kind.name()));
        }
    }
    let add = match missing.as_slice() {
        [] => None,
        [one] => Some(format!("add {one} to root.allow")),
        [init @ .., last] => Some(format!("add {} and {last} to root.allow", init.join(", "))),
    };
    let chowned = covered(recorded, "chown", path);
    match (add, chowned) {
        (Some(add), true) => format!("{add} to install it as root's"),
        (Some(add), false) => format!(
            "to install it as root's, have the install give it to root (`chown root {p}` or \
             `install -o root`, recorded as a root step) and {add}",
            p = quoted(path)
        ),
        (None, true) => "the recorded chown did not make it root's (see the root steps)".into(),
        (None, false) => format!(
            "nothing in the install gave it to root: have it run `chown root {}` (or \
             `install -o root`), recorded as a root step",
            quoted(path)
        ),
    }
}

/// Remove the setuid/setgid bits of every file in `files` still owned by a package user (or,
/// for setgid, by a package's or the install group), as root, and update the entries to the
/// mode left on disk. Call it on the install's final file list after the root steps, and on
/// what a failed install left. `allow` is the recipe's `root.allow`, `recorded` the steps the
/// wrappers recorded; they only shape the advice. Each removal is warned about and returned as
/// a `setid-removed` report.
pub fn setid(
    ctx: &Ctx,
    allow: &[RootStep],
    recorded: &[Step],
    files: &mut [Entry],
) -> Result<Vec<ReportRow>, Error> {
    let ids = &ctx.cfg.ids;
    let mut reports = Vec::new();
    for e in files.iter_mut().filter(|e| e.is_setid()) {
        let host = on_host(&ctx.root, &e.path);
        // The disk, not the entry, decides: the entry may predate a root step.
        let m = match std::fs::symlink_metadata(&host) {
            Ok(m) if m.file_type().is_file() => m,
            Ok(_) => continue,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
            Err(err) => return Err(io(&host)(err).into()),
        };
        let mode = m.mode() & 0o7777;
        let bits = bits_to_remove(ids, mode, m.uid(), m.gid());
        if bits == 0 {
            continue;
        }
        let left = mode & !bits;
        std::fs::set_permissions(&host, std::fs::Permissions::from_mode(left))
            .map_err(io(&host))?;
        (e.mode, e.uid, e.gid) = (left, m.uid(), m.gid());
        let what = match bits {
            0o4000 => "setuid bit",
            0o2000 => "setgid bit",
            _ => "setuid and setgid bits",
        };
        let detail = format!(
            "{what} removed (mode {mode:04o} -> {left:04o}): it would stay a package user's \
             (uid {}, gid {}); {}",
            m.uid(),
            m.gid(),
            advice(allow, recorded, &e.path, bits)
        );
        ctx.printer.warn(&format!("{}: {detail}", quoted(&e.path)));
        reports.push(ReportRow {
            kind: "setid-removed".into(),
            path: Some(e.path.clone()),
            detail,
        });
    }
    Ok(reports)
}

/// The setuid/setgid bits the shim kept off (it makes the call without them and records a
/// step) whose step was not applied: reported and warned about as [`setid`] does for a bit it
/// removes, with the same advice, so the user learns what the recipe lacks either way.
/// `applied` holds the step rows of this install (none for a failed one).
pub fn stripped(
    ctx: &Ctx,
    allow: &[RootStep],
    recorded: &[Step],
    applied: &[crate::db::StepRow],
    files: &[Entry],
) -> Vec<ReportRow> {
    let mut bits: std::collections::BTreeMap<&Path, (u32, &str)> = Default::default();
    for s in recorded {
        let bit = match s.step.as_str() {
            "setuid" => 0o4000,
            "setgid" => 0o2000,
            _ => continue,
        };
        let done = applied
            .iter()
            .any(|r| r.applied && r.step == s.step && r.path == s.path);
        if done {
            continue;
        }
        let slot = bits.entry(s.path.as_path()).or_insert((0, s.arg.as_str()));
        slot.0 |= bit;
    }
    let mut reports = Vec::new();
    for (path, (bits, asked)) in bits {
        let Some(e) = files.iter().find(|e| e.path == path) else {
            continue;
        };
        let host = on_host(&ctx.root, path);
        let Ok(m) = std::fs::symlink_metadata(&host) else {
            continue;
        };
        // Bits still on disk are [`setid`]'s to judge.
        if !m.file_type().is_file() || m.mode() & bits != 0 {
            continue;
        }
        let what = match bits {
            0o4000 => "setuid bit",
            0o2000 => "setgid bit",
            _ => "setuid and setgid bits",
        };
        let detail = format!(
            "{what} removed (asked {asked}, installed {:04o}): it would stay a package user's \
             (uid {}, gid {}); {}",
            m.mode() & 0o7777,
            e.uid,
            e.gid,
            advice(allow, recorded, path, bits)
        );
        ctx.printer.warn(&format!("{}: {detail}", quoted(path)));
        reports.push(ReportRow {
            kind: "setid-removed".into(),
            path: Some(path.to_path_buf()),
            detail,
        });
    }
    reports
}

/// Whether a system file is the linker cache or its temporary file.
fn linker_cache(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("ld.so.cache"))
}

/// Take the system files (`install.system_files` of `ctx.cfg`) out of what an install tracked — its entries
/// and the foreign paths it reports — and give back to root each one left owned by a package
/// user (or a package's or the install group), as `user`'s install may have left it: a temporary file (`ld.so.cache~`, a name ending in `~`) is
/// deleted; any other becomes `root:root`, mode 0644 (0755 for a directory). When the linker
/// cache was among them, `ldconfig` runs as root in the root afterwards, its output in the
/// package's `logs/ldconfig-system.log` (or upm's `var/lib/upm`). Call it on the tracked entries before they are
/// recorded, on a failed install as on a good one. Each fix is warned about and returned as a
/// `system-file` report.
pub fn system_files(
    ctx: &Ctx,
    user: &PkgUser,
    tracked: &mut Tracked,
) -> Result<Vec<ReportRow>, Error> {
    let cfg = &ctx.cfg;
    // The listed paths are checked on disk too: a tool run past the wrappers may have written
    // one the watcher does not follow (`/etc/ld.so.cache` is excluded from tracking).
    let mut paths: Vec<PathBuf> = cfg
        .system_files
        .iter()
        .filter(|p| !p.to_string_lossy().contains('*'))
        .cloned()
        .collect();
    paths.extend(
        tracked
            .entries
            .iter()
            .filter(|e| cfg.system_file(&e.path))
            .map(|e| e.path.clone()),
    );
    tracked.entries.retain(|e| !cfg.system_file(&e.path));
    tracked.foreign.retain(|(p, _)| !cfg.system_file(p));
    paths.sort();
    paths.dedup();
    let mut reports = Vec::new();
    let mut rebuild = false;
    for path in paths {
        let host = on_host(&ctx.root, &path);
        let m = match std::fs::symlink_metadata(&host) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io(&host)(e).into()),
        };
        if !package_uid(&cfg.ids, m.uid()) && !package_gid(&cfg.ids, m.gid()) {
            continue;
        }
        let temporary = path.to_string_lossy().ends_with('~');
        let did = if temporary && !m.is_dir() {
            std::fs::remove_file(&host).map_err(io(&host))?;
            "deleted (a leftover temporary file)".to_string()
        } else {
            nix::unistd::fchownat(
                nix::fcntl::AT_FDCWD,
                &host,
                Some(Uid::from_raw(0)),
                Some(Gid::from_raw(0)),
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(|e| io(&host)(e.into()))?;
            let mode = if m.is_dir() { 0o755 } else { 0o644 };
            if !m.file_type().is_symlink() {
                std::fs::set_permissions(&host, std::fs::Permissions::from_mode(mode))
                    .map_err(io(&host))?;
            }
            format!("given back to root (root:root {mode:04o})")
        };
        rebuild |= linker_cache(&path);
        let detail = format!(
            "a system file (install.system_files), left owned by uid {}, gid {} (a package's) by \
             a tool the install of {} ran; {did}",
            m.uid(),
            m.gid(),
            user.name
        );
        ctx.printer.warn(&format!("{}: {detail}", quoted(&path)));
        reports.push(ReportRow {
            kind: "system-file".into(),
            path: Some(path),
            detail,
        });
    }
    if rebuild {
        let logs = on_host(&ctx.root, &user.home).join("logs");
        let log = if logs.is_dir() {
            logs.join("ldconfig-system.log")
        } else {
            on_host(&ctx.root, Path::new("/var/lib/upm/ldconfig-system.log"))
        };
        if !setup::run_root_command(&ctx.root, "ldconfig", &log)? {
            ctx.printer.warn(&format!(
                "ldconfig (run as root to rebuild the linker cache) failed; see {}",
                quoted(&log)
            ));
        }
    }
    Ok(reports)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> Ids {
        Ids::default()
    }

    #[test]
    fn only_package_owned_bits_go() {
        let i = ids();
        let pkg = i.first + 3;
        assert_eq!(bits_to_remove(&i, 0o4755, pkg, pkg), 0o4000);
        assert_eq!(bits_to_remove(&i, 0o6755, pkg, 0), 0o6000);
        assert_eq!(bits_to_remove(&i, 0o4755, 0, 0), 0);
        assert_eq!(bits_to_remove(&i, 0o2755, 0, 5), 0, "root:tty setgid stays");
        assert_eq!(bits_to_remove(&i, 0o2755, 0, i.install_gid), 0o2000);
        assert_eq!(bits_to_remove(&i, 0o2755, 0, pkg), 0o2000);
        assert_eq!(bits_to_remove(&i, 0o0755, pkg, pkg), 0);
    }

    #[test]
    fn advice_names_what_to_allow() {
        let p = Path::new("/usr/bin/su");
        let chown = [Step {
            step: "chown".into(),
            arg: "root:root".into(),
            path: p.into(),
        }];
        let a = advice(&[], &chown, p, 0o4000);
        assert!(
            a.starts_with("add \"chown\" and \"setuid\" to root.allow"),
            "{a}"
        );
        let a = advice(&[RootStep::Chown], &chown, p, 0o6000);
        assert!(
            a.starts_with("add \"setuid\" and \"setgid\" to root.allow"),
            "{a}"
        );
        let a = advice(&[RootStep::Chown, RootStep::Setuid], &[], p, 0o4000);
        assert!(a.contains("`chown root /usr/bin/su`"), "{a}");
        let a = advice(&[], &[], p, 0o4000);
        assert!(
            a.contains("and add \"chown\" and \"setuid\" to root.allow"),
            "{a}"
        );
    }

    #[test]
    fn the_linker_cache_is_known() {
        assert!(linker_cache(Path::new("/etc/ld.so.cache~")));
        assert!(!linker_cache(Path::new("/usr/share/info/dir")));
    }
}
