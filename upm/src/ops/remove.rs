//! `upm remove`: delete what a package installed — the files of its manifest that are still
//! its own and unchanged — keeping changed files (reported), install directories and anything
//! that is another package's; then the directories it created, once empty; then its record,
//! in one transaction, and its package user and home unless asked to keep them. First, the
//! entries its info pages put into a shared info `dir` file are taken out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::ctx::Ctx;
use crate::db::{Db, Lock, ReplacedRow};
use crate::fsutil::FileKind;
use crate::fsutil::on_host;
use crate::infodir::{self, DirEntry};
use crate::manifest::{Diff, Entry};
use crate::pathtext::quoted;
use crate::pkguser::{self, PkgUser};

use super::{Error, recover, setup};

/// What removing a package does (or, with `--dry-run`, would do) to each path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Removed,
    /// Kept, with the reason.
    Kept(String),
    /// Already gone before the removal.
    Missing,
    /// The file it had replaced (one no package owned) was put back in its place.
    Restored,
}

#[derive(Debug)]
pub struct Removed {
    pub name: String,
    pub paths: Vec<(PathBuf, Action)>,
    pub user_removed: bool,
    /// Files it replaced whose originals were not put back (without `--restore`): where each
    /// original is kept, if it is.
    pub not_restored: Vec<(PathBuf, Option<PathBuf>)>,
}

pub struct Options {
    pub name: String,
    pub dry_run: bool,
    pub keep_user: bool,
    /// Put back the files the package replaced that no package owned (kept under
    /// `var/lib/upm/replaced`).
    pub restore: bool,
    /// Remove even when other packages' files need a library only this package provides.
    pub force: bool,
}

