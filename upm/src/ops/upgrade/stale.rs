//! Stale files: what the old version installed that the new one did not. Still the
//! package's and unchanged: removed (directories once empty); changed: kept, reported and
//! carried in the manifest; someone else's now: left alone.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::ctx::Ctx;
use crate::db::Db;
use crate::fsutil::{FileKind, on_host};
use crate::manifest::{Diff, Entry};

use super::super::{Error, io};
use super::{Done, Upgrade, row_name};

impl Upgrade {
    /// Remove the stale files: old paths the new version did not install, still the
    /// package's and unchanged; keep (and carry in the manifest) the changed ones.
    pub(super) fn remove_stale(
        &self,
        ctx: &Ctx,
        db: &Db,
        new_paths: &BTreeSet<&Path>,
        kept_libs: &BTreeSet<&Path>,
        extra: &mut Vec<Entry>,
        done: &mut Done,
    ) -> Result<(), Error> {
        let root = &ctx.root;
        let carried: BTreeSet<PathBuf> = extra.iter().map(|e| e.path.clone()).collect();
        let stale = self.old_files.iter().filter(|e| {
            !new_paths.contains(e.path.as_path())
                && !kept_libs.contains(e.path.as_path())
                && !carried.contains(&e.path)
        });
        let mut dirs = Vec::new();
        for e in stale {
            if e.kind == FileKind::Dir {
                dirs.push(e);
                continue;
            }
            let diff = e.diff(root).map_err(io(&e.path))?;
            if diff == [Diff::Missing] {
                continue;
            }
            if let Some(Diff::Owner(uid, _)) = diff.iter().find(|d| matches!(d, Diff::Owner(..))) {
                done.kept
                    .push((e.path.clone(), format!("it belongs to uid {uid} now")));
                continue;
            }
            if !diff.is_empty() {
                let what: Vec<String> = diff.iter().map(ToString::to_string).collect();
                done.kept.push((
                    e.path.clone(),
                    format!("changed since it was installed ({})", what.join(", ")),
                ));
                extra.push(e.clone());
                continue;
            }
            let host = on_host(root, &e.path);
            std::fs::remove_file(&host).map_err(io(&host))?;
            done.removed.push(e.path.clone());
        }
        let install_dirs: BTreeSet<&Path> =
            ctx.cfg.install_dirs.iter().map(PathBuf::as_path).collect();
        dirs.sort_by_key(|e| std::cmp::Reverse(e.path.components().count()));
        for e in dirs {
            let others = db
                .owners(&e.path)?
                .into_iter()
                .any(|n| n != self.old.name && n != row_name(&self.old.name, &self.new_version));
            if install_dirs.contains(e.path.as_path()) || others {
                continue;
            }
            let host = on_host(root, &e.path);
            match std::fs::remove_dir(&host) {
                Ok(()) => done.removed.push(e.path.clone()),
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(_) => extra.push(e.clone()),
            }
        }
        Ok(())
    }
}
