//! The `replaced` table: files an install took over from no package (the temporary tools of an
//! LFS chroot, a distribution's files), with their original owner and mode and where the
//! original is kept. A row is `held` from before the takeover until the install ends, then
//! either dropped (the install did not replace the file, which went back to its owner) or
//! `replaced`, so `upm info` can list it and `upm remove --restore` can put it back.

use std::path::{Path, PathBuf};

use rusqlite::params;

use super::{Db, Error, blob, path_of};
use crate::fsutil::FileKind;

/// One taken-over path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplacedRow {
    pub path: PathBuf,
    pub kind: FileKind,
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
    /// Where the original is kept (on the host's view of the root, inside it).
    pub kept: Option<PathBuf>,
    /// False while the install that took it over runs.
    pub replaced: bool,
}

impl Db {
    /// Record paths about to be taken over (state `held`), in one transaction.
    pub fn hold(&mut self, id: i64, rows: &[ReplacedRow]) -> Result<(), Error> {
        let path = self.path.clone();
        let sql = |source| Error::Sql {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(sql)?;
        {
            let mut ins = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO replaced (package_id, path, type, uid, gid, mode, kept, state) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .map_err(sql)?;
            for r in rows {
                ins.execute(params![
                    id,
                    blob(&r.path),
                    r.kind.name(),
                    r.uid,
                    r.gid,
                    r.mode,
                    r.kept.as_deref().map(blob),
                    if r.replaced { "replaced" } else { "held" },
                ])
                .map_err(sql)?;
            }
        }
        tx.commit().map_err(sql)
    }

    /// Every path a package took over, by path.
    pub fn replaced(&self, id: i64) -> Result<Vec<ReplacedRow>, Error> {
        self.rows(
            "SELECT path, type, uid, gid, mode, kept, state FROM replaced WHERE package_id = ?1 \
             ORDER BY path",
            [id],
            |r| {
                let kind: String = r.get(1)?;
                Ok(ReplacedRow {
                    path: path_of(r.get(0)?),
                    kind: FileKind::from_name(&kind).unwrap_or(FileKind::File),
                    uid: r.get(2)?,
                    gid: r.get(3)?,
                    mode: r.get(4)?,
                    kept: r.get::<_, Option<Vec<u8>>>(5)?.map(path_of),
                    replaced: r.get::<_, String>(6)? == "replaced",
                })
            },
        )
    }

    /// Drop the rows of paths given back to their owners (the install left them alone).
    pub fn give_back(&mut self, id: i64, given_back: &[PathBuf]) -> Result<(), Error> {
        let mut del = self
            .conn
            .prepare_cached("DELETE FROM replaced WHERE package_id = ?1 AND path = ?2")
            .map_err(self.sql())?;
        for p in given_back {
            del.execute(params![id, blob(p)]).map_err(self.sql())?;
        }
        Ok(())
    }

    /// The install ended: drop the rows of paths given back, mark the rest replaced; when
    /// the originals are not kept, forget where they were. (Killed half-way, rows left `held`
    /// are put back by recovery, which is what an unfinished install gets.)
    pub fn settle(&mut self, id: i64, given_back: &[PathBuf], keep: bool) -> Result<(), Error> {
        self.give_back(id, given_back)?;
        let kept = if keep { "kept" } else { "NULL" };
        self.conn
            .execute(
                &format!(
                    "UPDATE replaced SET state = 'replaced', kept = {kept} WHERE package_id = ?1"
                ),
                [id],
            )
            .map(|_| ())
            .map_err(self.sql())
    }

    /// Forget every taken-over path of a package (they were put back).
    pub fn forget_replaced(&mut self, id: i64) -> Result<(), Error> {
        self.conn
            .execute("DELETE FROM replaced WHERE package_id = ?1", [id])
            .map(|_| ())
            .map_err(self.sql())
    }

    /// Mark a directory shared in every manifest holding it (it became an install directory
    /// because another package needed to write into it).
    pub fn mark_shared(&mut self, dir: &Path) -> Result<(), Error> {
        self.conn
            .execute("UPDATE files SET shared = 1 WHERE path = ?1", [blob(dir)])
            .map(|_| ())
            .map_err(self.sql())
    }
}
