//! The tables of upgrades: the journal of the upgrade under way (`upgrade_journal`), the
//! history of each package's upgrades (`upgrades`) and the library files an upgrade kept with
//! `--force` (`kept_libs`). An upgrade builds and installs the new version under a row of its
//! own; [`Db::commit_upgrade`] then makes that row the package in one transaction: the old
//! row goes (its taken-over originals and history move to the new one), the new row takes the
//! package's name, and the journal row is dropped.

use std::path::{Path, PathBuf};

use rusqlite::{OptionalExtension, params};

use super::{Db, Entry, Error, blob, now, path_of};

/// Where an upgrade stands: building the new version (nothing of the old touched), or past
/// the keep-aside (the old version's files are kept by hard link; the install phase may have
/// written over them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Building,
    Installing,
}

/// The upgrade under way of one package.
#[derive(Debug, Clone)]
pub struct Journal {
    pub name: String,
    /// The installed (old) version's row.
    pub old_id: i64,
    /// The new version's row (named `NAME@VERSION` until the upgrade commits).
    pub new_id: i64,
    /// Where the old version's files are kept (inside the root).
    pub keep_dir: PathBuf,
    pub stage: Stage,
    pub started: i64,
}

/// One upgrade of a package's history.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HistoryRow {
    pub old_version: String,
    pub new_version: String,
    pub old_recipe_hash: Option<String>,
    pub new_recipe_hash: Option<String>,
    /// The profile of each version (inside the root).
    pub old_profile: Option<String>,
    pub new_profile: Option<String>,
    /// `upgraded`, or how an attempt ended: `failed`, `stopped` (the soname guard),
    /// `interrupted`; the old version stayed in each of those.
    pub state: String,
    pub detail: Option<String>,
    pub started: i64,
    pub finished: Option<i64>,
}

/// A library file of an old version kept because other packages' files need its soname.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptLib {
    pub path: PathBuf,
    pub soname: Option<String>,
    /// Who needed it when it was kept ("prog (/usr/bin/prog needs libx.so.1)").
    pub needed_by: String,
}

/// What an upgrade records when it commits (or ends without).
pub struct Upgraded<'a> {
    pub name: &'a str,
    pub old_version: &'a str,
    pub new_version: &'a str,
    pub old_recipe_hash: Option<&'a str>,
    pub new_recipe_hash: Option<&'a str>,
    pub old_profile: Option<&'a str>,
    pub old_profile_text: Option<&'a str>,
    pub state: &'a str,
    pub detail: Option<&'a str>,
    pub started: i64,
}

fn stage_name(s: Stage) -> &'static str {
    match s {
        Stage::Building => "building",
        Stage::Installing => "installing",
    }
}

