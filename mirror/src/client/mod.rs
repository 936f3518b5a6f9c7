//! fs_mirror, the client: connect to mirrord, resume from `DIR/sn` (`SN:`) or start over
//! (`INIT`), then ask for batch after batch (`NEXT`) and hand each to an fs_sync back-end —
//! [`apply::Apply`] carries it out under `DIR`, [`report::Report`] prints it. The serial in
//! `sn` moves only after a batch is applied and synced to disk ([`durable`]), so a client
//! killed at any point resumes without losing or skipping a record. A lost connection, or a
//! fault of the backup host (a full disk), is retried with backoff ([`retry`]). Around that:
//! the [`tunnel`] through ssh, large files by [`delta`], hard-link snapshots ([`rotate`]).

pub mod apply;
pub mod delta;
pub mod diff;
pub mod durable;
pub mod lease;
pub mod link;
pub mod nice;
pub mod place;
pub mod reaper;
pub mod report;
pub mod retry;
pub mod rotate;
pub mod sn;
pub mod spread;
pub mod tunnel;
pub mod writer;
pub mod xattr;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::proto::{BATCH, Reply, Request};
use crate::record::Record;
use durable::Durable;
use link::{Batch, Link};
use retry::Backoff;
use sn::{Applied, Sn};

/// An fs_sync back-end.
pub trait Sync {
    /// An INIT starts: the batches that follow are the whole snapshot.
    fn begin_init(&mut self) {}
    /// Carry out one batch, each record with its serial, telling `done` the serial up to
    /// which everything is carried out as it goes.
    fn batch(
        &mut self,
        records: &[(u64, Record)],
        link: &mut Link,
        done: &mut dyn FnMut(u64) -> Result<()>,
    ) -> Result<()>;
    /// The INIT's last batch was carried out.
    fn end_init(&mut self) -> Result<()> {
        Ok(())
    }
    /// Hand over what was carried out (the syncer then makes it durable).
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Apply,
    Report,
}

/// fs_mirror's settings, validated.
pub struct Config {
    pub host: String,
    pub port: u16,
    pub datadir: PathBuf,
    pub mode: Mode,
    pub json: bool,
    pub secret: Option<Vec<u8>>,
    pub verbose: bool,
    /// A server silent this long is taken for dead (it sends keep-alives more often).
    pub idle: Duration,
    /// Files of at least this many bytes that the mirror holds a copy of are fetched as a
    /// delta against it (`None`: always whole).
    pub delta_min: Option<u64>,
    /// Hard-link snapshots of the mirror taken between batches (`--rotate-at`).
    pub rotate: Option<rotate::Schedule>,
    /// Reach `host:port` through `ssh -W` on this machine instead of connecting.
    pub ssh: Option<tunnel::Ssh>,
}

/// Mirror until killed; returns only on an error retrying cannot mend.
pub fn run(cfg: &Config) -> Result<()> {
    let sn = Arc::new(Mutex::new(Sn::lock(&cfg.datadir)?));
    let mut applied = Applied::open(&cfg.datadir)?;
    let durable = Durable::start(
        sn.clone(),
        (cfg.mode == Mode::Apply).then(|| cfg.datadir.clone()),
    );
    let mut sync: Box<dyn Sync> = match cfg.mode {
        Mode::Apply => Box::new(apply::Apply::new(&cfg.datadir, cfg.verbose)?),
        Mode::Report => Box::new(report::Report::new(cfg.json)),
    };
    let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(30));
    let mut local = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
    let mut failed_at = None;
    loop {
        let err = match Client::connect(cfg, &sn, &durable, &mut applied, sync.as_mut()) {
            Ok(mut c) => {
                backoff.reset();
                c.mirror()
            }
            Err(e) => e,
        };
        if let Error::Protocol { what, .. } = &err
            && (what.contains("secret") || what.contains("AUTH"))
        {
            return Err(err);
        }
        if retry::local(&err) {
            // The same fault again, or a new one after progress (then pauses start over).
            let at = applied.read().ok().flatten();
            if at != failed_at {
                local.reset();
            }
            let pause = local.step();
            eprintln!(
                "{}",
                retry::local_message(&err, &cfg.datadir, at.clone(), pause)
            );
            failed_at = at;
            retry::clear_temps(&cfg.datadir);
            std::thread::sleep(pause);
            continue;
        }
        let pause = backoff.step();
        eprintln!("fs_mirror: {err}; retrying in {:.1}s", pause.as_secs_f32());
        std::thread::sleep(pause);
    }
}

/// One connection's worth of mirroring.
struct Client<'a> {
    cfg: &'a Config,
    link: Link,
    sn: &'a Mutex<Sn>,
    durable: &'a Durable,
    applied: &'a mut Applied,
    sync: &'a mut dyn Sync,
    session: String,
    serial: u64,
}

