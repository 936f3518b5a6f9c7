//! Taking over what an install will replace, from what its trial run showed.
//!
//! - [`plan`]: every existing path the install replaces or deletes is either its own (an
//!   earlier attempt's), another package's (a conflict, refused before anything is written),
//!   or no package's — the temporary tools of an LFS chroot, a distribution's files — which it
//!   takes over when `install.replace = "unowned"`. Every existing directory it writes into
//!   must be writable by the package user: a shared one (unowned, or another package's, and
//!   not stricter than 0755) becomes an install directory; one with a stricter mode is refused,
//!   never widened.
//! - [`take`]: a file is taken over by ownership, never by making it vanish: the original inode
//!   is hard-linked under `var/lib/upm/replaced/PKG/…`, and a copy owned by the package user
//!   is renamed over the path in one step, so a running program (glibc's `libc.so.6`, bash,
//!   `mv` and `install` themselves) always finds a file there.
//! - [`settle`]: after the install, a taken-over path it did not replace gets its original
//!   back (renamed into place); [`restore`] puts every original back (a failed install, or
//!   `upm remove --restore`).

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::config::{Config, Replace};
use crate::db::{Db, ReplacedRow};
use crate::fsutil::{FileKind, on_host};
use crate::pkguser::Names;
use crate::trial::{Trial, Upper};
use crate::watch::Writer;

use super::{Error, io, setup};

/// Where originals are kept inside a root.
pub const KEEP_DIR: &str = "/var/lib/upm/replaced";

/// The installing package, as the plan needs it.
pub struct Installer<'a> {
    pub name: &'a str,
    pub uid: u32,
    pub gid: u32,
    pub install_gid: u32,
}

/// What the install needs before it runs for real.
#[derive(Debug, Default)]
pub struct Plan {
    /// Existing paths no package owns that the install replaces or deletes.
    pub take: Vec<ReplacedRow>,
    /// Existing directories it writes into that must become install directories, and whether
    /// a package's manifest holds them (to be marked shared).
    pub open_dirs: Vec<(PathBuf, bool)>,
    /// The files and links the trial wrote (new or replaced), inside the root.
    pub writes: BTreeSet<PathBuf>,
    /// No trial could run: what the install writes is not known.
    pub blind: bool,
}

/// The paths of a trial that matter: those in the tracked trees.
fn tracked<'a>(cfg: &'a Config, trial: &'a Trial) -> impl Iterator<Item = (&'a PathBuf, Upper)> {
    trial
        .paths
        .iter()
        .filter(|(p, _)| cfg.tracked(p))
        .map(|(p, k)| (p, *k))
}

