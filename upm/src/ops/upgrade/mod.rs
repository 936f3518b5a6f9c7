//! Upgrades: `upm install` of a package installed at another version (or `upm upgrade`).
//!
//! The new version is built and installed as the same package user under a row of its own
//! (`NAME@VERSION`), so the installed version's record is untouched until the end: a failed
//! build leaves it installed and working. Right before the install phase, every file of the
//! old manifest is **kept aside** by hard link under `var/lib/upm/upgrade/NAME/` (a journal
//! row says so); a file the trial run showed the install will write is first replaced by a
//! copy of itself, so the kept inode keeps the old content whatever the installer does. A
//! failure from there on — the install phase, the root steps, the soname guard — [`roll_back`]s
//! to the old file set (the kept inodes renamed back: content, mode and owner exactly) and
//! drops the new row; a `kill -9` is rolled back the same way by the next upm ([`recover`]).
//!
//! After a good install, [`Upgrade::finish`]: the **soname guard** (a soname the new version
//! no longer provides that other packages' files need stops the upgrade, rolled back, unless
//! `--force`, which keeps the old library files); **configuration files** (under `/etc` or in
//! `package.config`) the user changed since they were installed are kept, the new one written
//! as `FILE.upmnew` (`ops/configs.rs`); **stale files** (old manifest minus new) still the
//! package's and unchanged are removed, changed ones kept and reported; then one transaction
//! makes the new row the package and records the upgrade in its history.

use std::collections::BTreeSet;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::ctx::Ctx;
use crate::db::{self, Db, Journal, KeptLib, Package, Stage, Upgraded};
use crate::fsutil::{FileKind, on_host};
use crate::manifest::Entry;
use crate::pathtext::quoted;

use super::{Error, configs, io, takeover};

mod find;
mod libs;
mod rollback;
mod stale;

pub use find::{find_recipe, version_cmp};
pub use libs::{kept_libs_advice, remove_stale_libs};
use rollback::rerun_ldconfig;
pub use rollback::{pending, recover, roll_back};

/// Where an upgrade keeps the old version's files, inside the root.
pub const KEEP_DIR: &str = "/var/lib/upm/upgrade";

/// The name of the new version's row while the upgrade runs.
pub fn row_name(name: &str, version: &str) -> String {
    format!("{name}@{version}")
}

/// One upgrade under way.
pub struct Upgrade {
    pub journal: Journal,
    pub old: Package,
    pub old_files: Vec<Entry>,
    pub new_version: String,
    /// Stop at a soname other packages need unless set.
    pub force: bool,
    /// Configuration files besides `/etc` (`package.config` of the new recipe).
    pub config: Vec<PathBuf>,
    /// Old paths kept aside (a hard link under the keep directory).
    kept: Vec<PathBuf>,
}

/// What an upgrade did besides installing the new version.
#[derive(Debug, Default)]
pub struct Done {
    pub old_version: String,
    /// Stale files (old manifest minus new) removed.
    pub removed: Vec<PathBuf>,
    /// Stale files kept, with why (changed since installed, another's now, not empty).
    pub kept: Vec<(PathBuf, String)>,
    pub configs: configs::Settled,
    /// Old library files kept with `--force` (path, soname), and who needs them.
    pub kept_libs: Vec<KeptLib>,
    /// Stale files that had replaced a file no package owned: the original put back.
    pub restored: Vec<PathBuf>,
}

impl Upgrade {
    /// Start the upgrade of the installed `old` to `new_version`, whose row is `new_id`: the
    /// journal row first, so a killed upm finds the new row's purpose.
    pub fn start(
        db: &Db,
        old: Package,
        new_id: i64,
        new_version: &str,
        force: bool,
        config: &[String],
    ) -> Result<Upgrade, Error> {
        let old_files = db.files(old.id)?;
        let journal = Journal {
            name: old.name.clone(),
            old_id: old.id,
            new_id,
            keep_dir: Path::new(KEEP_DIR).join(&old.name),
            stage: Stage::Building,
            started: db::now(),
        };
        db.journal_start(&journal)?;
        Ok(Upgrade {
            journal,
            old,
            old_files,
            new_version: new_version.to_string(),
            force,
            config: config.iter().map(PathBuf::from).collect(),
            kept: Vec::new(),
        })
    }

    fn kept_at(&self, path: &Path) -> PathBuf {
        self.journal
            .keep_dir
            .join(path.strip_prefix("/").unwrap_or(path))
    }

