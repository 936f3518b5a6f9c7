//! A fake kernel for unit tests of the watcher's logic: a tree of paths in memory, watches that
//! follow their directory across renames as inotify's do, and for each change the raw events
//! inotify would queue — or an overflow, standing for events lost.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::{Backend, Error, Kind, Raw, Rules};

#[derive(Debug, Default)]
pub struct Fake {
    /// Every path that exists, and whether it is a directory.
    tree: BTreeMap<PathBuf, bool>,
    /// Each watch and the directory it watches now.
    watches: BTreeMap<u32, PathBuf>,
    next_wd: u32,
    next_cookie: u32,
    queue: Vec<Raw<u32>>,
}

impl Fake {
    /// A fake whose tree holds these directories (and their parents), made before watching.
    pub fn with_dirs(dirs: &[&str]) -> Fake {
        let mut f = Fake::default();
        for d in dirs {
            for a in Path::new(d).ancestors() {
                f.tree.insert(a.to_path_buf(), true);
            }
        }
        f
    }

    /// The watch on `dir`, if any.
    fn wd(&self, dir: &Path) -> Option<u32> {
        self.watches
            .iter()
            .find(|(_, p)| p.as_path() == dir)
            .map(|(wd, _)| *wd)
    }

    /// Queue an event about `path` for the watch on its directory, if there is one.
    fn queue_for(&mut self, path: &Path, kind: Kind, dir: bool, cookie: u32) {
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            return;
        };
        if let Some(wd) = self.wd(parent) {
            self.queue.push(Raw::Entry {
                wd,
                name: name.to_os_string(),
                kind,
                dir,
                cookie,
            });
        }
    }

    pub fn mkdir(&mut self, p: &str) {
        self.tree.insert(p.into(), true);
        self.queue_for(Path::new(p), Kind::Create, true, 0);
    }

    /// Create (if new) and write a file.
    pub fn write(&mut self, p: &str) {
        if self.tree.insert(p.into(), false).is_none() {
            self.queue_for(Path::new(p), Kind::Create, false, 0);
        }
        self.queue_for(Path::new(p), Kind::Write, false, 0);
    }

    /// Rename `from` (and what is under it) to `to`.
    pub fn rename(&mut self, from: &str, to: &str) {
        let (from, to) = (Path::new(from), Path::new(to));
        let moved: Vec<(PathBuf, bool)> = self
            .tree
            .iter()
            .filter(|(p, _)| p.starts_with(from))
            .map(|(p, d)| (p.clone(), *d))
            .collect();
        let dir = moved.first().is_some_and(|(_, d)| *d);
        self.next_cookie += 1;
        let cookie = self.next_cookie;
        self.queue_for(from, Kind::MovedFrom, dir, cookie);
        self.queue_for(to, Kind::MovedTo, dir, cookie);
        let new = |p: &Path| to.join(p.strip_prefix(from).unwrap_or(p));
        for (p, d) in moved {
            self.tree.remove(&p);
            self.tree.insert(new(&p), d);
        }
        for p in self.watches.values_mut() {
            if p.starts_with(from) {
                *p = new(p);
            }
        }
    }

    /// Events were lost: the kernel's queue is replaced by an overflow.
    pub fn lose_events(&mut self) {
        self.queue.clear();
        self.queue.push(Raw::Overflow);
    }
}

impl Backend for Fake {
    type Wd = u32;

    fn add(&mut self, dir: &Path) -> Result<Option<u32>, Error> {
        if self.tree.get(dir) != Some(&true) {
            return Ok(None);
        }
        if let Some(wd) = self.wd(dir) {
            return Ok(Some(wd));
        }
        self.next_wd += 1;
        self.watches.insert(self.next_wd, dir.to_path_buf());
        Ok(Some(self.next_wd))
    }

    fn remove(&mut self, wd: u32) {
        if self.watches.remove(&wd).is_some() {
            self.queue.push(Raw::Ignored(wd));
        }
    }

    fn read(&mut self, out: &mut Vec<Raw<u32>>) -> Result<(), Error> {
        out.append(&mut self.queue);
        Ok(())
    }

    fn list(&self, dir: &Path) -> Vec<(PathBuf, bool)> {
        self.tree
            .iter()
            .filter(|(p, _)| p.parent() == Some(dir))
            .map(|(p, d)| (p.clone(), *d))
            .collect()
    }

    fn dirs(&self, rules: &Rules) -> Vec<PathBuf> {
        self.tree
            .iter()
            .filter(|(p, d)| **d && rules.covers(p))
            .map(|(p, _)| p.clone())
            .collect()
    }
}
