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

/// Which trees to watch: roots, minus excluded subtrees.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    pub roots: Vec<PathBuf>,
    pub exclude: Vec<PathBuf>,
}

impl Rules {
    pub fn excluded(&self, p: &Path) -> bool {
        self.exclude.iter().any(|x| p.starts_with(x))
    }

    pub fn covers(&self, p: &Path) -> bool {
        self.roots.iter().any(|r| p.starts_with(r)) && !self.excluded(p)
    }
}

/// A watcher running on its own thread, collecting events until [`Collector::finish`].
pub struct Collector {
    stop: Option<std::os::fd::OwnedFd>,
    thread: Option<std::thread::JoinHandle<std::io::Result<Vec<Event>>>>,
    /// How many directories were being watched when it started.
    pub watched: usize,
}

impl Collector {
    /// Start watching. Returns once every directory under the roots is watched, so anything
    /// done after this returns is seen.
    pub fn start(rules: Rules) -> std::io::Result<Collector> {
        let mut w = Watcher::new(rules)?;
        let watched = w.watched();
        let (rx, tx) = nix::unistd::pipe()?;
        let thread = std::thread::Builder::new()
            .name("upm-watch".into())
            .spawn(move || {
                let mut events = Vec::new();
                loop {
                    let done = crate::sys::wait_readable(w.fd(), rx.as_fd_ref())?;
                    w.read(&mut events)?;
                    if done {
                        // Everything the watched processes did is queued by now: drain it.
                        w.read(&mut events)?;
                        w.flush(&mut events);
                        return Ok(events);
                    }
                }
            })?;
        Ok(Collector {
            stop: Some(tx),
            thread: Some(thread),
            watched,
        })
    }

    /// Stop watching and return every event seen since [`Collector::start`].
    pub fn finish(mut self) -> std::io::Result<Vec<Event>> {
        self.stop.take();
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(std::io::Error::other("the watcher thread panicked")),
            None => Ok(Vec::new()),
        }
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Borrowing an owned fd as a `BorrowedFd` without naming lifetimes at every call.
trait AsFdRef {
    fn as_fd_ref(&self) -> std::os::fd::BorrowedFd<'_>;
}

impl AsFdRef for std::os::fd::OwnedFd {
    fn as_fd_ref(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(d: &Path) -> Rules {
        Rules {
            roots: vec![d.to_path_buf()],
            exclude: vec![d.join("skip")],
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
        let ev = c.finish().unwrap();
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
}
