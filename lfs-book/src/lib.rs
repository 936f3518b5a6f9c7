//! The LFS and BLFS books as upm recipes. The books are DocBook XML split over many files
//! (XInclude) with their versions, URLs and checksums in entity files; this crate reads them
//! as an XML processor would ([`dtd`] for the entities, [`doc`] for the files and includes),
//! finds the package pages in the book's order ([`book`]), turns each page into a package —
//! name, version, source, patches, phases, BLFS dependencies by level — or into a reason for
//! the review report ([`page`], [`deps`]), and writes recipes as TOML documents
//! ([`recipe`]). It never runs anything; upm loads and checks what it writes.

pub mod book;
pub mod deps;
pub mod diff;
pub mod doc;
pub mod dtd;
pub mod page;
pub mod recipe;
pub mod write;

use std::path::{Path, PathBuf};

pub use book::{Book, Kind, Options, Outcome, PageRef};
pub use dtd::Revision;
pub use page::{Package, Phase, Place};

/// Why reading a book failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}: {msg}", file.display())]
    Dtd {
        file: PathBuf,
        line: usize,
        msg: String,
    },
    #[error("{}:{line}: {msg}", file.display())]
    Xml {
        file: PathBuf,
        line: u32,
        msg: String,
    },
    #[error("{at}: {msg}")]
    Include { at: String, msg: String },
    #[error(
        "{}: not a book: no index.xml (give the top directory of an LFS or BLFS checkout)",
        dir.display()
    )]
    NotABook { dir: PathBuf },
}

impl Error {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Error {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