/// Decide, from the trial, what the install may replace and which directories it needs.
pub fn plan(
    root: &Path,
    cfg: &Config,
    db: &Db,
    names: &Names,
    me: &Installer<'_>,
    trial: &Trial,
) -> Result<Plan, Error> {
    let mut out = Plan::default();
    let mut parents: BTreeSet<PathBuf> = BTreeSet::new();
    for (path, kind) in tracked(cfg, trial) {
        // The linker cache and the like are root's, whoever's tool wrote them (guard.rs).
        if cfg.system_file(path) {
            continue;
        }
        let existing = std::fs::symlink_metadata(on_host(root, path)).ok();
        let changed = match (kind, &existing) {
            // A directory the lower layer has too: copied up on the way to something else,
            // unless it was made anew (opaque).
            (Upper::Dir, Some(m)) if m.is_dir() => false,
            (Upper::Whiteout, None) => false,
            _ => true,
        };
        if !changed {
            continue;
        }
        if let Some(parent) = path.parent() {
            parents.insert(parent.to_path_buf());
        }
        if matches!(kind, Upper::File | Upper::Symlink | Upper::Other) {
            out.writes.insert(path.clone());
        }
        let Some(m) = existing else { continue };
        if m.is_dir() && kind == Upper::Dir {
            continue;
        }
        // An existing path the install replaces, deletes or makes anew.
        let owners = db.owners(path)?;
        if owners.iter().any(|o| o == me.name) || (owners.is_empty() && m.uid() == me.uid) {
            continue;
        }
        if !owners.is_empty() || (cfg.ids.first..=cfg.ids.last).contains(&m.uid()) {
            let (owner, owner_short) = setup::owner_of(db, names, path, m.uid());
            return Err(Error::WouldReplace {
                name: me.name.into(),
                path: path.display().to_string(),
                owner,
                owner_short,
            });
        }
        if cfg.replace == Replace::None {
            return Err(Error::WouldReplaceUnowned {
                name: me.name.into(),
                path: path.display().to_string(),
                uid: m.uid(),
                settings: cfg.path.display().to_string(),
            });
        }
        let kind = FileKind::of(&m.file_type());
        if !matches!(kind, FileKind::File | FileKind::Symlink) {
            return Err(Error::CannotTakeOver {
                name: me.name.into(),
                path: path.display().to_string(),
                kind: kind.name(),
            });
        }
        out.take.push(ReplacedRow {
            path: path.clone(),
            kind,
            uid: m.uid(),
            gid: m.gid(),
            mode: m.mode() & 0o7777,
            kept: Some(
                Path::new(KEEP_DIR)
                    .join(me.name)
                    .join(path.strip_prefix("/").unwrap_or(path)),
            ),
            replaced: false,
        });
    }
    untracked_writes(root, cfg, me, trial)?;
    out.open_dirs = dirs_to_open(root, cfg, db, me, &parents)?;
    Ok(out)
}

/// A path the trial made outside every tracked tree (sudo's `/run/sudo`) is neither recorded
/// nor given a directory: when the package user cannot write where it goes, the real install
/// would fail half-way, so refuse before anything is written. (The excluded parts of the
/// tracked trees, `/var/log` and the like, are left to the install.)
fn untracked_writes(
    root: &Path,
    cfg: &Config,
    me: &Installer<'_>,
    trial: &Trial,
) -> Result<(), Error> {
    let writer = Writer {
        uid: me.uid,
        gids: vec![me.gid, me.install_gid],
    };
    for (path, kind) in &trial.paths {
        if cfg.track_roots.iter().any(|r| path.starts_with(r)) {
            continue;
        }
        let existing = std::fs::symlink_metadata(on_host(root, path)).ok();
        if matches!((kind, &existing), (Upper::Dir, Some(m)) if m.is_dir())
            || matches!((kind, &existing), (Upper::Whiteout, None))
        {
            continue;
        }
        let Some(dir) = path.parent() else { continue };
        let Ok(m) = std::fs::symlink_metadata(on_host(root, dir)) else {
            continue; // made by the install itself: its parent is listed too
        };
        if m.is_dir() && !writer.can_write(&m) {
            return Err(Error::UntrackedWrite {
                name: me.name.into(),
                path: path.display().to_string(),
                dir: dir.display().to_string(),
                settings: cfg.path.display().to_string(),
            });
        }
    }
    Ok(())
}

