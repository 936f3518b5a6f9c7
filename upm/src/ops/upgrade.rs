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

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::ctx::Ctx;
use crate::db::{self, Db, Journal, KeptLib, Package, Stage, Upgraded};
use crate::fsutil::{FileKind, on_host};
use crate::manifest::{Diff, Entry};
use crate::pathtext::quoted;
use crate::pkguser::PkgUser;

use super::{Error, configs, io, setup, takeover};

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
                detach(&host, &m)?;
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

    /// The sonames the old version provides that the new one does not and other packages'
    /// files need: an error naming them, or with `--force` the old library files to keep.
    fn soname_guard(&self, db: &Db, new_paths: &BTreeSet<&Path>) -> Result<Vec<KeptLib>, Error> {
        let new_name = row_name(&self.old.name, &self.new_version);
        let keeps: BTreeSet<String> = db
            .elf_files(self.journal.new_id)?
            .into_iter()
            .filter_map(|f| f.dynamic.soname)
            .collect();
        let needed: Vec<db::SonameUse> = super::libs::still_needed(db, self.old.id, &keeps)?
            .into_iter()
            .filter(|u| u.package != new_name)
            .collect();
        if needed.is_empty() {
            return Ok(Vec::new());
        }
        let list = super::libs::list(&needed);
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
                    needed_by: super::libs::list(&by.into_iter().cloned().collect::<Vec<_>>()),
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

    /// Remove the stale files: old paths the new version did not install, still the
    /// package's and unchanged; keep (and carry in the manifest) the changed ones.
    fn remove_stale(
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

/// Give `host` an inode of its own with the same content, mode, owner and times (renamed
/// over it in one step), so writes through the path leave the kept inode alone.
fn detach(host: &Path, m: &std::fs::Metadata) -> Result<(), Error> {
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
        Some(m.uid().into()),
        Some(m.gid().into()),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(|e| io(&tmp)(e.into()))?;
    std::fs::set_permissions(&tmp, m.permissions()).map_err(io(&tmp))?;
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
    for e in old_files.iter().filter(|e| e.kind != FileKind::Dir) {
        let kept = keep_dir.join(e.path.strip_prefix("/").unwrap_or(&e.path));
        if std::fs::symlink_metadata(&kept).is_err() {
            continue;
        }
        let host = on_host(root, &e.path);
        if let Ok(m) = std::fs::symlink_metadata(&host)
            && m.is_dir()
        {
            // The new version made a directory there: it goes first (when empty).
            let _ = std::fs::remove_dir(&host);
        }
        if let Some(parent) = host.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::rename(&kept, &host).map_err(io(&host))?;
    }
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
            Ok(_) => std::fs::remove_file(&host).map_err(io(&host))?,
            Err(_) => {}
        }
    }
    dirs.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for d in &dirs {
        let _ = std::fs::remove_dir(on_host(root, d));
    }
    if keep_dir.exists() {
        std::fs::remove_dir_all(&keep_dir).map_err(io(&keep_dir))?;
    }
    Ok(new.len())
}

