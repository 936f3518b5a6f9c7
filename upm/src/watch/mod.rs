//! The recursive tree watcher, shared by the install tracker and (later) mirrord: it follows
//! every directory under a set of roots, minus excluded subtrees, and turns the kernel's inotify
//! events into a small event model of whole paths.
//!
//! - **Watch before list**: a new directory is watched first and listed second, and everything
//!   the listing finds is reported as created, so nothing made in a brand-new directory between
//!   its creation and its watch is missed.
//! - **Moves are paired by cookie**: a rename inside the watched trees is one [`Event::Moved`];
//!   a half without its partner is a deletion (moved out) or a creation (moved in).
//! - **Overflow** of the kernel queue becomes an explicit [`Event::Rescan`]: the consumer must
//!   look at the trees again, as events were lost.
//!
//! [`Collector`] runs a watcher on its own thread for the span of an install and hands back
//! every event once the watched work is done.

mod inotify;

use std::path::{Path, PathBuf};

pub use inotify::Watcher;

/// What happened to a path. Paths are as the watcher sees them (on the host).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A path appeared (created, linked, or moved in from outside the watched trees).
    Created { path: PathBuf, dir: bool },
    /// A file was written and closed.
    Written { path: PathBuf },
    /// Mode, owner, timestamps or link count changed.
    Attrib { path: PathBuf, dir: bool },
    /// A path disappeared (unlinked, or moved out of the watched trees).
    Deleted { path: PathBuf, dir: bool },
    /// A rename within the watched trees.
    Moved {
        from: PathBuf,
        to: PathBuf,
        dir: bool,
    },
    /// Events were lost (the kernel queue overflowed): look at the trees again.
    Rescan,
}

/// Which trees to watch: roots, minus excluded subtrees; with a writer, only the directories
/// it can write (and every directory made while watching).
#[derive(Debug, Clone, Default)]
pub struct Rules {
    pub roots: Vec<PathBuf>,
    pub exclude: Vec<PathBuf>,
    pub writer: Option<Writer>,
}

/// An unprivileged user whose changes are watched. It can only change directories it may
/// write, so only those need watches — a few hundred install directories instead of every
/// directory under /usr. Fewer watches mean less work for the kernel on every file access.
#[derive(Debug, Clone)]
pub struct Writer {
    pub uid: u32,
    pub gids: Vec<u32>,
}

impl Writer {
    /// Whether this user may create or remove entries in a directory with this metadata.
    pub fn can_write(&self, m: &std::fs::Metadata) -> bool {
        use std::os::unix::fs::MetadataExt;
        let mode = m.mode();
        if m.uid() == self.uid {
            // Its own directory: it may always chmod it writable.
            true
        } else if self.gids.contains(&m.gid()) {
            mode & 0o020 != 0
        } else {
            mode & 0o002 != 0
        }
    }
}

impl Rules {
    pub fn excluded(&self, p: &Path) -> bool {
        self.exclude.iter().any(|x| p.starts_with(x))
    }

    /// The same rules for paths given inside `root`, as this process sees them.
    pub fn on_host(&self, root: &Path) -> Rules {
        let map = |v: &[PathBuf]| v.iter().map(|p| crate::fsutil::on_host(root, p)).collect();
        Rules {
            roots: map(&self.roots),
            exclude: map(&self.exclude),
            writer: self.writer.clone(),
        }
    }

    pub fn covers(&self, p: &Path) -> bool {
        self.roots.iter().any(|r| p.starts_with(r)) && !self.excluded(p)
    }
}

/// The directories under the rules' roots that the rules' writer may change (every directory,
/// without a writer). Walking is the slow part of setting a watcher up, and needs no watch:
/// it can run while the package builds, the watches being added right before the install.
pub fn writable_dirs(rules: &Rules) -> Vec<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    let mut stack: Vec<PathBuf> = rules
        .roots
        .iter()
        .filter(|r| r.is_dir() && !rules.excluded(r))
        .cloned()
        .collect();
    while let Some(d) = stack.pop() {
        let Ok(m) = std::fs::symlink_metadata(&d) else {
            continue;
        };
        if rules.writer.as_ref().is_none_or(|w| w.can_write(&m)) {
            out.push(d.clone());
        }
        // A link count of 2 means no subdirectories (ext4, XFS, tmpfs; others say 1,
        // "unknown"): no need to list it.
        if m.nlink() == 2 {
            continue;
        }
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                let p = e.path();
                if !rules.excluded(&p) {
                    stack.push(p);
                }
            }
        }
    }
    out
}

/// A watcher running on its own thread, collecting events until [`Collector::finish`];
/// [`Collector::take`] hands over what was seen so far and goes on watching.
pub struct Collector {
    control: Option<std::fs::File>,
    events: std::sync::mpsc::Receiver<Vec<Event>>,
    thread: Option<std::thread::JoinHandle<std::io::Result<()>>>,
    /// How many directories were being watched when it started.
    pub watched: usize,
}

impl Collector {
    /// Start watching. Returns once every directory under the roots is watched, so anything
    /// done after this returns is seen.
    pub fn start(rules: Rules) -> std::io::Result<Collector> {
        Collector::start_with(Watcher::new(rules)?)
    }

