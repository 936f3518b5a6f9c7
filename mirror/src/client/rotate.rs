//! Hard-link snapshots of a mirror, the original design's periodical backup beside the mirror:
//! `fs_mirror rotate DIR --keep N` (or `--rotate-at HH:MM` in the running client, between
//! batches) copies the mirror's directory tree into `DIR/../snapshots/HOST/2026-11-23T0300`
//! with every file hard-linked, not copied, then drops the oldest snapshots beyond N. The
//! mirror replaces a file's content by rename, never in place, and a mode or owner change
//! of a file a snapshot shares first gives the mirror its own copy ([`unshare`]), so a
//! snapshot never changes afterwards. A snapshot is built under a hidden name and renamed
//! when complete: one that is there is whole.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::client::place::RESERVED;
use crate::error::{Error, Result, io};

/// The host a mirror directory holds: `name`, or the directory's own name
/// (`/data/fs_mirror/www1` holds `www1`).
pub fn host_name(datadir: &Path, name: Option<&str>) -> Result<String> {
    let host = match name {
        Some(n) => n.to_string(),
        None => datadir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    if host.is_empty() || host.starts_with('.') || host.contains('/') {
        return Err(Error::Io {
            path: datadir.to_path_buf(),
            source: std::io::Error::other(format!(
                "{host:?} cannot name the mirrored host's snapshots: give --name HOST"
            )),
        });
    }
    Ok(host)
}

/// `DIR/../snapshots/HOST`.
pub fn snapshots_dir(datadir: &Path, host: &str) -> PathBuf {
    let abs = std::path::absolute(datadir).unwrap_or_else(|_| datadir.to_path_buf());
    abs.parent()
        .unwrap_or(Path::new("/"))
        .join("snapshots")
        .join(host)
}

/// The snapshots under `root`, oldest first (their names sort by date).
pub fn list(root: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(root)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Make a snapshot of `datadir` named for `stamp` (`2026-11-23T0300`, `.1`, `.2` … added when
/// taken), then remove the oldest beyond `keep`. Returns the new snapshot's path.
pub fn rotate(datadir: &Path, host: &str, keep: usize, stamp: &str) -> Result<PathBuf> {
    let root = snapshots_dir(datadir, host);
    std::fs::create_dir_all(&root).map_err(io(&root))?;
    let mut name = stamp.to_string();
    let mut n = 0;
    while root.join(&name).exists() {
        n += 1;
        name = format!("{stamp}.{n}");
    }
    let partial = root.join(format!(".{name}.partial"));
    if partial.exists() {
        std::fs::remove_dir_all(&partial).map_err(io(&partial))?;
    }
    link_tree(datadir, &partial)?;
    let done = root.join(&name);
    std::fs::rename(&partial, &done).map_err(io(&done))?;
    let all = list(&root);
    for old in &all[..all.len().saturating_sub(keep.max(1))] {
        let p = root.join(old);
        std::fs::remove_dir_all(&p).map_err(io(&p))?;
    }
    Ok(done)
}

/// `fs_mirror rotate DIR`: a snapshot now, under the directory's lock (refused while an
/// fs_mirror runs on it: that one rotates with `--rotate-at`, between its batches).
pub fn rotate_now(datadir: &Path, name: Option<&str>, keep: usize) -> Result<PathBuf> {
    if !datadir.join("sn").is_file() {
        return Err(Error::Io {
            path: datadir.to_path_buf(),
            source: std::io::Error::other(
                "no mirror here (no sn file): give fs_mirror's --datadir",
            ),
        });
    }
    let host = host_name(datadir, name)?;
    let _lock = match crate::client::sn::Sn::lock(datadir) {
        Err(Error::Locked { path }) => {
            return Err(Error::Io {
                path,
                source: std::io::Error::other(
                    "an fs_mirror is running on this mirror: a snapshot taken now could catch a \
                     batch half applied; give that fs_mirror --rotate-at HH:MM --keep N instead, \
                     or stop it first",
                ),
            });
        }
        r => r?,
    };
    rotate(datadir, &host, keep, &Stamp::now().name())
}

/// `to` made a copy of the tree at `from` whose files are hard links (the client's own
/// `sn` and `.fs_mirror` left out); directories keep their mode, owner and mtime.
fn link_tree(from: &Path, to: &Path) -> Result<()> {
    let root = nix::unistd::geteuid().is_root();
    // Directories are finished (mode, owner, time) after their content: a read-only one
    // would refuse its entries.
    let mut finish: Vec<(PathBuf, std::fs::Metadata)> = Vec::new();
    let mut stack = vec![(from.to_path_buf(), to.to_path_buf())];
    while let Some((src, dst)) = stack.pop() {
        let meta = std::fs::symlink_metadata(&src).map_err(io(&src))?;
        std::fs::create_dir(&dst).map_err(io(&dst))?;
        for e in std::fs::read_dir(&src).map_err(io(&src))? {
            let e = e.map_err(io(&src))?;
            let name = e.file_name();
            if src == from && RESERVED.iter().any(|r| name == *r) {
                continue;
            }
            let (s, d) = (e.path(), dst.join(&name));
            if e.file_type().map_err(io(&s))?.is_dir() {
                stack.push((s, d));
            } else {
                // A symlink is linked itself, not followed (link(2) does not follow).
                std::fs::hard_link(&s, &d).map_err(io(&d))?;
            }
        }
        finish.push((dst, meta));
    }
    for (dst, meta) in finish.iter().rev() {
        if root {
            std::os::unix::fs::lchown(dst, Some(meta.uid()), Some(meta.gid())).map_err(io(dst))?;
        }
        let t = meta.modified().map_err(io(dst))?;
        std::fs::File::open(dst)
            .and_then(|f| f.set_modified(t))
            .map_err(io(dst))?;
        std::fs::set_permissions(dst, std::fs::Permissions::from_mode(meta.mode() & 0o7777))
            .map_err(io(dst))?;
    }
    Ok(())
}

/// Give the mirror its own copy of `target` when a snapshot shares its inode (more than one
/// link), so a mode or owner change does not reach the snapshot. `tmp`: a free name in the
/// client's own directory.
pub fn unshare(target: &Path, tmp: &Path) -> Result<()> {
    let m = match std::fs::symlink_metadata(target) {
        Ok(m) if m.is_file() && m.nlink() > 1 => m,
        _ => return Ok(()),
    };
    std::fs::copy(target, tmp).map_err(io(tmp))?;
    let f = std::fs::File::options()
        .write(true)
        .open(tmp)
        .map_err(io(tmp))?;
    f.set_modified(m.modified().map_err(io(target))?)
        .map_err(io(tmp))?;
    if nix::unistd::geteuid().is_root() {
        std::os::unix::fs::fchown(&f, Some(m.uid()), Some(m.gid())).map_err(io(tmp))?;
    }
    drop(f);
    std::fs::rename(tmp, target).map_err(io(target))
}

/// A local date and time, to the minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub year: i32,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
}

impl Stamp {
    /// Now, in the local time zone.
    pub fn now() -> Stamp {
        let t = nix::libc::time_t::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        )
        .unwrap_or(0);
        // SAFETY: `tm` is plain data that localtime_r fills in (all-zero is a valid value);
        // both pointers are to live locals for the duration of the call, and localtime_r is
        // the reentrant form that keeps no pointer to them.
        let tm = unsafe {
            let mut tm: nix::libc::tm = std::mem::zeroed();
            nix::libc::localtime_r(&t, &mut tm);
            tm
        };
        Stamp {
            year: tm.tm_year + 1900,
            month: (tm.tm_mon + 1) as u32,
            day: tm.tm_mday as u32,
            hour: tm.tm_hour as u32,
            minute: tm.tm_min as u32,
        }
    }

    /// `2026-11-23T0300`.
    pub fn name(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}{:02}",
            self.year, self.month, self.day, self.hour, self.minute
        )
    }

    /// The same day at `at`.
    pub fn at(&self, at: (u32, u32)) -> Stamp {
        Stamp {
            hour: at.0,
            minute: at.1,
            ..*self
        }
    }
}

