//! The database (`var/lib/upm/upm.db`, sqlite): packages, the files each installed, the phases
//! that ran, the root steps recorded, reports (conflicts, setuid files, disagreements), and what
//! profiles are written from (the commands run, the recipe as written, host facts).
//! Schema changes are numbered migrations (`schema.rs`); foreign keys are on; writers hold the
//! root [`Lock`]; the journal is WAL so readers never wait for a writer.
//!
//! An install writes its row first (state `building`), and everything it tracked at the end,
//! in one transaction. A row left in `building` or `installing` while no upm holds the lock
//! was interrupted (a `kill -9`, a power cut): readers show it as such, and the next writer
//! records what it left on disk.

mod commands;
mod libs;
mod lock;
mod replaced;
mod replay;
mod schema;
mod tracking;
mod upgrade;

use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};

pub use commands::{CommandRow, NewCommand, Origin, ProfileRow};
pub use libs::SonameUse;
pub use lock::Lock;
pub use replaced::ReplacedRow;
pub use replay::ReplayStep;
pub use upgrade::{HistoryRow, Journal, KeptLib, Stage, Upgraded, is_upmnew};

use crate::fsutil::FileKind;
use crate::manifest::Entry;
use crate::pathtext::quoted;

pub const FILE: &str = "var/lib/upm/upm.db";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Io(#[from] crate::fsutil::PathError),
    #[error("database {}: {source}", quoted(&path))]
    Sql {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("no upm database in {}: run `upm init` first", quoted(&root))]
    Missing { root: PathBuf },
    #[error(
        "database {} has schema version {found}, newer than this upm knows ({known}): use a newer upm",
        quoted(&path)
    )]
    TooNew {
        path: PathBuf,
        found: usize,
        known: usize,
    },
    #[error(
        "another upm is changing {} (pid and command: {holder}); wait for it to finish",
        quoted(&root)
    )]
    Locked { root: PathBuf, holder: String },
}

/// Where an install stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Unpacking and building; nothing installed yet.
    Building,
    /// The install phase or root steps are running.
    Installing,
    Installed,
    /// A phase failed; what the install left is recorded.
    Failed,
    /// The upm process died mid-way; what it left on disk is recorded.
    Interrupted,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Building => "building",
            State::Installing => "installing",
            State::Installed => "installed",
            State::Failed => "failed",
            State::Interrupted => "interrupted",
        }
    }

    fn parse(s: &str) -> State {
        match s {
            "building" => State::Building,
            "installing" => State::Installing,
            "installed" => State::Installed,
            "failed" => State::Failed,
            _ => State::Interrupted,
        }
    }

    /// Whether an upm process was still working on it when the row was last written.
    pub fn in_progress(self) -> bool {
        matches!(self, State::Building | State::Installing)
    }
}

/// A package row.
#[derive(Debug, Clone)]
pub struct Package {
    pub id: i64,
    pub name: String,
    pub version: String,
    pub description: Option<String>,
    pub state: State,
    /// The phase running when it stopped (for failed and interrupted installs).
    pub stage: Option<String>,
    pub uid: u32,
    pub gid: u32,
    pub recipe_path: Option<String>,
    pub recipe: Option<String>,
    pub pid: Option<u32>,
    pub started: i64,
    pub finished: Option<i64>,
    pub error: Option<String>,
}

/// A phase that ran (or is running).
#[derive(Debug, Clone)]
pub struct PhaseRow {
    pub seq: i64,
    pub phase: String,
    pub script: String,
    pub user: String,
    pub status: Option<i32>,
    pub started: i64,
    pub duration_ms: Option<i64>,
}

/// A root step recorded during the install, and what upm did with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepRow {
    pub step: String,
    pub arg: String,
    pub path: PathBuf,
    pub applied: bool,
    pub note: Option<String>,
}

/// Something an install noticed: a conflict, a setuid file, a change to a path it does not own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportRow {
    pub kind: String,
    pub path: Option<PathBuf>,
    pub detail: String,
}

/// What a new install row starts with.
pub struct NewInstall<'a> {
    pub name: &'a str,
    pub version: &'a str,
    pub description: Option<&'a str>,
    pub uid: u32,
    pub gid: u32,
    pub recipe_path: &'a str,
    pub recipe: &'a str,
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn blob(p: &Path) -> &[u8] {
    p.as_os_str().as_bytes()
}

fn path_of(b: Vec<u8>) -> PathBuf {
    PathBuf::from(std::ffi::OsString::from_vec(b))
}

