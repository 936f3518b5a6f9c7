//! The context passed down every call chain: how to print, the target root and its settings
//! (`etc/upm/upm.toml`, loaded once, here). Nothing in upm reads global state behind its back.

use std::path::{Path, PathBuf};

use crate::config::{self, Config};
use crate::printer::Printer;

pub struct Ctx {
    pub printer: Printer,
    /// The target root (`--root`, default `/`).
    pub root: PathBuf,
    /// The root's settings: id ranges and install group, install directories, tracked trees,
    /// source and recipe directories.
    pub cfg: Config,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "--root {}: no such directory; give the directory of an existing system, or make a new \
         root with `upm --root {} init --create`",
        root.display(), root.display()
    )]
    NoRoot { root: PathBuf },
    #[error("--root {}: not a directory", root.display())]
    NotDir { root: PathBuf },
    #[error("--root {}: cannot create it: {source}", root.display())]
    Create {
        root: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Config(#[from] config::Error),
}

impl Ctx {
    /// A context with the given settings (for commands and tests that do not read a root's).
    pub fn new(printer: Printer, root: PathBuf, cfg: Config) -> Ctx {
        Ctx { printer, root, cfg }
    }

    /// The context of an existing root, with its settings loaded. With `create`, a missing
    /// root directory is made first (for `upm init --create`).
    pub fn open(printer: Printer, root: PathBuf, create: bool) -> Result<Ctx, Error> {
        if create {
            std::fs::create_dir_all(&root).map_err(|source| Error::Create {
                root: root.clone(),
                source,
            })?;
        }
        check_root(&root)?;
        let cfg = Config::load(&root)?;
        Ok(Ctx { printer, root, cfg })
    }
}

/// A root given on the command line must be an existing directory.
pub fn check_root(root: &Path) -> Result<(), Error> {
    match std::fs::metadata(root) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(Error::NotDir {
            root: root.to_path_buf(),
        }),
        Err(_) => Err(Error::NoRoot {
            root: root.to_path_buf(),
        }),
    }
}
