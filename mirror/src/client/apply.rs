//! fs_sync `apply`: carry records out in the mirror directory. A file's content is fetched with
//! `GET` (many asked ahead, answered in order), written under `DIR/.fs_mirror/` and renamed into
//! place — a reader never sees half a file, and a hard-link snapshot of the mirror keeps the old
//! one. Modes, numeric owners (when root) and link targets are applied. Records overtaken by
//! later ones (a file that became a directory, a source already gone) are settled by looking
//! at the mirror as it is, never by failing.

use std::collections::HashSet;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::client::Sync;
use crate::client::link::{Content, Link};
use crate::client::place::{RESERVED, check, place_known};
use crate::error::{Result, io};
use crate::proto::Request;
use crate::record::{Kind, Meta, Op, Record};

/// GETs asked ahead of the one being received.
const WINDOW: usize = 64;

pub struct Apply {
    dir: PathBuf,
    tmp: PathBuf,
    root: bool,
    verbose: bool,
    n: u64,
    /// During INIT: every path the snapshot named (and its parents), to remove the rest after.
    seen: Option<HashSet<PathBuf>>,
    /// Directories of the mirror known to be real directories (not symlinks), so most records
    /// need no `lstat` of their parents. Forgotten whenever something is removed, renamed or
    /// replaced.
    dirs: HashSet<PathBuf>,
}

/// Whether an error says the path is not there (a missing or non-directory ancestor included).
fn absent(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::NotFound || e.raw_os_error() == Some(nix::libc::ENOTDIR)
}

fn remove_any(p: &Path) -> std::io::Result<()> {
    let r = match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(p),
        Ok(_) => std::fs::remove_file(p),
        Err(e) => Err(e),
    };
    match r {
        Err(e) if absent(&e) => Ok(()),
        r => r,
    }
}