    /// Right before the install phase: keep every old file aside by hard link, and give each
    /// one the install will write (`writes`, from the trial; every one when no trial ran,
    /// `blind`) an inode of its own first.
    pub fn keep_aside(
        &mut self,
        root: &Path,
        db: &Db,
        writes: &BTreeSet<PathBuf>,
        blind: bool,
    ) -> Result<(), Error> {
        db.journal_stage(&self.journal.name, Stage::Installing)?;
        let keep_dir = on_host(root, &self.journal.keep_dir);
        if keep_dir.exists() {
            std::fs::remove_dir_all(&keep_dir).map_err(io(&keep_dir))?;
        }
        for e in self.old_files.iter().filter(|e| e.kind != FileKind::Dir) {
            let host = on_host(root, &e.path);
            let Ok(m) = std::fs::symlink_metadata(&host) else {
                continue;
            };
            if m.is_dir() {
                continue;
            }
            takeover::keep(&host, &on_host(root, &self.kept_at(&e.path)))?;
            self.kept.push(e.path.clone());
            if (blind || writes.contains(&e.path)) && m.is_file() {
                // A file a root step gave to root (`chown root`, setuid) goes to the package
                // user for the install phase, without its setuid/setgid bits: the new
                // version's root steps apply again; the kept inode keeps both for a rollback.
                let (owner, mode) = if m.uid() == self.old.uid {
                    ((m.uid(), m.gid()), m.mode() & 0o7777)
                } else {
                    ((self.old.uid, self.old.gid), m.mode() & 0o1777)
                };
                detach(&host, &m, owner, mode)?;
            }
        }
        Ok(())
    }

    /// The kept (old) content of `path`, on the host, if it was kept.
    pub fn kept_file(&self, root: &Path, path: &Path) -> Option<PathBuf> {
        self.kept
            .iter()
            .any(|p| p == path)
            .then(|| on_host(root, &self.kept_at(path)))
    }

    /// Put the old version back: see [`roll_back`].
    pub fn roll_back(&self, ctx: &Ctx, written: &[Entry]) -> Result<usize, Error> {
        let extra: Vec<PathBuf> = written.iter().map(|e| e.path.clone()).collect();
        roll_back(ctx, &self.journal, &self.old_files, &extra, None)
    }

    /// An upgrade that did not happen (a failed build or install phase, the soname guard):
    /// its row goes, the attempt goes into the history; the old version stays as it is.
    pub fn abandon(&self, db: &mut Db, state: &str, detail: &str) {
        let f = Facts::of(db, self);
        let u = f.upgraded(self, state, Some(detail));
        if let Err(e) = db.abandon_upgrade(&self.journal, &u) {
            eprintln!("upm: warning: could not record the failed upgrade: {e}");
        }
    }

    /// After the new version is installed and recorded under its own row: the soname guard,
    /// configuration files, stale files, then the commit. On an error the old version is put
    /// back and the attempt recorded in its history.
    pub fn finish(&self, ctx: &Ctx, db: &mut Db, new_files: &[Entry]) -> Result<Done, Error> {
        let root = ctx.root.clone();
        match self.settle(ctx, db, new_files) {
            Ok(mut done) => {
                let _ = std::fs::remove_dir_all(on_host(&root, &self.journal.keep_dir));
                self.put_back_originals(ctx, db, &mut done);
                Ok(done)
            }
            Err(e) => {
                let written: Vec<PathBuf> = new_files.iter().map(|e| e.path.clone()).collect();
                let back = db
                    .replaced(self.journal.new_id)
                    .map_err(Error::from)
                    .and_then(|held| takeover::restore(&root, &held))
                    .and_then(|_| roll_back(ctx, &self.journal, &self.old_files, &written, None));
                if let Err(r) = back {
                    ctx.printer
                        .warn(&format!("could not put all of the old version back: {r}"));
                }
                rerun_ldconfig(&root, db, self.journal.new_id);
                let state = match e {
                    Error::UpgradeSonameNeeded { .. } => "stopped",
                    _ => "failed",
                };
                self.abandon(db, state, &e.to_string());
                Err(e)
            }
        }
    }

