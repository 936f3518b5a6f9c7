//! The `elf` and `needed` tables: the dynamic sections of the ELF files of each manifest
//! (see `libs`), and the joins behind `upm depends`, `rdepends`, `check --libs` and the
//! soname guard.

use std::path::{Path, PathBuf};

use rusqlite::params;

use super::{Db, Error, blob, path_of};
use crate::libs::{Dynamic, ElfFile};

/// A file of some package that provides or needs a soname.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SonameUse {
    pub package: String,
    pub path: PathBuf,
    pub soname: String,
}

impl Db {
    /// Replace what is known of the ELF files at `paths` of package `id` by `found` (those of
    /// them that are ELF files), in one transaction.
    pub fn record_libs<'p>(
        &mut self,
        id: i64,
        paths: impl IntoIterator<Item = &'p Path>,
        found: &[ElfFile],
    ) -> Result<(), Error> {
        let path = self.path.clone();
        let sql = |source| Error::Sql {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(sql)?;
        {
            let mut del_elf = tx
                .prepare_cached("DELETE FROM elf WHERE package_id = ?1 AND path = ?2")
                .map_err(sql)?;
            let mut del_needed = tx
                .prepare_cached("DELETE FROM needed WHERE package_id = ?1 AND path = ?2")
                .map_err(sql)?;
            for p in paths {
                del_elf.execute(params![id, blob(p)]).map_err(sql)?;
                del_needed.execute(params![id, blob(p)]).map_err(sql)?;
            }
            let mut ins_elf = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO elf (package_id, path, soname, runpath) VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(sql)?;
            let mut ins_needed = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO needed (package_id, path, seq, soname) VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(sql)?;
            for f in found {
                let d = &f.dynamic;
                ins_elf
                    .execute(params![id, blob(&f.path), d.soname, d.runpath])
                    .map_err(sql)?;
                for (i, n) in d.needed.iter().enumerate() {
                    ins_needed
                        .execute(params![id, blob(&f.path), i as i64, n])
                        .map_err(sql)?;
                }
            }
        }
        tx.commit().map_err(sql)
    }

    /// The ELF files of package `id` with their dynamic sections, by path.
    pub fn elf_files(&self, id: i64) -> Result<Vec<ElfFile>, Error> {
        let heads = self.rows(
            "SELECT path, soname, runpath FROM elf WHERE package_id = ?1 ORDER BY path",
            [id],
            |r| {
                Ok((
                    path_of(r.get(0)?),
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, Option<String>>(2)?,
                ))
            },
        )?;
        let needed = self.rows(
            "SELECT path, soname FROM needed WHERE package_id = ?1 ORDER BY path, seq",
            [id],
            |r| Ok((path_of(r.get(0)?), r.get::<_, String>(1)?)),
        )?;
        let mut out: Vec<ElfFile> = heads
            .into_iter()
            .map(|(path, soname, runpath)| ElfFile {
                path,
                dynamic: Dynamic {
                    soname,
                    needed: Vec::new(),
                    runpath,
                },
            })
            .collect();
        for (path, soname) in needed {
            if let Ok(i) = out.binary_search_by(|f| f.path.cmp(&path)) {
                out[i].dynamic.needed.push(soname);
            }
        }
        Ok(out)
    }

    /// The files of other packages than `id` that provide `soname`.
    pub fn providers(&self, soname: &str, except: i64) -> Result<Vec<SonameUse>, Error> {
        self.rows(
            "SELECT p.name, e.path, e.soname FROM elf e JOIN packages p ON p.id = e.package_id \
             WHERE e.soname = ?1 AND e.package_id != ?2 ORDER BY p.name, e.path",
            params![soname, except],
            soname_use,
        )
    }

    /// The files of other packages than `id` that need a soname package `id` provides.
    pub fn needers_of(&self, id: i64) -> Result<Vec<SonameUse>, Error> {
        self.rows(
            "SELECT p.name, n.path, n.soname FROM needed n JOIN packages p ON p.id = n.package_id \
             WHERE n.package_id != ?1 AND n.soname IN \
               (SELECT soname FROM elf WHERE package_id = ?1 AND soname IS NOT NULL) \
             ORDER BY p.name, n.path, n.soname",
            [id],
            soname_use,
        )
    }

    /// Every needed soname of every package's files, with the file's run path: for
    /// `upm check --libs`.
    pub fn all_needed(&self) -> Result<Vec<(SonameUse, Option<String>)>, Error> {
        self.rows(
            "SELECT p.name, n.path, n.soname, e.runpath FROM needed n \
             JOIN packages p ON p.id = n.package_id \
             JOIN elf e ON e.package_id = n.package_id AND e.path = n.path \
             ORDER BY p.name, n.path, n.seq",
            [],
            |r| Ok((soname_use(r)?, r.get(3)?)),
        )
    }
}

fn soname_use(r: &rusqlite::Row<'_>) -> rusqlite::Result<SonameUse> {
    Ok(SonameUse {
        package: r.get(0)?,
        path: path_of(r.get(1)?),
        soname: r.get(2)?,
    })
}