impl Db {
    /// Start the journal of an upgrade of `name` (replacing a finished one's leftover).
    pub fn journal_start(&self, j: &Journal) -> Result<(), Error> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO upgrade_journal (name, old_id, new_id, keep_dir, state, started) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    j.name,
                    j.old_id,
                    j.new_id,
                    blob(&j.keep_dir),
                    stage_name(j.stage),
                    j.started
                ],
            )
            .map(|_| ())
            .map_err(self.sql())
    }

    /// Move the journal of `name`'s upgrade to `stage`.
    pub fn journal_stage(&self, name: &str, stage: Stage) -> Result<(), Error> {
        self.conn
            .execute(
                "UPDATE upgrade_journal SET state = ?2 WHERE name = ?1",
                params![name, stage_name(stage)],
            )
            .map(|_| ())
            .map_err(self.sql())
    }

    /// Every upgrade under way (a killed upm's).
    pub fn journals(&self) -> Result<Vec<Journal>, Error> {
        self.rows(
            "SELECT name, old_id, new_id, keep_dir, state, started FROM upgrade_journal ORDER BY name",
            [],
            |r| {
                Ok(Journal {
                    name: r.get(0)?,
                    old_id: r.get(1)?,
                    new_id: r.get(2)?,
                    keep_dir: path_of(r.get(3)?),
                    stage: if r.get::<_, String>(4)? == "installing" {
                        Stage::Installing
                    } else {
                        Stage::Building
                    },
                    started: r.get(5)?,
                })
            },
        )
    }

    /// The row id of a package by id, if it is still there.
    pub fn package_by_id(&self, id: i64) -> Result<Option<super::Package>, Error> {
        self.conn
            .prepare_cached(&format!(
                "SELECT {} FROM packages WHERE id = ?1",
                super::PACKAGE_COLS
            ))
            .and_then(|mut s| s.query_row([id], super::package_row).optional())
            .map_err(self.sql())
    }

    /// An upgrade that did not happen: its new row and journal go, the attempt goes into the
    /// old row's history. The old row is untouched.
    pub fn abandon_upgrade(&mut self, j: &Journal, u: &Upgraded<'_>) -> Result<(), Error> {
        let path = self.path.clone();
        let sql = |source| Error::Sql {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(sql)?;
        tx.execute("DELETE FROM packages WHERE id = ?1", [j.new_id])
            .map_err(sql)?;
        tx.execute("DELETE FROM upgrade_journal WHERE name = ?1", [&j.name])
            .map_err(sql)?;
        insert_history(&tx, j.old_id, u, None).map_err(sql)?;
        tx.commit().map_err(sql)
    }

    /// Make the new row the package, in one transaction: the files `extra` join its manifest
    /// (kept configuration, `.upmnew` files, kept libraries), `kept` libraries are listed, the
    /// old row's taken-over originals and history move to it, the old row goes, it takes the
    /// package's name, the upgrade goes into its history and the journal row is dropped.
    pub fn commit_upgrade(
        &mut self,
        j: &Journal,
        extra: &[Entry],
        kept: &[KeptLib],
        u: &Upgraded<'_>,
        new_profile: Option<&str>,
    ) -> Result<(), Error> {
        let path = self.path.clone();
        let sql = |source| Error::Sql {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(sql)?;
        {
            super::insert_files(&tx, j.new_id, extra).map_err(sql)?;
            // Libraries kept by an earlier upgrade stay kept unless this one installed them.
            tx.execute(
                "INSERT OR IGNORE INTO kept_libs (package_id, path, soname, needed_by) \
                 SELECT ?2, k.path, k.soname, k.needed_by FROM kept_libs k \
                 WHERE k.package_id = ?1 AND EXISTS \
                 (SELECT 1 FROM files f WHERE f.package_id = ?2 AND f.path = k.path)",
                params![j.old_id, j.new_id],
            )
            .map_err(sql)?;
            let mut kl = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO kept_libs (package_id, path, soname, needed_by) \
                     VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(sql)?;
            for k in kept {
                kl.execute(params![j.new_id, blob(&k.path), k.soname, k.needed_by])
                    .map_err(sql)?;
            }
            // The kept ELF facts of kept libraries, so rdepends and the guard still see them.
            tx.execute(
                "INSERT OR IGNORE INTO elf (package_id, path, soname, runpath) \
                 SELECT ?2, e.path, e.soname, e.runpath FROM elf e WHERE e.package_id = ?1 \
                 AND e.path IN (SELECT path FROM kept_libs WHERE package_id = ?2)",
                params![j.old_id, j.new_id],
            )
            .map_err(sql)?;
            tx.execute(
                "UPDATE OR IGNORE replaced SET package_id = ?2 WHERE package_id = ?1",
                params![j.old_id, j.new_id],
            )
            .map_err(sql)?;
            tx.execute(
                "UPDATE upgrades SET package_id = ?2 WHERE package_id = ?1",
                params![j.old_id, j.new_id],
            )
            .map_err(sql)?;
            tx.execute("DELETE FROM packages WHERE id = ?1", [j.old_id])
                .map_err(sql)?;
            tx.execute(
                "UPDATE packages SET name = ?2 WHERE id = ?1",
                params![j.new_id, j.name],
            )
            .map_err(sql)?;
            tx.execute("DELETE FROM upgrade_journal WHERE name = ?1", [&j.name])
                .map_err(sql)?;
            insert_history(&tx, j.new_id, u, new_profile).map_err(sql)?;
        }
        tx.commit().map_err(sql)
    }

    /// The upgrades of a package, oldest first.
    pub fn history(&self, id: i64) -> Result<Vec<HistoryRow>, Error> {
        self.rows(
            "SELECT old_version, new_version, old_recipe_hash, new_recipe_hash, old_profile, \
             new_profile, state, detail, started, finished FROM upgrades WHERE package_id = ?1 \
             ORDER BY id",
            [id],
            |r| {
                Ok(HistoryRow {
                    old_version: r.get(0)?,
                    new_version: r.get(1)?,
                    old_recipe_hash: r.get(2)?,
                    new_recipe_hash: r.get(3)?,
                    old_profile: r.get(4)?,
                    new_profile: r.get(5)?,
                    state: r.get(6)?,
                    detail: r.get(7)?,
                    started: r.get(8)?,
                    finished: r.get(9)?,
                })
            },
        )
    }

    /// Set the path of the new version's profile in the last upgrade of package `id`.
    pub fn set_history_profile(&self, id: i64, profile: &str) -> Result<(), Error> {
        self.conn
            .execute(
                "UPDATE upgrades SET new_profile = ?2 WHERE id = \
                 (SELECT MAX(id) FROM upgrades WHERE package_id = ?1 AND state = 'upgraded')",
                params![id, profile],
            )
            .map(|_| ())
            .map_err(self.sql())
    }

    /// The library files an upgrade kept for package `id`.
    pub fn kept_libs(&self, id: i64) -> Result<Vec<KeptLib>, Error> {
        self.rows(
            "SELECT path, soname, needed_by FROM kept_libs WHERE package_id = ?1 ORDER BY path",
            [id],
            |r| {
                Ok(KeptLib {
                    path: path_of(r.get(0)?),
                    soname: r.get(1)?,
                    needed_by: r.get(2)?,
                })
            },
        )
    }

    /// Drop kept library paths from package `id`'s manifest, ELF facts and kept list.
    pub fn drop_kept_libs(&mut self, id: i64, paths: &[PathBuf]) -> Result<(), Error> {
        let path = self.path.clone();
        let sql = |source| Error::Sql {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(sql)?;
        for p in paths {
            for table in ["files", "kept_libs", "elf", "needed", "tracking"] {
                tx.execute(
                    &format!("DELETE FROM {table} WHERE package_id = ?1 AND path = ?2"),
                    params![id, blob(p)],
                )
                .map_err(sql)?;
            }
        }
        tx.commit().map_err(sql)
    }

    /// The `.upmnew` files of every package's manifest: (package, path).
    pub fn upmnew_files(&self) -> Result<Vec<(String, PathBuf)>, Error> {
        let all = self.rows(
            "SELECT p.name, f.path FROM files f JOIN packages p ON p.id = f.package_id \
             WHERE f.type = 'file' ORDER BY p.name, f.path",
            [],
            |r| Ok((r.get::<_, String>(0)?, path_of(r.get(1)?))),
        )?;
        Ok(all.into_iter().filter(|(_, p)| is_upmnew(p)).collect())
    }
}

/// Whether `p` is the new version of a kept configuration file (`FILE.upmnew`).
pub fn is_upmnew(p: &Path) -> bool {
    p.extension().is_some_and(|e| e == "upmnew")
}

fn insert_history(
    tx: &rusqlite::Transaction<'_>,
    package_id: i64,
    u: &Upgraded<'_>,
    new_profile: Option<&str>,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO upgrades (package_id, name, old_version, new_version, old_recipe_hash, \
         new_recipe_hash, old_profile, new_profile, old_profile_text, state, detail, started, \
         finished) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        params![
            package_id,
            u.name,
            u.old_version,
            u.new_version,
            u.old_recipe_hash,
            u.new_recipe_hash,
            u.old_profile,
            new_profile,
            u.old_profile_text,
            u.state,
            u.detail,
            u.started,
            now()
        ],
    )
    .map(|_| ())
}
