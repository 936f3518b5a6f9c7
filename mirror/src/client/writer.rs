//! Writing a received file into the mirror — a [`Temp`] file given its content, owner, mode
//! and mtime, named under `DIR/.fs_mirror/`, then put in place by the [`Reaper`] — and, during `INIT`, doing that on
//! a thread of its own: the snapshot's records name each path once, parents first, so its
//! files may land in any order once their directories exist, and the applying thread goes on
//! receiving the next files meanwhile (the network, the checksums and the file system work on
//! two cores at once, as rsync's receiver and generator do). Everything handed over is in place
//! when [`Writer::finish`] returns.

use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use nix::fcntl::{AT_FDCWD, AtFlags};
use nix::unistd::linkat;

use crate::client::reaper::Reaper;
use crate::error::{Error, Result, io};
use crate::record::Meta;

/// Files of up to this size go to the writer thread (their content waits in memory).
pub const SMALL: u64 = 256 * 1024;
/// Files waiting for the writer thread, at most.
const QUEUE: usize = 256;

/// Whether this process may give files their owners (root).
#[derive(Clone, Copy)]
pub struct Owner {
    pub root: bool,
}

impl Owner {
    /// Give `f` the owner `m` names (when root, and when it has not got it already: a new
    /// file's group is its directory's when that is set-group-ID).
    pub fn apply(&self, f: &File, tmp: &Path, m: &Meta) -> Result<()> {
        if !self.root {
            return Ok(());
        }
        let now = f.metadata().map_err(io(tmp))?;
        if (m.uid, m.gid) != (now.uid(), now.gid()) {
            std::os::unix::fs::fchown(f, Some(m.uid), Some(m.gid)).map_err(io(tmp))?;
        }
        Ok(())
    }
}

/// A temp file for content under its name: private (mode 600) until its owner and mode are
/// set.
pub fn create(tmp: &Path) -> Result<File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(tmp)
        .map_err(io(tmp))
}

/// Cleared when a file system refused `O_TMPFILE` (not every one knows it).
static UNNAMED: AtomicBool = AtomicBool::new(true);

/// A file being written for the mirror, private (mode 600) until finished. It is made
/// unnamed (`O_TMPFILE`) in a directory of [`crate::client::spread`], and named there only once
/// complete: a killed client leaves nothing half-written. Where the file system has no
/// `O_TMPFILE`, the file is made under its name from the start.
pub struct Temp {
    pub file: File,
    name: PathBuf,
    unnamed: bool,
    /// Named and handed over: it is the caller's now.
    placed: bool,
}

impl Temp {
    /// A new file: a kept one written again where there is one, else made in the directory
    /// of `name`, and named `name` when complete.
    ///
    /// `new`: a file of an INIT, most likely not replacing anything: made under its name at
    /// once (one call; a killed client's leftovers go at its next start).
    pub fn create(name: &Path, reaper: &Reaper, new: bool) -> Result<Temp> {
        if new {
            return Ok(Temp {
                file: create(name)?,
                name: name.to_path_buf(),
                unnamed: false,
                placed: false,
            });
        }
        if let Some((file, at)) = reaper.reuse() {
            return Ok(Temp {
                file,
                name: at,
                unnamed: false,
                placed: false,
            });
        }
        let dir = name.parent().unwrap_or(Path::new("/"));
        if UNNAMED.load(Ordering::Relaxed) {
            let made = std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(nix::libc::O_TMPFILE)
                .mode(0o600)
                .open(dir);
            match made {
                Ok(file) => {
                    return Ok(Temp {
                        file,
                        name: name.to_path_buf(),
                        unnamed: true,
                        placed: false,
                    });
                }
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(nix::libc::EOPNOTSUPP | nix::libc::EISDIR | nix::libc::EINVAL)
                    ) =>
                {
                    UNNAMED.store(false, Ordering::Relaxed);
                }
                Err(e) => return Err(io(dir)(e)),
            }
        }
        Ok(Temp {
            file: create(name)?,
            name: name.to_path_buf(),
            unnamed: false,
            placed: false,
        })
    }

    /// The content is all written: the file as the record says (see [`finish_file`]).
    pub fn finish(&mut self, m: &Meta, owner: &Owner) -> Result<()> {
        finish_file(&self.file, &self.name, m, owner)
    }

    /// Its content is complete: give it its name; the name.
    pub fn named(mut self) -> Result<PathBuf> {
        if self.unnamed {
            let fd = format!("/proc/self/fd/{}", self.file.as_raw_fd());
            let through_proc = linkat(
                AT_FDCWD,
                fd.as_str(),
                AT_FDCWD,
                &self.name,
                AtFlags::AT_SYMLINK_FOLLOW,
            );
            // Without /proc (a chroot), root names it by its descriptor; failing that, the
            // next files are made under their names from the start.
            let named = through_proc
                .or_else(|_| linkat(&self.file, "", AT_FDCWD, &self.name, AtFlags::AT_EMPTY_PATH));
            if let Err(e) = named {
                UNNAMED.store(false, Ordering::Relaxed);
                return Err(io(&self.name)(e.into()));
            }
        }
        self.placed = true;
        Ok(std::mem::take(&mut self.name))
    }
}