/// Which existing directories among `dirs` the package user cannot write and may be given.
fn dirs_to_open(
    root: &Path,
    cfg: &Config,
    db: &Db,
    me: &Installer<'_>,
    dirs: &BTreeSet<PathBuf>,
) -> Result<Vec<(PathBuf, bool)>, Error> {
    let writer = Writer {
        uid: me.uid,
        gids: vec![me.gid, me.install_gid],
    };
    let mut out = Vec::new();
    for dir in dirs {
        let Ok(m) = std::fs::symlink_metadata(on_host(root, dir)) else {
            continue; // made by the install itself
        };
        if !m.is_dir() || writer.can_write(&m) {
            continue;
        }
        let owners = db.owners(dir)?;
        let a_package_s = !owners.is_empty() || (cfg.ids.first..=cfg.ids.last).contains(&m.uid());
        let mode = m.mode() & 0o7777;
        let refuse = |why: String| Error::DirNotWritable {
            name: me.name.into(),
            dir: dir.display().to_string(),
            why,
        };
        if mode & 0o755 != 0o755 {
            return Err(refuse(format!(
                "it has mode {mode:04o}, stricter than an install directory's, and upm never widens a mode; \
                 make it an install directory by hand (`upm installdir add {}`) if every package may write there",
                dir.display()
            )));
        }
        let shared = cfg.shared_tree(dir) || cfg.install_dirs.iter().any(|d| d == dir);
        if !a_package_s && cfg.replace == Replace::None && !shared {
            return Err(refuse(format!(
                "no package owns it and install.replace is \"none\"; run `upm installdir add {}`",
                dir.display()
            )));
        }
        out.push((dir.clone(), !owners.is_empty()));
    }
    Ok(out)
}

/// A unique name next to `path` for a file about to be renamed over it.
fn sibling(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    let mut tmp = std::ffi::OsString::from(".upm-take.");
    tmp.push(std::process::id().to_string());
    tmp.push(".");
    tmp.push(name);
    path.with_file_name(tmp)
}

/// Take over the paths of `rows` for the package user (see the module documentation).
/// The rows must be recorded (held) first, so a killed upm leaves them findable.
pub fn take(root: &Path, rows: &[ReplacedRow], uid: u32, gid: u32) -> Result<(), Error> {
    for r in rows {
        let host = on_host(root, &r.path);
        if let Some(kept) = &r.kept {
            let kept = on_host(root, kept);
            keep(&host, &kept)?;
        }
        let tmp = sibling(&host);
        let _ = std::fs::remove_file(&tmp);
        match r.kind {
            FileKind::Symlink => {
                let target = std::fs::read_link(&host).map_err(io(&host))?;
                std::os::unix::fs::symlink(&target, &tmp).map_err(io(&tmp))?;
            }
            _ => {
                std::fs::copy(&host, &tmp).map_err(io(&host))?;
                let m = std::fs::symlink_metadata(&host).map_err(io(&host))?;
                let times = [
                    nix::sys::time::TimeSpec::new(m.atime(), m.atime_nsec()),
                    nix::sys::time::TimeSpec::new(m.mtime(), m.mtime_nsec()),
                ];
                nix::sys::stat::utimensat(
                    nix::fcntl::AT_FDCWD,
                    &tmp,
                    &times[0],
                    &times[1],
                    nix::sys::stat::UtimensatFlags::NoFollowSymlink,
                )
                .map_err(|e| io(&tmp)(e.into()))?;
            }
        }
        nix::unistd::fchownat(
            nix::fcntl::AT_FDCWD,
            &tmp,
            Some(uid.into()),
            Some(gid.into()),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| io(&tmp)(e.into()))?;
        if r.kind != FileKind::Symlink {
            // A setuid or setgid bit never goes to a package user.
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(r.mode & 0o1777))
                .map_err(io(&tmp))?;
        }
        std::fs::rename(&tmp, &host).map_err(io(&host))?;
    }
    Ok(())
}

/// Keep the original of `host` at `kept`: a hard link to the same inode (a copy across
/// filesystems), made before anything else happens to it.
pub(super) fn keep(host: &Path, kept: &Path) -> Result<(), Error> {
    if std::fs::symlink_metadata(kept).is_ok() {
        std::fs::remove_file(kept).map_err(io(kept))?;
    }
    let parent = kept.parent().expect("kept paths have a parent");
    std::fs::create_dir_all(parent).map_err(io(parent))?;
    match std::fs::hard_link(host, kept) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(nix::libc::EXDEV) => {
            let m = std::fs::symlink_metadata(host).map_err(io(host))?;
            if m.file_type().is_symlink() {
                let t = std::fs::read_link(host).map_err(io(host))?;
                std::os::unix::fs::symlink(t, kept).map_err(io(kept))?;
            } else {
                std::fs::copy(host, kept).map_err(io(kept))?;
                std::fs::set_permissions(kept, m.permissions()).map_err(io(kept))?;
            }
            nix::unistd::fchownat(
                nix::fcntl::AT_FDCWD,
                kept,
                Some(m.uid().into()),
                Some(m.gid().into()),
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(|e| io(kept)(e.into()).into())
        }
        Err(e) => Err(io(kept)(e).into()),
    }
}

