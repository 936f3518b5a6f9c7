//! The questions a package manager answers: what is installed, what a package installed, who
//! owns a path (by database, and by owner uid for files the database does not know), whether a
//! package's files are as installed, which files no package owns, and the build logs.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use crate::ctx::Ctx;
use crate::db::{Db, Package};
use crate::fsutil::on_host;
use crate::manifest::{Diff, Entry};
use crate::pkguser::Names;
use crate::watch::Rules;

use super::{Error, recover};

/// Open the database of the context's root for reading, settling an interrupted install
/// first (said, recorded, its leftover processes ended).
pub fn open(ctx: &Ctx) -> Result<Db, Error> {
    let db = Db::open_read(&ctx.root)?;
    recover::settle(ctx, &db)?;
    Ok(db)
}

/// Every package, with the state to show (interrupted installs shown as such).
pub fn list(ctx: &Ctx, db: &Db) -> Result<Vec<Package>, Error> {
    let mut out = db.packages()?;
    for p in &mut out {
        p.state = recover::shown_state(&ctx.root, p.state);
    }
    Ok(out)
}

pub fn package(ctx: &Ctx, db: &Db, name: &str) -> Result<Package, Error> {
    let mut p = db.package(name)?.ok_or_else(|| Error::NotInstalled {
        name: name.to_string(),
    })?;
    p.state = recover::shown_state(&ctx.root, p.state);
    Ok(p)
}

/// Who owns a path.
#[derive(Debug, Clone)]
pub struct Owner {
    pub path: PathBuf,
    /// The packages whose manifest holds it.
    pub packages: Vec<String>,
    /// For a path no manifest holds: the package user owning it on disk, if any.
    pub by_uid: Option<String>,
    pub exists: bool,
}

pub fn owners(ctx: &Ctx, db: &Db, paths: &[PathBuf]) -> Result<Vec<Owner>, Error> {
    let cfg = &ctx.cfg;
    let mut names: Option<Names> = None;
    let mut out = Vec::with_capacity(paths.len());
    for p in paths {
        let path = crate::fsutil::absolute(p);
        let packages = db.owners(&path)?;
        let meta = std::fs::symlink_metadata(on_host(&ctx.root, &path));
        let mut by_uid = None;
        if packages.is_empty()
            && let Ok(m) = &meta
            && (cfg.ids.first..=cfg.ids.last).contains(&m.uid())
        {
            if names.is_none() {
                names = Some(Names::read(&ctx.root)?);
            }
            by_uid = Some(match names.as_ref().and_then(|n| n.user_name(m.uid())) {
                Some(n) => format!("package user {n}"),
                None => format!("uid {}, which no user has any more", m.uid()),
            });
        }
        out.push(Owner {
            path,
            packages,
            by_uid,
            exists: meta.is_ok(),
        });
    }
    Ok(out)
}

/// The files of a package that differ from what was installed.
pub fn check(ctx: &Ctx, db: &Db, pkg: &Package) -> Result<Vec<(Entry, Vec<Diff>)>, Error> {
    let mut out = Vec::new();
    for e in db.files(pkg.id)? {
        let mut d = e.diff(&ctx.root).map_err(super::io(&e.path))?;
        if e.shared {
            // Shared directories are install directories now: their mode is the root's business.
            d.retain(|x| matches!(x, Diff::Missing | Diff::Kind(_)));
        }
        if crate::db::is_upmnew(&e.path) {
            // The new version of a kept configuration file, the user's to merge and delete.
            continue;
        }
        if !d.is_empty() {
            out.push((e, d));
        }
    }
    Ok(out)
}

/// Paths under `dirs` (default: the tracked trees) that no package owns, install directories
/// left out.
pub fn orphans(ctx: &Ctx, db: &Db, dirs: &[PathBuf]) -> Result<Vec<PathBuf>, Error> {
    let cfg = &ctx.cfg;
    let owned = db.all_paths()?;
    let install: HashSet<&PathBuf> = cfg.install_dirs.iter().collect();
    let rules = Rules {
        roots: if dirs.is_empty() {
            cfg.track_roots.clone()
        } else {
            dirs.iter().map(|d| crate::fsutil::absolute(d)).collect()
        },
        exclude: cfg.track_exclude.clone(),
        writer: None,
    };
    let mut out = Vec::new();
    crate::track::walk(&ctx.root, &rules, &mut |p, _| {
        if !owned.contains(p) && !install.contains(&p.to_path_buf()) {
            out.push(p.to_path_buf());
        }
    });
    out.sort();
    Ok(out)
}

/// The log file of a phase of a package, as this process opens it.
pub fn log_path(ctx: &Ctx, name: &str, phase: &str) -> PathBuf {
    on_host(
        &ctx.root,
        &crate::pkguser::home(name)
            .join("logs")
            .join(format!("{phase}.log")),
    )
}