impl Drop for Temp {
    /// A file not put in place (not wanted, or its transfer failed) goes.
    fn drop(&mut self) {
        if !self.unnamed && !self.placed {
            let _ = std::fs::remove_file(&self.name);
        }
    }
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

/// A file to write: its content is all here.
pub struct Job {
    /// Part of an INIT: most likely nothing is replaced.
    pub new: bool,
    pub tmp: PathBuf,
    pub target: PathBuf,
    pub content: Vec<u8>,
    pub meta: Meta,
}

impl Job {
    fn run(self, owner: &Owner, reaper: &Reaper) -> Result<bool> {
        let mut t = Temp::create(&self.tmp, reaper, self.new)?;
        t.file.write_all(&self.content).map_err(io(&self.tmp))?;
        t.finish(&self.meta, owner)?;
        let tmp = t.named()?;
        reaper.put_in_place(&tmp, &self.target, self.new)
    }
}

/// What the writer thread is handed: a file, or a question (is everything before in place?).
enum Msg {
    Job(Job),
    Wait(SyncSender<bool>),
}

/// The writer thread (during an `INIT`, and for runs of small files in the log).
pub struct Writer {
    jobs: Option<SyncSender<Msg>>,
    thread: Option<JoinHandle<Result<bool>>>,
}

impl Writer {
    pub fn start(owner: Owner, reaper: Reaper) -> Result<Writer> {
        let (jobs, rx): (SyncSender<Msg>, Receiver<Msg>) = sync_channel(QUEUE);
        let thread = std::thread::Builder::new()
            .name("fs_mirror-write".into())
            .spawn(move || -> Result<bool> {
                let mut removed_dir = false;
                for msg in rx {
                    match msg {
                        Msg::Job(job) => removed_dir |= job.run(&owner, &reaper)?,
                        Msg::Wait(answer) => {
                            let _ = answer.send(std::mem::take(&mut removed_dir));
                        }
                    }
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
        let sent = self
            .jobs
            .as_ref()
            .is_some_and(|j| j.send(Msg::Job(job)).is_ok());
        if sent {
            return Ok(());
        }
        Err(self.stopped())
    }

    /// Wait until every file handed over so far is in place (the thread goes on); whether a
    /// directory was removed on the way, or the first error.
    pub fn wait(&mut self) -> Result<bool> {
        let (tx, rx) = sync_channel(1);
        let asked = self
            .jobs
            .as_ref()
            .is_some_and(|j| j.send(Msg::Wait(tx)).is_ok());
        match rx.recv() {
            Ok(removed_dir) if asked => Ok(removed_dir),
            _ => Err(self.stopped()),
        }
    }

    /// The thread stopped: its error says why.
    fn stopped(&mut self) -> Error {
        self.finish()
            .err()
            .unwrap_or_else(|| Error::Internal("the file writer thread stopped".into()))
    }

    /// Wait until every file handed over is in place and end the thread; whether a
    /// directory was removed on the way, or the first error.
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