    /// A stale file the old version had put in place of one no package owned (kept under
    /// `var/lib/upm/replaced`): the original goes back there, as `upm remove --restore` would.
    /// After the commit, so a rollback never meets it; a failure is only said.
    fn put_back_originals(&self, ctx: &Ctx, db: &mut Db, done: &mut Done) {
        let Ok(rows) = db.replaced(self.journal.new_id) else {
            return;
        };
        for r in rows.iter().filter(|r| done.removed.contains(&r.path)) {
            match takeover::restore(&ctx.root, std::slice::from_ref(r)) {
                Ok(back) if !back.is_empty() => {
                    let _ = db.give_back(self.journal.new_id, &back);
                    done.restored.extend(back);
                }
                Ok(_) => {}
                Err(e) => ctx.printer.warn(&format!(
                    "{}: the original it had replaced was not put back: {e}",
                    quoted(&r.path)
                )),
            }
        }
    }

    fn settle(&self, ctx: &Ctx, db: &mut Db, new_files: &[Entry]) -> Result<Done, Error> {
        let root = ctx.root.clone();
        let new_paths: BTreeSet<&Path> = new_files.iter().map(|e| e.path.as_path()).collect();
        let kept_libs = self.soname_guard(db, &new_paths)?;
        let kept_paths: BTreeSet<&Path> = kept_libs.iter().map(|k| k.path.as_path()).collect();
        let mut extra = Vec::new();
        let configs = configs::settle(&root, self, new_files, &mut extra)?;
        let mut done = Done {
            old_version: self.old.version.clone(),
            configs,
            ..Done::default()
        };
        for e in self
            .old_files
            .iter()
            .filter(|e| kept_paths.contains(e.path.as_path()))
        {
            extra.push(e.clone());
        }
        self.remove_stale(ctx, db, &new_paths, &kept_paths, &mut extra, &mut done)?;
        let f = Facts::of(db, self);
        let u = f.upgraded(self, "upgraded", None);
        db.commit_upgrade(&self.journal, &extra, &kept_libs, &u, None)?;
        done.kept_libs = kept_libs;
        Ok(done)
    }
}

/// What the history keeps of each version: recipe hash and profile (the old one's text too).
struct Facts {
    old_hash: Option<String>,
    new_hash: Option<String>,
    old_profile: Option<String>,
    old_text: Option<String>,
}

impl Facts {
    fn of(db: &Db, u: &Upgrade) -> Facts {
        let old = db.profile(u.old.id).ok().flatten();
        let new = db.profile(u.journal.new_id).ok().flatten();
        Facts {
            old_hash: old.as_ref().and_then(|p| p.recipe_hash.clone()),
            new_hash: new.and_then(|p| p.recipe_hash),
            old_profile: old.as_ref().and_then(|p| p.path.clone()),
            old_text: old.and_then(|p| p.text),
        }
    }

    fn upgraded<'a>(
        &'a self,
        u: &'a Upgrade,
        state: &'a str,
        detail: Option<&'a str>,
    ) -> Upgraded<'a> {
        Upgraded {
            name: &u.old.name,
            old_version: &u.old.version,
            new_version: &u.new_version,
            old_recipe_hash: self.old_hash.as_deref(),
            new_recipe_hash: self.new_hash.as_deref(),
            old_profile: self.old_profile.as_deref(),
            old_profile_text: self.old_text.as_deref(),
            state,
            detail,
            started: u.journal.started,
        }
    }
}

/// Give `host` an inode of its own with the same content and times, owned by `owner` with
/// `mode` (renamed over it in one step), so writes through the path leave the kept inode
/// alone.
fn detach(host: &Path, m: &std::fs::Metadata, owner: (u32, u32), mode: u32) -> Result<(), Error> {
    let mut name = std::ffi::OsString::from(".upm-upgrade.");
    name.push(std::process::id().to_string());
    name.push(".");
    name.push(host.file_name().unwrap_or_default());
    let tmp = host.with_file_name(name);
    let _ = std::fs::remove_file(&tmp);
    std::fs::copy(host, &tmp).map_err(io(host))?;
    nix::unistd::fchownat(
        nix::fcntl::AT_FDCWD,
        &tmp,
        Some(owner.0.into()),
        Some(owner.1.into()),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(|e| io(&tmp)(e.into()))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode)).map_err(io(&tmp))?;
    let times = [
        nix::sys::time::TimeSpec::new(m.atime(), m.atime_nsec()),
        nix::sys::time::TimeSpec::new(m.mtime(), m.mtime_nsec()),
    ];
    nix::sys::stat::utimensat(
        nix::fcntl::AT_FDCWD,
        &tmp,
        &times[0],
        &times[1],
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
    .map_err(|e| io(&tmp)(e.into()))?;
    std::fs::rename(&tmp, host).map_err(io(host))?;
    Ok(())
}
