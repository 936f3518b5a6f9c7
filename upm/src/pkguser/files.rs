//! The account files of a target root — `etc/passwd`, `etc/group`, `etc/shadow`,
//! `etc/gshadow` — read and written by upm itself, so it works before shadow's `useradd` exists
//! (early LFS chapter 8) and against any `--root`. Lines upm does not understand (comments,
//! NIS `+` entries) are kept verbatim. Writes are atomic, under `etc/.pwd.lock` taken the way
//! `lckpwdf(3)` takes it (an fcntl write lock), so shadow's tools and upm exclude each other.
//! A rewritten file keeps its owner, group and mode; a new one gets the conventional ones
//! ([`Table::write`] is told which).

use std::fs::{self, OpenOptions};
use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use crate::fsutil::{NewFile, write_atomic_new};

/// One line of a colon-separated account file: parsed fields, or kept as it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    Fields(Vec<String>),
    Other(String),
}

/// An account file in memory.
#[derive(Debug, Clone)]
pub struct Table {
    pub path: PathBuf,
    pub lines: Vec<Line>,
    /// Whether the file existed (absent shadow files are not created).
    pub exists: bool,
}

impl Table {
    pub fn read(path: &Path, nfields: usize) -> io::Result<Table> {
        let text = match fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok(Table {
                    path: path.to_path_buf(),
                    lines: Vec::new(),
                    exists: false,
                });
            }
            Err(e) => return Err(e),
        };
        let lines = text
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                if l.starts_with('#')
                    || l.starts_with('+')
                    || l.starts_with('-')
                    || f.len() != nfields
                {
                    Line::Other(l.to_string())
                } else {
                    Line::Fields(f.into_iter().map(str::to_string).collect())
                }
            })
            .collect();
        Ok(Table {
            path: path.to_path_buf(),
            lines,
            exists: true,
        })
    }

    pub fn records(&self) -> impl Iterator<Item = &Vec<String>> {
        self.lines.iter().filter_map(|l| match l {
            Line::Fields(f) => Some(f),
            Line::Other(_) => None,
        })
    }

    pub fn records_mut(&mut self) -> impl Iterator<Item = &mut Vec<String>> {
        self.lines.iter_mut().filter_map(|l| match l {
            Line::Fields(f) => Some(f),
            Line::Other(_) => None,
        })
    }

    pub fn find(&self, name: &str) -> Option<&Vec<String>> {
        self.records().find(|f| f[0] == name)
    }

    pub fn find_mut(&mut self, name: &str) -> Option<&mut Vec<String>> {
        self.records_mut().find(|f| f[0] == name)
    }

    /// The numeric ids in field `idx` of every record.
    pub fn ids(&self, idx: usize) -> impl Iterator<Item = u32> + '_ {
        self.records().filter_map(move |f| f.get(idx)?.parse().ok())
    }

    pub fn push(&mut self, fields: Vec<String>) {
        self.lines.push(Line::Fields(fields));
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        for l in &self.lines {
            match l {
                Line::Fields(f) => out.push_str(&f.join(":")),
                Line::Other(s) => out.push_str(s),
            }
            out.push('\n');
        }
        out
    }

    /// Write the file atomically, keeping its owner, group and mode. A file that did not exist
    /// is created, with `new`'s, only if `new` is given.
    pub fn write(&self, new: Option<NewFile>) -> io::Result<()> {
        match new {
            None if !self.exists => Ok(()),
            // Only used when the file is new: an existing one keeps what it has.
            _ => write_atomic_new(
                &self.path,
                self.render().as_bytes(),
                new.unwrap_or(NewFile::root(0o600)),
            ),
        }
    }
}

/// The lock on a root's account files, held until dropped.
pub struct PwdLock {
    _file: fs::File,
}

/// Take `etc/.pwd.lock` in `root`, waiting for another holder to finish.
pub fn lock(root: &Path) -> io::Result<PwdLock> {
    let etc = root.join("etc");
    fs::create_dir_all(&etc)?;
    let path = etc.join(".pwd.lock");
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)?;
    let fl = nix::libc::flock {
        l_type: nix::libc::F_WRLCK as i16,
        l_whence: nix::libc::SEEK_SET as i16,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    };
    nix::fcntl::fcntl(file.as_fd(), nix::fcntl::FcntlArg::F_SETLKW(&fl))
        .map_err(io::Error::from)?;
    Ok(PwdLock { _file: file })
}

impl Table {
    /// Drop the first record for which `pred` holds; whether there was one.
    pub fn remove_first(&mut self, pred: impl Fn(&[String]) -> bool) -> bool {
        let at = self
            .lines
            .iter()
            .position(|l| matches!(l, Line::Fields(f) if pred(f)));
        at.map(|i| self.lines.remove(i)).is_some()
    }

    /// Drop the last record named `name` (the one upm appended, if the file has two).
    pub fn remove_last(&mut self, name: &str) -> bool {
        let at = self
            .lines
            .iter()
            .rposition(|l| matches!(l, Line::Fields(f) if f[0] == name));
        at.map(|i| self.lines.remove(i)).is_some()
    }
}