pub fn remove(ctx: &Ctx, opts: &Options) -> Result<Removed, Error> {
    let root = &ctx.root;
    let cfg = &ctx.cfg;
    let _lock = Lock::take(root, &format!("upm remove {}", opts.name))?;
    let mut db = Db::open(root, false)?;
    if !opts.dry_run {
        recover::recover(ctx, &mut db)?;
    }
    let pkg = db.package(&opts.name)?.ok_or_else(|| Error::NotInstalled {
        name: opts.name.clone(),
    })?;
    if !opts.force {
        let needed = super::libs::still_needed(&db, pkg.id, &BTreeSet::new())?;
        if !needed.is_empty() {
            return Err(Error::SonameNeeded {
                name: pkg.name.clone(),
                count: needed.len(),
                list: super::libs::list(&needed),
            });
        }
    }
    let files = db.files(pkg.id)?;
    // Originals of what an unfinished install took over always come back; those a finished
    // one replaced, with --restore.
    let (restore, not_restored): (Vec<ReplacedRow>, Vec<ReplacedRow>) = db
        .replaced(pkg.id)?
        .into_iter()
        .partition(|r| !r.replaced || opts.restore);
    let restoring: BTreeSet<&Path> = restore.iter().map(|r| r.path.as_path()).collect();
    // Take the package's info pages out of the shared `dir` file while they still exist —
    // except the entries of a page that stays (a distribution's `diffutils.info.gz` beside
    // the package's `diffutils.info`, an original put back).
    if !opts.dry_run {
        let stays = Stays {
            root,
            mine: files.iter().map(|e| e.path.as_path()).collect(),
            restoring: &restoring,
        };
        for s in db.root_steps(pkg.id)? {
            if s.step == "install-info" && s.applied {
                let mut args: Vec<String> = s
                    .arg
                    .split(crate::wrap::ARG_SEP)
                    .map(String::from)
                    .collect();
                if args.iter().any(|a| stays.file(Path::new(a))) {
                    continue;
                }
                args.insert(0, "--delete".into());
                let log = root.join("var/lib/upm/remove.log");
                let script = format!("install-info {}", setup::sh_quote_all(&args));
                setup::run_root_command(root, &script, &log)?;
            }
        }
        // Whatever `--delete` left (entries pointing to other files, pages registered past the
        // wrapper): every entry the package's info files declare.
        take_info_entries_out(ctx, &db, &pkg.name, &files, &stays)?;
    }
    let install_dirs: BTreeSet<&Path> = cfg.install_dirs.iter().map(PathBuf::as_path).collect();
    let mut out = Vec::new();
    let mut dirs = Vec::new();
    // Children sort after their parents: go backwards so files go before their directories.
    for e in files.iter().rev() {
        if e.kind == FileKind::Dir {
            if install_dirs.contains(e.path.as_path()) {
                out.push((e.path.clone(), Action::Kept("an install directory".into())));
            } else {
                dirs.push(e);
            }
            continue;
        }
        let diff = e.diff(root).map_err(super::io(&e.path))?;
        let action = if diff == [Diff::Missing] {
            Action::Missing
        } else if let Some(Diff::Owner(uid, _)) = diff.iter().find(|d| matches!(d, Diff::Owner(..)))
        {
            Action::Kept(format!("it belongs to uid {uid} now"))
        } else if !diff.is_empty() {
            let what = diff
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            if e.path.starts_with("/etc") {
                Action::Kept(format!("configuration changed since the install ({what})"))
            } else {
                Action::Kept(format!("changed since the install ({what})"))
            }
        } else {
            Action::Removed
        };
        let action = match action {
            // Renamed over it in one step below: the path is never empty.
            Action::Removed | Action::Missing if restoring.contains(e.path.as_path()) => {
                Action::Restored
            }
            a => a,
        };
        if action == Action::Removed && !opts.dry_run {
            let host = on_host(root, &e.path);
            std::fs::remove_file(&host).map_err(super::io(&host))?;
        }
        out.push((e.path.clone(), action));
    }
    let restored: BTreeSet<PathBuf> = out
        .iter()
        .filter(|(_, a)| *a == Action::Restored)
        .map(|(p, _)| p.clone())
        .collect();
    let to_restore: Vec<ReplacedRow> = restore
        .iter()
        .filter(|r| restored.contains(&r.path) || !files.iter().any(|e| e.path == r.path))
        .cloned()
        .collect();
    for r in &to_restore {
        if !restored.contains(&r.path) {
            out.push((r.path.clone(), Action::Restored));
        }
    }
    if !opts.dry_run {
        super::takeover::restore(root, &to_restore)?;
    }
    for e in dirs {
        let host = on_host(root, &e.path);
        let shared_with = db.owners(&e.path)?.into_iter().any(|n| n != pkg.name);
        let action = if shared_with {
            Action::Kept("another package installed it too".into())
        } else if !host.exists() {
            Action::Missing
        } else if opts.dry_run {
            let removed: BTreeSet<&PathBuf> = out
                .iter()
                .filter(|(_, a)| *a == Action::Removed)
                .map(|(p, _)| p)
                .collect();
            let empty_after = std::fs::read_dir(&host).is_ok_and(|mut it| {
                it.all(|c| c.is_ok_and(|c| removed.contains(&e.path.join(c.file_name()))))
            });
            if empty_after {
                Action::Removed
            } else {
                Action::Kept("not empty".into())
            }
        } else {
            match std::fs::remove_dir(&host) {
                Ok(()) => Action::Removed,
                Err(err) if err.raw_os_error() == Some(nix::libc::ENOTEMPTY) => {
                    Action::Kept("not empty: other files are in it".into())
                }
                Err(err) => return Err(super::io(&host)(err).into()),
            }
        };
        out.push((e.path.clone(), action));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    let mut user_removed = false;
    if !opts.dry_run {
        let ran_ldconfig = db
            .root_steps(pkg.id)?
            .iter()
            .any(|s| s.step == "ldconfig" && s.applied);
        db.delete(pkg.id)?;
        let user = PkgUser::recorded(&pkg.name, pkg.uid, pkg.gid);
        if ran_ldconfig {
            // As at install: the root's own ldconfig, run inside it.
            let log = root.join("var/lib/upm/remove.log");
            setup::run_root_command(root, "ldconfig", &log)?;
        }
        if !opts.keep_user {
            setup::end_processes(root, &user)?;
            user_removed = pkguser::remove_user(root, &user, &cfg.ids)?;
            // Kept files must not pass to whichever package gets this uid next.
            for (path, action) in &out {
                let host = on_host(root, path);
                if matches!(action, Action::Kept(_))
                    && std::fs::symlink_metadata(&host)
                        .is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == pkg.uid)
                {
                    nix::unistd::fchownat(
                        nix::fcntl::AT_FDCWD,
                        &host,
                        Some(nix::unistd::Uid::from_raw(0)),
                        Some(nix::unistd::Gid::from_raw(0)),
                        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
                    )
                    .map_err(|e| super::io(&host)(e.into()))?;
                }
            }
            let home = on_host(root, &user.home);
            if home.exists() {
                std::fs::remove_dir_all(&home).map_err(super::io(&home))?;
            }
        }
    }
    Ok(Removed {
        name: pkg.name,
        paths: out,
        user_removed,
        not_restored: not_restored.into_iter().map(|r| (r.path, r.kept)).collect(),
    })
}

