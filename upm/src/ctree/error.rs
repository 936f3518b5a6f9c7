//! Errors of the configuration tree: every one names the file, and where the text is at fault,
//! the line and column and what was expected there.

use crate::pathtext::quoted;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A position in a file: 1-based line and column (in characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loc {
    pub file: Arc<PathBuf>,
    pub line: usize,
    pub col: usize,
}

impl Loc {
    /// The location of byte offset `offset` in `text`.
    pub fn at(file: &Arc<PathBuf>, text: &str, offset: usize) -> Loc {
        let offset = offset.min(text.len());
        let mut line = 1;
        let mut line_start = 0;
        for (i, b) in text.bytes().enumerate().take(offset) {
            if b == b'\n' {
                line += 1;
                line_start = i + 1;
            }
        }
        let col = text
            .get(line_start..offset)
            .map(|s| s.chars().count())
            .unwrap_or(offset - line_start)
            + 1;
        Loc {
            file: file.clone(),
            line,
            col,
        }
    }

    /// A location naming only a file (line 1, column 1), for things missing from it.
    pub fn file(path: &Path) -> Loc {
        Loc {
            file: Arc::new(path.to_path_buf()),
            line: 1,
            col: 1,
        }
    }

    /// A location for values that come from no file (the command line, defaults).
    pub fn none() -> Loc {
        Loc {
            file: Arc::new(PathBuf::from("<command line>")),
            line: 0,
            col: 0,
        }
    }
}

/// The start of every line of a text, to turn byte offsets into locations in O(log n).
pub struct Lines {
    starts: Vec<usize>,
}

impl Lines {
    pub fn new(text: &str) -> Lines {
        let mut starts = vec![0];
        starts.extend(
            text.bytes()
                .enumerate()
                .filter(|(_, b)| *b == b'\n')
                .map(|(i, _)| i + 1),
        );
        Lines { starts }
    }

    pub fn loc(&self, file: &Arc<PathBuf>, text: &str, offset: usize) -> Loc {
        let offset = offset.min(text.len());
        let line = self.starts.partition_point(|&s| s <= offset);
        let start = self.starts[line - 1];
        let col = text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count())
            + 1;
        Loc {
            file: file.clone(),
            line,
            col,
        }
    }
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", quoted(&*self.file))
        } else {
            write!(f, "{}:{}:{}", quoted(&*self.file), self.line, self.col)
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Io(#[from] crate::fsutil::PathError),
    /// Something wrong at a place in a file: syntax, types, references, inheritance.
    #[error("{loc}: {msg}")]
    At { loc: Loc, msg: String },
}

impl Error {
    pub fn io(path: &Path, source: std::io::Error) -> Error {
        Error::Io(crate::fsutil::io(path)(source))
    }

    pub fn at(loc: Loc, msg: impl Into<String>) -> Error {
        Error::At {
            loc,
            msg: msg.into(),
        }
    }

    /// Where the error is, when it is at a place in a file.
    pub fn loc(&self) -> Option<&Loc> {
        match self {
            Error::At { loc, .. } => Some(loc),
            Error::Io(_) => None,
        }
    }
}

/// The text of a file, or an error at the first byte that is not UTF-8.
pub fn utf8<'a>(bytes: &'a [u8], file: &Path) -> Result<&'a str, Error> {
    std::str::from_utf8(bytes).map_err(|e| {
        let good = e.valid_up_to();
        // The valid prefix is UTF-8 by construction.
        let prefix = std::str::from_utf8(&bytes[..good]).unwrap_or("");
        let file = Arc::new(file.to_path_buf());
        Error::at(
            Loc::at(&file, prefix, good),
            "the file is not valid UTF-8 text here",
        )
    })
}
