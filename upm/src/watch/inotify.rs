//! The Linux backend of the watcher: one inotify instance, one watch per directory, a map from
//! watch descriptors to paths kept right across directory renames.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use inotify::{EventMask, Inotify, WatchDescriptor, WatchMask};

use nix::errno::Errno;

use super::{Event, Rules};

fn errno(e: &io::Error, which: &[Errno]) -> bool {
    e.raw_os_error()
        .is_some_and(|n| which.iter().any(|w| *w as i32 == n))
}

fn mask() -> WatchMask {
    WatchMask::CREATE
        | WatchMask::CLOSE_WRITE
        | WatchMask::ATTRIB
        | WatchMask::DELETE
        | WatchMask::MOVED_FROM
        | WatchMask::MOVED_TO
        | WatchMask::DONT_FOLLOW
        | WatchMask::ONLYDIR
        | WatchMask::EXCL_UNLINK
}

/// A half of a rename waiting for its partner.
struct PendingMove {
    cookie: u32,
    from: PathBuf,
    dir: bool,
}

pub struct Watcher {
    inotify: Inotify,
    rules: Rules,
    paths: HashMap<WatchDescriptor, PathBuf>,
    pending: Option<PendingMove>,
    buf: Vec<u8>,
}

impl Watcher {
    /// Watch every directory under the rules' roots (symlinks are not followed).
    pub fn new(rules: Rules) -> io::Result<Watcher> {
        let mut w = Watcher {
            inotify: Inotify::init()?,
            rules,
            paths: HashMap::new(),
            pending: None,
            buf: vec![0u8; 256 * 1024],
        };
        for root in w.rules.roots.clone() {
            if root.is_dir() && !w.rules.excluded(&root) {
                w.add_tree(&root, None)?;
            }
        }
        Ok(w)
    }

    /// Watch exactly `dirs` (found beforehand by [`super::writable_dirs`]), and from then on
    /// every directory made under them.
    pub fn with_dirs(rules: Rules, dirs: &[PathBuf]) -> io::Result<Watcher> {
        let mut w = Watcher {
            inotify: Inotify::init()?,
            rules,
            paths: HashMap::new(),
            pending: None,
            buf: vec![0u8; 256 * 1024],
        };
        for d in dirs {
            match w.inotify.watches().add(d, mask()) {
                Ok(wd) => {
                    w.paths.insert(wd, d.clone());
                }
                Err(e) if errno(&e, &[Errno::ENOENT, Errno::ENOTDIR]) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(w)
    }

    /// How many directories are watched.
    pub fn watched(&self) -> usize {
        self.paths.len()
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.inotify.as_fd()
    }

    /// Watch `dir` and, below it, every directory — the watch first, then the listing. With
    /// `report`, everything found is reported as created (it appeared while we were not yet
    /// looking).
    fn add_tree(&mut self, dir: &Path, mut report: Option<&mut Vec<Event>>) -> io::Result<()> {
        use std::os::unix::fs::MetadataExt;
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            let meta = std::fs::symlink_metadata(&d).ok();
            // Setting up with a writer, a directory it cannot write needs no watch (nothing in
            // it can change) — but its subdirectories may, so it is still walked.
            let skip = report.is_none()
                && match (&self.rules.writer, &meta) {
                    (Some(w), Some(m)) => !w.can_write(m),
                    _ => false,
                };
            if !skip {
                match self.inotify.watches().add(&d, mask()) {
                    Ok(wd) => {
                        self.paths.insert(wd, d.clone());
                    }
                    // Gone already, or not a directory any more: its own events say so.
                    Err(e) if errno(&e, &[Errno::ENOENT, Errno::ENOTDIR]) => continue,
                    Err(e) if errno(&e, &[Errno::ENOSPC]) => {
                        return Err(io::Error::other(format!(
                            "cannot watch {}: the inotify watch limit is reached; raise \
                             fs.inotify.max_user_watches (sysctl) or narrow track.roots in etc/upm/upm.toml",
                            d.display()
                        )));
                    }
                    Err(e) if e.kind() == io::ErrorKind::PermissionDenied => continue,
                    Err(e) => return Err(e),
                }
            }
            // A directory whose link count is 2 has no subdirectories (ext4, XFS, tmpfs; others
            // say 1, "unknown"): setting up, there is nothing in it to watch. Checked after the
            // watch exists, so a subdirectory made since is reported by the watch.
            if report.is_none() && meta.as_ref().is_some_and(|m| m.nlink() == 2) {
                continue;
            }
            let entries = match std::fs::read_dir(&d) {
                Ok(e) => e,
                Err(_) => continue,
            };
            for entry in entries.flatten() {
                let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
                // Setting up, only directories matter (files need no watch of their own).
                if !is_dir && report.is_none() {
                    continue;
                }
                let p = entry.path();
                if self.rules.excluded(&p) {
                    continue;
                }
                if let Some(out) = report.as_deref_mut() {
                    out.push(Event::Created {
                        path: p.clone(),
                        dir: is_dir,
                    });
                }
                if is_dir {
                    stack.push(p);
                }
            }
        }
        Ok(())
    }

    /// Rename every watched path under `from` to the same place under `to`.
    fn rename_watches(&mut self, from: &Path, to: &Path) {
        for p in self.paths.values_mut() {
            if let Ok(rest) = p.strip_prefix(from) {
                *p = if rest.as_os_str().is_empty() {
                    to.to_path_buf()
                } else {
                    to.join(rest)
                };
            }
        }
    }

    /// Forget the watches under `dir` (it left the watched trees).
    fn drop_watches(&mut self, dir: &Path) {
        let gone: Vec<WatchDescriptor> = self
            .paths
            .iter()
            .filter(|(_, p)| p.starts_with(dir))
            .map(|(wd, _)| wd.clone())
            .collect();
        for wd in gone {
            let _ = self.inotify.watches().remove(wd.clone());
            self.paths.remove(&wd);
        }
    }

    /// A rename whose other half never came: the source left the watched trees.
    fn flush_pending(&mut self, out: &mut Vec<Event>) {
        if let Some(m) = self.pending.take() {
            if m.dir {
                self.drop_watches(&m.from);
            }
            out.push(Event::Deleted {
                path: m.from,
                dir: m.dir,
            });
        }
    }

    /// Flush what is held back (an unpaired rename) at the end of a run.
    pub fn flush(&mut self, out: &mut Vec<Event>) {
        self.flush_pending(out);
    }

    /// Read every event queued now (without blocking) and append them to `out`.
    pub fn read(&mut self, out: &mut Vec<Event>) -> io::Result<()> {
        loop {
            let mut buf = std::mem::take(&mut self.buf);
            let raw: Vec<(WatchDescriptor, EventMask, u32, Option<std::ffi::OsString>)> =
                match self.inotify.read_events(&mut buf) {
                    Ok(events) => events
                        .map(|e| (e.wd, e.mask, e.cookie, e.name.map(OsStr::to_os_string)))
                        .collect(),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        self.buf = buf;
                        return Ok(());
                    }
                    Err(e) => {
                        self.buf = buf;
                        return Err(e);
                    }
                };
            self.buf = buf;
            if raw.is_empty() {
                return Ok(());
            }
            for (wd, mask, cookie, name) in raw {
                self.handle(wd, mask, cookie, name, out)?;
            }
        }
    }

