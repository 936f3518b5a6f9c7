//! The `commands` and `profiles` tables: what a profile is written from. Every command run for
//! a package — each phase script an install runs (origin [`Origin::Recipe`]) and each command
//! line `upm record` appends (origin [`Origin::Record`]) — with its working directory, exit
//! status and duration; and per package the inputs of its profile that no other table holds
//! (the recipe as written, the source archive used, the environment, host facts, timings) with
//! the profile text last written. An install's commands are that attempt's: [`Db::begin`]
//! clears them.

use std::path::{Path, PathBuf};

use rusqlite::{OptionalExtension, params};

use super::{Db, Error, blob, now, path_of};

/// Where a command came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// A phase of the recipe, run by `upm install` (the expanded script).
    Recipe,
    /// A command line entered in `upm record`.
    Record,
}

impl Origin {
    pub fn name(self) -> &'static str {
        match self {
            Origin::Recipe => "recipe",
            Origin::Record => "record",
        }
    }

    pub fn parse(s: &str) -> Origin {
        match s {
            "record" => Origin::Record,
            _ => Origin::Recipe,
        }
    }
}

/// One command run for a package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandRow {
    pub seq: i64,
    /// The phase it belongs to (`configure`, `install`, `root`, `ldconfig`, …).
    pub phase: String,
    pub origin: Origin,
    /// Who ran it: the package user's name, or `root`.
    pub user: String,
    /// The working directory, inside the root.
    pub cwd: PathBuf,
    pub command: String,
    /// The exit status; `None` while it runs (or when upm died during it).
    pub status: Option<i32>,
    pub started: i64,
    pub duration_ms: Option<i64>,
}

/// A command about to run, for [`Db::command_started`].
pub struct NewCommand<'a> {
    pub phase: &'a str,
    pub origin: Origin,
    pub user: &'a str,
    pub cwd: &'a Path,
    pub command: &'a str,
}

/// The inputs of a package's profile that no other table holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileRow {
    /// The recipe as written (TOML): templates merged, `${...}` references kept.
    pub recipe: String,
    /// The file name of the source archive actually used, and its sha256.
    pub source_file: Option<String>,
    pub source_sha256: Option<String>,
    /// The phases' environment, JSON `[[name, value], ...]`.
    pub env: String,
    /// Host facts, JSON object.
    pub host: String,
    /// Timings, JSON object.
    pub timings: String,
    /// Where the profile was last written (inside the root), and its text.
    pub path: Option<String>,
    pub text: Option<String>,
    /// The recipe hash (`profile::recipe_hash`): the recipe as written and the archive used.
    pub recipe_hash: Option<String>,
}

