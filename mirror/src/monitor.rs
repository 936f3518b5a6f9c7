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

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::Connection;
use upm_watch::{Event, Handler, Rules};

use crate::error::Result;
use crate::head::Head;
use crate::record::{Kind, Meta, Op, Record};
use crate::store::{snapshot, wmlog};

pub struct Monitor {
    db: Connection,
    rules: Rules,
    head: Arc<Head>,
    in_tx: bool,
    verbose: bool,
}

impl Monitor {
    pub fn new(db: Connection, rules: Rules, head: Arc<Head>, verbose: bool) -> Monitor {
        Monitor {
            db,
            rules,
            head,
            in_tx: false,
            verbose,
        }
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
            self.db.execute_batch("COMMIT")?;
            self.in_tx = false;
            self.head.publish(wmlog::head(&self.db)?);
        }
        Ok(())
    }

    /// Boot: a new session starts from an empty snapshot and log (serials go on growing);
    /// committed with the walk that fills the snapshot.
    pub fn new_session(&mut self, session: &str, start: u64) -> Result<()> {
        self.begin()?;
        snapshot::clear(&self.db)?;
        wmlog::clear(&self.db)?;
        crate::store::set_meta(&self.db, "session", session)?;
        crate::store::set_meta(&self.db, "session_start", &start.to_string())
    }

    /// Boot: the walk's view of a path goes into the snapshot without a record (a client's
    /// INIT sends the snapshot itself).
    pub fn boot_seen(&mut self, e: Event) -> Result<()> {
        self.begin()?;
        if let Event::Created { path, .. } = e
            && let Some(m) = Meta::of(&path)
        {
            snapshot::put(&self.db, &path, &m)?;
        }
        Ok(())
    }

    fn log(&mut self, op: Op, path: &Path, to: Option<&Path>, meta: Option<Meta>) -> Result<()> {
        let r = Record {
            op,
            path: path.to_path_buf(),
            to: to.map(Path::to_path_buf),
            meta,
        };
        let serial = wmlog::append(&self.db, &r)?;
        if self.verbose {
            eprintln!("mirrord: {serial} {}", r.line());
        }
        Ok(())
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
        if !self.rules.covers(p) {
            return Ok(());
        }
        let Some(disk) = Meta::of(p) else {
            return Ok(());
        };
        let known = snapshot::get(&self.db, p)?;
        let op = match &known {
            Some(k) if k.kind != disk.kind => {
                // The original design's "explode": replaced by another type of thing.
                self.log(Op::Delete, p, None, None)?;
                snapshot::remove_tree(&self.db, p)?;
                Some(disk.kind.created_by())
            }
            None => Some(disk.kind.created_by()),
            Some(k) => {
                let owner = k.mode != disk.mode || k.uid != disk.uid || k.gid != disk.gid;
                match disk.kind {
                    Kind::File if written || k.size != disk.size || k.mtime_ns != disk.mtime_ns => {
                        Some(Op::Fwrite)
                    }
                    Kind::Symlink if k.target != disk.target || owner => Some(Op::Symlink),
                    Kind::File | Kind::Dir if owner => Some(Op::Attrib),
                    _ => None,
                }
            }
        };
        if let Some(op) = op {
            self.log(op, p, None, Some(disk.clone()))?;
            snapshot::put(&self.db, p, &disk)?;
        }
        Ok(())
    }

    fn deleted(&mut self, p: &Path) -> Result<()> {
        if snapshot::get(&self.db, p)?.is_some() {
            self.log(Op::Delete, p, None, None)?;
            snapshot::remove_tree(&self.db, p)?;
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

    /// Events were lost: compare the trees with the snapshot and log only what differs.
    fn rescan(&mut self) -> Result<()> {
        eprintln!(
            "mirrord: the kernel's event queue overflowed; rescanning the watched trees \
             (raise fs.inotify.max_queued_events if this repeats)"
        );
        let mut stack: Vec<PathBuf> = self.rules.roots.clone();
        while let Some(p) = stack.pop() {
            if !self.rules.covers(&p) {
                continue;
            }
            self.reconcile(&p, false)?;
            if std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir())
                && let Ok(rd) = std::fs::read_dir(&p)
            {
                stack.extend(rd.flatten().map(|e| e.path()));
            }
        }
        let mut after: Option<PathBuf> = None;
        loop {
            let page = snapshot::page(&self.db, after.as_deref(), 1024)?;
            let Some((last, _)) = page.last() else { break };
            after = Some(last.clone());
            for (p, _) in page {
                if Meta::of(&p).is_none() || !self.rules.covers(&p) {
                    self.deleted(&p)?;
                }
            }
        }
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
