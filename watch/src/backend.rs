//! The kernel side of the watcher as a trait, so its logic runs the same over inotify and over
//! the fake kernel of the unit tests: add and remove watches, read the raw events queued, and
//! look at directories (listing a new one, finding every one again after lost events).

use std::ffi::OsString;
use std::fmt::Debug;
use std::hash::Hash;
use std::path::{Path, PathBuf};

use crate::{Error, Rules};

/// A raw event, as the kernel queues it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Raw<Wd> {
    /// The queue overflowed: events were lost.
    Overflow,
    /// The watch is gone (its directory was deleted, or the watch removed).
    Ignored(Wd),
    /// Mode, owner or times of the watched directory itself changed (fanotify says so of the
    /// directory; inotify of the entry in its parent).
    DirAttrib(Wd),
    /// Something happened to entry `name` of the directory watched by `wd`.
    Entry {
        wd: Wd,
        name: OsString,
        kind: Kind,
        dir: bool,
        cookie: u32,
    },
}

/// What happened to an entry of a watched directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Create,
    /// Written and closed.
    Write,
    Attrib,
    Delete,
    /// The first half of a rename; its partner has the same cookie.
    MovedFrom,
    MovedTo,
}

/// Lists a directory as [`Backend::list`] does.
pub type Lister = fn(&Path) -> Vec<(PathBuf, bool)>;

/// The entries of `dir`, each with whether it is a directory (the entry's type as the listing
/// gives it, a symlink not followed); nothing when it cannot be read.
pub fn list_dir(dir: &Path) -> Vec<(PathBuf, bool)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|e| (e.path(), e.file_type().is_ok_and(|t| t.is_dir())))
        .collect()
}

pub trait Backend {
    /// A watch descriptor.
    type Wd: Clone + Eq + Hash + Debug;
    /// Watch directory `dir`; `None` when it is gone, no longer a directory, or unreadable
    /// (its own events say what became of it). Watching a directory twice gives the same
    /// descriptor.
    fn add(&mut self, dir: &Path) -> Result<Option<Self::Wd>, Error>;
    /// Stop watching.
    fn remove(&mut self, wd: Self::Wd);
    /// Append every raw event queued now, without waiting.
    fn read(&mut self, out: &mut Vec<Raw<Self::Wd>>) -> Result<(), Error>;
    /// The entries of a directory: their paths and whether each is a directory (symlinks are
    /// not followed). Nothing when it cannot be read.
    fn list(&self, dir: &Path) -> Vec<(PathBuf, bool)>;
    /// [`Backend::list`] as a function another thread may call, when listing needs nothing of
    /// the backend's own: the first walk then lists on a thread of its own while this one adds
    /// the watches.
    fn lister(&self) -> Option<Lister> {
        None
    }
    /// Every directory the rules cover (see [`crate::writable_dirs`]).
    fn dirs(&self, rules: &Rules) -> Vec<PathBuf>;
}