impl Db {
    /// Record a command starting; returns its sequence number (one more than the last).
    pub fn command_started(&self, id: i64, c: &NewCommand<'_>) -> Result<i64, Error> {
        let sql = self.sql();
        let seq: i64 = self
            .conn
            .query_row(
                "SELECT COALESCE(MAX(seq), 0) + 1 FROM commands WHERE package_id = ?1",
                [id],
                |r| r.get(0),
            )
            .map_err(&sql)?;
        self.conn
            .prepare_cached(
                "INSERT INTO commands (package_id, seq, phase, origin, user, cwd, command, started) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    id,
                    seq,
                    c.phase,
                    c.origin.name(),
                    c.user,
                    blob(c.cwd),
                    c.command,
                    now()
                ])
            })
            .map_err(&sql)?;
        Ok(seq)
    }

    /// Record how a command ended.
    pub fn command_finished(
        &self,
        id: i64,
        seq: i64,
        status: i32,
        duration_ms: i64,
    ) -> Result<(), Error> {
        self.conn
            .execute(
                "UPDATE commands SET status = ?3, duration_ms = ?4 WHERE package_id = ?1 AND seq = ?2",
                params![id, seq, status, duration_ms],
            )
            .map(|_| ())
            .map_err(self.sql())
    }

    /// Record a command that already ran (`upm record` stores a commit's command lines at
    /// once): when it started, how it ended. Returns its sequence number.
    pub fn command_recorded(
        &self,
        id: i64,
        c: &NewCommand<'_>,
        started: i64,
        status: i32,
        duration_ms: i64,
    ) -> Result<i64, Error> {
        let seq = self.command_started(id, c)?;
        self.conn
            .execute(
                "UPDATE commands SET started = ?3, status = ?4, duration_ms = ?5 \
                 WHERE package_id = ?1 AND seq = ?2",
                params![id, seq, started, status, duration_ms],
            )
            .map_err(self.sql())?;
        Ok(seq)
    }

    /// Forget commands from `seq` on (`upm record`'s rollback).
    pub fn forget_commands_from(&self, id: i64, seq: i64) -> Result<(), Error> {
        self.conn
            .execute(
                "DELETE FROM commands WHERE package_id = ?1 AND seq >= ?2",
                params![id, seq],
            )
            .map(|_| ())
            .map_err(self.sql())
    }

    /// A package's commands, in the order they ran.
    pub fn commands(&self, id: i64) -> Result<Vec<CommandRow>, Error> {
        self.rows(
            "SELECT seq, phase, origin, user, cwd, command, status, started, duration_ms \
             FROM commands WHERE package_id = ?1 ORDER BY seq",
            [id],
            |r| {
                Ok(CommandRow {
                    seq: r.get(0)?,
                    phase: r.get(1)?,
                    origin: Origin::parse(&r.get::<_, String>(2)?),
                    user: r.get(3)?,
                    cwd: path_of(r.get(4)?),
                    command: r.get(5)?,
                    status: r.get(6)?,
                    started: r.get(7)?,
                    duration_ms: r.get(8)?,
                })
            },
        )
    }

    /// Store a package's profile inputs (replacing earlier ones; the text written is kept
    /// until [`Db::set_profile_text`] records a new one).
    pub fn set_profile_inputs(&self, id: i64, p: &ProfileRow) -> Result<(), Error> {
        self.conn
            .execute(
                "INSERT INTO profiles (package_id, recipe, source_file, source_sha256, env, host, \
                 timings, recipe_hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
                 ON CONFLICT(package_id) DO UPDATE SET recipe = excluded.recipe, \
                 source_file = excluded.source_file, source_sha256 = excluded.source_sha256, \
                 env = excluded.env, host = excluded.host, timings = excluded.timings, \
                 recipe_hash = excluded.recipe_hash",
                params![
                    id,
                    p.recipe,
                    p.source_file,
                    p.source_sha256,
                    p.env,
                    p.host,
                    p.timings,
                    p.recipe_hash
                ],
            )
            .map(|_| ())
            .map_err(self.sql())
    }

    /// Update a package's recorded timings (JSON).
    pub fn set_profile_timings(&self, id: i64, timings: &str) -> Result<(), Error> {
        self.conn
            .execute(
                "UPDATE profiles SET timings = ?2 WHERE package_id = ?1",
                params![id, timings],
            )
            .map(|_| ())
            .map_err(self.sql())
    }

    /// Record the profile written for a package: where (inside the root) and its text.
    pub fn set_profile_text(&self, id: i64, path: &str, text: &str) -> Result<(), Error> {
        self.conn
            .execute(
                "UPDATE profiles SET path = ?2, text = ?3 WHERE package_id = ?1",
                params![id, path, text],
            )
            .map(|_| ())
            .map_err(self.sql())
    }

    /// A package's profile inputs, if it has any (packages installed before profiles have none).
    pub fn profile(&self, id: i64) -> Result<Option<ProfileRow>, Error> {
        self.conn
            .prepare_cached(
                "SELECT recipe, source_file, source_sha256, env, host, timings, path, text, \
                 recipe_hash FROM profiles WHERE package_id = ?1",
            )
            .and_then(|mut s| {
                s.query_row([id], |r| {
                    Ok(ProfileRow {
                        recipe: r.get(0)?,
                        source_file: r.get(1)?,
                        source_sha256: r.get(2)?,
                        env: r.get(3)?,
                        host: r.get(4)?,
                        timings: r.get(5)?,
                        path: r.get(6)?,
                        text: r.get(7)?,
                        recipe_hash: r.get(8)?,
                    })
                })
                .optional()
            })
            .map_err(self.sql())
    }
}

#[cfg(test)]
mod tests {
    use super::super::NewInstall;
    use super::*;

    #[test]
    fn commands_in_order_cleared_by_a_new_attempt() {
        let d = tempfile::tempdir().unwrap();
        let mut db = Db::open(d.path(), true).unwrap();
        let n = NewInstall {
            name: "hello",
            version: "2.10",
            description: None,
            uid: 10000,
            gid: 10000,
            recipe_path: "r.toml",
            recipe: "",
        };
        let id = db.begin(&n).unwrap();
        let cwd = Path::new("/usr/src/hello/build/hello-2.10");
        let c = |phase, command| NewCommand {
            phase,
            origin: Origin::Recipe,
            user: "hello",
            cwd,
            command,
        };
        let a = db
            .command_started(id, &c("configure", "./configure"))
            .unwrap();
        db.command_finished(id, a, 0, 1200).unwrap();
        let b = db
            .command_started(id, &c("install", "make install"))
            .unwrap();
        assert_eq!((a, b), (1, 2));
        let rows = db.commands(id).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].status, Some(0));
        assert_eq!(rows[0].cwd, cwd);
        assert_eq!(rows[1].status, None);
        db.forget_commands_from(id, 2).unwrap();
        assert_eq!(db.commands(id).unwrap().len(), 1);

        let p = ProfileRow {
            recipe: "[package]\n".into(),
            env: "[]".into(),
            host: "{}".into(),
            timings: "{}".into(),
            ..ProfileRow::default()
        };
        db.set_profile_inputs(id, &p).unwrap();
        db.set_profile_text(id, "/usr/src/hello/x.profile.toml", "text")
            .unwrap();
        let got = db.profile(id).unwrap().unwrap();
        assert_eq!(got.text.as_deref(), Some("text"));
        assert_eq!(got.recipe, p.recipe);

        // A new attempt starts with no commands; deleting the package drops its profile.
        db.begin(&n).unwrap();
        assert!(db.commands(id).unwrap().is_empty());
        db.delete(id).unwrap();
        assert!(db.profile(id).unwrap().is_none());
    }
}
