//! The Monitor: turns the watcher's events into wmLog records and snapshot changes, one sqlite
//! transaction per burst of events, then publishes the new head to the waiting sessions.
//!
//! Events are hints, the disk is the truth: for an event about a path the monitor looks at the
//! path now (`lstat`) and logs what differs from the snapshot. That settles the original design's
//! "vanished" and "explode" cases on the server — a directory gone before its creation was
//! processed logs nothing; a file that became a directory logs DELETE then CREATE — and a
//! directory renamed while its files were being written is caught up when its listing under the
//! new name shows sizes or times that differ. Only deletions and moves are taken from the
//! events themselves, since the disk no longer shows what went. An overflow (`Rescan`) walks
//! the trees and logs only the differences.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::Connection;
use upm_watch::{Event, Handler, Rules};

use crate::error::Result;
use crate::head::Head;
use crate::overflow::Overflows;
use crate::record::{Kind, Meta, Op, Record};
use crate::store::snapshot::{self, Id};
use crate::store::wmlog::{self, Keep};

/// During a rescan, what it logged is committed and published every this many records.
const PUBLISH: u64 = 1024;

/// A path on disk now: its state and identity (`None`: gone, or neither file, directory nor
/// symlink).
fn stat(p: &Path) -> Option<(Meta, Id)> {
    let m = std::fs::symlink_metadata(p).ok()?;
    Some((Meta::from_metadata(p, &m)?, Id::of(&m)))
}

/// What a scan has found on disk so far.
#[derive(Default)]
struct Scan {
    seen: HashSet<Vec<u8>>,
    /// Records logged by this scan.
    logged: u64,
    /// The snapshot as the scan began, to pass over unchanged paths without a query; a
    /// subtree the scan moves or replaces is dropped from it (the database decides there).
    known: BTreeMap<Vec<u8>, (Meta, Option<Id>)>,
    /// Whether anything was dropped from `known` (then only the database knows every path
    /// the snapshot holds).
    forgot: bool,
}

impl Scan {
    /// Forget `p` and everything below it.
    fn forget(&mut self, p: &Path) {
        self.forgot = true;
        let b = p.as_os_str().as_bytes();
        let mut lo = b.to_vec();
        lo.push(b'/');
        let mut hi = b.to_vec();
        hi.push(b'0');
        let below: Vec<Vec<u8>> = self.known.range(lo..hi).map(|(k, _)| k.clone()).collect();
        for k in below {
            self.known.remove(&k);
        }
        self.known.remove(b);
    }
}

pub struct Monitor {
    db: Connection,
    rules: Rules,
    head: Arc<Head>,
    in_tx: bool,
    verbose: bool,
    /// With `verbose`: the records logged since the last commit, one line each.
    said: String,
    /// The FWRITE records of this burst (not committed, so not sent), by path.
    fresh: HashMap<PathBuf, u64>,
    scan: Option<Scan>,
    overflows: Overflows,
    keep: Option<Keep>,
    trimmed_at: Option<Instant>,
}

impl Monitor {
    pub fn new(db: Connection, rules: Rules, head: Arc<Head>, verbose: bool) -> Monitor {
        Monitor {
            db,
            rules,
            head,
            in_tx: false,
            verbose,
            said: String::new(),
            fresh: HashMap::new(),
            scan: None,
            overflows: Overflows::default(),
            keep: None,
            trimmed_at: None,
        }
    }

    /// Keep only what `keep` says of the log (checked at commits).
    pub fn keep(mut self, keep: Option<Keep>) -> Monitor {
        self.keep = keep;
        self
    }

    fn begin(&mut self) -> Result<()> {
        if !self.in_tx {
            self.db.execute_batch("BEGIN IMMEDIATE")?;
            self.in_tx = true;
        }
        Ok(())
    }

    /// Commit what this burst logged and wake the sessions waiting for it.
    pub fn commit(&mut self) -> Result<()> {
        if self.in_tx {
            self.trim()?;
            self.db.execute_batch("COMMIT")?;
            self.in_tx = false;
            // Sent from now on: never restated.
            self.fresh.clear();
            if !self.said.is_empty() {
                eprint!("{}", self.said);
                self.said.clear();
            }
            self.head.publish(wmlog::head(&self.db)?);
        }
        Ok(())
    }

