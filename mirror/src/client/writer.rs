//! Writing a received file into the mirror — a temp file under `DIR/.fs_mirror/` given its
//! content, owner, mode and mtime, then renamed into place — and, during `INIT`, doing that on
//! a thread of its own: the snapshot's records name each path once, parents first, so its
//! files may land in any order once their directories exist, and the applying thread goes on
//! receiving the next files meanwhile (the network, the checksums and the file system work on
//! two cores at once, as rsync's receiver and generator do). Everything handed over is in place
//! when [`Writer::finish`] returns.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use crate::error::{Error, Result, io};
use crate::record::Meta;

/// Files of up to this size go to the writer thread (their content waits in memory).
pub const SMALL: u64 = 256 * 1024;
/// Files waiting for the writer thread, at most.
const QUEUE: usize = 256;

/// Who owns what a new file of this process gets, and whether it may change that.
#[derive(Clone, Copy)]
pub struct Owner {
    pub root: bool,
    /// The owner a file made in `.fs_mirror` has from the start.
    pub uid: u32,
    pub gid: u32,
}

impl Owner {
    /// Give `f` the owner `m` names (when root, and when it has not got it already).
    pub fn apply(&self, f: &File, tmp: &Path, m: &Meta) -> Result<()> {
        if self.root && (m.uid, m.gid) != (self.uid, self.gid) {
            std::os::unix::fs::fchown(f, Some(m.uid), Some(m.gid)).map_err(io(tmp))?;
        }
        Ok(())
    }
}

/// A temp file for content: private (mode 600) until its owner and mode are set.
pub fn create(tmp: &Path) -> Result<File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(tmp)
        .map_err(io(tmp))
}

/// Owner, then mode (a chown clears set-id bits), then mtime: the file as the record says.
pub fn finish_file(f: &File, tmp: &Path, m: &Meta, owner: &Owner) -> Result<()> {
    owner.apply(f, tmp, m)?;
    f.set_permissions(std::fs::Permissions::from_mode(m.mode))
        .map_err(io(tmp))?;
    set_mtime(f, m.mtime_ns).map_err(io(tmp))
}

fn set_mtime(f: &File, ns: i64) -> std::io::Result<()> {
    use nix::sys::stat::futimens;
    use nix::sys::time::TimeSpec;
    let mtime = TimeSpec::new(ns.div_euclid(1_000_000_000), ns.rem_euclid(1_000_000_000));
    futimens(f, &TimeSpec::UTIME_OMIT, &mtime).map_err(std::io::Error::from)
}

/// Rename `tmp` to `target`, replacing what is there; a directory in the way (overtaken: the
/// path is a file now) goes. Whether a directory was removed (caches of directories are stale).
pub fn put_in_place(tmp: &Path, target: &Path) -> Result<bool> {
    match std::fs::rename(tmp, target) {
        Err(_) if std::fs::symlink_metadata(target).is_ok_and(|m| m.is_dir()) => {
            std::fs::remove_dir_all(target).map_err(io(target))?;
            std::fs::rename(tmp, target).map_err(io(target))?;
            Ok(true)
        }
        r => r.map(|()| false).map_err(io(target)),
    }
}

/// A file to write: its content is all here.
pub struct Job {
    pub tmp: PathBuf,
    pub target: PathBuf,
    pub content: Vec<u8>,
    pub meta: Meta,
}

impl Job {
    fn run(self, owner: &Owner) -> Result<bool> {
        let mut f = create(&self.tmp)?;
        f.write_all(&self.content).map_err(io(&self.tmp))?;
        finish_file(&f, &self.tmp, &self.meta, owner)?;
        drop(f);
        put_in_place(&self.tmp, &self.target)
    }
}

/// The writer thread of one `INIT`.
pub struct Writer {
    jobs: Option<SyncSender<Job>>,
    thread: Option<JoinHandle<Result<bool>>>,
}

impl Writer {
    pub fn start(owner: Owner) -> Result<Writer> {
        let (jobs, rx): (SyncSender<Job>, Receiver<Job>) = sync_channel(QUEUE);
        let thread = std::thread::Builder::new()
            .name("fs_mirror-write".into())
            .spawn(move || -> Result<bool> {
                let mut removed_dir = false;
                for job in rx {
                    removed_dir |= job.run(&owner)?;
                }
                Ok(removed_dir)
            })
            .map_err(|e| Error::Internal(format!("cannot start a thread: {e}")))?;
        Ok(Writer {
            jobs: Some(jobs),
            thread: Some(thread),
        })
    }

    /// Hand a file over; its directory exists. The thread's error, if it stopped on one.
    pub fn write(&mut self, job: Job) -> Result<()> {
        let sent = self.jobs.as_ref().is_some_and(|j| j.send(job).is_ok());
        if sent {
            return Ok(());
        }
        // The thread stopped: its error says why.
        Err(self
            .finish()
            .err()
            .unwrap_or_else(|| Error::Internal("the file writer thread stopped".into())))
    }

    /// Wait until every file handed over is in place; whether a directory was removed on
    /// the way, or the first error.
    pub fn finish(&mut self) -> Result<bool> {
        self.jobs.take();
        match self.thread.take().map(JoinHandle::join) {
            None => Ok(false),
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(Error::Internal("the file writer thread panicked".into())),
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}