impl<'a> Client<'a> {
    fn connect(
        cfg: &'a Config,
        sn: &'a Mutex<Sn>,
        durable: &'a Durable,
        applied: &'a mut Applied,
        sync: &'a mut dyn Sync,
    ) -> Result<Client<'a>> {
        let mut link = Link::open(cfg)?;
        if let Some(s) = &cfg.secret {
            link.auth(s)?;
        }
        link.command(&Request::Start)?;
        let l = link.line()?;
        if l != Reply::OK {
            return Err(Error::Protocol {
                peer: format!("{}:{}", cfg.host, cfg.port),
                what: format!("answered {l:?} to START (a --secret-file may be needed)"),
            });
        }
        Ok(Client {
            cfg,
            link,
            sn,
            durable,
            applied,
            sync,
            session: String::new(),
            serial: 0,
        })
    }

    fn say(&self, what: String) {
        if self.cfg.verbose {
            eprintln!("fs_mirror: {what}");
        }
    }

    /// Mirror until something fails; what failed.
    fn mirror(&mut self) -> Error {
        match self.follow() {
            Ok(never) => match never {},
            Err(e) => e,
        }
    }

    /// Resume or start over, then follow the log.
    fn follow(&mut self) -> Result<std::convert::Infallible> {
        let resume = self.sn.lock().unwrap_or_else(|e| e.into_inner()).read()?;
        match resume {
            Some((session, serial)) => {
                let req = Request::Sn {
                    session: session.clone(),
                    serial: serial as i64,
                };
                self.link.command(&req)?;
                let l = self.link.line()?;
                self.say(format!("server replied {l:?} to {:?}", req.line()));
                if l == Reply::OK {
                    (self.session, self.serial) = (session, serial);
                } else if l.starts_with("SERIAL:") {
                    (self.session, self.serial) = (session, serial);
                    let b = self.link.batch_after(&l)?;
                    self.realtime(b)?;
                } else if l == Reply::SESSION_INVALID || l == Reply::SERIAL_INVALID {
                    self.sn.lock().unwrap_or_else(|e| e.into_inner()).clear()?;
                    self.init()?;
                } else {
                    return Err(self.unexpected(&l));
                }
            }
            None => self.init()?,
        }
        let cfg = self.cfg;
        let mut quiet = || {
            if let Some(r) = &cfg.rotate {
                r.tick(&cfg.datadir, cfg.verbose);
            }
            Ok(())
        };
        loop {
            quiet()?;
            self.link.command(&Request::Next)?;
            let b = self.link.batch_or_idle(&mut quiet)?;
            self.realtime(b)?;
        }
    }

    fn unexpected(&self, l: &str) -> Error {
        Error::Protocol {
            peer: format!("{}:{}", self.cfg.host, self.cfg.port),
            what: format!("unexpected answer {l:?}"),
        }
    }

    /// The whole snapshot, batch by batch, then the resume point.
    fn init(&mut self) -> Result<()> {
        self.link.command(&Request::Init)?;
        let l = self.link.line()?;
        let Some(session) = l.strip_prefix("SESSION:") else {
            return Err(self.unexpected(&l));
        };
        self.session = session.to_string();
        self.say(format!("INIT, session {session}"));
        self.applied.write("", 0)?;
        self.sync.begin_init();
        loop {
            let b = self.link.batch()?;
            let n = b.records.len();
            let mut records = self.checked(b.records, |_| b.serial);
            if self.cfg.mode == Mode::Apply {
                // Differential: the files the mirror has already are not fetched again.
                let p = diff::prune(&mut self.link, &self.cfg.datadir, &mut records)?;
                self.say(format!("INIT batch: {p:?} (files kept, not fetched)"));
            }
            // A full batch is followed by another (maybe empty): ask for it while this one
            // is being written.
            if n == BATCH {
                self.link.defer(Request::Next);
            }
            self.sync.batch(&records, &mut self.link, &mut |_| Ok(()))?;
            self.link.send_deferred()?;
            if n < BATCH {
                self.applied.write(&self.session, b.serial)?;
                self.sync.end_init()?;
                self.sync.flush()?;
                self.serial = b.serial;
                self.durable.submit(&self.session, self.serial)?;
                self.say(format!("INIT done at serial {}", b.serial));
                return Ok(());
            }
        }
    }

    /// A batch of the log: applied, synced, then the serial recorded.
    fn realtime(&mut self, b: Batch) -> Result<()> {
        let n = b.records.len() as u64;
        // Serials follow one another unless the log has gaps; then the batch's stands for all.
        let first = self.serial + 1;
        let consecutive = b.serial >= self.serial && b.serial - self.serial == n;
        let mut records = self.checked(b.records, |i| {
            if consecutive {
                first + i as u64
            } else {
                b.serial
            }
        });
        // Records carried out before a kill are not carried out twice.
        if consecutive
            && let Some((session, upto)) = self.applied.read()?
            && session == self.session
        {
            records.retain(|(s, _)| *s > upto);
        }
        self.say(format!("serial {}: {} records", b.serial, n));
        let (applied, session) = (&mut *self.applied, &self.session);
        self.sync
            .batch(&records, &mut self.link, &mut |s| applied.write(session, s))?;
        self.sync.flush()?;
        self.serial = b.serial;
        self.durable.submit(&self.session, self.serial)
    }

    /// The readable records with their serials; unreadable ones are logged and left out.
    fn checked(
        &self,
        records: Vec<std::result::Result<Record, crate::record::BadRecord>>,
        serial: impl Fn(usize) -> u64,
    ) -> Vec<(u64, Record)> {
        records
            .into_iter()
            .enumerate()
            .filter_map(|(i, r)| match r {
                Ok(r) => Some((serial(i), r)),
                Err(e) => {
                    eprintln!("fs_mirror: refused: {e}");
                    None
                }
            })
            .collect()
    }
}