/// `HH:MM` of `--rotate-at`.
pub fn parse_at(s: &str) -> std::result::Result<(u32, u32), String> {
    let (h, m) = s
        .split_once(':')
        .ok_or_else(|| format!("{s:?}: give the time as HH:MM, e.g. 03:00"))?;
    match (h.parse::<u32>(), m.parse::<u32>()) {
        (Ok(h), Ok(m)) if h < 24 && m < 60 => Ok((h, m)),
        _ => Err(format!("{s:?}: give the time as HH:MM, e.g. 03:00")),
    }
}

/// `--rotate-at HH:MM --keep N` in the running client: a snapshot once a day, at a quiet
/// point between batches after `at`, unless one was taken since.
pub struct Schedule {
    pub at: (u32, u32),
    pub keep: usize,
    pub host: String,
    /// Not looked at again before this.
    next_look: Mutex<Instant>,
}

impl Schedule {
    pub fn new(at: (u32, u32), keep: usize, host: String) -> Schedule {
        Schedule {
            at,
            keep,
            host,
            next_look: Mutex::new(Instant::now()),
        }
    }

    /// Whether a snapshot is due at `now`: past today's time and none taken since.
    pub fn due(&self, datadir: &Path, now: Stamp) -> bool {
        let slot = now.at(self.at);
        if now.name() < slot.name() {
            return false;
        }
        let newest = list(&snapshots_dir(datadir, &self.host)).pop();
        newest.is_none_or(|n| n < slot.name())
    }

