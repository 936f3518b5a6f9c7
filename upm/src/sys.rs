//! Thin safe wrappers over the few system calls no crate in our dependency set offers.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Read an extended attribute of a path without following symlinks; `Ok(None)` when absent.
pub fn lgetxattr(path: &Path, name: &str) -> io::Result<Option<Vec<u8>>> {
    let cpath = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))?;
    let cname = CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "name contains NUL"))?;
    let mut buf = vec![0u8; 256];
    // SAFETY: both strings are NUL-terminated and live across the call; `buf` is valid for
    // `buf.len()` bytes of writes and the kernel writes at most that many.
    let n = unsafe {
        nix::libc::lgetxattr(
            cpath.as_ptr(),
            cname.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        let err = io::Error::last_os_error();
        return match err.raw_os_error() {
            Some(nix::libc::ENODATA) | Some(nix::libc::ENOTSUP) => Ok(None),
            _ => Err(err),
        };
    }
    buf.truncate(n as usize);
    Ok(Some(buf))
}

/// Kill (SIGKILL) every process running as `uid` whose root directory is `root` (the same
/// directory by device and inode, whatever mount namespace it is in), until none is left.
/// Zombies (already dead, waiting to be reaped) have no root to read and are skipped.
pub fn kill_user_processes(root: &Path, uid: u32) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(root)?;
    let ours = (m.dev(), m.ino());
    let me = std::process::id();
    for _ in 0..50 {
        let mut found = 0;
        for entry in std::fs::read_dir("/proc")?.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<i32>().ok())
            else {
                continue;
            };
            if pid as u32 == me || !entry.metadata().is_ok_and(|m| m.uid() == uid) {
                continue;
            }
            let theirs = std::fs::metadata(entry.path().join("root")).map(|m| (m.dev(), m.ino()));
            if theirs.ok() != Some(ours) {
                continue;
            }
            found += 1;
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        if found == 0 {
            return Ok(());
        }
        std::thread::yield_now();
    }
    Ok(())
}

/// SIGINT, SIGQUIT and SIGTTOU ignored while this lives, then restored: upm waiting on an
/// interactive shell that owns the terminal (`upm record`) is neither stopped by a Ctrl-C
/// meant for the shell nor by writing to the terminal from the background.
pub struct TerminalSignals {
    old: Vec<(nix::sys::signal::Signal, nix::sys::signal::SigAction)>,
}

impl TerminalSignals {
    /// Ignore them now. Call after starting the shell: an ignored signal stays ignored in a
    /// child across exec.
    pub fn ignore() -> TerminalSignals {
        use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
        let ign = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
        let mut old = Vec::new();
        for s in [Signal::SIGINT, Signal::SIGQUIT, Signal::SIGTTOU] {
            // SAFETY: SIG_IGN installs no handler, so no code runs in signal context.
            if let Ok(prev) = unsafe { sigaction(s, &ign) } {
                old.push((s, prev));
            }
        }
        TerminalSignals { old }
    }
}

impl Drop for TerminalSignals {
    fn drop(&mut self) {
        for (s, prev) in &self.old {
            // SAFETY: puts back the disposition that was there before (default, ignore, or a
            // handler installed by this program, which stays valid for its whole life).
            let _ = unsafe { nix::sys::signal::sigaction(*s, prev) };
        }
    }
}

/// Swap two paths atomically (`renameat2(RENAME_EXCHANGE)`): each ends up where the other
/// was, with no moment where either is missing.
pub fn exchange(a: &Path, b: &Path) -> io::Result<()> {
    use nix::fcntl::{AT_FDCWD, RenameFlags, renameat2};
    renameat2(AT_FDCWD, a, AT_FDCWD, b, RenameFlags::RENAME_EXCHANGE).map_err(io::Error::from)
}
