//! The `tracking` table: per path of an install, which signals saw it (the watcher, the shim)
//! and what ownership made of it (claimed, someone else's, gone), so `upm info PKG --tracking`
//! can show where the signals disagreed long after the install.

use rusqlite::params;

use super::{Db, Error, blob, path_of};
use crate::track::{Signals, Verdict};

impl Db {
    /// Replace the tracking rows of install `id`, in one transaction.
    pub fn record_tracking(&mut self, id: i64, rows: &[Signals]) -> Result<(), Error> {
        let path = self.path.clone();
        let sql = |source| Error::Sql {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(sql)?;
        tx.execute("DELETE FROM tracking WHERE package_id = ?1", [id])
            .map_err(sql)?;
        {
            let mut ins = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO tracking (package_id, path, inotify, shim, verdict, uid) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(sql)?;
            for r in rows {
                ins.execute(params![
                    id,
                    blob(&r.path),
                    r.inotify,
                    r.shim,
                    r.verdict.name(),
                    r.verdict.uid()
                ])
                .map_err(sql)?;
            }
        }
        tx.commit().map_err(sql)
    }

    /// The tracking rows of install `id`, by path.
    pub fn tracking(&self, id: i64) -> Result<Vec<Signals>, Error> {
        self.rows(
            "SELECT path, inotify, shim, verdict, uid FROM tracking WHERE package_id = ?1 ORDER BY path",
            [id],
            |r| {
                let verdict: String = r.get(3)?;
                let uid: Option<u32> = r.get(4)?;
                Ok(Signals {
                    path: path_of(r.get(0)?),
                    inotify: r.get(1)?,
                    shim: r.get(2)?,
                    verdict: match (verdict.as_str(), uid) {
                        ("claimed", Some(uid)) => Verdict::Claimed { uid },
                        ("foreign", Some(uid)) => Verdict::Foreign { uid },
                        _ => Verdict::Gone,
                    },
                })
            },
        )
    }
}
