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
    /// Watch every directory under the rules' roots (symlinks are not followed) that the
    /// rules' writer may change — every one, without a writer.
    pub fn new(rules: Rules) -> io::Result<Watcher> {
        let dirs = super::writable_dirs(&rules);
        Watcher::with_dirs(rules, &dirs)
    }

    /// Watch exactly `dirs` (found beforehand by [`super::writable_dirs`], which may run while
    /// nothing is watched yet), and from then on every directory made under them.
    pub fn with_dirs(rules: Rules, dirs: &[PathBuf]) -> io::Result<Watcher> {
        let mut w = Watcher {
            inotify: Inotify::init()?,
            rules,
            paths: HashMap::new(),
            pending: None,
            buf: vec![0u8; 256 * 1024],
        };
        w.watch_all(dirs)?;
        Ok(w)
    }

    /// Add a watch on each of `dirs` (one already watched keeps its watch).
    fn watch_all(&mut self, dirs: &[PathBuf]) -> io::Result<()> {
        for d in dirs {
            self.watch(d)?;
        }
        Ok(())
    }

    /// Add a watch on `d`; whether it is watched now (a directory gone already, or no longer a
    /// directory, is not: its own events say so).
    fn watch(&mut self, d: &Path) -> io::Result<bool> {
        match self.inotify.watches().add(d, mask()) {
            Ok(wd) => {
                self.paths.insert(wd, d.to_path_buf());
                Ok(true)
            }
            Err(e) if errno(&e, &[Errno::ENOENT, Errno::ENOTDIR]) => Ok(false),
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => Ok(false),
            Err(e) if errno(&e, &[Errno::ENOSPC]) => Err(io::Error::other(format!(
                "cannot watch {}: the inotify watch limit is reached; raise \
                 fs.inotify.max_user_watches (sysctl) or narrow track.roots in etc/upm/upm.toml",
                d.display()
            ))),
            Err(e) => Err(e),
        }
    }

    /// How many directories are watched.
    pub fn watched(&self) -> usize {
        self.paths.len()
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.inotify.as_fd()
    }

    /// A directory appeared: watch it and every directory below it — each watch first, then
    /// the listing — and report everything found as created (it appeared while we were not
    /// yet looking).
    fn add_tree(&mut self, dir: &Path, out: &mut Vec<Event>) -> io::Result<()> {
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            if !self.watch(&d)? {
                continue;
            }
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            for entry in entries.flatten() {
                let p = entry.path();
                if self.rules.excluded(&p) {
                    continue;
                }
                let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
                out.push(Event::Created {
                    path: p.clone(),
                    dir: is_dir,
                });
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
            self.add_tree(&path, out)?;
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
            let dirs = super::writable_dirs(&self.rules);
            self.watch_all(&dirs)?;
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
                        self.add_tree(&path, out)?;
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
