//! `upm init` and `upm installdir`: preparing a root for package users — the install group,
//! the install directories (root:install 1775), the settings file, the database and
//! `/usr/src`. Every step is idempotent.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::ctx::Ctx;
use crate::db::{Db, Lock};
use crate::fsutil::on_host;
use crate::pkguser::{self, installdir};

use super::{Error, io};

/// What `init` did.
#[derive(Debug)]
pub struct Initialized {
    pub install_gid: u32,
    pub config_written: bool,
    /// Install directories and the state each was in before.
    pub dirs: Vec<(PathBuf, installdir::State)>,
    pub db: PathBuf,
}

pub fn init(ctx: &Ctx) -> Result<Initialized, Error> {
    let root = &ctx.root;
    let upm_dir = root.join("var/lib/upm");
    std::fs::create_dir_all(&upm_dir).map_err(io(&upm_dir))?;
    let _lock = Lock::take(root, "upm init")?;
    let cfg = &ctx.cfg;
    let config_written = !cfg.path.exists();
    if config_written {
        cfg.write()?;
    }
    let gid = pkguser::ensure_install_group(root, &cfg.ids)?;
    let mut dirs = Vec::new();
    for d in &cfg.install_dirs {
        dirs.push((d.clone(), installdir::fix(root, d, gid)?));
    }
    let src = on_host(root, Path::new("/usr/src"));
    std::fs::create_dir_all(&src).map_err(io(&src))?;
    let mut db = Db::open(root, true)?;
    // The shared trees that already exist (every /usr/share/locale/*/LC_MESSAGES of the base
    // system): those root owns, no package does, and whose mode is not stricter than 0755.
    for pattern in &cfg.install_patterns {
        for d in crate::config::pattern_dirs(root, pattern) {
            let host = on_host(root, &d);
            let Ok(m) = std::fs::symlink_metadata(&host) else {
                continue;
            };
            let state = installdir::state(root, &d, gid);
            if m.uid() != 0
                || m.mode() & 0o755 != 0o755
                || state == installdir::State::Ok
                || !db.owners(&d)?.is_empty()
            {
                continue;
            }
            installdir::make(&host, gid)?;
            dirs.push((d, state));
        }
    }
    super::recover::recover(ctx, &mut db)?;
    super::setup::wrappers(root)?;
    Ok(Initialized {
        install_gid: gid,
        config_written,
        dirs,
        db: db.path.clone(),
    })
}

/// The configured install directories and the state of each.
pub fn list(ctx: &Ctx) -> Result<Vec<(PathBuf, installdir::State)>, Error> {
    let cfg = &ctx.cfg;
    let gid = install_gid(ctx, cfg)?;
    Ok(cfg
        .install_dirs
        .iter()
        .map(|d| (d.clone(), installdir::state(&ctx.root, d, gid)))
        .collect())
}

fn install_gid(ctx: &Ctx, cfg: &Config) -> Result<u32, Error> {
    Ok(pkguser::Names::read(&ctx.root)?
        .group(&cfg.ids.install_group)
        .unwrap_or(cfg.ids.install_gid))
}

fn absolute(dirs: &[PathBuf]) -> Result<(), Error> {
    match dirs.iter().find(|d| !d.is_absolute()) {
        Some(d) => Err(io(d)(std::io::Error::other(
            "install directories are absolute paths inside the root",
        ))
        .into()),
        None => Ok(()),
    }
}

/// Add install directories: to the settings, and made root:install 1775 now.
pub fn add(ctx: &Ctx, dirs: &[PathBuf]) -> Result<Vec<(PathBuf, installdir::State)>, Error> {
    absolute(dirs)?;
    let _lock = Lock::take(&ctx.root, "upm installdir add")?;
    let mut cfg = ctx.cfg.clone();
    let gid = pkguser::ensure_install_group(&ctx.root, &cfg.ids)?;
    let mut list = cfg.install_dirs.clone();
    let mut out = Vec::new();
    for d in dirs {
        if !list.contains(d) {
            list.push(d.clone());
        }
        out.push((d.clone(), installdir::fix(&ctx.root, d, gid)?));
    }
    cfg.save_install_dirs(list)?;
    Ok(out)
}

/// Remove install directories from the settings and make them ordinary root:root 0755 ones.
pub fn remove(ctx: &Ctx, dirs: &[PathBuf]) -> Result<(), Error> {
    absolute(dirs)?;
    let _lock = Lock::take(&ctx.root, "upm installdir remove")?;
    let mut cfg = ctx.cfg.clone();
    let list: Vec<PathBuf> = cfg
        .install_dirs
        .iter()
        .filter(|d| !dirs.contains(d))
        .cloned()
        .collect();
    for d in dirs {
        installdir::unmake(&ctx.root, d)?;
    }
    cfg.save_install_dirs(list)?;
    Ok(())
}

/// Make every configured install directory root:install 1775 again.
pub fn fix(ctx: &Ctx) -> Result<Vec<(PathBuf, installdir::State)>, Error> {
    let _lock = Lock::take(&ctx.root, "upm installdir fix")?;
    let cfg = &ctx.cfg;
    let gid = pkguser::ensure_install_group(&ctx.root, &cfg.ids)?;
    cfg.install_dirs
        .iter()
        .map(|d| Ok((d.clone(), installdir::fix(&ctx.root, d, gid)?)))
        .collect()
}