/// Put the original of `r` back at its path (renamed into place in one step), if it is kept.
fn put_back(root: &Path, r: &ReplacedRow) -> Result<bool, Error> {
    let Some(kept) = &r.kept else {
        return Ok(false);
    };
    let kept = on_host(root, kept);
    if std::fs::symlink_metadata(&kept).is_err() {
        return Ok(false);
    }
    let host = on_host(root, &r.path);
    if let Ok(m) = std::fs::symlink_metadata(&host)
        && m.is_dir()
    {
        return Ok(false);
    }
    if let Some(parent) = host.parent() {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    std::fs::rename(&kept, &host).map_err(io(&host))?;
    Ok(true)
}

/// After the install: the taken-over paths it left as they were get their originals back;
/// the rest it replaced. `untouched` tells whether a path is still the copy `take` made (the
/// install never wrote it). Returns the paths given back.
pub fn settle(
    root: &Path,
    rows: &[ReplacedRow],
    untouched: impl Fn(&Path) -> bool,
) -> Result<Vec<PathBuf>, Error> {
    let mut given_back = Vec::new();
    for r in rows {
        if untouched(&r.path) && put_back(root, r)? {
            given_back.push(r.path.clone());
        }
    }
    prune(root);
    Ok(given_back)
}

/// Delete the kept originals of `rows` (`install.keep_replaced = false`).
pub fn drop_kept(root: &Path, rows: &[ReplacedRow]) {
    for kept in rows.iter().filter_map(|r| r.kept.as_ref()) {
        let _ = std::fs::remove_file(on_host(root, kept));
    }
    prune(root);
}

/// Put every original back (a failed install; `upm remove --restore`). Returns the paths
/// restored.
pub fn restore(root: &Path, rows: &[ReplacedRow]) -> Result<Vec<PathBuf>, Error> {
    let mut out = Vec::new();
    for r in rows {
        if put_back(root, r)? {
            out.push(r.path.clone());
        }
    }
    prune(root);
    Ok(out)
}

/// Remove the empty directories left under the keep directory.
fn prune(root: &Path) {
    let top = on_host(root, Path::new(KEEP_DIR));
    let mut dirs = Vec::new();
    let mut stack = vec![top.clone()];
    while let Some(d) = stack.pop() {
        if let Ok(rd) = std::fs::read_dir(&d) {
            for e in rd.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(e.path());
                }
            }
        }
        dirs.push(d);
    }
    for d in dirs.iter().rev().filter(|d| **d != top) {
        let _ = std::fs::remove_dir(d);
    }
}

/// The identity of each taken-over path right after the takeover, to tell later whether the
/// install wrote it: (inode, change time in ns).
pub fn fingerprints(root: &Path, rows: &[ReplacedRow]) -> BTreeMap<PathBuf, (u64, i128)> {
    rows.iter()
        .filter_map(|r| {
            let m = std::fs::symlink_metadata(on_host(root, &r.path)).ok()?;
            Some((r.path.clone(), fingerprint(&m)))
        })
        .collect()
}

pub fn fingerprint(m: &std::fs::Metadata) -> (u64, i128) {
    (
        m.ino(),
        m.ctime() as i128 * 1_000_000_000 + m.ctime_nsec() as i128,
    )
}