    /// Drop what the retention no longer covers (inside the burst's transaction).
    fn trim(&mut self) -> Result<()> {
        let Some(keep) = self.keep else {
            return Ok(());
        };
        // By count it is one range delete; by age, once a minute is soon enough.
        if matches!(keep, Keep::Days(_))
            && self
                .trimmed_at
                .is_some_and(|t| t.elapsed() < Duration::from_secs(60))
        {
            return Ok(());
        }
        self.trimmed_at = Some(Instant::now());
        let n = wmlog::trim(&self.db, keep, wmlog::now())?;
        if n > 0 && self.verbose {
            eprintln!("mirrord: trimmed {n} records from the log (--log-keep)");
        }
        Ok(())
    }

    /// Boot without a snapshot: a new session starts from an empty snapshot and log (serials
    /// go on growing); committed with the walk that fills the snapshot.
    pub fn new_session(&mut self, session: &str, start: u64) -> Result<()> {
        self.begin()?;
        snapshot::clear(&self.db)?;
        wmlog::clear(&self.db)?;
        crate::store::set_meta(&self.db, "session", session)?;
        crate::store::set_meta(&self.db, "session_start", &start.to_string())
    }

    /// Boot of a new session: the walk's view of a path goes into the snapshot without a
    /// record (a client's INIT sends the snapshot itself).
    pub fn boot_seen(&mut self, e: Event) -> Result<()> {
        self.begin()?;
        if let Event::Created { path, .. } = e
            && let Some((m, id)) = stat(&path)
        {
            snapshot::put_id(&self.db, &path, &m, Some(id))?;
        }
        Ok(())
    }

    /// A scan starts: the paths it finds follow ([`Monitor::scan_seen`]), then
    /// [`Monitor::scan_end`].
    pub fn scan_begin(&mut self) -> Result<()> {
        self.begin()?;
        let known = snapshot::all_with_ids(&self.db)?
            .into_iter()
            .map(|(p, m, id)| (p, (m, id)))
            .collect();
        self.scan = Some(Scan {
            known,
            ..Scan::default()
        });
        Ok(())
    }

    /// A scan found `path` on disk (a boot walk hands its `Created` events here).
    pub fn scan_seen(&mut self, e: Event) -> Result<()> {
        self.begin()?;
        if let Event::Created { path, .. } = e {
            let key = path.as_os_str().as_bytes();
            let known = self.scan.as_ref().and_then(|s| s.known.get(key)).cloned();
            let disk = stat(&path);
            // Unchanged since the snapshot (the common case): nothing to ask the database.
            let same = known.as_ref().is_some_and(|(m, id)| {
                id.is_some()
                    && disk
                        .as_ref()
                        .is_some_and(|(dm, did)| dm == m && Some(*did) == *id)
            }) && self.rules.covers(&path);
            if !same {
                // What the scan knows of it is the database's row (a subtree the scan
                // changed is forgotten there): no need to ask again, nor to look again.
                self.reconcile_as(&path, false, disk, known.map(Some))?;
            }
            if let Some(scan) = &mut self.scan {
                scan.seen.insert(key.to_vec());
            }
        }
        Ok(())
    }

    /// The scan is over: what it did not find went away. How many records it logged.
    pub fn scan_end(&mut self) -> Result<u64> {
        let mut after: Option<PathBuf> = None;
        let mut gone = Vec::new();
        if let Some(scan) = self.scan.as_ref().filter(|s| !s.forgot) {
            // What the scan began with, less what it found (what it added, it found).
            gone.extend(
                (scan.known.keys())
                    .filter(|k| !scan.seen.contains(*k))
                    .map(|k| PathBuf::from(std::ffi::OsStr::from_bytes(k))),
            );
        }
        while self.scan.as_ref().is_some_and(|s| s.forgot) {
            let page = snapshot::page(&self.db, after.as_deref(), 4096)?;
            let Some((last, _)) = page.last() else { break };
            after = Some(last.clone());
            let scan = self.scan.as_ref().expect("a scan is on");
            gone.extend(
                page.into_iter()
                    .map(|(p, _)| p)
                    .filter(|p| !scan.seen.contains(p.as_os_str().as_bytes())),
            );
        }
        // Parents first (key order): a directory's DELETE covers what is below it.
        for p in gone {
            self.deleted(&p)?;
        }
        Ok(self.scan.take().map_or(0, |s| s.logged))
    }

