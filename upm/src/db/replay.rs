//! The `replay_run` and `replay_steps` tables: the replay under way, one row per package in
//! build order with where it stands (`pending`, `running`, `done`, `skipped`, `failed`,
//! `blocked`) and what it measured. Each change is its own committed write, so after a
//! failure, a reboot or a `kill -9` `upm replay --continue` finds exactly where it stopped.

use std::path::PathBuf;

use rusqlite::{OptionalExtension, params};

use super::{Db, Error, blob, now, path_of};

/// One package of a replay.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayStep {
    /// Its place in the build order, from 1.
    pub seq: i64,
    pub name: String,
    pub version: String,
    /// The recipe (or profile) file, as this process opens it.
    pub recipe: PathBuf,
    /// Keys the host profile sets on the recipe, as JSON `[[key, value], …]`.
    pub overrides: String,
    pub state: String,
    /// The phase a failure stopped in.
    pub phase: Option<String>,
    /// Why it was skipped, failed or blocked.
    pub note: Option<String>,
    pub seconds: Option<f64>,
    /// The sum of its phases' durations.
    pub phase_ms: Option<i64>,
    pub build_bytes: Option<i64>,
    pub installed_bytes: Option<i64>,
}

impl Db {
    /// Start a new replay: forget the last one, store its options and its steps, all pending.
    pub fn replay_start(&mut self, options: &str, steps: &[ReplayStep]) -> Result<(), Error> {
        let path = self.path.clone();
        let sql = |source| Error::Sql {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(sql)?;
        tx.execute_batch("DELETE FROM replay_steps; DELETE FROM replay_run;")
            .map_err(sql)?;
        tx.execute(
            "INSERT INTO replay_run (id, options, started) VALUES (1, ?1, ?2)",
            params![options, now()],
        )
        .map_err(sql)?;
        {
            let mut ins = tx
                .prepare_cached(
                    "INSERT INTO replay_steps (seq, name, version, recipe, overrides, state) \
                     VALUES (?1, ?2, ?3, ?4, ?5, 'pending')",
                )
                .map_err(sql)?;
            for s in steps {
                ins.execute(params![
                    s.seq,
                    s.name,
                    s.version,
                    blob(&s.recipe),
                    s.overrides
                ])
                .map_err(sql)?;
            }
        }
        tx.commit().map_err(sql)
    }

    /// The options the last replay was started with, if there is one.
    pub fn replay_options(&self) -> Result<Option<String>, Error> {
        self.conn
            .query_row("SELECT options FROM replay_run WHERE id = 1", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(self.sql())
    }

    /// The steps of the last replay, in build order.
    pub fn replay_steps(&self) -> Result<Vec<ReplayStep>, Error> {
        self.rows(
            "SELECT seq, name, version, recipe, overrides, state, phase, note, seconds, \
             phase_ms, build_bytes, installed_bytes FROM replay_steps ORDER BY seq",
            [],
            |r| {
                Ok(ReplayStep {
                    seq: r.get(0)?,
                    name: r.get(1)?,
                    version: r.get(2)?,
                    recipe: path_of(r.get(3)?),
                    overrides: r.get(4)?,
                    state: r.get(5)?,
                    phase: r.get(6)?,
                    note: r.get(7)?,
                    seconds: r.get(8)?,
                    phase_ms: r.get(9)?,
                    build_bytes: r.get(10)?,
                    installed_bytes: r.get(11)?,
                })
            },
        )
    }

    /// Record where one step stands, with what it measured.
    pub fn replay_update(&self, s: &ReplayStep) -> Result<(), Error> {
        self.conn
            .prepare_cached(
                "UPDATE replay_steps SET state = ?2, phase = ?3, note = ?4, seconds = ?5, \
                 phase_ms = ?6, build_bytes = ?7, installed_bytes = ?8 WHERE seq = ?1",
            )
            .and_then(|mut st| {
                st.execute(params![
                    s.seq,
                    s.state,
                    s.phase,
                    s.note,
                    s.seconds,
                    s.phase_ms,
                    s.build_bytes,
                    s.installed_bytes
                ])
            })
            .map(|_| ())
            .map_err(self.sql())
    }
}
