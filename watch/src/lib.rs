//! The recursive tree watcher, shared by upm's install tracker and by mirrord: it follows every
//! directory under a set of roots, minus excluded subtrees, and turns the kernel's inotify events
//! into a small event model of whole paths, handed to the caller one event at a time.
//!
//! - **Watch before list**: a new directory is watched first and listed second, and everything
//!   the listing finds is reported as created, so nothing made in a brand-new directory between
//!   its creation and its watch is missed.
//! - **Moves are paired by cookie**: a rename inside the watched trees is one [`Event::Moved`];
//!   a half without its partner is a deletion (moved out) or a creation (moved in).
//! - **Overflow** of the kernel queue becomes an explicit [`Event::Rescan`]: the consumer must
//!   look at the trees again, as events were lost.
//! - **Watches are indexed by path** as well as by watch descriptor, so a renamed directory
//!   updates only the watches under it.
//!
//! [`Watcher`] holds the logic over a [`Backend`], the kernel side: [`Inotify`] on Linux, or
//! [`Fake`] in unit tests. [`Watcher::read`] hands each event to a closure; [`Watcher::spawn`]
//! runs a watcher on its own thread, feeding a [`Handler`] (an `mpsc::Sender`, a `Vec`, or the
//! caller's own state) as events arrive, until [`Running::finish`].
//!
//! This crate knows nothing about packages: upm and mirrord use it without linking each other.

mod backend;
mod fake;
mod fanotify;
mod index;
mod inotify;
mod kernel;
mod rules;
mod running;
mod watcher;

use std::path::PathBuf;

pub use backend::{Backend, Kind, Raw};
pub use fake::Fake;
pub use fanotify::{Fanotify, Handle};
pub use inotify::Inotify;
pub use kernel::{Choice, Kernel, KernelWd};
pub use rules::{Rules, Writer, writable_dirs};
pub use running::{Control, Handler, Running};
pub use watcher::Watcher;

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

/// What can go wrong while watching.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "cannot watch {}: the inotify watch limit is reached; raise fs.inotify.max_user_watches \
         (sysctl) or watch fewer trees",
        path.display()
    )]
    Limit { path: PathBuf },
    #[error("cannot watch {}: {source}", path.display())]
    Watch {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start the watcher: {0}")]
    Start(std::io::Error),
    #[error("cannot read the watcher's events: {0}")]
    Read(std::io::Error),
    #[error("the watcher's thread panicked")]
    Panicked,
}