    /// Log a record; its serial.
    fn log(&mut self, op: Op, path: &Path, to: Option<&Path>, meta: Option<Meta>) -> Result<u64> {
        let r = Record {
            op,
            path: path.to_path_buf(),
            to: to.map(Path::to_path_buf),
            meta,
        };
        let serial = wmlog::append(&self.db, &r)?;
        if matches!(op, Op::Move | Op::Delete) {
            self.head.moving(serial);
            // What a path names may have changed: no record is restated past this one.
            self.fresh.clear();
        }
        if let Some(scan) = &mut self.scan {
            scan.logged += 1;
        }
        if self.verbose {
            // Said at the commit, all in one write (a write per record cost a seventh of a
            // rescan).
            use std::fmt::Write;
            let _ = writeln!(self.said, "mirrord: {serial} {}", r.line());
        }
        Ok(serial)
    }

    fn handle(&mut self, e: Event) -> Result<()> {
        self.begin()?;
        match e {
            Event::Created { path, .. } | Event::Attrib { path, .. } => {
                self.reconcile(&path, false)
            }
            Event::Written { path } => self.reconcile(&path, true),
            Event::Deleted { path, .. } => self.deleted(&path),
            Event::Moved { from, to, .. } => self.moved(&from, &to),
            Event::Rescan => self.rescan(),
        }
    }

    /// Log what differs between `p` on disk and in the snapshot (`written`: its content is new
    /// whatever its size and time say). A path gone from disk logs nothing here: the event
    /// that removed it follows.
    fn reconcile(&mut self, p: &Path, written: bool) -> Result<()> {
        self.reconcile_as(p, written, stat(p), None)
    }

    /// [`Monitor::reconcile`] of `p` as `disk` found it, with its snapshot row when the
    /// caller has it (`Some(None)`: not in the snapshot).
    fn reconcile_as(
        &mut self,
        p: &Path,
        written: bool,
        disk: Option<(Meta, Id)>,
        row: Option<Option<(Meta, Option<Id>)>>,
    ) -> Result<()> {
        if !self.rules.covers(p) {
            return Ok(());
        }
        let Some((disk, id)) = disk else {
            return Ok(());
        };
        let mut known = match row {
            Some(row) => row,
            None => snapshot::get_id(&self.db, p)?,
        };
        if known.is_none() && self.scan.is_some() && self.renamed_to(p, &disk, id)? {
            known = snapshot::get_id(&self.db, p)?;
        }
        // A scan cannot see events: another identity at the same path is another thing.
        let other = |kid: &Option<Id>| self.scan.is_some() && kid.is_some_and(|k| k != id);
        let op = match &known {
            Some((k, kid)) if k.kind != disk.kind || (k.kind == Kind::Dir && other(kid)) => {
                // The original design's "explode": replaced by another thing.
                self.log(Op::Delete, p, None, None)?;
                snapshot::remove_tree(&self.db, p)?;
                if let Some(scan) = &mut self.scan {
                    scan.forget(p);
                }
                Some(disk.kind.created_by())
            }
            None => Some(disk.kind.created_by()),
            Some((k, kid)) => {
                let owner = k.mode != disk.mode || k.uid != disk.uid || k.gid != disk.gid;
                let content =
                    written || k.size != disk.size || k.mtime_ns != disk.mtime_ns || other(kid);
                match disk.kind {
                    Kind::File if content => Some(Op::Fwrite),
                    Kind::Symlink if k.target != disk.target || owner => Some(Op::Symlink),
                    Kind::File | Kind::Dir if owner => Some(Op::Attrib),
                    _ => None,
                }
            }
        };
        // Written again within the burst that logged its FWRITE (the file's creation and its
        // close, say): that record, not sent yet, is made to say the file as it is now — its
        // GET sends the latest content anyway — rather than a second FWRITE (one GET each).
        let fresh = match (op, &known) {
            (Some(Op::Fwrite), Some((_, kid))) if *kid == Some(id) => self.fresh.get(p).copied(),
            _ => None,
        };
        if let Some(serial) = fresh {
            wmlog::restate(&self.db, serial, &disk)?;
            snapshot::put_id(&self.db, p, &disk, Some(id))?;
        } else if let Some(op) = op {
            let serial = self.log(op, p, None, Some(disk.clone()))?;
            if op == Op::Fwrite {
                self.fresh.insert(p.to_path_buf(), serial);
            }
            snapshot::put_id(&self.db, p, &disk, Some(id))?;
        } else if known.is_some_and(|(_, kid)| kid != Some(id)) {
            // The same content under a new identity (replaced in place): remember it.
            snapshot::put_id(&self.db, p, &disk, Some(id))?;
        }
        Ok(())
    }