impl Apply {
    pub fn new(dir: &Path, verbose: bool) -> Result<Apply> {
        let tmp = dir.join(".fs_mirror");
        std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o700)).map_err(io(&tmp))?;
        // Leftovers of a run that was killed.
        if let Ok(rd) = std::fs::read_dir(&tmp) {
            for e in rd.flatten() {
                if e.file_name() != "applied" {
                    let _ = remove_any(&e.path());
                }
            }
        }
        Ok(Apply {
            dir: dir.to_path_buf(),
            tmp,
            root: nix::unistd::geteuid().is_root(),
            verbose,
            n: 0,
            seen: None,
            dirs: HashSet::new(),
        })
    }

    fn temp(&mut self) -> PathBuf {
        self.n += 1;
        // The directory is this client's alone (sn's lock): no need for unique names.
        self.tmp.join(format!("t{}", self.n))
    }

    /// Make every directory above `target` (inside DIR) a directory.
    fn parents(&mut self, target: &Path) -> Result<()> {
        let Some(parent) = target.parent() else {
            return Ok(());
        };
        if self.dirs.contains(parent) {
            return Ok(());
        }
        let rel = parent
            .strip_prefix(&self.dir)
            .unwrap_or(Path::new(""))
            .to_path_buf();
        let mut at = self.dir.clone();
        for c in rel.components() {
            at.push(c);
            if self.dirs.contains(&at) {
                continue;
            }
            match std::fs::symlink_metadata(&at) {
                Ok(m) if m.is_dir() => {}
                // Overtaken: something that is no directory any more on the server.
                Ok(_) => {
                    std::fs::remove_file(&at).map_err(io(&at))?;
                    std::fs::create_dir(&at).map_err(io(&at))?;
                }
                Err(_) => std::fs::create_dir(&at).map_err(io(&at))?,
            }
            self.dirs.insert(at.clone());
        }
        Ok(())
    }

    /// Where a record's path lands, checked (see [`crate::client::place::place`]).
    fn place(&self, path: &Path) -> std::result::Result<PathBuf, crate::client::place::Refused> {
        place_known(&self.dir, path, &mut |p| self.dirs.contains(p))
    }

    fn owner(&self, p: &Path, m: &Meta) -> Result<()> {
        if self.root {
            std::os::unix::fs::lchown(p, Some(m.uid), Some(m.gid)).map_err(io(p))?;
        }
        Ok(())
    }

    fn mode(&self, p: &Path, m: &Meta) -> Result<()> {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m.mode)).map_err(io(p))
    }

    fn mkdir(&mut self, target: &Path, m: &Meta) -> Result<()> {
        self.parents(target)?;
        match std::fs::symlink_metadata(target) {
            Ok(k) if k.is_dir() => {}
            Ok(_) => {
                std::fs::remove_file(target).map_err(io(target))?;
                std::fs::create_dir(target).map_err(io(target))?;
            }
            Err(_) => std::fs::create_dir(target).map_err(io(target))?,
        }
        self.dirs.insert(target.to_path_buf());
        self.owner(target, m)?;
        self.mode(target, m)
    }

    /// Put `tmp` at `target`, replacing whatever is there.
    fn install(&mut self, tmp: &Path, target: &Path) -> Result<()> {
        self.parents(target)?;
        match std::fs::rename(tmp, target) {
            // A directory is in the way (overtaken): it goes.
            Err(_) if std::fs::symlink_metadata(target).is_ok_and(|m| m.is_dir()) => {
                std::fs::remove_dir_all(target).map_err(io(target))?;
                self.dirs.clear();
                std::fs::rename(tmp, target).map_err(io(target))
            }
            r => r.map_err(io(target)),
        }
    }

    fn symlink(&mut self, target: &Path, m: &Meta) -> Result<()> {
        let tmp = self.temp();
        let to = m.target.clone().unwrap_or_default();
        std::os::unix::fs::symlink(&to, &tmp).map_err(io(&tmp))?;
        self.owner(&tmp, m)?;
        self.install(&tmp, target)
    }

    /// Receive a `GET`'s answer into `target`.
    fn receive(&mut self, link: &mut Link, target: &Path, m: &Meta) -> Result<()> {
        let tmp = self.temp();
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io(&tmp))?;
        let got = link.content(&tmp, &mut |b| f.write_all(b))?;
        match got {
            Content::Received => {}
            Content::Changed => {
                drop(f);
                let _ = std::fs::remove_file(&tmp);
                if self.verbose {
                    eprintln!(
                        "fs_mirror: {} changed since; waiting for its later record",
                        target.display()
                    );
                }
                return Ok(());
            }
            Content::Corrupt => {
                drop(f);
                let _ = std::fs::remove_file(&tmp);
                eprintln!(
                    "fs_mirror: {}: content did not match its SHA-256; not applied",
                    target.display()
                );
                return Ok(());
            }
        }
        if self.root {
            std::os::unix::fs::fchown(&f, Some(m.uid), Some(m.gid)).map_err(io(&tmp))?;
        }
        f.set_permissions(std::fs::Permissions::from_mode(m.mode))
            .map_err(io(&tmp))?;
        set_mtime(&f, m.mtime_ns).map_err(io(&tmp))?;
        drop(f);
        self.install(&tmp, target)
    }

    fn rename(&mut self, from: &Path, to: &Path) -> Result<bool> {
        let Ok(fm) = std::fs::symlink_metadata(from) else {
            return Ok(false);
        };
        self.parents(to)?;
        self.dirs.clear();
        match std::fs::symlink_metadata(to) {
            Ok(tm) if tm.is_dir() || fm.is_dir() => remove_any(to).map_err(io(to))?,
            _ => {}
        }
        std::fs::rename(from, to).map_err(io(to))?;
        Ok(true)
    }

    fn attrib(&self, target: &Path, m: &Meta) -> Result<()> {
        match std::fs::symlink_metadata(target) {
            Ok(k) if k.is_dir() == (m.kind == Kind::Dir) && !k.file_type().is_symlink() => {
                self.owner(target, m)?;
                self.mode(target, m)
            }
            _ => Ok(()),
        }
    }

    fn note_seen(&mut self, p: &Path) {
        if let Some(seen) = &mut self.seen {
            for a in p.ancestors() {
                if !seen.insert(a.to_path_buf()) {
                    break;
                }
            }
        }
    }
}

fn set_mtime(f: &File, ns: i64) -> std::io::Result<()> {
    use nix::sys::stat::futimens;
    use nix::sys::time::TimeSpec;
    let mtime = TimeSpec::new(ns.div_euclid(1_000_000_000), ns.rem_euclid(1_000_000_000));
    futimens(f, &TimeSpec::UTIME_OMIT, &mtime).map_err(std::io::Error::from)
}

impl Sync for Apply {
    fn begin_init(&mut self) {
        self.seen = Some(HashSet::new());
    }