/// The linker cache after a rollback: as the old version's libraries had it, when the new
/// version's root steps ran ldconfig.
fn rerun_ldconfig(root: &Path, db: &Db, new_id: i64) {
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
    // Keep directories of upgrades that committed before their removal.
    let top = on_host(&root, Path::new(KEEP_DIR));
    if let Ok(rd) = std::fs::read_dir(&top) {
        for e in rd.flatten() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
    Ok(())
}

/// Whether a root has an upgrade left by a killed upm (for the commands that only read).
pub fn pending(db: &Db) -> bool {
    db.journals().is_ok_and(|j| !j.is_empty())
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

/// `upm upgrade NAME [RECIPE]`: the recipe to upgrade an installed package with. RECIPE (a
/// file, or a name in the recipe directories) when given; else the first of: `NAME` in the
/// recipe directories, `/usr/src/NAME/NAME.toml`, the newest profile
/// `/usr/src/NAME/NAME-VERSION.profile.toml` — whose version differs from the installed one
/// (a profile's must be newer).
pub fn find_recipe(ctx: &Ctx, name: &str, given: Option<&str>) -> Result<PathBuf, Error> {
    let db = Db::open_read(&ctx.root)?;
    let pkg = db
        .package(name)?
        .filter(|p| p.state == db::State::Installed)
        .ok_or_else(|| Error::NotInstalled { name: name.into() })?;
    let named = |path: &Path| -> Result<crate::recipe::Recipe, Error> {
        let r = crate::recipe::load(path)?.recipe;
        if r.package.name != name {
            return Err(Error::UpgradeOtherPackage {
                name: name.into(),
                recipe: quoted(path).to_string(),
                other: r.package.name,
            });
        }
        Ok(r)
    };
    if let Some(g) = given {
        let path = super::install::find_recipe(ctx, &ctx.cfg, g)?;
        named(&path)?;
        return Ok(path);
    }
    let mut searched = Vec::new();
    let mut candidates = Vec::new();
    if let Ok(p) = super::install::find_recipe(ctx, &ctx.cfg, name) {
        candidates.push((p, false));
    }
    searched.extend(ctx.cfg.recipe_dirs.iter().map(|d| d.display().to_string()));
    let home = crate::pkguser::home(name);
    searched.push(home.display().to_string());
    let home = on_host(&ctx.root, &home);
    candidates.push((home.join(format!("{name}.toml")), false));
    let mut profiles: Vec<(String, PathBuf)> = std::fs::read_dir(&home)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let f = e.file_name().to_string_lossy().into_owned();
            let v = f
                .strip_prefix(&format!("{name}-"))?
                .strip_suffix(".profile.toml")?;
            Some((v.to_string(), e.path()))
        })
        .collect();
    profiles.sort_by(|a, b| version_cmp(&b.0, &a.0));
    candidates.extend(profiles.into_iter().map(|(_, p)| (p, true)));
    for (path, newer) in candidates {
        if !path.is_file() {
            continue;
        }
        let Ok(r) = named(&path) else { continue };
        let v = &r.package.version;
        if *v != pkg.version
            && (!newer || version_cmp(v, &pkg.version) == std::cmp::Ordering::Greater)
        {
            return Ok(path);
        }
    }
    Err(Error::NoNewerRecipe {
        name: name.into(),
        version: pkg.version,
        searched: searched.join(", "),
    })
}

/// Compare two version strings the way people read them: runs of digits as numbers, other
/// runs as text (`1.10` after `1.9`, `2.0rc1` before `2.0.1`).
pub fn version_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    fn parts(s: &str) -> Vec<(bool, String)> {
        let mut out: Vec<(bool, String)> = Vec::new();
        for c in s.chars() {
            let digit = c.is_ascii_digit();
            if !c.is_ascii_alphanumeric() {
                out.push((false, String::new()));
                continue;
            }
            match out.last_mut() {
                Some((d, run)) if *d == digit && !run.is_empty() => run.push(c),
                _ => out.push((digit, c.to_string())),
            }
        }
        out.retain(|(_, r)| !r.is_empty());
        out
    }
    let (pa, pb) = (parts(a), parts(b));
    for (x, y) in pa.iter().zip(&pb) {
        let o = match (x.0, y.0) {
            (true, true) => {
                let (nx, ny) = (x.1.trim_start_matches('0'), y.1.trim_start_matches('0'));
                nx.len().cmp(&ny.len()).then_with(|| nx.cmp(ny))
            }
            _ => x.1.cmp(&y.1),
        };
        if o != std::cmp::Ordering::Equal {
            return o;
        }
    }
    pa.len().cmp(&pb.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering::*;

    #[test]
    fn versions_compare_as_people_read_them() {
        assert_eq!(version_cmp("1.10", "1.9"), Greater);
        assert_eq!(version_cmp("1.3.1", "1.3"), Greater);
        assert_eq!(version_cmp("2", "2"), Equal);
        assert_eq!(version_cmp("5.4.1", "5.6.0"), Less);
        assert_eq!(version_cmp("1.02", "1.2"), Equal);
    }

    #[test]
    fn row_names_cannot_be_package_names() {
        assert!(!crate::recipe::valid_name(&row_name("zlib", "1.3")));
    }
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
    super::recover::recover(ctx, &mut db)?;
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
    let needed: Vec<db::SonameUse> = super::libs::still_needed(&db, pkg.id, &stays)?
        .into_iter()
        .filter(|u| going.contains(u.soname.as_str()))
        .collect();
    if !needed.is_empty() && !force {
        return Err(Error::SonameNeeded {
            name: format!("the old library files of {name}"),
            count: needed.len(),
            list: super::libs::list(&needed),
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
