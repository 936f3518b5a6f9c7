//! Configuration files across upgrades, and `upm configs`.
//!
//! A package's configuration files are its files under `/etc` and those its recipe lists in
//! `package.config`. When an upgrade installs one that was changed since it was installed
//! (its content differs from the recorded sha256), the changed one stays and the new one is
//! written beside it as `FILE.upmnew` — unless the new version's is the same as the old
//! one's, when there is nothing to merge. An unchanged one is replaced by the new one.
//!
//! The manifest records `FILE` as the new version installed it (so the next upgrade still
//! sees the user's change) and holds `FILE.upmnew` too, so it goes with the package; `upm
//! check` does not report a `.upmnew` (the user merges and deletes it). `upm configs` lists
//! the `.upmnew` files still on disk, `--diff` shows `diff -u FILE FILE.upmnew`.

use std::path::{Path, PathBuf};

use crate::ctx::Ctx;
use crate::db::Db;
use crate::fsutil::{FileKind, on_host};
use crate::manifest::{Entry, sha256_file};

use super::upgrade::Upgrade;
use super::{Error, io};

/// What an upgrade did with the configuration files of the old version that the new one
/// installs too.
#[derive(Debug, Default)]
pub struct Settled {
    /// Unchanged since installed: replaced by the new version's.
    pub replaced: Vec<PathBuf>,
    /// Changed: kept, the new one written beside it (file, `.upmnew`).
    pub kept: Vec<(PathBuf, PathBuf)>,
    /// Changed, but the new version's is the old one's: kept, nothing to merge.
    pub kept_same: Vec<PathBuf>,
}

/// Whether `path` is a configuration file of a package whose recipe lists `listed`.
pub fn is_config(path: &Path, listed: &[PathBuf]) -> bool {
    path.starts_with("/etc") || listed.iter().any(|p| p == path)
}

/// The `.upmnew` name of a configuration file.
pub fn upmnew(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(".upmnew");
    PathBuf::from(s)
}

/// After the new version is installed (its manifest `new_files`), before stale files go: keep
/// the changed configuration files, the new ones as `.upmnew` (their entries go into
/// `extra`, to join the manifest).
pub fn settle(
    root: &Path,
    u: &Upgrade,
    new_files: &[Entry],
    extra: &mut Vec<Entry>,
) -> Result<Settled, Error> {
    let mut out = Settled::default();
    for e in u.old_files.iter().filter(|e| e.kind == FileKind::File) {
        if !is_config(&e.path, &u.config) {
            continue;
        }
        let Some(new) = new_files
            .iter()
            .find(|n| n.path == e.path && n.kind == FileKind::File)
        else {
            // Not installed by the new version: a stale file (kept when changed).
            continue;
        };
        let Some(kept) = u.kept_file(root, &e.path) else {
            continue;
        };
        let before = sha256_file(&kept).map_err(io(&kept))?;
        if Some(&before) == e.sha256.as_ref() {
            out.replaced.push(e.path.clone());
            continue;
        }
        let host = on_host(root, &e.path);
        if new.sha256 == e.sha256 {
            std::fs::rename(&kept, &host).map_err(io(&host))?;
            out.kept_same.push(e.path.clone());
            continue;
        }
        let side = upmnew(&e.path);
        let side_host = on_host(root, &side);
        std::fs::rename(&host, &side_host).map_err(io(&side_host))?;
        std::fs::rename(&kept, &host).map_err(io(&host))?;
        if let Some(entry) = Entry::read(root, &side).map_err(io(&side))? {
            extra.push(entry);
        }
        out.kept.push((e.path.clone(), side));
    }
    Ok(out)
}

/// A `.upmnew` file waiting to be merged.
#[derive(Debug, Clone)]
pub struct Pending {
    pub package: String,
    /// The configuration file in use.
    pub file: PathBuf,
    /// The new version's, beside it.
    pub new: PathBuf,
}

/// `upm configs`: the `.upmnew` files of the installed packages still on disk.
pub fn pending(ctx: &Ctx, db: &Db) -> Result<Vec<Pending>, Error> {
    let mut out = Vec::new();
    for (package, path) in db.upmnew_files()? {
        if std::fs::symlink_metadata(on_host(&ctx.root, &path)).is_err() {
            continue;
        }
        let file = path.with_extension("");
        out.push(Pending {
            package,
            file,
            new: path,
        });
    }
    Ok(out)
}

/// `upm configs --diff`: `diff -u FILE FILE.upmnew`, labelled with the paths in the root.
pub fn diff(ctx: &Ctx, p: &Pending) -> Result<String, Error> {
    let (a, b) = (on_host(&ctx.root, &p.file), on_host(&ctx.root, &p.new));
    let out = std::process::Command::new("diff")
        .arg("-u")
        .arg("--label")
        .arg(&p.file)
        .arg("--label")
        .arg(&p.new)
        .arg(&a)
        .arg(&b)
        .output()
        .map_err(io(Path::new("diff")))?;
    // 0: the same, 1: they differ; anything else is diff's own trouble (a missing file).
    if out.status.code().is_some_and(|c| c <= 1) {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(io(&a)(std::io::Error::other(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ))
        .into())
    }
}