    /// A path appeared; a new directory is watched, then listed (watch before list).
    fn created(&mut self, path: PathBuf, dir: bool, out: &mut Vec<Event>) -> io::Result<()> {
        out.push(Event::Created {
            path: path.clone(),
            dir,
        });
        if dir {
            self.add_tree(&path, Some(out))?;
        }
        Ok(())
    }

    fn handle(
        &mut self,
        wd: WatchDescriptor,
        mask: EventMask,
        cookie: u32,
        name: Option<std::ffi::OsString>,
        out: &mut Vec<Event>,
    ) -> io::Result<()> {
        if mask.contains(EventMask::Q_OVERFLOW) {
            self.flush_pending(out);
            out.push(Event::Rescan);
            // Directories made while events were lost are not watched yet: look again.
            for root in self.rules.roots.clone() {
                if root.is_dir() && !self.rules.excluded(&root) {
                    self.add_tree(&root, None)?;
                }
            }
            return Ok(());
        }
        if mask.contains(EventMask::IGNORED) {
            self.paths.remove(&wd);
            return Ok(());
        }
        let Some(dir) = self.paths.get(&wd).cloned() else {
            return Ok(());
        };
        let Some(name) = name else {
            return Ok(());
        };
        let path = dir.join(name);
        let is_dir = mask.contains(EventMask::ISDIR);
        // The partner of a pending MOVED_FROM comes right after it, or never.
        if let Some(p) = &self.pending
            && !(mask.contains(EventMask::MOVED_TO) && cookie == p.cookie)
        {
            self.flush_pending(out);
        }
        if self.rules.excluded(&path) {
            return Ok(());
        }
        if mask.contains(EventMask::MOVED_FROM) {
            self.pending = Some(PendingMove {
                cookie,
                from: path,
                dir: is_dir,
            });
        } else if mask.contains(EventMask::MOVED_TO) {
            match self.pending.take() {
                Some(m) if m.cookie == cookie => {
                    if is_dir {
                        self.rename_watches(&m.from, &path);
                    }
                    out.push(Event::Moved {
                        from: m.from,
                        to: path.clone(),
                        dir: is_dir,
                    });
                    // A directory that moved before we got to watch it is new to us.
                    if is_dir && !self.paths.values().any(|p| *p == path) {
                        self.add_tree(&path, Some(out))?;
                    }
                }
                _ => self.created(path, is_dir, out)?,
            }
        } else if mask.contains(EventMask::CREATE) {
            self.created(path, is_dir, out)?;
        } else if mask.contains(EventMask::CLOSE_WRITE) {
            out.push(Event::Written { path });
        } else if mask.contains(EventMask::ATTRIB) {
            out.push(Event::Attrib { path, dir: is_dir });
        } else if mask.contains(EventMask::DELETE) {
            out.push(Event::Deleted { path, dir: is_dir });
        }
        Ok(())
    }
}
