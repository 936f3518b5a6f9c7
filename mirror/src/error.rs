//! The mirror's typed errors: each names the file, identity or peer it is about and, where
//! there is one, what to do.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the mirror's database {}: {source}", path.display())]
    Db {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("the mirror's database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error(transparent)]
    Watch(#[from] upm_watch::Error),
    /// The trees need more inotify watches than allowed (what to raise, to how many).
    #[error("{0}")]
    Watches(String),
    #[error("fs_info: {0}")]
    FsInfo(String),
    #[error("{0}")]
    Internal(String),
    #[error("{peer}: {what}")]
    Protocol { peer: String, what: String },
    #[error("{peer}: {source}")]
    Net {
        peer: String,
        source: std::io::Error,
    },
    #[error("{}: {what}", path.display())]
    Secret { path: PathBuf, what: String },
    #[error(
        "{}: another fs_mirror holds its lock; one directory mirrors one server once (stop the other first)",
        path.display()
    )]
    Locked { path: PathBuf },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `map_err` helper: an I/O error about `path`.
pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { path, source }
}
