//! fs_sync `apply`: carry records out in the mirror directory. A file's content is fetched with
//! `GET` (many asked ahead, answered in order), written under `DIR/.fs_mirror/` and renamed into
//! place — a reader never sees half a file, and a hard-link snapshot of the mirror keeps the old
//! one. Modes, numeric owners (when root) and link targets are applied. Records overtaken by
//! later ones (a file that became a directory, a source already gone) are settled by looking
//! at the mirror as it is, never by failing.

use std::collections::HashSet;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::client::Sync;
use crate::client::link::{Content, Link};
use crate::client::place::{RESERVED, check, place_known};
use crate::client::reaper::Reaper;
use crate::client::spread::Spread;
use crate::client::writer::{self, Job, Owner, Temp, Writer};
use crate::error::{Result, io};
use crate::proto::Request;
use crate::record::{Kind, Meta, Op, Record};

/// GETs asked ahead of the one being received, at most: enough that the server is never
/// idle while the client writes files, even when a loaded machine runs them in turns...
const WINDOW: usize = 512;
/// ...and at most this many bytes of them, so the requests in flight always fit in the
/// socket buffers while the server writes its answers (two full pipes would deadlock).
const WINDOW_BYTES: usize = 32 * 1024;

pub struct Apply {
    dir: PathBuf,
    /// Whether files get their owners.
    owner: Owner,
    /// The thread writing small files: the snapshot's during INIT, and runs of them after.
    writer: Option<Writer>,
    /// After INIT: the paths handed to the writer thread and not yet known to be in place,
    /// and the directories above them. A record touching one waits for the thread.
    queued: HashSet<PathBuf>,
    queued_above: HashSet<PathBuf>,
    /// Removes what replaced and deleted files leave behind.
    reaper: Reaper,
    /// Where new files are made.
    spread: Spread,
    verbose: bool,
    n: u64,
    /// During INIT: every path the snapshot named (and its parents), to remove the rest after.
    seen: Option<HashSet<PathBuf>>,
    /// Directories of the mirror known to be real directories (not symlinks), so most records
    /// need no `lstat` of their parents. Forgotten whenever something is removed, renamed or
    /// replaced.
    dirs: HashSet<PathBuf>,
}