    /// Run a watcher already set up (see [`Watcher::with_dirs`]).
    pub fn start_with(mut w: Watcher) -> std::io::Result<Collector> {
        use std::io::Read;
        let watched = w.watched();
        let (rx, tx) = nix::unistd::pipe()?;
        let (send, events) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("upm-watch".into())
            .spawn(move || {
                let mut rx = std::fs::File::from(rx);
                let mut seen = Vec::new();
                loop {
                    let control = crate::sys::wait_readable(w.fd(), std::os::fd::AsFd::as_fd(&rx))?;
                    w.read(&mut seen)?;
                    if !control {
                        continue;
                    }
                    // Everything the watched processes did before the request is queued by
                    // now: drain it, then hand it over (a byte) or finish (end of file).
                    let mut byte = [0u8; 1];
                    let n = rx.read(&mut byte)?;
                    w.read(&mut seen)?;
                    w.flush(&mut seen);
                    if send.send(std::mem::take(&mut seen)).is_err() || n == 0 {
                        return Ok(());
                    }
                }
            })?;
        Ok(Collector {
            control: Some(std::fs::File::from(tx)),
            events,
            thread: Some(thread),
            watched,
        })
    }

    /// Every event seen since the start or the last `take`; watching goes on.
    pub fn take(&mut self) -> std::io::Result<Vec<Event>> {
        use std::io::Write;
        if let Some(c) = self.control.as_mut() {
            c.write_all(b"t")?;
        }
        self.events.recv().map_err(|_| self.thread_error())
    }

    fn thread_error(&mut self) -> std::io::Error {
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(Err(e))) => e,
            Some(Err(_)) => std::io::Error::other("the watcher thread panicked"),
            _ => std::io::Error::other("the watcher stopped"),
        }
    }

    /// Stop watching and return every event seen since the start or the last `take`.
    pub fn finish(mut self) -> std::io::Result<Vec<Event>> {
        self.control.take();
        let events = self.events.recv().map_err(|_| self.thread_error())?;
        if let Some(t) = self.thread.take() {
            match t.join() {
                Ok(r) => r?,
                Err(_) => return Err(std::io::Error::other("the watcher thread panicked")),
            }
        }
        Ok(events)
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.control.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(d: &Path) -> Rules {
        Rules {
            roots: vec![d.to_path_buf()],
            exclude: vec![d.join("skip")],
            writer: None,
        }
    }

    #[test]
    fn sees_files_in_new_directories_moves_and_deletes() {
        let d = tempfile::tempdir().unwrap();
        let d = d.path();
        std::fs::create_dir(d.join("skip")).unwrap();
        std::fs::write(d.join("old"), "x").unwrap();
        let c = Collector::start(rules(d)).unwrap();
        // A deep tree made at once: the watcher must see its files through watch-before-list.
        std::fs::create_dir_all(d.join("a/b/c")).unwrap();
        std::fs::write(d.join("a/b/c/f"), "x").unwrap();
        std::fs::rename(d.join("old"), d.join("new")).unwrap();
        std::fs::write(d.join("skip/ignored"), "x").unwrap();
        std::fs::rename(d.join("a/b"), d.join("moved")).unwrap();
        std::fs::write(d.join("moved/c/g"), "x").unwrap();
        std::fs::remove_file(d.join("moved/c/f")).unwrap();
        let mut c = c;
        let first = c.take().unwrap();
        std::fs::write(d.join("later"), "x").unwrap();
        let mut ev = c.finish().unwrap();
        assert!(ev.contains(&Event::Written {
            path: d.join("later")
        }));
        assert!(!first.iter().any(|e| format!("{e:?}").contains("later")));
        ev.splice(0..0, first);
        // The rename in a directory watched from the start pairs deterministically.
        assert!(ev.contains(&Event::Moved {
            from: d.join("old"),
            to: d.join("new"),
            dir: false
        }));
        // However the watcher's thread and the writes interleave, the file written in the
        // moved directory is seen under its final name.
        let mentions = |p: &Path| {
            ev.iter()
                .any(|e| format!("{e:?}").contains(&*p.to_string_lossy()))
        };
        assert!(mentions(&d.join("moved/c/g")), "{ev:?}");
        assert!(
            ev.iter().all(|e| !format!("{e:?}").contains("skip")),
            "excluded subtree reported: {ev:?}"
        );
    }

    #[test]
    fn queue_overflow_becomes_a_rescan_event() {
        let d = tempfile::tempdir().unwrap();
        let max: usize = std::fs::read_to_string("/proc/sys/fs/inotify/max_queued_events")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(16384);
        let mut w = Watcher::new(rules(d.path())).unwrap();
        // Nobody reads while more events are made than the kernel queue holds.
        for i in 0..max + 10 {
            std::fs::File::create(d.path().join(format!("f{i}"))).unwrap();
        }
        let mut ev = Vec::new();
        w.read(&mut ev).unwrap();
        assert!(
            ev.contains(&Event::Rescan),
            "no rescan among {} events",
            ev.len()
        );
    }
}
