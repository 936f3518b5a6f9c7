//! Whether anyone else has a file open: a write lease (`fcntl(F_SETLEASE, F_WRLCK)`) is granted
//! only when no other descriptor or mapping of the file exists, anywhere on the system
//! (`fcntl(2)`: leases). The lease is given back at once: the question is all we want.

use std::fs::File;
use std::os::fd::AsRawFd;

/// Whether `f` (open for writing) is open nowhere else. Where leases are refused for another
/// reason (no CAP_LEASE and not the owner, a file system without them), the answer is no.
pub fn alone(f: &File) -> bool {
    // A lease holder is sent SIGIO when someone opens the file before the lease is given back,
    // and SIGIO ends a process by default.
    static IGNORE_SIGIO: std::sync::Once = std::sync::Once::new();
    IGNORE_SIGIO.call_once(|| {
        use nix::sys::signal::{SigHandler, Signal, signal};
        // SAFETY: SIG_IGN installs no handler code; fs_mirror uses SIGIO for nothing else.
        let _ = unsafe { signal(Signal::SIGIO, SigHandler::SigIgn) };
    });
    let fd = f.as_raw_fd();
    // SAFETY: F_SETLEASE takes an int argument and touches no memory; `fd` is open for the
    // duration of both calls.
    unsafe {
        if nix::libc::fcntl(fd, nix::libc::F_SETLEASE, nix::libc::F_WRLCK) != 0 {
            return false;
        }
        nix::libc::fcntl(fd, nix::libc::F_SETLEASE, nix::libc::F_UNLCK);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_open_elsewhere_is_not_alone() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        std::fs::write(&p, b"x").unwrap();
        let w = File::options().write(true).open(&p).unwrap();
        assert!(alone(&w));
        let r = File::open(&p).unwrap();
        assert!(!alone(&w), "a reader has it open");
        drop(r);
        assert!(alone(&w));
    }
}