/// Which info pages stay after the removal.
struct Stays<'a> {
    root: &'a Path,
    /// The package's paths (they go).
    mine: BTreeSet<&'a Path>,
    /// Originals put back.
    restoring: &'a BTreeSet<&'a Path>,
}

impl Stays<'_> {
    /// Whether a page named `page` (`diffutils`) stays in `folder`: an original put back, or a
    /// file there that is not the package's.
    fn page(&self, folder: &Path, page: &str) -> bool {
        [
            "",
            ".info",
            ".info.gz",
            ".info.bz2",
            ".info.xz",
            ".info.zst",
        ]
        .iter()
        .map(|suffix| folder.join(format!("{page}{suffix}")))
        .any(|p| {
            self.restoring.contains(p.as_path())
                || (!self.mine.contains(p.as_path())
                    && std::fs::symlink_metadata(on_host(self.root, &p)).is_ok())
        })
    }

    /// Whether `arg` of an install-info step is an info file whose page stays.
    fn file(&self, arg: &Path) -> bool {
        let (Some(folder), Some(file)) = (arg.parent(), arg.file_name()) else {
            return false;
        };
        let file = file.to_string_lossy();
        let page = infodir::strip_info_suffix(&file);
        arg.is_absolute() && page.len() < file.len() && self.page(folder, page)
    }
}

/// Take out of each info `dir` file next to the package's info pages every entry those pages
/// declare (`* pod2texi: (pod2texi)Invoking pod2texi.` in texinfo's `texinfo.info` too) and
/// every entry pointing to one of them — except an entry pointing to another package's page.
fn take_info_entries_out(
    ctx: &Ctx,
    db: &Db,
    name: &str,
    files: &[Entry],
    stays: &Stays<'_>,
) -> Result<(), Error> {
    let root = &ctx.root;
    // dir file → (pages of this package there, entries they declare)
    let mut dirs: BTreeMap<PathBuf, (BTreeSet<String>, Vec<DirEntry>)> = BTreeMap::new();
    for e in files.iter().filter(|e| e.kind == FileKind::File) {
        let (Some(parent), Some(file)) = (e.path.parent(), e.path.file_name()) else {
            continue;
        };
        let file = file.to_string_lossy();
        let page = infodir::strip_info_suffix(&file);
        if page.len() == file.len() || !on_host(root, &parent.join("dir")).is_file() {
            continue;
        }
        let slot = dirs.entry(parent.join("dir")).or_default();
        slot.0.insert(page.to_string());
        // A page that cannot be read any more still has its own entries taken out.
        slot.1
            .extend(infodir::declared_by(&on_host(root, &e.path)).unwrap_or_default());
    }
    for (dir, (pages, declared)) in dirs {
        let folder = dir.parent().unwrap_or(Path::new("/"));
        // Is `page` the page of another installed package?
        let others = |page: &str| {
            ["", ".info", ".info.gz", ".info.bz2", ".info.xz"]
                .iter()
                .any(|suffix| {
                    db.owners(&folder.join(format!("{page}{suffix}")))
                        .is_ok_and(|o| o.iter().any(|n| n != name))
                })
        };
        let host = on_host(root, &dir);
        let text = std::fs::read_to_string(&host).map_err(super::io(&host))?;
        let (kept, removed) = infodir::remove_entries(&text, |e| {
            (pages.contains(&e.file) || (declared.iter().any(|d| d.same(e)) && !others(&e.file)))
                && !stays.page(folder, &e.file)
        });
        if removed > 0 {
            crate::fsutil::write_atomic(&host, kept.as_bytes()).map_err(super::io(&host))?;
            ctx.printer.note(&format!(
                "took {removed} entr{} of {name} out of {}",
                if removed == 1 { "y" } else { "ies" },
                quoted(&dir)
            ));
        }
    }
    Ok(())
}