pub struct Db {
    conn: Connection,
    pub path: PathBuf,
    root: PathBuf,
}

const PACKAGE_COLS: &str = "id, name, version, description, state, stage, uid, gid, recipe_path, recipe, pid, started, finished, error";

/// Put `entries` into package `id`'s manifest (replacing rows of the same paths).
fn insert_files(
    tx: &rusqlite::Transaction<'_>,
    id: i64,
    entries: &[Entry],
) -> rusqlite::Result<()> {
    let mut ins = tx.prepare_cached(
        "INSERT OR REPLACE INTO files (package_id, path, type, mode, uid, gid, size, \
         mtime, sha256, target, shared) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?;
    for e in entries {
        ins.execute(params![
            id,
            blob(&e.path),
            e.kind.name(),
            e.mode,
            e.uid,
            e.gid,
            e.size as i64,
            e.mtime,
            e.sha256,
            e.target.as_deref().map(blob),
            e.shared,
        ])?;
    }
    Ok(())
}

fn package_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Package> {
    Ok(Package {
        id: r.get(0)?,
        name: r.get(1)?,
        version: r.get(2)?,
        description: r.get(3)?,
        state: State::parse(&r.get::<_, String>(4)?),
        stage: r.get(5)?,
        uid: r.get(6)?,
        gid: r.get(7)?,
        recipe_path: r.get(8)?,
        recipe: r.get(9)?,
        pid: r.get(10)?,
        started: r.get(11)?,
        finished: r.get(12)?,
        error: r.get(13)?,
    })
}

fn entry_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Entry> {
    let kind: String = r.get(1)?;
    Ok(Entry {
        path: path_of(r.get(0)?),
        kind: FileKind::from_name(&kind).unwrap_or(FileKind::File),
        mode: r.get(2)?,
        uid: r.get(3)?,
        gid: r.get(4)?,
        size: r.get::<_, i64>(5)? as u64,
        mtime: r.get(6)?,
        sha256: r.get(7)?,
        target: r.get::<_, Option<Vec<u8>>>(8)?.map(path_of),
        shared: r.get(9)?,
    })
}

impl Db {
    /// Open the database of `root`. With `create`, make it (and its directory) when missing;
    /// without, a missing database is an error telling the user to run `upm init`.
    pub fn open(root: &Path, create: bool) -> Result<Db, Error> {
        let path = root.join(FILE);
        if !path.exists() {
            if !create {
                return Err(Error::Missing {
                    root: root.to_path_buf(),
                });
            }
            let dir = path.parent().expect("db path has a parent");
            std::fs::create_dir_all(dir).map_err(crate::fsutil::io(dir))?;
        }
        let sql = |source| Error::Sql {
            path: path.clone(),
            source,
        };
        let conn = Connection::open(&path).map_err(sql)?;
        conn.busy_timeout(std::time::Duration::from_secs(30))
            .map_err(sql)?;
        conn.execute_batch(
            "PRAGMA foreign_keys = ON; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;",
        )
        .map_err(sql)?;
        let mut db = Db {
            conn,
            path: path.clone(),
            root: root.to_path_buf(),
        };
        db.migrate()?;
        Ok(db)
    }

    /// Open the database of `root` for queries only: no write, no lock, no journal change.
    /// A database whose schema is older than this upm is opened for writing once to migrate.
    pub fn open_read(root: &Path) -> Result<Db, Error> {
        let path = root.join(FILE);
        if !path.exists() {
            return Err(Error::Missing {
                root: root.to_path_buf(),
            });
        }
        let sql = |source| Error::Sql {
            path: path.clone(),
            source,
        };
        let flags =
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&path, flags).map_err(sql)?;
        conn.busy_timeout(std::time::Duration::from_secs(30))
            .map_err(sql)?;
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(sql)?;
        if (version.max(0) as usize) < schema::MIGRATIONS.len() {
            drop(conn);
            return Db::open(root, false);
        }
        Ok(Db {
            conn,
            path: path.clone(),
            root: root.to_path_buf(),
        })
    }

    /// Run a cached query and collect its rows.
    fn rows<T, P: rusqlite::Params>(
        &self,
        sql: &str,
        params: P,
        f: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, Error> {
        let mut s = self.conn.prepare_cached(sql).map_err(self.sql())?;
        s.query_map(params, f)
            .and_then(|rows| rows.collect())
            .map_err(self.sql())
    }

    fn sql(&self) -> impl Fn(rusqlite::Error) -> Error + '_ {
        |source| Error::Sql {
            path: self.path.clone(),
            source,
        }
    }

    fn migrate(&mut self) -> Result<(), Error> {
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(self.sql())?;
        let version = version.max(0) as usize;
        let known = schema::MIGRATIONS.len();
        if version > known {
            return Err(Error::TooNew {
                path: self.path.clone(),
                found: version,
                known,
            });
        }
        if version == known {
            return Ok(());
        }
        let path = self.path.clone();
        let sql = |source| Error::Sql {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(sql)?;
        for (i, m) in schema::MIGRATIONS.iter().enumerate().skip(version) {
            tx.execute_batch(m).map_err(sql)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)
                .map_err(sql)?;
        }
        tx.commit().map_err(sql)
    }

    /// The root this database belongs to.
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn package(&self, name: &str) -> Result<Option<Package>, Error> {
        self.conn
            .prepare_cached(&format!(
                "SELECT {PACKAGE_COLS} FROM packages WHERE name = ?1"
            ))
            .and_then(|mut s| s.query_row([name], package_row).optional())
            .map_err(self.sql())
    }

    pub fn packages(&self) -> Result<Vec<Package>, Error> {
        self.rows(
            &format!("SELECT {PACKAGE_COLS} FROM packages ORDER BY name"),
            [],
            package_row,
        )
    }

    /// Start (or restart) the install of a package: a row in state `building` owned by this
    /// process. A failed or interrupted earlier attempt keeps its recorded files, so what it
    /// left stays known until the new install records over it.
    pub fn begin(&mut self, n: &NewInstall<'_>) -> Result<i64, Error> {
        let sql = self.sql();
        let id: i64 = self
            .conn
            .query_row(
                "INSERT INTO packages (name, version, description, state, uid, gid, recipe_path, \
                 recipe, pid, started) VALUES (?1, ?2, ?3, 'building', ?4, ?5, ?6, ?7, ?8, ?9) \
                 ON CONFLICT(name) DO UPDATE SET version = excluded.version, \
                 description = excluded.description, state = 'building', stage = NULL, \
                 uid = excluded.uid, gid = excluded.gid, recipe_path = excluded.recipe_path, \
                 recipe = excluded.recipe, pid = excluded.pid, started = excluded.started, \
                 finished = NULL, error = NULL \
                 RETURNING id",
                params![
                    n.name,
                    n.version,
                    n.description,
                    n.uid,
                    n.gid,
                    n.recipe_path,
                    n.recipe,
                    std::process::id(),
                    now()
                ],
                |r| r.get(0),
            )
            .map_err(&sql)?;
        // The phases and commands are this attempt's; the files of an earlier one stay until
        // recorded over.
        self.conn
            .execute("DELETE FROM phases WHERE package_id = ?1", [id])
            .map_err(&sql)?;
        self.conn
            .execute("DELETE FROM commands WHERE package_id = ?1", [id])
            .map_err(&sql)?;
        Ok(id)
    }

    /// Move an install to `state`, naming the phase it is in (or stopped in).
    pub fn set_state(
        &self,
        id: i64,
        state: State,
        stage: Option<&str>,
        error: Option<&str>,
    ) -> Result<(), Error> {
        let finished = (!state.in_progress()).then(now);
        self.conn
            .execute(
                "UPDATE packages SET state = ?2, stage = ?3, error = ?4, finished = ?5 WHERE id = ?1",
                params![id, state.name(), stage, error, finished],
            )
            .map(|_| ())
            .map_err(self.sql())
    }

    /// Record a phase starting; returns its sequence number.
    pub fn phase_started(
        &self,
        id: i64,
        phase: &str,
        script: &str,
        user: &str,
    ) -> Result<i64, Error> {
        let sql = self.sql();
        let seq: i64 = self
            .conn
            .query_row(
                "SELECT COALESCE(MAX(seq), 0) + 1 FROM phases WHERE package_id = ?1",
                [id],
                |r| r.get(0),
            )
            .map_err(&sql)?;
        self.conn
            .execute(
                "INSERT INTO phases (package_id, seq, phase, script, user, started) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![id, seq, phase, script, user, now()],
            )
            .map_err(&sql)?;
        Ok(seq)
    }

    pub fn phase_finished(
        &self,
        id: i64,
        seq: i64,
        status: i32,
        duration_ms: i64,
    ) -> Result<(), Error> {
        self.conn
            .execute(
                "UPDATE phases SET status = ?3, duration_ms = ?4 WHERE package_id = ?1 AND seq = ?2",
                params![id, seq, status, duration_ms],
            )
            .map(|_| ())
            .map_err(self.sql())
    }

    pub fn phases(&self, id: i64) -> Result<Vec<PhaseRow>, Error> {
        self.rows(
            "SELECT seq, phase, script, user, status, started, duration_ms FROM phases \
                 WHERE package_id = ?1 ORDER BY seq",
            [id],
            |r| {
                Ok(PhaseRow {
                    seq: r.get(0)?,
                    phase: r.get(1)?,
                    script: r.get(2)?,
                    user: r.get(3)?,
                    status: r.get(4)?,
                    started: r.get(5)?,
                    duration_ms: r.get(6)?,
                })
            },
        )
    }

    /// Store what an install left, in one transaction: the files (merged over any recorded by
    /// an earlier attempt, dropping those that no longer exist), the root steps, the reports,
    /// and the final state.
    pub fn record(&mut self, id: i64, out: &Outcome<'_>) -> Result<(), Error> {
        let path = self.path.clone();
        let sql = |source| Error::Sql {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(sql)?;
        {
            let mut del = tx
                .prepare_cached("DELETE FROM files WHERE package_id = ?1 AND path = ?2")
                .map_err(sql)?;
            for p in out.gone {
                del.execute(params![id, blob(p)]).map_err(sql)?;
            }
            insert_files(&tx, id, out.files).map_err(sql)?;
            tx.execute("DELETE FROM root_steps WHERE package_id = ?1", [id])
                .map_err(sql)?;
            let mut st = tx
                .prepare_cached(
                    "INSERT INTO root_steps (package_id, seq, step, arg, path, applied, note) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .map_err(sql)?;
            for (i, s) in out.steps.iter().enumerate() {
                st.execute(params![
                    id,
                    i as i64 + 1,
                    s.step,
                    s.arg,
                    blob(&s.path),
                    s.applied,
                    s.note
                ])
                .map_err(sql)?;
            }
            tx.execute("DELETE FROM reports WHERE package_id = ?1", [id])
                .map_err(sql)?;
            let mut rp = tx
                .prepare_cached(
                    "INSERT INTO reports (package_id, kind, path, detail) VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(sql)?;
            for r in out.reports {
                rp.execute(params![id, r.kind, r.path.as_deref().map(blob), r.detail])
                    .map_err(sql)?;
            }
            let finished = (!out.state.in_progress()).then(now);
            tx.execute(
                "UPDATE packages SET state = ?2, stage = ?3, error = ?4, finished = ?5 WHERE id = ?1",
                params![id, out.state.name(), out.stage, out.error, finished],
            )
            .map_err(sql)?;
        }
        tx.commit().map_err(sql)
    }

    /// Set where a package's recipe is (a recorded package's: its profile).
    pub fn set_recipe_path(&self, id: i64, path: &str) -> Result<(), Error> {
        self.conn
            .execute(
                "UPDATE packages SET recipe_path = ?2 WHERE id = ?1",
                params![id, path],
            )
            .map(|_| ())
            .map_err(self.sql())
    }

    pub fn files(&self, id: i64) -> Result<Vec<Entry>, Error> {
        self.rows(
            "SELECT path, type, mode, uid, gid, size, mtime, sha256, target, shared FROM files \
                 WHERE package_id = ?1 ORDER BY path",
            [id],
            entry_row,
        )
    }

    /// The packages whose manifest holds `path`.
    pub fn owners(&self, path: &Path) -> Result<Vec<String>, Error> {
        self.rows(
            "SELECT p.name FROM files f JOIN packages p ON p.id = f.package_id \
                 WHERE f.path = ?1 ORDER BY p.name",
            [blob(path)],
            |r| r.get(0),
        )
    }

    /// Every path some package's manifest holds (for `upm orphans`).
    pub fn all_paths(&self) -> Result<std::collections::HashSet<PathBuf>, Error> {
        let paths = self.rows("SELECT DISTINCT path FROM files", [], |r| {
            r.get::<_, Vec<u8>>(0).map(path_of)
        })?;
        Ok(paths.into_iter().collect())
    }

    pub fn root_steps(&self, id: i64) -> Result<Vec<StepRow>, Error> {
        self.rows("SELECT step, arg, path, applied, note FROM root_steps WHERE package_id = ?1 ORDER BY seq", [id], |r| {
            Ok(StepRow {
                step: r.get(0)?,
                arg: r.get(1)?,
                path: path_of(r.get(2)?),
                applied: r.get(3)?,
                note: r.get(4)?,
            })
        })
    }

    pub fn reports(&self, id: i64) -> Result<Vec<ReportRow>, Error> {
        self.rows(
            "SELECT kind, path, detail FROM reports WHERE package_id = ?1 ORDER BY rowid",
            [id],
            |r| {
                Ok(ReportRow {
                    kind: r.get(0)?,
                    path: r.get::<_, Option<Vec<u8>>>(1)?.map(path_of),
                    detail: r.get(2)?,
                })
            },
        )
    }

    /// Forget a package and everything recorded about it, in one transaction; the files that
    /// are to stay on disk (kept configuration) are handed to no one.
    pub fn delete(&mut self, id: i64) -> Result<(), Error> {
        self.conn
            .execute("DELETE FROM packages WHERE id = ?1", [id])
            .map(|_| ())
            .map_err(self.sql())
    }

    /// Many inserts at once for benchmarks and imports: a package row with its files.
    pub fn insert_installed(&mut self, n: &NewInstall<'_>, files: &[Entry]) -> Result<i64, Error> {
        let id = self.begin(n)?;
        self.record(
            id,
            &Outcome {
                files,
                gone: &[],
                steps: &[],
                reports: &[],
                state: State::Installed,
                stage: None,
                error: None,
            },
        )?;
        Ok(id)
    }
}

/// What an install left, for [`Db::record`].
pub struct Outcome<'a> {
    pub files: &'a [Entry],
    /// Paths recorded by an earlier attempt that no longer exist.
    pub gone: &'a [PathBuf],
    pub steps: &'a [StepRow],
    pub reports: &'a [ReportRow],
    pub state: State,
    pub stage: Option<&'a str>,
    pub error: Option<&'a str>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(p: &str) -> Entry {
        Entry {
            path: p.into(),
            kind: FileKind::File,
            mode: 0o644,
            uid: 10000,
            gid: 10000,
            size: 3,
            mtime: 1,
            sha256: Some("ab".into()),
            target: None,
            shared: false,
        }
    }

    #[test]
    fn install_record_query_delete() {
        let d = tempfile::tempdir().unwrap();
        assert!(matches!(
            Db::open(d.path(), false),
            Err(Error::Missing { .. })
        ));
        let mut db = Db::open(d.path(), true).unwrap();
        let n = NewInstall {
            name: "zlib",
            version: "1.3",
            description: None,
            uid: 10000,
            gid: 10000,
            recipe_path: "r.toml",
            recipe: "",
        };
        let id = db.begin(&n).unwrap();
        assert_eq!(db.package("zlib").unwrap().unwrap().state, State::Building);
        let seq = db
            .phase_started(id, "install", "make install", "zlib")
            .unwrap();
        db.phase_finished(id, seq, 0, 10).unwrap();
        let files = [entry("/usr/lib/libz.so"), entry("/usr/include/zlib.h")];
        db.record(
            id,
            &Outcome {
                files: &files,
                gone: &[],
                steps: &[],
                reports: &[],
                state: State::Installed,
                stage: None,
                error: None,
            },
        )
        .unwrap();
        assert_eq!(db.owners(Path::new("/usr/lib/libz.so")).unwrap(), ["zlib"]);
        assert!(db.owners(Path::new("/usr/lib/nope")).unwrap().is_empty());
        assert_eq!(db.files(id).unwrap().len(), 2);
        assert_eq!(db.phases(id).unwrap()[0].status, Some(0));
        // Installing again reuses the row: new phases, the recorded files kept until recorded over.
        assert_eq!(db.begin(&n).unwrap(), id);
        assert!(db.phases(id).unwrap().is_empty());
        assert_eq!(db.files(id).unwrap().len(), 2);
        assert_eq!(db.package("zlib").unwrap().unwrap().state, State::Building);
        // Reopening runs no migration twice.
        drop(db);
        let mut db = Db::open(d.path(), false).unwrap();
        db.delete(id).unwrap();
        assert!(db.owners(Path::new("/usr/lib/libz.so")).unwrap().is_empty());
    }

    #[test]
    fn lock_names_its_holder() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("var/lib/upm")).unwrap();
        let l = Lock::take(d.path(), "upm install zlib").unwrap();
        assert!(Lock::held(d.path()));
        let e = Lock::take(d.path(), "upm remove zlib").err().unwrap();
        assert!(e.to_string().contains("upm install zlib"), "{e}");
        drop(l);
        assert!(!Lock::held(d.path()));
    }
}
