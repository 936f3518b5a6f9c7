//! Putting the old version back: after a failure during or after the new version's install
//! phase ([`roll_back`]), and for an upgrade a killed upm left ([`recover`]).

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::ctx::Ctx;
use crate::db::{Db, Journal, Stage};
use crate::fsutil::{FileKind, on_host};
use crate::manifest::Entry;
use crate::pkguser::PkgUser;

use super::super::{Error, io, setup, takeover};
use super::{KEEP_DIR, Upgrade};

/// Put the old version's file set back exactly: each kept inode renamed over its path (content,
/// mode and owner as they were), then what the new version wrote that the old one did not
/// have removed — the paths `written`, and with `uid` every path under the tracked trees that
/// package user owns (a killed upgrade's, whose writes were never recorded) — directories
/// last, when empty. The keep directory goes. Returns how many paths were removed.
pub fn roll_back(
    ctx: &Ctx,
    j: &Journal,
    old_files: &[Entry],
    written: &[PathBuf],
    uid: Option<u32>,
) -> Result<usize, Error> {
    let root = &ctx.root;
    let old: BTreeMap<&Path, &Entry> = old_files.iter().map(|e| (e.path.as_path(), e)).collect();
    let keep_dir = on_host(root, &j.keep_dir);
    let mut first_error: Option<Error> = None;
    let mut failed = |e: Error| {
        ctx.printer
            .warn(&format!("putting the old version back: {e}"));
        first_error.get_or_insert(e);
    };
    // What the new version added goes first (files, then directories once empty), so a
    // directory it made where the old version had a file is out of the way.
    let mut new: BTreeSet<PathBuf> = written
        .iter()
        .filter(|p| !old.contains_key(p.as_path()))
        .cloned()
        .collect();
    if let Some(uid) = uid {
        crate::track::walk(root, &setup::inside_rules(&ctx.cfg), &mut |p, m| {
            if m.uid() == uid && !old.contains_key(p) {
                new.insert(p.to_path_buf());
            }
        });
    }
    let mut dirs = Vec::new();
    for p in &new {
        let host = on_host(root, p);
        match std::fs::symlink_metadata(&host) {
            Ok(m) if m.is_dir() => dirs.push(p.clone()),
            Ok(_) => {
                if let Err(e) = std::fs::remove_file(&host) {
                    failed(io(&host)(e).into());
                }
            }
            Err(_) => {}
        }
    }
    dirs.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for d in &dirs {
        let _ = std::fs::remove_dir(on_host(root, d));
    }
    // Then each kept inode back at its path, in one step.
    for e in old_files.iter().filter(|e| e.kind != FileKind::Dir) {
        let kept = keep_dir.join(e.path.strip_prefix("/").unwrap_or(&e.path));
        if std::fs::symlink_metadata(&kept).is_err() {
            continue;
        }
        let host = on_host(root, &e.path);
        if let Ok(m) = std::fs::symlink_metadata(&host)
            && m.is_dir()
        {
            // The new version made a directory there: it goes (when empty).
            let _ = std::fs::remove_dir(&host);
        }
        let back = host
            .parent()
            .map_or(Ok(()), |parent| {
                std::fs::create_dir_all(parent).map_err(io(parent))
            })
            .and_then(|()| std::fs::rename(&kept, &host).map_err(io(&host)));
        if let Err(e) = back {
            failed(e.into());
        }
    }
    match first_error {
        None => {
            if keep_dir.exists() {
                std::fs::remove_dir_all(&keep_dir).map_err(io(&keep_dir))?;
            }
            Ok(new.len())
        }
        Some(e) => {
            // What could not be put back stays where the user can find it.
            let mut aside = keep_dir.clone().into_os_string();
            aside.push(format!(".failed-{}", crate::db::now()));
            let aside = PathBuf::from(aside);
            if std::fs::rename(&keep_dir, &aside).is_ok() {
                ctx.printer.warn(&format!(
                    "the old version's files that could not be put back are in {}",
                    aside.display()
                ));
            }
            Err(e)
        }
    }
}

