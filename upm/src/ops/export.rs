//! `upm export`: an installed package as a signed binary archive
//! (`NAME-VERSION-HASH.upm.tar.zst` and `….sig` beside it; the format is
//! [`crate::profile::archive`]), and `--all` into a binary host's directory with its
//! `index.json` ([`crate::profile::binhost`]).
//!
//! The manifest comes from the database, sorted by path, with owners named (`package`, `root`,
//! `install`); files sharing an inode become hard links to the first; every file is read back
//! from the root and refused if it no longer matches the manifest (`upm check` says why). The
//! archive's bytes are signed with this root's key (`upm key generate`).

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::Error;
use crate::ctx::Ctx;
use crate::db::{Db, State};
use crate::fsutil::{FileKind, io, on_host};
use crate::profile::archive::{self, FileMeta, Meta};
use crate::profile::{self, binhost, keys};

/// What one export wrote.
#[derive(Debug, Clone)]
pub struct Exported {
    pub name: String,
    pub version: String,
    pub recipe_hash: String,
    /// The archive and its signature (host paths).
    pub archive: PathBuf,
    pub signature: PathBuf,
    pub size: u64,
    pub sha256: String,
    /// How many paths the manifest holds.
    pub files: usize,
}

/// The manifest and profile of an installed package, as an archive carries them.
fn meta_of(ctx: &Ctx, db: &Db, name: &str) -> Result<(Meta, String), Error> {
    let pkg = db.package(name)?.ok_or_else(|| Error::NotInstalled {
        name: name.to_string(),
    })?;
    if pkg.state != State::Installed {
        return Err(Error::NotExportable {
            name: name.to_string(),
            state: pkg.state.name(),
        });
    }
    let (_, text) = profile::text_of(db, name)?;
    let recipe_hash = profile::hash_of(db, name)?;
    let mut entries = db.files(pkg.id)?;
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    let mut inodes: BTreeMap<(u64, u64), PathBuf> = BTreeMap::new();
    let mut files = Vec::with_capacity(entries.len());
    for e in &entries {
        let named = profile::file_of(e, pkg.uid, pkg.gid, ctx.cfg.ids.install_gid);
        if named.owner.starts_with('#') || named.group.starts_with('#') {
            return Err(Error::ForeignOwner {
                name: name.to_string(),
                path: e.path.display().to_string(),
                owner: format!("{}:{}", named.owner, named.group),
            });
        }
        let mut link = None;
        if e.kind == FileKind::File {
            let host = on_host(&ctx.root, &e.path);
            let m = std::fs::symlink_metadata(&host).map_err(io(&host))?;
            if m.nlink() > 1 {
                match inodes.get(&(m.dev(), m.ino())) {
                    Some(first) => link = Some(first.clone()),
                    None => {
                        inodes.insert((m.dev(), m.ino()), e.path.clone());
                    }
                }
            }
        }
        let (path, path_bytes) = archive::encode(&e.path);
        let (target, target_bytes) = match &e.target {
            Some(t) => {
                let (a, b) = archive::encode(t);
                (Some(a), b)
            }
            None => (None, None),
        };
        let (link, link_bytes) = match &link {
            Some(l) => {
                let (a, b) = archive::encode(l);
                (Some(a), b)
            }
            None => (None, None),
        };
        let plain = e.kind == FileKind::File && link.is_none();
        files.push(FileMeta {
            path,
            path_bytes,
            kind: e.kind.name().to_string(),
            mode: e.mode & 0o7777,
            owner: named.owner,
            group: named.group,
            mtime: e.mtime,
            size: plain.then_some(e.size),
            sha256: if plain { e.sha256.clone() } else { None },
            target,
            target_bytes,
            link,
            link_bytes,
            shared: e.shared,
        });
    }
    Ok((
        Meta {
            format: archive::FORMAT,
            name: pkg.name,
            version: pkg.version,
            recipe_hash,
            files,
        },
        text,
    ))
}

/// Export one package. `out`: a file to write, or a directory to write
/// `NAME-VERSION-HASH.upm.tar.zst` into (default: the working directory).
pub fn export(ctx: &Ctx, name: &str, out: Option<&Path>) -> Result<Exported, Error> {
    // The key first: without one nothing is worth reading.
    keys::own_public(&ctx.root)?;
    let db = Db::open_read(&ctx.root)?;
    let (meta, text) = meta_of(ctx, &db, name)?;
    let bytes = archive::build(&meta, &text, &ctx.root)?;
    let sig = keys::sign(&ctx.root, &bytes)?;
    let archive = match out {
        Some(p) if p.is_dir() => p.join(meta.file_name()),
        Some(p) => p.to_path_buf(),
        None => PathBuf::from(meta.file_name()),
    };
    let signature = sig_path(&archive);
    crate::fsutil::write_atomic(&archive, &bytes).map_err(io(&archive))?;
    crate::fsutil::write_atomic(&signature, sig.as_bytes()).map_err(io(&signature))?;
    Ok(Exported {
        name: meta.name,
        version: meta.version,
        recipe_hash: meta.recipe_hash,
        archive,
        signature,
        size: bytes.len() as u64,
        sha256: crate::manifest::sha256_hex(&bytes),
        files: meta.files.len(),
    })
}

/// Where an archive's signature is: beside it, `.sig` appended.
pub fn sig_path(archive: &Path) -> PathBuf {
    let mut s = archive.as_os_str().to_owned();
    s.push(".sig");
    PathBuf::from(s)
}

/// Export every installed package into `dir` (made if missing) and write its `index.json`,
/// a binary host's directory. Packages without a profile are skipped with a warning.
pub fn export_all(ctx: &Ctx, dir: &Path) -> Result<Vec<Exported>, Error> {
    keys::own_public(&ctx.root)?;
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let names: Vec<String> = {
        let db = Db::open_read(&ctx.root)?;
        db.packages()?
            .into_iter()
            .filter(|p| p.state == State::Installed)
            .map(|p| p.name)
            .collect()
    };
    let mut out = Vec::new();
    for name in names {
        match export(ctx, &name, Some(dir)) {
            Ok(e) => out.push(e),
            Err(Error::Profile(e @ profile::Error::NoProfile { .. })) => {
                ctx.printer.warn(&format!("{name} skipped: {e}"));
            }
            Err(e) => return Err(e),
        }
    }
    let file = |p: &Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let index = binhost::Index::new(
        out.iter()
            .map(|e| binhost::Entry {
                name: e.name.clone(),
                version: e.version.clone(),
                recipe_hash: e.recipe_hash.clone(),
                archive: file(&e.archive),
                signature: file(&e.signature),
                sha256: e.sha256.clone(),
                size: e.size,
            })
            .collect(),
    );
    let path = dir.join(binhost::INDEX);
    crate::fsutil::write_atomic(&path, index.to_json().as_bytes()).map_err(io(&path))?;
    Ok(out)
}