impl Apply {
    pub fn new(dir: &Path, verbose: bool) -> Result<Apply> {
        let tmp = dir.join(".fs_mirror");
        std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o700)).map_err(io(&tmp))?;
        // Leftovers of a run that was killed, removed meanwhile.
        let reaper = Reaper::start()?;
        reaper.clear_later(&tmp, "applied")?;
        let root = nix::unistd::geteuid().is_root();
        Ok(Apply {
            dir: dir.to_path_buf(),
            owner: Owner { root },
            writer: None,
            queued: HashSet::new(),
            queued_above: HashSet::new(),
            spread: Spread::new(&tmp)?,
            reaper,
            verbose,
            n: 0,
            seen: None,
            dirs: HashSet::new(),
        })
    }

    /// A free name for a new file, in the client's own directory.
    fn temp(&mut self) -> Result<PathBuf> {
        self.n += 1;
        // The directory is this client's alone (sn's lock): no need for unique names.
        self.spread.name(self.n)
    }

    /// The directories new files were made in and no file being written can still be in
    /// (the writer thread is drained): removed once empty.
    fn retire_used(&mut self) {
        // Files kept for reuse may be in one: it goes once empty (tried again each time).
        self.spread.used.retain(|d| std::fs::remove_dir(d).is_err());
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
        if self.owner.root {
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
        if self.reaper.put_in_place(tmp, target, self.seen.is_some())? {
            self.dirs.clear();
        }
        Ok(())
    }

    fn symlink(&mut self, target: &Path, m: &Meta) -> Result<()> {
        let tmp = self.temp()?;
        let to = m.target.clone().unwrap_or_default();
        std::os::unix::fs::symlink(&to, &tmp).map_err(io(&tmp))?;
        self.owner(&tmp, m)?;
        self.install(&tmp, target)
    }

    /// Whether a `GET`'s answer can be used; says why not.
    fn usable(&self, got: Content, target: &Path) -> bool {
        match got {
            Content::Received => true,
            Content::Changed => {
                if self.verbose {
                    eprintln!(
                        "fs_mirror: {} changed since; waiting for its later record",
                        target.display()
                    );
                }
                false
            }
            Content::Corrupt => {
                eprintln!(
                    "fs_mirror: {}: content did not match its SHA-256; not applied",
                    target.display()
                );
                false
            }
        }
    }

    /// Whether `target` is, or is above or below, a file the writer thread may not have put
    /// in place yet.
    fn conflicts(&self, target: &Path) -> bool {
        !self.queued.is_empty()
            && (self.queued_above.contains(target)
                || target.ancestors().any(|a| self.queued.contains(a)))
    }

    /// Wait until every file handed to the writer thread is in place.
    fn drain(&mut self) -> Result<()> {
        if self.queued.is_empty() {
            return Ok(());
        }
        self.queued.clear();
        self.queued_above.clear();
        let Some(w) = &mut self.writer else {
            return Ok(());
        };
        match w.wait() {
            Ok(removed_dir) => {
                if removed_dir {
                    self.dirs.clear();
                }
                Ok(())
            }
            Err(e) => {
                // It stopped on this error; the next file starts another.
                self.writer = None;
                Err(e)
            }
        }
    }

    /// Receive a `GET`'s answer into `target`.
    fn receive(&mut self, link: &mut Link, target: &Path, m: &Meta) -> Result<()> {
        if self.seen.is_none() && self.conflicts(target) {
            self.drain()?;
        }
        if m.size <= writer::SMALL {
            return self.receive_queued(link, target, m);
        }
        let tmp = self.temp()?;
        let mut t = Temp::create(&tmp, &self.reaper, self.seen.is_some())?;
        let got = link.content(&tmp, &mut |b| t.file.write_all(b))?;
        if !self.usable(got, target) {
            drop(t); // not wanted: nothing is left of it
            return Ok(());
        }
        t.finish(m, &self.owner)?;
        let tmp = t.named()?;
        self.install(&tmp, target)
    }

    /// Receive the answer to a `GET … META` into `target`: a file whose record carries no
    /// state (a MOVE whose source never arrived here) lands with the mode, owner and mtime the
    /// server's file has. A server that does not say leaves it private (600, this process's
    /// owner) until an ATTRIB comes: never more open than the source.
    fn receive_refetched(&mut self, link: &mut Link, target: &Path) -> Result<()> {
        let tmp = self.temp()?;
        let mut t = Temp::create(&tmp, &self.reaper, self.seen.is_some())?;
        let (got, meta) = link.content_meta(&tmp, &mut |b| t.file.write_all(b))?;
        if !self.usable(got, target) {
            drop(t); // not wanted: nothing is left of it
            return Ok(());
        }
        let m = meta.unwrap_or_else(|| Meta {
            kind: Kind::File,
            mode: 0o600,
            uid: nix::unistd::geteuid().as_raw(),
            gid: nix::unistd::getegid().as_raw(),
            size: 0,
            mtime_ns: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as i64),
            target: None,
        });
        t.finish(&m, &self.owner)?;
        let tmp = t.named()?;
        self.install(&tmp, target)
    }

    /// Receive a small file into memory and hand it to the writer thread. During INIT the
    /// snapshot names each path once, so the files may land in any order once their
    /// directories are there; after, a record touching a path still queued waits
    /// ([`Apply::conflicts`]).
    fn receive_queued(&mut self, link: &mut Link, target: &Path, m: &Meta) -> Result<()> {
        let tmp = self.temp()?;
        let mut content = Vec::with_capacity(m.size as usize);
        // A file that grew large since the snapshot goes to its temp file as it comes.
        let mut spilled: Option<Temp> = None;
        let got = link.content(&tmp, &mut |b| {
            if spilled.is_none() && content.len() + b.len() > writer::SMALL as usize {
                let mut t = Temp::create(&tmp, &self.reaper, self.seen.is_some())
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
                t.file.write_all(&content)?;
                content = Vec::new();
                spilled = Some(t);
            }
            match &mut spilled {
                Some(t) => t.file.write_all(b),
                None => {
                    content.extend_from_slice(b);
                    Ok(())
                }
            }
        })?;
        if !self.usable(got, target) {
            if let Some(t) = spilled {
                drop(t); // not wanted: nothing is left of it
            }
            return Ok(());
        }
        if let Some(mut t) = spilled {
            t.finish(m, &self.owner)?;
            let tmp = t.named()?;
            return self.install(&tmp, target);
        }
        // Only now: a file not sent (changed since) makes no directories.
        self.parents(target)?;
        let job = Job {
            new: self.seen.is_some(),
            tmp,
            target: target.to_path_buf(),
            content,
            meta: m.clone(),
        };
        if self.seen.is_none() {
            self.queued.insert(target.to_path_buf());
            for a in target.ancestors().skip(1) {
                if !self.queued_above.insert(a.to_path_buf()) {
                    break;
                }
            }
        }
        let w = match &mut self.writer {
            Some(w) => w,
            None => self
                .writer
                .insert(Writer::start(self.owner, self.reaper.clone())?),
        };
        let r = w.write(job);
        if r.is_err() {
            // It stopped on this error; the next file starts another.
            self.writer = None;
            self.queued.clear();
            self.queued_above.clear();
        }
        r
    }

    fn rename(&mut self, from: &Path, to: &Path) -> Result<bool> {
        let Ok(fm) = std::fs::symlink_metadata(from) else {
            return Ok(false);
        };
        self.parents(to)?;
        self.dirs.clear();
        match std::fs::symlink_metadata(to) {
            Ok(tm) if tm.is_dir() || fm.is_dir() => {
                let free = self.temp()?;
                self.reaper.retire(to, &free)?
            }
            _ => {}
        }
        std::fs::rename(from, to).map_err(io(to))?;
        Ok(true)
    }

    fn attrib(&mut self, target: &Path, m: &Meta) -> Result<()> {
        match std::fs::symlink_metadata(target) {
            Ok(k) if k.is_dir() == (m.kind == Kind::Dir) && !k.file_type().is_symlink() => {
                // A snapshot sharing the file keeps its mode and owner.
                crate::client::rotate::unshare(target, &self.temp()?)?;
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

impl Sync for Apply {
    fn begin_init(&mut self) {
        // An INIT cut short (the connection lost) leaves its files in place first.
        if let Some(mut w) = self.writer.take() {
            let _ = w.finish();
        }
        self.queued.clear();
        self.queued_above.clear();
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
        // The size of each GET in flight, and their sum.
        let mut flying = std::collections::VecDeque::new();
        let mut flying_bytes = 0usize;
        // A command deferred to after the last GET (the next INIT batch) must not come
        // before the answers of a refetch, which are read after the loop.
        let may_send_deferred = !records.iter().any(|(_, r)| r.op == Op::Move);
        let mut refetch = Vec::new();
        for (i, (serial, r)) in records.iter().enumerate() {
            if i > 0 && refetch.is_empty() && self.queued.is_empty() {
                // Everything before this record is carried out.
                done(records[i - 1].0)?;
            }
            if r.op != Op::Fwrite {
                // Only files may be written beside the writer thread.
                self.drain()?;
            }
            self.note_seen(&r.path);
            if r.op == Op::Fwrite && check(&r.path).is_ok() {
                // Its GET is (or is about to be) asked: its answer must be read, whatever
                // the mirror now says of the path.
                // Asked in bunches (half a window at a time), so a send carries many.
                if asked == received
                    || (asked < fetch.len()
                        && asked - received < WINDOW / 2
                        && flying_bytes < WINDOW_BYTES / 2)
                {
                    while asked < fetch.len()
                        && (asked == received
                            || (asked - received < WINDOW && flying_bytes < WINDOW_BYTES))
                    {
                        let (s, p) = &fetch[asked];
                        // The mirror's copy, for a delta against it.
                        let local = self.place(p).ok();
                        let n = link.get(*s, p.clone(), local.as_deref())?;
                        flying.push_back(n);
                        flying_bytes += n;
                        asked += 1;
                    }
                    if asked == fetch.len() && may_send_deferred {
                        link.send_deferred()?;
                    }
                    link.flush()?;
                }
                received += 1;
                flying_bytes -= flying.pop_front().unwrap_or(0);
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
                    let free = self.temp()?;
                    self.reaper.retire(&target, &free)?
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
        self.drain()?;
        for (i, serial, path, target) in refetch {
            // A later record of this batch moves or deletes it again: fetched under this
            // name, it would stay behind as a copy.
            let later = records[i + 1..]
                .iter()
                .any(|(_, r)| r.path == path && matches!(r.op, Op::Move | Op::Delete));
            if later {
                continue;
            }
            link.command(&Request::GetMeta { serial, path })?;
            self.receive_refetched(link, &target)?;
        }
        self.drain()?;
        if self.seen.is_none() {
            self.retire_used();
        }
        if let Some((last, _)) = records.last() {
            done(*last)?;
        }
        Ok(())
    }

    fn end_init(&mut self) -> Result<()> {
        // Every file of the snapshot in place before anything else is looked at.
        if let Some(mut w) = self.writer.take() {
            w.finish()?;
        }
        self.retire_used();
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
                    let free = self.temp()?;
                    self.reaper.retire(&p, &free)?;
                }
            }
        }
        Ok(())
    }
}
