//! The client's `DIR/sn`: `SESSION,SERIAL`, the point to resume from, as in the original design.
//! It is also the lock (an exclusive `flock` held while fs_mirror runs) so one directory never
//! mirrors two servers, or one server twice. It is rewritten in place (one write, then the
//! length) so the lock stays on the same file, and synced before fs_mirror goes on.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use crate::error::{Error, Result, io};

pub struct Sn {
    file: Flock<File>,
    path: PathBuf,
}

impl Sn {
    /// Open and lock `DIR/sn`; refused when another fs_mirror holds it.
    pub fn lock(dir: &Path) -> Result<Sn> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let path = dir.join("sn");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io(&path))?;
        let file = Flock::lock(file, FlockArg::LockExclusiveNonblock)
            .map_err(|_| Error::Locked { path: path.clone() })?;
        Ok(Sn { file, path })
    }

    /// The session and serial to resume from, if any.
    pub fn read(&mut self) -> Result<Option<(String, u64)>> {
        let mut s = String::new();
        self.file.seek(SeekFrom::Start(0)).map_err(io(&self.path))?;
        self.file.read_to_string(&mut s).map_err(io(&self.path))?;
        let line = s.lines().next().unwrap_or("");
        Ok(line
            .split_once(',')
            .and_then(|(sess, serial)| Some((sess.trim().to_string(), serial.trim().parse().ok()?)))
            .filter(|(sess, _)| !sess.is_empty()))
    }

    /// Record the resume point (after what it covers is applied and synced).
    pub fn write(&mut self, session: &str, serial: u64) -> Result<()> {
        let line = format!("{session},{serial}\n");
        self.file
            .write_all_at(line.as_bytes(), 0)
            .map_err(io(&self.path))?;
        self.file
            .set_len(line.len() as u64)
            .map_err(io(&self.path))?;
        self.file.sync_data().map_err(io(&self.path))?;
        Ok(())
    }

    /// Forget the resume point (the server refused it).
    pub fn clear(&mut self) -> Result<()> {
        self.file.set_len(0).map_err(io(&self.path))?;
        self.file.flush().map_err(io(&self.path))?;
        Ok(())
    }
}

/// `DIR/.fs_mirror/applied`: `SESSION,SERIAL` of the last record carried out, written after
/// each one (no fsync: it only has to survive `kill -9`; the batch's `syncfs` makes it durable
/// with the files). A client resuming from `sn` skips the records up to it, so a rename carried
/// out before the kill is not carried out twice.
pub struct Applied {
    file: File,
    path: PathBuf,
    /// The length of the line last written: the serial is padded to a fixed width, so the
    /// file is cut (an `ftruncate`, not cheap per record) only when the session changes.
    len: u64,
}

impl Applied {
    pub fn open(dir: &Path) -> Result<Applied> {
        let d = dir.join(".fs_mirror");
        std::fs::create_dir_all(&d).map_err(io(&d))?;
        let path = d.join("applied");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io(&path))?;
        Ok(Applied {
            file,
            path,
            len: u64::MAX,
        })
    }

    pub fn read(&mut self) -> Result<Option<(String, u64)>> {
        let mut s = String::new();
        self.file.seek(SeekFrom::Start(0)).map_err(io(&self.path))?;
        self.file.read_to_string(&mut s).map_err(io(&self.path))?;
        Ok(s.lines()
            .next()
            .and_then(|l| l.split_once(','))
            .and_then(|(a, b)| Some((a.to_string(), b.trim().parse().ok()?))))
    }

    pub fn write(&mut self, session: &str, serial: u64) -> Result<()> {
        let line = format!("{session},{serial:<20}\n");
        self.file
            .write_all_at(line.as_bytes(), 0)
            .map_err(io(&self.path))?;
        if self.len != line.len() as u64 {
            self.len = line.len() as u64;
            self.file.set_len(self.len).map_err(io(&self.path))?;
        }
        Ok(())
    }
}