/// The linker cache after a rollback: as the old version's libraries had it, when the new
/// version's root steps ran ldconfig.
pub(super) fn rerun_ldconfig(root: &Path, db: &Db, new_id: i64) {
    let ran = db
        .root_steps(new_id)
        .is_ok_and(|s| s.iter().any(|s| s.step == "ldconfig" && s.applied));
    if ran {
        let log = root.join("var/lib/upm/upgrade.log");
        let _ = setup::run_root_command(root, "ldconfig", &log);
    }
}

/// Recover the upgrades a killed upm left (call with the root lock held, before the generic
/// recovery of installs): one still building only loses its new row; one past the keep-aside
/// is rolled back to the old version exactly. A row named `NAME@VERSION` without a journal
/// (killed between the two writes) goes too.
pub fn recover(ctx: &Ctx, db: &mut Db) -> Result<(), Error> {
    let root = ctx.root.clone();
    for j in db.journals()? {
        let Some(old) = db.package_by_id(j.old_id)? else {
            // The commit happened (the old row is gone): only the keep directory is left.
            let _ = std::fs::remove_dir_all(on_host(&root, &j.keep_dir));
            continue;
        };
        let new = db.package_by_id(j.new_id)?;
        if let Some(new) = &new {
            let user = PkgUser::recorded(&old.name, new.uid, new.gid);
            setup::end_processes(&root, &user)?;
        }
        let old_files = db.files(old.id)?;
        let (state, detail) = match j.stage {
            Stage::Building => (
                "interrupted",
                format!(
                    "upm (pid {}) stopped while building the new version; nothing of {} {} was touched",
                    new.as_ref().and_then(|n| n.pid).unwrap_or(0),
                    old.name,
                    old.version
                ),
            ),
            Stage::Installing => {
                let written: Vec<PathBuf> = match &new {
                    Some(n) => db.files(n.id)?.into_iter().map(|e| e.path).collect(),
                    None => Vec::new(),
                };
                if let Some(n) = &new {
                    takeover::restore(&root, &db.replaced(n.id)?)?;
                }
                let removed = roll_back(ctx, &j, &old_files, &written, Some(old.uid))?;
                rerun_ldconfig(&root, db, j.new_id);
                (
                    "interrupted",
                    format!(
                        "upm (pid {}) stopped during the install of the new version; {} {} was put \
                         back ({} path(s) of the new version removed)",
                        new.as_ref().and_then(|n| n.pid).unwrap_or(0),
                        old.name,
                        old.version,
                        removed
                    ),
                )
            }
        };
        let new_version = new
            .as_ref()
            .map(|n| n.version.clone())
            .unwrap_or_else(|| "?".into());
        ctx.printer.warn(&format!(
            "the upgrade of {} to {new_version} was interrupted: {detail}; run `upm upgrade {}` to try again",
            old.name, old.name
        ));
        let u = Upgrade {
            journal: j.clone(),
            old,
            old_files,
            new_version,
            force: false,
            config: Vec::new(),
            kept: Vec::new(),
        };
        u.abandon(db, state, &detail);
    }
    // A new version's row whose journal was never written.
    for p in db.packages()? {
        if p.name.contains('@') {
            let name = p.name.split('@').next().unwrap_or_default().to_string();
            let user = PkgUser::recorded(&name, p.uid, p.gid);
            setup::end_processes(&root, &user)?;
            db.delete(p.id)?;
        }
    }
    // Keep directories of upgrades that committed before their removal (not those holding
    // what a rollback could not put back: `NAME.failed-TIME`).
    let top = on_host(&root, Path::new(KEEP_DIR));
    if let Ok(rd) = std::fs::read_dir(&top) {
        for e in rd.flatten() {
            if !e.file_name().to_string_lossy().contains(".failed-") {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    Ok(())
}

/// Whether a root has an upgrade left by a killed upm (for the commands that only read).
pub fn pending(db: &Db) -> bool {
    db.journals().is_ok_and(|j| !j.is_empty())
}
