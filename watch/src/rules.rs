//! Which directories to watch: roots minus excluded subtrees, and, with a [`Writer`], only the
//! directories that user can change; [`writable_dirs`] finds them.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

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

    pub fn covers(&self, p: &Path) -> bool {
        self.roots.iter().any(|r| p.starts_with(r)) && !self.excluded(p)
    }

    /// The same rules with every root and exclusion mapped through `f` (for example from
    /// paths inside a target root to the paths this process sees).
    pub fn map_paths(&self, f: impl Fn(&Path) -> PathBuf) -> Rules {
        Rules {
            roots: self.roots.iter().map(|p| f(p)).collect(),
            exclude: self.exclude.iter().map(|p| f(p)).collect(),
            writer: self.writer.clone(),
        }
    }
}

/// The directories under the rules' roots that the rules' writer may change (every directory,
/// without a writer). Walking is the slow part of setting a watcher up, and needs no watch:
/// it can run while the watched work has not started yet, the watches being added right before.
pub fn writable_dirs(rules: &Rules) -> Vec<PathBuf> {
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
