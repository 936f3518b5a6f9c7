//! Writing records: each with one `write(2)` to the log upm handed down. The descriptor comes
//! from `UPM_SHIM_FD` (`FD:DEV:INO`) and is used only while it is still that file — a build
//! system may close inherited descriptors and reuse the number — else the log is opened again
//! by its path, `UPM_SHIM_LOG` (close-on-exec, moved above the low numbers a program may expect
//! to get back from its own `open`). Checked with one `fstat` per record; nothing allocated.

use std::sync::atomic::{AtomicI32, AtomicU8, AtomicU64, Ordering};

use libc::c_int;
use upm_rootstep::env;

use crate::real;

/// A record never exceeds this (two paths of [`crate::resolve::MAX`], escaped, fit in most
/// cases; longer records are dropped).
pub const RECORD_MAX: usize = 12 * 1024;

static ACTIVE: AtomicU8 = AtomicU8::new(0);
static FD: AtomicI32 = AtomicI32::new(-1);
static DEV: AtomicU64 = AtomicU64::new(0);
static INO: AtomicU64 = AtomicU64::new(0);

/// The value of an environment variable, without allocating.
pub fn getenv(name: &str) -> Option<&'static [u8]> {
    let mut buf = [0u8; 32];
    let n = name.len().min(buf.len() - 1);
    buf[..n].copy_from_slice(&name.as_bytes()[..n]);
    // SAFETY: `buf` is NUL-terminated; getenv returns a pointer into the environment, which
    // lives as long as the process (unless the program changes that variable itself).
    let p = unsafe { libc::getenv(buf.as_ptr().cast()) };
    if p.is_null() {
        return None;
    }
    // SAFETY: getenv returns a NUL-terminated string.
    Some(unsafe { std::ffi::CStr::from_ptr(p) }.to_bytes())
}

/// Whether the shim logs in this process (its log variable is set).
pub fn active() -> bool {
    match ACTIVE.load(Ordering::Relaxed) {
        2 => true,
        1 => false,
        _ => {
            let on = getenv(env::SHIM_LOG).is_some_and(|v| !v.is_empty());
            ACTIVE.store(if on { 2 } else { 1 }, Ordering::Relaxed);
            on
        }
    }
}

/// (device, inode) of an open descriptor.
fn identity(fd: c_int) -> Option<(u64, u64)> {
    // SAFETY: a zeroed stat is a valid buffer for fstat to fill.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat only writes into `st`.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return None;
    }
    Some((st.st_dev, st.st_ino))
}

/// Whether `fd` is the log.
fn is_log(fd: c_int) -> bool {
    let want = (DEV.load(Ordering::Relaxed), INO.load(Ordering::Relaxed));
    want != (0, 0) && identity(fd) == Some(want)
}

/// Parse `FD:DEV:INO`.
pub fn parse_handed(v: &[u8]) -> Option<(c_int, u64, u64)> {
    let mut it = v.split(|b| *b == b':');
    let mut num = || -> Option<u64> {
        let s = it.next()?;
        if s.is_empty() || s.len() > 20 {
            return None;
        }
        s.iter().try_fold(0u64, |n, d| {
            d.is_ascii_digit()
                .then(|| n.checked_mul(10)?.checked_add(u64::from(d - b'0')))?
        })
    };
    let fd = num()?;
    let (dev, ino) = (num()?, num()?);
    Some((c_int::try_from(fd).ok()?, dev, ino))
}

/// The log's descriptor in this process.
fn log_fd() -> Option<c_int> {
    let fd = FD.load(Ordering::Relaxed);
    if fd >= 0 && is_log(fd) {
        return Some(fd);
    }
    if let Some((fd, dev, ino)) = getenv(env::SHIM_FD).and_then(parse_handed) {
        DEV.store(dev, Ordering::Relaxed);
        INO.store(ino, Ordering::Relaxed);
        if is_log(fd) {
            FD.store(fd, Ordering::Relaxed);
            return Some(fd);
        }
    }
    let fd = reopen(getenv(env::SHIM_LOG)?)?;
    let (dev, ino) = identity(fd)?;
    if DEV.load(Ordering::Relaxed) == 0 && INO.load(Ordering::Relaxed) == 0 {
        DEV.store(dev, Ordering::Relaxed);
        INO.store(ino, Ordering::Relaxed);
    } else if !is_log(fd) {
        // The path no longer names the log upm handed down: write nowhere rather than
        // somewhere else.
        // SAFETY: closing the descriptor this function opened.
        unsafe { libc::close(fd) };
        return None;
    }
    FD.store(fd, Ordering::Relaxed);
    Some(fd)
}

/// Open `path` for appending (close-on-exec), above descriptor 99.
pub fn reopen(path: &[u8]) -> Option<c_int> {
    let mut c = [0u8; crate::resolve::MAX + 1];
    if path.len() >= c.len() || path.contains(&0) {
        return None;
    }
    c[..path.len()].copy_from_slice(path);
    let flags = libc::O_WRONLY | libc::O_APPEND | libc::O_CLOEXEC | libc::O_NOCTTY;
    // SAFETY: `c` is NUL-terminated; the real open (not this library's hook) is called.
    let fd = unsafe { real::open(c.as_ptr().cast(), flags, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: F_DUPFD_CLOEXEC makes a new descriptor; the low one is closed after.
    let high = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 100) };
    if high >= 0 {
        // SAFETY: closing the descriptor just opened and duplicated.
        unsafe { libc::close(fd) };
        Some(high)
    } else {
        Some(fd)
    }
}

/// Write one record: `kind`, then `arg` and `path` each as parts.
pub fn record(kind: &[u8], arg: &[&[u8]], path: &[&[u8]]) {
    let mut buf = [0u8; RECORD_MAX];
    let Some(n) = upm_rootstep::encode(kind, arg, path, &mut buf) else {
        return;
    };
    if let Some(fd) = log_fd() {
        write_once(fd, &buf[..n]);
    }
}

/// One `write(2)`: with O_APPEND the line lands whole after whatever other processes wrote.
pub fn write_once(fd: c_int, data: &[u8]) {
    loop {
        // SAFETY: writes from a valid buffer of `data.len()` bytes.
        let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
        if n >= 0 || real::errno() != libc::EINTR {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_handed_descriptor_parses() {
        assert_eq!(parse_handed(b"7:2049:1234"), Some((7, 2049, 1234)));
        assert_eq!(parse_handed(b"7:2049"), None);
        assert_eq!(parse_handed(b"x:1:2"), None);
        assert_eq!(parse_handed(b"99999999999:1:2"), None);
        assert_eq!(parse_handed(b""), None);
    }
}
