//! The soname guard of an upgrade (a soname the new version no longer provides that other
//! packages' files need stops it, or with `--force` keeps the old library files) and `upm
//! remove --stale-libs`, which removes those kept files once nothing needs them.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::ctx::Ctx;
use crate::db::{self, Db, KeptLib};
use crate::fsutil::{FileKind, on_host};
use crate::manifest::Diff;
use crate::pathtext::quoted;

use super::super::{Error, io, setup};
use super::{Upgrade, row_name};

impl Upgrade {
    /// The sonames the old version provides that the new one does not and other packages'
    /// files need: an error naming them, or with `--force` the old library files to keep.
    pub(super) fn soname_guard(
        &self,
        db: &Db,
        new_paths: &BTreeSet<&Path>,
    ) -> Result<Vec<KeptLib>, Error> {
        let new_name = row_name(&self.old.name, &self.new_version);
        let keeps: BTreeSet<String> = db
            .elf_files(self.journal.new_id)?
            .into_iter()
            .filter_map(|f| f.dynamic.soname)
            .collect();
        let needed: Vec<db::SonameUse> = crate::ops::libs::still_needed(db, self.old.id, &keeps)?
            .into_iter()
            .filter(|u| u.package != new_name)
            .collect();
        if needed.is_empty() {
            return Ok(Vec::new());
        }
        let list = crate::ops::libs::list(&needed);
        if !self.force {
            return Err(Error::UpgradeSonameNeeded {
                name: self.old.name.clone(),
                version: self.new_version.clone(),
                count: needed.len(),
                list,
            });
        }
        // The old files providing the lost sonames, and the links naming them.
        let lost: BTreeSet<&str> = needed.iter().map(|u| u.soname.as_str()).collect();
        let mut out = Vec::new();
        let mut files: Vec<PathBuf> = Vec::new();
        for f in db.elf_files(self.old.id)? {
            if let Some(s) = f.dynamic.soname.as_deref()
                && lost.contains(s)
                && !new_paths.contains(f.path.as_path())
            {
                let by: Vec<&db::SonameUse> = needed.iter().filter(|u| u.soname == s).collect();
                out.push(KeptLib {
                    path: f.path.clone(),
                    soname: Some(s.to_string()),
                    needed_by: crate::ops::libs::list(&by.into_iter().cloned().collect::<Vec<_>>()),
                });
                files.push(f.path);
            }
        }
        for e in &self.old_files {
            if e.kind != FileKind::Symlink || new_paths.contains(e.path.as_path()) {
                continue;
            }
            let name = e.path.file_name().map(|n| n.to_string_lossy().into_owned());
            let target_name = e
                .target
                .as_deref()
                .and_then(Path::file_name)
                .map(|n| n.to_os_string());
            let names_one = files.iter().any(|f| {
                f.parent() == e.path.parent()
                    && f.file_name().map(|n| n.to_os_string()) == target_name
            });
            if names_one || name.as_deref().is_some_and(|n| lost.contains(n)) {
                out.push(KeptLib {
                    path: e.path.clone(),
                    soname: name.filter(|n| lost.contains(n.as_str())),
                    needed_by: String::new(),
                });
            }
        }
        Ok(out)
    }
}

/// The message after an upgrade with `--force` kept old library files.
pub fn kept_libs_advice(name: &str, kept: &[KeptLib]) -> String {
    let mut who: Vec<String> = kept
        .iter()
        .flat_map(|k| {
            k.needed_by
                .split(", ")
                .map(|s| s.split(' ').next().unwrap_or("").to_string())
        })
        .filter(|s| !s.is_empty())
        .collect();
    who.sort();
    who.dedup();
    let files: Vec<String> = kept.iter().map(|k| quoted(&k.path).to_string()).collect();
    format!(
        "kept the old library file(s) {} of {name} that other packages still need; rebuild {}, \
         then run `upm remove --stale-libs {name}`",
        files.join(", "),
        who.join(", ")
    )
}

/// `upm remove --stale-libs NAME`: remove the old library files an upgrade kept with
/// `--force`, once no other package's file needs their sonames (else stop naming them,
/// unless `force`). A changed file is kept. Returns each path and what was done.
pub fn remove_stale_libs(
    ctx: &Ctx,
    name: &str,
    force: bool,
) -> Result<Vec<(PathBuf, String)>, Error> {
    let root = &ctx.root;
    let _lock = db::Lock::take(root, &format!("upm remove --stale-libs {name}"))?;
    let mut db = Db::open(root, false)?;
    crate::ops::recover::recover(ctx, &mut db)?;
    let pkg = db
        .package(name)?
        .ok_or_else(|| Error::NotInstalled { name: name.into() })?;
    let kept = db.kept_libs(pkg.id)?;
    if kept.is_empty() {
        return Ok(Vec::new());
    }
    let kept_paths: BTreeSet<&Path> = kept.iter().map(|k| k.path.as_path()).collect();
    let stays: BTreeSet<String> = db
        .elf_files(pkg.id)?
        .into_iter()
        .filter(|f| !kept_paths.contains(f.path.as_path()))
        .filter_map(|f| f.dynamic.soname)
        .collect();
    let going: BTreeSet<&str> = kept.iter().filter_map(|k| k.soname.as_deref()).collect();
    let needed: Vec<db::SonameUse> = crate::ops::libs::still_needed(&db, pkg.id, &stays)?
        .into_iter()
        .filter(|u| going.contains(u.soname.as_str()))
        .collect();
    if !needed.is_empty() && !force {
        return Err(Error::SonameNeeded {
            name: format!("the old library files of {name}"),
            count: needed.len(),
            list: crate::ops::libs::list(&needed),
        });
    }
    let files = db.files(pkg.id)?;
    let mut out = Vec::new();
    let mut dropped = Vec::new();
    for k in &kept {
        let Some(e) = files.iter().find(|e| e.path == k.path) else {
            dropped.push(k.path.clone());
            continue;
        };
        let diff = e.diff(root).map_err(io(&e.path))?;
        if diff == [Diff::Missing] {
            out.push((k.path.clone(), "already gone".to_string()));
        } else if diff.is_empty() {
            let host = on_host(root, &e.path);
            std::fs::remove_file(&host).map_err(io(&host))?;
            out.push((k.path.clone(), "removed".to_string()));
        } else {
            let what: Vec<String> = diff.iter().map(ToString::to_string).collect();
            out.push((
                k.path.clone(),
                format!("kept: changed since it was installed ({})", what.join(", ")),
            ));
            continue;
        }
        dropped.push(k.path.clone());
    }
    db.drop_kept_libs(pkg.id, &dropped)?;
    let log = root.join("var/lib/upm/upgrade.log");
    setup::run_root_command(root, "ldconfig", &log)?;
    Ok(out)
}
