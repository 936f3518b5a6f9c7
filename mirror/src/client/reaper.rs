//! Removing what the mirror no longer holds, off the applying thread. A replaced or deleted
//! file is first moved into the client's own directory (`DIR/.fs_mirror/`) — a rename, which
//! frees nothing — and a thread of its own unlinks it there. Freeing a file's blocks can be
//! slow: ext4 without a journal mounted with `discard` discards them synchronously at the
//! last unlink, and a file replaced by `rename(2)` is also flushed first (ext4's
//! `auto_da_alloc`); `perf` showed half of fs_mirror's time on a 40,000-file catch-up there.
//! A replacement is therefore a `RENAME_EXCHANGE` of the new file with the old one, which
//! does neither (plain `rename` where the file system does not know the flag). The thread
//! runs at the lowest priority and waits for a quiet moment (or a bound of time, paths or
//! bytes). What was handed over and not yet removed when the client stops is removed at its
//! next start.
//!
//! Better still, a replaced file is not removed at all but kept for reuse (the [`Pool`]): the
//! thread makes it ready (the client's own, mode 600, no extended attributes, nobody has it
//! open — a write lease, [`lease`] — one link, emptied), and a later file is written into it
//! ([`crate::client::writer::Temp`]). A file system without a journal skips the inodes freed in
//! the last minutes one by one when it looks for a free one (`recently_deleted`, up to 70% of a
//! catch-up's time in `perf`), and a reused inode needs no new one.

use std::collections::VecDeque;
use std::fs::{File, Permissions};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::fcntl::{AT_FDCWD, RenameFlags, renameat2};

use crate::client::{lease, xattr};
use crate::error::{Error, Result, io};

/// Cleared when the file system refused `RENAME_EXCHANGE` once (not every one knows it).
static EXCHANGE: AtomicBool = AtomicBool::new(true);

/// Removal waits until the mirror has been quiet this long (a catch-up of many files does not
/// pay for the old ones while it runs)...
const QUIET: Duration = Duration::from_millis(200);
/// ...but never longer than this for any one path...
const AGE: Duration = Duration::from_secs(10);
/// ...nor while more than this many paths, or bytes, wait.
const MAX_PATHS: usize = 100_000;
const MAX_BYTES: u64 = 1 << 30;

/// Replaced files kept for reuse, at most this many (emptied, each costs an inode).
const POOL_FILES: usize = 65_536;

/// Replaced files (in the client's own directory) made ready to be written again, and how
/// many are being made ready.
#[derive(Default)]
struct Pool {
    files: Vec<PathBuf>,
    preparing: usize,
}

/// What the thread is handed: a path to remove, or a replaced file to make ready for reuse.
enum Task {
    Remove(PathBuf, u64),
    Prepare(PathBuf, u64),
}

/// The thread that removes what was handed over, and the pool of files kept for reuse;
/// cloned freely (one of each for all).
#[derive(Clone)]
pub struct Reaper {
    tasks: Sender<Task>,
    pool: Arc<Mutex<Pool>>,
}

impl Reaper {
    pub fn start() -> Result<Reaper> {
        let (tasks, rx) = channel::<Task>();
        let pool: Arc<Mutex<Pool>> = Arc::default();
        let ready = pool.clone();
        std::thread::Builder::new()
            .name("fs_mirror-reap".into())
            .spawn(move || work(&rx, &ready))
            .map_err(|e| Error::Internal(format!("cannot start a thread: {e}")))?;
        Ok(Reaper { tasks, pool })
    }

    /// Keep the replaced file at `p` (`bytes` long, one link) for reuse once the thread has
    /// made it ready, or remove it later when enough are kept.
    fn keep(&self, p: PathBuf, bytes: u64) {
        {
            let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
            if pool.files.len() + pool.preparing < POOL_FILES {
                pool.preparing += 1;
                drop(pool);
                if let Err(e) = self.tasks.send(Task::Prepare(p, bytes)) {
                    let Task::Prepare(p, _) = e.0 else { return };
                    let _ = remove(&p);
                }
                return;
            }
        }
        self.reap(p, bytes);
    }