    fn batch(
        &mut self,
        records: &[(u64, Record)],
        link: &mut Link,
        done: &mut dyn FnMut(u64) -> Result<()>,
    ) -> Result<()> {
        // The files to fetch, in order; their GETs go out ahead of the records being applied.
        let fetch: Vec<(u64, PathBuf)> = records
            .iter()
            .filter(|(_, r)| r.op == Op::Fwrite && check(&r.path).is_ok())
            .map(|(s, r)| (*s, r.path.clone()))
            .collect();
        let (mut asked, mut received) = (0usize, 0usize);
        let mut refetch = Vec::new();
        for (i, (serial, r)) in records.iter().enumerate() {
            if i > 0 && refetch.is_empty() {
                // Everything before this record is carried out.
                done(records[i - 1].0)?;
            }
            self.note_seen(&r.path);
            if r.op == Op::Fwrite && check(&r.path).is_ok() {
                // Its GET is (or is about to be) asked: its answer must be read, whatever
                // the mirror now says of the path.
                while asked < fetch.len() && asked < received + WINDOW {
                    let (s, p) = &fetch[asked];
                    link.send(&Request::Get {
                        serial: *s,
                        path: p.clone(),
                    })?;
                    asked += 1;
                }
                link.flush()?;
                received += 1;
            }
            let target = match self.place(&r.path) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("fs_mirror: refused record {}: {e}", r.line());
                    if r.op == Op::Fwrite && check(&r.path).is_ok() {
                        link.content(Path::new("/dev/null"), &mut |_| Ok(()))?;
                    }
                    continue;
                }
            };
            let meta = r.meta.clone();
            match (r.op, meta) {
                (Op::Fwrite, Some(m)) => self.receive(link, &target, &m)?,
                (Op::Create, Some(m)) => self.mkdir(&target, &m)?,
                (Op::Symlink, Some(m)) => self.symlink(&target, &m)?,
                (Op::Attrib, Some(m)) => self.attrib(&target, &m)?,
                (Op::Delete, _) => {
                    self.dirs.clear();
                    remove_any(&target).map_err(io(&target))?
                }
                (Op::Move, _) => {
                    let to = r.to.clone().unwrap_or_default();
                    self.note_seen(&to);
                    match self.place(&to) {
                        Ok(to_t) => {
                            if !self.rename(&target, &to_t)? {
                                // Its source never arrived here: fetch it under its new name.
                                refetch.push((i, *serial, to, to_t));
                            }
                        }
                        Err(e) => eprintln!("fs_mirror: refused record {}: {e}", r.line()),
                    }
                }
                _ => eprintln!("fs_mirror: record without state ignored: {}", r.line()),
            }
        }
        for (i, serial, path, target) in refetch {
            // A later record of this batch moves or deletes it again: fetched under this
            // name, it would stay behind as a copy.
            let later = records[i + 1..]
                .iter()
                .any(|(_, r)| r.path == path && matches!(r.op, Op::Move | Op::Delete));
            if later {
                continue;
            }
            link.command(&Request::Get { serial, path })?;
            let m = Meta {
                kind: Kind::File,
                mode: 0o644,
                uid: 0,
                gid: 0,
                size: 0,
                mtime_ns: 0,
                target: None,
            };
            self.receive(link, &target, &m)?;
        }
        if let Some((last, _)) = records.last() {
            done(*last)?;
        }
        Ok(())
    }

    fn end_init(&mut self) -> Result<()> {
        let Some(seen) = self.seen.take() else {
            return Ok(());
        };
        self.dirs.clear();
        // What the snapshot did not name has no place in the mirror.
        let mut stack = vec![self.dir.clone()];
        while let Some(d) = stack.pop() {
            let Ok(rd) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in rd.flatten() {
                let p = e.path();
                let rel = p.strip_prefix(&self.dir).unwrap_or(&p);
                if d == self.dir && RESERVED.iter().any(|r| rel == Path::new(r)) {
                    continue;
                }
                if seen.contains(&Path::new("/").join(rel)) {
                    if e.file_type().is_ok_and(|t| t.is_dir()) {
                        stack.push(p);
                    }
                } else {
                    if self.verbose {
                        eprintln!("fs_mirror: {} is not on the server; removed", p.display());
                    }
                    remove_any(&p).map_err(io(&p))?;
                }
            }
        }
        Ok(())
    }
}