    /// A scan found `p`, unknown to the snapshot: when a snapshot path of the same identity
    /// and type is gone from disk, it was renamed to `p` — log the MOVE (its subtree goes
    /// with it). Whether it was.
    fn renamed_to(&mut self, p: &Path, disk: &Meta, id: Id) -> Result<bool> {
        for (from, m) in snapshot::with_id(&self.db, id)? {
            if m.kind != disk.kind || from == p || p.starts_with(&from) {
                continue;
            }
            let still_there = self
                .scan
                .as_ref()
                .is_some_and(|s| s.seen.contains(from.as_os_str().as_bytes()))
                || stat(&from).is_some_and(|(_, i)| i == id);
            if still_there {
                // A hard link, not a rename.
                continue;
            }
            self.log(Op::Move, &from, Some(p), None)?;
            snapshot::move_tree(&self.db, &from, p)?;
            if let Some(scan) = &mut self.scan {
                scan.forget(&from);
                scan.forget(p);
            }
            return Ok(true);
        }
        Ok(false)
    }

    fn deleted(&mut self, p: &Path) -> Result<()> {
        if snapshot::get(&self.db, p)?.is_some() {
            self.log(Op::Delete, p, None, None)?;
            snapshot::remove_tree(&self.db, p)?;
            if let Some(scan) = &mut self.scan {
                scan.forget(p);
            }
        }
        Ok(())
    }

    fn moved(&mut self, from: &Path, to: &Path) -> Result<()> {
        if snapshot::get(&self.db, from)?.is_some() {
            self.log(Op::Move, from, Some(to), None)?;
            snapshot::move_tree(&self.db, from, to)?;
        }
        // Its state under the new name (and, when it was unknown, the path itself).
        self.reconcile(to, false)
    }

    /// Events were lost: compare the trees with the snapshot and log only what differs,
    /// waiting first when overflows repeat.
    fn rescan(&mut self) -> Result<()> {
        // What was logged before the overflow goes out now.
        self.commit()?;
        self.overflows.before_rescan();
        let started = Instant::now();
        self.scan_begin()?;
        // Whether each path is a directory: the listing says (no `lstat` to decide).
        let mut stack: Vec<(PathBuf, bool)> = (self.rules.roots.iter())
            .map(|r| {
                (
                    r.clone(),
                    std::fs::symlink_metadata(r).is_ok_and(|m| m.is_dir()),
                )
            })
            .collect();
        let mut published = 0;
        while let Some((p, dir)) = stack.pop() {
            if !self.rules.covers(&p) {
                continue;
            }
            self.scan_seen(Event::Created {
                path: p.clone(),
                dir: false,
            })?;
            if dir && let Ok(rd) = std::fs::read_dir(&p) {
                stack.extend(
                    rd.flatten()
                        .map(|e| (e.path(), e.file_type().is_ok_and(|t| t.is_dir()))),
                );
            }
            // Clients catch up while the scan goes on: what it found so far is published
            // every so many records (each one whole: a record and its snapshot change).
            let logged = self.scan.as_ref().map_or(0, |s| s.logged);
            if logged >= published + PUBLISH {
                self.commit()?;
                published = logged;
            }
        }
        let logged = self.scan_end()?;
        self.commit()?;
        self.overflows.after_rescan(logged, started.elapsed());
        Ok(())
    }
}

impl Handler for Monitor {
    fn event(&mut self, e: Event) {
        if let Err(err) = self.handle(e) {
            eprintln!("mirrord: {err}");
        }
    }

    fn settled(&mut self) {
        if let Err(err) = self.commit() {
            eprintln!("mirrord: {err}");
        }
    }

    fn rules(&mut self, rules: &Rules) {
        // `mirrord ctl`: what is no longer covered leaves the snapshot without records.
        let r = self
            .begin()
            .and_then(|()| crate::ctl::change::forget_uncovered(&self.db, &self.rules, rules));
        if let Err(err) = r {
            eprintln!("mirrord: {err}");
        }
        self.rules = rules.clone();
    }
}