    /// A kept file, made ready, to write a new file into: open for writing, empty, the
    /// client's own, mode 600; its path. `None` when none is ready.
    pub fn reuse(&self) -> Option<(File, PathBuf)> {
        for _ in 0..4 {
            let p = self
                .pool
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .files
                .pop()?;
            let f = File::options()
                .write(true)
                .custom_flags(nix::libc::O_NOFOLLOW)
                .open(&p);
            let Ok(f) = f else {
                // Gone (a retry cleared the directory).
                continue;
            };
            // As it was made ready (only root could have touched it since), and still
            // nobody else's.
            let me = nix::unistd::geteuid().as_raw();
            let ready = f.metadata().is_ok_and(|m| {
                m.is_file()
                    && m.nlink() == 1
                    && m.len() == 0
                    && m.uid() == me
                    && m.mode() & 0o7777 == 0o600
            });
            if ready && lease::alone(&f) {
                return Some((f, p));
            }
            drop(f);
            self.reap(p, 0);
        }
        None
    }

    /// Remove `p` (a file of `bytes`, or a whole directory, in the client's own directory)
    /// later.
    pub fn reap(&self, p: PathBuf, bytes: u64) {
        if let Err(e) = self.tasks.send(Task::Remove(p, bytes)) {
            // The thread is gone (it never stops on its own): remove it here instead.
            if let Task::Remove(p, _) = e.0 {
                let _ = remove(&p);
            }
        }
    }

    /// What an earlier run left in the client's own directory `top` (all but `keep`): moved
    /// into one directory there at once and removed later, so a restart does not wait for
    /// tens of thousands of unlinks (the files kept for reuse, say) before it goes on.
    pub fn clear_later(&self, top: &Path, keep: &str) -> Result<()> {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let aside = top.join(format!("old.{}.{stamp}", std::process::id()));
        let mut moved = false;
        for e in std::fs::read_dir(top).map_err(io(top))?.flatten() {
            if e.file_name() == keep {
                continue;
            }
            if !moved {
                std::fs::create_dir(&aside).map_err(io(&aside))?;
                moved = true;
            }
            let to = aside.join(e.file_name());
            std::fs::rename(e.path(), &to).map_err(io(&to))?;
        }
        if moved {
            self.reap(aside, 0);
        }
        Ok(())
    }

    /// Put the new file `tmp` at `target`, replacing what is there, which ends at `tmp` and
    /// is reaped. Whether a directory was replaced (caches of directories are stale).
    ///
    /// `new`: the target is most likely not there (an INIT): tried first without replacing,
    /// one call for the common case.
    pub fn put_in_place(&self, tmp: &Path, target: &Path, new: bool) -> Result<bool> {
        if new {
            match renameat2(
                AT_FDCWD,
                tmp,
                AT_FDCWD,
                target,
                RenameFlags::RENAME_NOREPLACE,
            ) {
                Ok(()) => return Ok(false),
                // Something is there (or the flag is unknown): replaced as below.
                Err(nix::errno::Errno::EEXIST | nix::errno::Errno::EINVAL) => {}
                Err(e) => return Err(io(target)(e.into())),
            }
        }
        if EXCHANGE.load(Ordering::Relaxed) {
            match renameat2(
                AT_FDCWD,
                tmp,
                AT_FDCWD,
                target,
                RenameFlags::RENAME_EXCHANGE,
            ) {
                Ok(()) => {
                    let old = std::fs::symlink_metadata(tmp).ok();
                    let was_dir = old.as_ref().is_some_and(|m| m.is_dir());
                    match old {
                        Some(m) if m.is_file() && m.nlink() == 1 => {
                            self.keep(tmp.to_path_buf(), m.len())
                        }
                        m => self.reap(tmp.to_path_buf(), m.map_or(0, |m| m.len())),
                    }
                    return Ok(was_dir);
                }
                // Nothing there to replace.
                Err(nix::errno::Errno::ENOENT) => {}
                Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOSYS) => {
                    EXCHANGE.store(false, Ordering::Relaxed);
                }
                Err(e) => return Err(io(target)(e.into())),
            }
        }
        match std::fs::rename(tmp, target) {
            Err(_) if std::fs::symlink_metadata(target).is_ok_and(|m| m.is_dir()) => {
                std::fs::remove_dir_all(target).map_err(io(target))?;
                std::fs::rename(tmp, target).map_err(io(target))?;
                Ok(true)
            }
            r => r.map(|()| false).map_err(io(target)),
        }
    }

    /// Take `target` out of the mirror now (renamed to `free`, a free name in the client's
    /// own directory) and remove it later. Nothing there is no error.
    pub fn retire(&self, target: &Path, free: &Path) -> Result<()> {
        let bytes = std::fs::symlink_metadata(target).map_or(0, |m| m.len());
        match std::fs::rename(target, free) {
            Ok(()) => {
                self.reap(free.to_path_buf(), bytes);
                Ok(())
            }
            Err(e) if absent(&e) => Ok(()),
            // Not movable (another file system mounted there, say): removed in place.
            Err(_) => match remove(target) {
                Err(e) if absent(&e) => Ok(()),
                r => r.map_err(io(target)),
            },
        }
    }
}

