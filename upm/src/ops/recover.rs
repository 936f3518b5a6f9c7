//! Recovering from a killed upm. An install row still `building` or `installing` while this
//! process holds the root lock was left by a upm that died (`kill -9`, a power cut). Its stray
//! build processes are ended, and what it wrote is found the package-users way — every path
//! under the tracked trees owned by its package user — and removed, and the files it had taken
//! over are put back, so an install is all or nothing even when killed: the row stays as
//! `interrupted` (with what happened), `upm install` builds it again, `upm remove` forgets it.
//! Every command that opens a root's database does this first ([`settle`] for the queries,
//! [`recover`] under the lock for the commands that change the root), so whatever command runs
//! next says so. An upgrade a killed upm left is put back to the old version first
//! (`upgrade::recover`).

use std::os::unix::fs::MetadataExt;

use crate::ctx::Ctx;
use crate::db::{Db, Lock, Outcome, ReportRow, State};
use crate::manifest::{Entry, vanished};
use crate::pkguser::PkgUser;

use super::{Error, guard, io, setup, takeover};

/// Record every interrupted install of the root. Call with the root lock held.
pub fn recover(ctx: &Ctx, db: &mut Db) -> Result<(), Error> {
    // An upgrade's new row is rolled back to the old version first: the generic recovery
    // below would remove every file of the package user, the old version's too.
    super::upgrade::recover(ctx, db)?;
    let root = ctx.root.clone();
    let cfg = &ctx.cfg;
    for pkg in db.packages()? {
        if !pkg.state.in_progress() {
            continue;
        }
        let user = PkgUser::recorded(&pkg.name, pkg.uid, pkg.gid);
        setup::end_processes(&root, &user)?;
        let mut paths = Vec::new();
        if pkg.state == State::Installing {
            crate::track::walk(&root, &setup::inside_rules(cfg), &mut |p, m| {
                if m.uid() == pkg.uid {
                    paths.push(p.to_path_buf());
                }
            });
        }
        let mut files = Vec::new();
        for p in &paths {
            if let Some(e) = Entry::read(&root, p).map_err(io(p))? {
                files.push(e);
            }
        }
        // What the killed install left: no system file claimed, no setuid file a package's.
        let mut found = crate::track::Tracked {
            entries: files,
            ..Default::default()
        };
        let mut reports = guard::system_files(ctx, &user, &mut found)?;
        let mut files = found.entries;
        reports.extend(guard::setid(ctx, &[], &[], &mut files)?);
        // All or nothing: what the killed install wrote goes, what it took over comes back
        // (renamed over the package user's copy in one step).
        let held = db.replaced(pkg.id)?;
        let taken: std::collections::BTreeSet<&std::path::Path> =
            held.iter().map(|r| r.path.as_path()).collect();
        files.retain(|e| !taken.contains(e.path.as_path()));
        super::install::undo(&root, &files)?;
        let restored = takeover::restore(&root, &held)?;
        db.forget_replaced(pkg.id)?;
        let removed = files.len();
        files.clear();
        // The phase running when it stopped: the last one started, for a build without a
        // recorded stage.
        let last_phase = db.phases(pkg.id)?.pop().map(|p| p.phase);
        let stage = (pkg.stage.clone())
            .or(last_phase)
            .unwrap_or_else(|| pkg.state.name().into());
        let detail = format!(
            "upm (pid {}) stopped during the {stage} phase; the {removed} path(s) it had written \
             were removed and {} original(s) it had taken over put back",
            pkg.pid.unwrap_or(0),
            restored.len()
        );
        ctx.printer.warn(&format!(
            "the install of {} was interrupted: {detail}; run `upm install {}` to build it again \
             or `upm remove {}` to forget it",
            pkg.name, pkg.name, pkg.name
        ));
        reports.push(ReportRow {
            kind: "interrupted".into(),
            path: None,
            detail: detail.clone(),
        });
        let kept: Vec<Entry> = db.files(pkg.id)?;
        let gone = vanished(&root, kept.iter().map(|e| e.path.as_path()), &files);
        db.record(
            pkg.id,
            &Outcome {
                files: &files,
                gone: &gone,
                steps: &[],
                reports: &reports,
                state: State::Interrupted,
                stage: Some(&stage),
                error: Some(&detail),
            },
        )?;
    }
    Ok(())
}

/// For a command that only reads: when `db` shows an install in progress and no upm holds the
/// root lock, take the lock and [`recover`] it (ending what is left of its build). Another upm
/// taking the lock first records it instead. When the root cannot be written (a read-only
/// mount), the install is still reported, as interrupted, and the command goes on.
pub fn settle(ctx: &Ctx, db: &Db) -> Result<(), Error> {
    let stuck: Vec<String> = db
        .packages()?
        .into_iter()
        .filter(|p| p.state.in_progress())
        .map(|p| p.name)
        .collect();
    let mut stuck = stuck;
    if super::upgrade::pending(db) {
        stuck.push("an upgrade".into());
    }
    if stuck.is_empty() || Lock::held(&ctx.root) {
        return Ok(());
    }
    let attempt = || -> Result<(), Error> {
        let _lock = Lock::take(&ctx.root, "upm (recording an interrupted install)")?;
        recover(ctx, &mut Db::open(&ctx.root, false)?)
    };
    match attempt() {
        Ok(()) | Err(Error::Db(crate::db::Error::Locked { .. })) => Ok(()),
        Err(e) => {
            for name in stuck {
                ctx.printer.warn(&format!(
                    "interrupted install of {name} (no upm is working on it); it cannot be \
                     recorded now: {e}"
                ));
            }
            Ok(())
        }
    }
}

/// The state to show for a row: one still in progress while no upm holds the lock was
/// interrupted (the next upm that changes the root records it as such).
pub fn shown_state(root: &std::path::Path, state: State) -> State {
    if state.in_progress() && !crate::db::Lock::held(root) {
        State::Interrupted
    } else {
        state
    }
}
