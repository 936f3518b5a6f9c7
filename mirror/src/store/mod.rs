//! mirrord's state in sqlite (WAL): the **snapshot** (every watched path and its state) and the
//! **wmLog** (serial-numbered records), changed together in one transaction per burst of
//! events, so a reader's transaction always sees a snapshot and the serial it stands at. A
//! serial is sqlite's AUTOINCREMENT key: once committed it survives `kill -9` and is never
//! handed out again. Migrations are numbered by `PRAGMA user_version`.
//!
//! The `meta` table holds the session (`session`, `session_start`: it survives restarts, so
//! clients resume with `SN:`) and how far the log was trimmed (`trimmed`, see
//! [`wmlog::trim`]); [`retention`] sums up the log for `mirrord ctl status`.

pub mod snapshot;
pub mod wmlog;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension};

use crate::error::{Error, Result};

/// The migrations, in order; never edit one that shipped, append.
const MIGRATIONS: &[&str] = &[
    // 1: snapshot, wmLog, session.
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
     CREATE TABLE snapshot (
        path BLOB PRIMARY KEY, kind INTEGER NOT NULL, mode INTEGER NOT NULL,
        uid INTEGER NOT NULL, gid INTEGER NOT NULL, size INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL, target BLOB) WITHOUT ROWID;
     CREATE TABLE wmlog (
        serial INTEGER PRIMARY KEY AUTOINCREMENT, op TEXT NOT NULL, path BLOB NOT NULL,
        path2 BLOB, kind INTEGER, mode INTEGER, uid INTEGER, gid INTEGER, size INTEGER,
        mtime_ns INTEGER);",
    // 2: each path's identity (device, inode), to tell a rename made while mirrord was down
    //    or blind from a new file; each record's time, for --log-keep DAYS; the records of a
    //    path, and the renames onto it, found by index (GET's follow).
    "ALTER TABLE snapshot ADD COLUMN dev INTEGER;
     ALTER TABLE snapshot ADD COLUMN ino INTEGER;
     CREATE INDEX snapshot_ino ON snapshot (ino);
     ALTER TABLE wmlog ADD COLUMN at INTEGER;
     CREATE INDEX wmlog_path ON wmlog (path, serial);
     CREATE INDEX wmlog_moved_onto ON wmlog (path2, serial) WHERE op = 'MOVE';",
];

/// The state database of one mirrord.
pub struct Store {
    path: PathBuf,
}

impl Store {
    /// Create or upgrade the database in `state_dir`.
    pub fn open(state_dir: &Path) -> Result<Store> {
        std::fs::create_dir_all(state_dir).map_err(crate::error::io(state_dir))?;
        let store = Store {
            path: state_dir.join("mirrord.db"),
        };
        let mut c = store.connect()?;
        let db = |source| Error::Db {
            path: store.path.clone(),
            source,
        };
        c.pragma_update(None, "journal_mode", "WAL").map_err(db)?;
        let have: i64 = c
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(db)?;
        for (i, m) in MIGRATIONS.iter().enumerate().skip(have as usize) {
            let tx = c.transaction().map_err(db)?;
            tx.execute_batch(m).map_err(db)?;
            tx.pragma_update(None, "user_version", i as i64 + 1)
                .map_err(db)?;
            tx.commit().map_err(db)?;
        }
        Ok(store)
    }

    /// A new connection (one per thread: the monitor writes, each client session reads).
    pub fn connect(&self) -> Result<Connection> {
        let db = |source| Error::Db {
            path: self.path.clone(),
            source,
        };
        let c = Connection::open(&self.path).map_err(db)?;
        c.busy_timeout(Duration::from_secs(30)).map_err(db)?;
        // A committed transaction is in the WAL file, which outlives the process: kill -9
        // loses nothing committed. (Power loss may lose the last ones, not corrupt.)
        c.pragma_update(None, "synchronous", "NORMAL").map_err(db)?;
        // Reads through a mapping of the file, not a copy per page (`pread` into sqlite's own
        // small cache was a sixth of a rescan); the mapping is address space, not memory.
        c.pragma_update(None, "mmap_size", 1i64 << 30).map_err(db)?;
        Ok(c)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The wmLog's extent and the retention in force, for a status display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    /// Records held.
    pub records: u64,
    /// The oldest and newest serial held (`None` when the log is empty).
    pub first: Option<u64>,
    pub last: Option<u64>,
    /// The last serial ever handed out.
    pub head: u64,
    /// Records up to this serial were trimmed: a client behind it must INIT (0: none).
    pub trimmed: u64,
    /// The oldest record's time (seconds since the epoch), when known.
    pub oldest_at: Option<i64>,
    /// The session clients resume in, and the serial it started at.
    pub session: Option<String>,
    pub session_start: u64,
}

/// The log's extent now (see [`Retention`]).
pub fn retention(c: &Connection) -> Result<Retention> {
    let (records, first, last): (i64, Option<i64>, Option<i64>) = c.query_row(
        "SELECT count(*), min(serial), max(serial) FROM wmlog",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let oldest_at = match first {
        Some(f) => c
            .query_row("SELECT at FROM wmlog WHERE serial = ?1", [f], |r| r.get(0))
            .optional()?
            .flatten(),
        None => None,
    };
    let num =
        |k: &str| -> Result<u64> { Ok(meta(c, k)?.and_then(|v| v.parse().ok()).unwrap_or(0)) };
    Ok(Retention {
        records: records as u64,
        first: first.map(|f| f as u64),
        last: last.map(|l| l as u64),
        head: wmlog::head(c)?,
        trimmed: num("trimmed")?,
        oldest_at,
        session: meta(c, "session")?,
        session_start: num("session_start")?,
    })
}

/// The oldest serial a client may resume from (`SN:`): the session's start, or where the log
/// was trimmed, whichever is later.
pub fn resumable_from(c: &Connection) -> Result<u64> {
    let r = |k: &str| -> Result<u64> { Ok(meta(c, k)?.and_then(|v| v.parse().ok()).unwrap_or(0)) };
    Ok(r("session_start")?.max(r("trimmed")?))
}

/// A value of the `meta` table.
pub fn meta(c: &Connection, key: &str) -> Result<Option<String>> {
    let mut s = c.prepare_cached("SELECT value FROM meta WHERE key = ?1")?;
    Ok(s.query_row([key], |r| r.get(0)).optional()?)
}

pub fn set_meta(c: &Connection, key: &str, value: &str) -> Result<()> {
    c.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [key, value],
    )?;
    Ok(())
}