/// Make a kept file as good as a new one (on the reaper thread), or say it cannot be. In this order: the client's
/// owner and mode 600 first (whoever held a handle of it — an `O_PATH` descriptor, a path
/// through `/proc` — can no longer open it), then no extended attributes (a POSIX ACL survives
/// chown and chmod), then nobody has it open or mapped (a write lease) and it has no other link,
/// and last emptied (pages someone spliced into a pipe stay theirs: the new content goes to
/// new pages).
fn fresh(f: &File) -> bool {
    let me = (nix::unistd::geteuid(), nix::unistd::getegid());
    if nix::unistd::fchown(f, Some(me.0), Some(me.1)).is_err()
        || f.set_permissions(Permissions::from_mode(0o600)).is_err()
    {
        return false;
    }
    if !xattr::none(f) || !lease::alone(f) {
        return false;
    }
    f.metadata().is_ok_and(|m| m.is_file() && m.nlink() == 1) && f.set_len(0).is_ok()
}

/// The thread: make kept files ready for reuse at once; collect the paths to remove and
/// remove them when the mirror is quiet, when they waited too long, or when too much waits.
/// Both free blocks (slow with `discard`), at the lowest priority, off the applying threads.
fn work(rx: &Receiver<Task>, pool: &Mutex<Pool>) {
    crate::client::nice::lowest();
    let mut waiting: VecDeque<(PathBuf, u64, Instant)> = VecDeque::new();
    let mut bytes = 0u64;
    loop {
        let wait = match waiting.front() {
            None => AGE,
            Some((_, _, at)) => QUIET.min(AGE.saturating_sub(at.elapsed())),
        };
        match rx.recv_timeout(wait) {
            Ok(Task::Prepare(p, n)) => {
                let ready = File::options()
                    .write(true)
                    .custom_flags(nix::libc::O_NOFOLLOW)
                    .open(&p)
                    .is_ok_and(|f| fresh(&f));
                let mut pool = pool.lock().unwrap_or_else(|e| e.into_inner());
                pool.preparing -= 1;
                if ready {
                    pool.files.push(p);
                } else {
                    bytes += n;
                    waiting.push_back((p, n, Instant::now()));
                }
            }
            Ok(Task::Remove(p, n)) => {
                bytes += n;
                waiting.push_back((p, n, Instant::now()));
            }
            Err(RecvTimeoutError::Timeout) => {
                // Quiet: everything goes.
                for (p, _, _) in waiting.drain(..) {
                    let _ = remove(&p);
                }
                bytes = 0;
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => {
                for (p, _, _) in waiting.drain(..) {
                    let _ = remove(&p);
                }
                return;
            }
        }
        // Not quiet: the oldest go when they waited too long or too much waits.
        while let Some((p, n, at)) = waiting.front() {
            if at.elapsed() < AGE && waiting.len() <= MAX_PATHS && bytes <= MAX_BYTES {
                break;
            }
            // Gone already (a retry cleared the directory): nothing to do.
            let _ = remove(p);
            bytes -= n;
            waiting.pop_front();
        }
    }
}

/// Whether an error says the path is not there (a missing or non-directory ancestor included).
pub fn absent(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::NotFound || e.raw_os_error() == Some(nix::libc::ENOTDIR)
}

/// Remove a file or a whole directory.
pub fn remove(p: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(p),
        Ok(_) => std::fs::remove_file(p),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wait_gone(p: &Path) {
        let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while p.exists() {
            assert!(
                std::time::Instant::now() < end,
                "{} not reaped",
                p.display()
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    #[test]
    fn what_an_earlier_run_left_is_set_aside_at_once_and_removed_later() {
        let d = tempfile::tempdir().unwrap();
        let top = d.path();
        std::fs::create_dir_all(top.join("n1")).unwrap();
        for i in 0..100 {
            std::fs::write(top.join(format!("n1/t{i}")), b"kept").unwrap();
        }
        std::fs::write(top.join("applied"), b"s,1").unwrap();
        std::fs::write(top.join("base1.2"), b"x").unwrap();
        let r = Reaper::start().unwrap();
        r.clear_later(top, "applied").unwrap();
        let names = || -> Vec<String> {
            let mut v: Vec<String> = std::fs::read_dir(top)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        };
        let now = names();
        assert_eq!(now.len(), 2, "{now:?}");
        assert!(now[0] == "applied" && now[1].starts_with("old."), "{now:?}");
        wait_gone(&top.join(&now[1]));
        assert_eq!(names(), ["applied"]);
    }

    #[test]
    fn a_replaced_file_is_kept_for_reuse_and_a_directory_removed() {
        let d = tempfile::tempdir().unwrap();
        let r = Reaper::start().unwrap();
        let (tmp, target) = (d.path().join("t1"), d.path().join("f"));
        std::fs::write(&target, b"the old content").unwrap();
        std::fs::set_permissions(&target, Permissions::from_mode(0o4755)).unwrap();
        std::fs::write(&tmp, b"new").unwrap();
        assert!(!r.put_in_place(&tmp, &target, false).unwrap());
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
        // The old file waits at t1 to be written again: made ready on the thread (the
        // client's own, mode 600, emptied).
        let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let (mut f, at) = loop {
            if let Some(got) = r.reuse() {
                break got;
            }
            assert!(
                std::time::Instant::now() < end,
                "the replaced file is not kept"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        assert_eq!(at, tmp);
        let m = f.metadata().unwrap();
        assert_eq!(m.mode() & 0o7777, 0o600, "a former mode stays");
        assert_eq!(m.len(), 0, "the former content stays");
        use std::io::Write;
        f.write_all(b"again").unwrap();
        assert!(r.reuse().is_none(), "taken once");
        // A replaced file someone still reads is never made ready: it goes once they are done.
        std::fs::write(d.path().join("t2"), b"y").unwrap();
        let reader = File::open(&target).unwrap();
        r.put_in_place(&d.path().join("t2"), &target, false)
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300));
        assert!(r.reuse().is_none());
        drop(reader);
        wait_gone(&d.path().join("t2"));
        // A directory in the way is replaced too, and said; it goes.
        std::fs::create_dir_all(d.path().join("dir/sub")).unwrap();
        std::fs::write(d.path().join("t3"), b"file now").unwrap();
        assert!(
            r.put_in_place(&d.path().join("t3"), &d.path().join("dir"), true)
                .unwrap()
        );
        assert_eq!(std::fs::read(d.path().join("dir")).unwrap(), b"file now");
        wait_gone(&d.path().join("t3"));
        // Nothing there: a plain rename. Retired paths go; a missing one is no error.
        std::fs::write(d.path().join("t4"), b"first").unwrap();
        assert!(
            !r.put_in_place(&d.path().join("t4"), &d.path().join("g"), true)
                .unwrap()
        );
        r.retire(&d.path().join("g"), &d.path().join("t5")).unwrap();
        r.retire(&d.path().join("missing"), &d.path().join("t6"))
            .unwrap();
        assert!(!d.path().join("g").exists());
        wait_gone(&d.path().join("t5"));
    }
}