    /// Take the snapshot if it is due (looked at once a minute at most). A snapshot that
    /// fails is said and tried again a minute later; the mirror goes on meanwhile.
    pub fn tick(&self, datadir: &Path, verbose: bool) {
        {
            let mut next = self.next_look.lock().unwrap_or_else(|e| e.into_inner());
            if Instant::now() < *next {
                return;
            }
            *next = Instant::now() + Duration::from_secs(60);
        }
        let now = Stamp::now();
        if self.due(datadir, now) {
            match rotate(datadir, &self.host, self.keep, &now.name()) {
                Ok(p) if verbose => eprintln!("fs_mirror: snapshot {}", p.display()),
                Ok(_) => {}
                Err(e) => eprintln!(
                    "fs_mirror: no snapshot this time: {e}; the mirror goes on, tried again in a minute"
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_by_date_and_a_day_rotates_once_after_its_time() {
        let s = Stamp {
            year: 2026,
            month: 11,
            day: 23,
            hour: 3,
            minute: 7,
        };
        assert_eq!(s.name(), "2026-11-23T0307");
        assert_eq!(parse_at("03:00"), Ok((3, 0)));
        assert!(parse_at("3").is_err() && parse_at("24:00").is_err());
        let d = tempfile::tempdir().unwrap();
        let data = d.path().join("www1");
        std::fs::create_dir(&data).unwrap();
        let sch = Schedule::new((3, 0), 2, "www1".into());
        assert!(!sch.due(&data, s.at((2, 59))));
        assert!(sch.due(&data, s));
        let snaps = snapshots_dir(&data, "www1");
        std::fs::create_dir_all(snaps.join("2026-11-23T0301")).unwrap();
        assert!(!sch.due(&data, s));
        std::fs::create_dir_all(snaps.join("2026-11-22T0300")).unwrap();
        let next_day = Stamp { day: 24, ..s };
        assert!(sch.due(&data, next_day));
        assert_eq!(list(&snaps), ["2026-11-22T0300", "2026-11-23T0301"]);
        assert!(host_name(&data, None).unwrap() == "www1");
        assert!(host_name(Path::new("/"), None).is_err());
    }
}
