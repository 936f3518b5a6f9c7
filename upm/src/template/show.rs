//! `upm template show`: which template a file really comes from — the chain of links from the
//! unit's path to the real file, each hop with the unit it lies in.

use std::path::{Path, PathBuf};

use super::{Error, Repo, Result, unit_of};

/// One step of the chain.
#[derive(Debug, Clone)]
pub struct Hop {
    pub path: PathBuf,
    pub unit: Option<PathBuf>,
}

/// The chain from `rel` to the file it resolves to (the last hop).
pub fn chain(repo: &Repo, rel: &Path) -> Result<Vec<Hop>> {
    let r = repo.resolve(rel)?;
    if !r.exists {
        return Err(Error::Dangling {
            link: rel.to_path_buf(),
            target: r.real().to_path_buf(),
        });
    }
    Ok(r.hops
        .into_iter()
        .map(|path| Hop {
            unit: unit_of(&path),
            path,
        })
        .collect())
}
