//! Absolute paths for the log, made without allocating: a relative path is joined to the
//! working directory, a `*at` path to its directory descriptor's path, and a descriptor alone
//! (fchmod, fchown, ftruncate, futimens, a file just opened) is named through
//! `/proc/self/fd/N`. The joined path is kept as parts (base, separator, rest) that the record
//! encoder writes one after the other. Paths are not normalised here (`..` stays); upm does
//! that when it reads the log.

use std::ffi::CStr;

use libc::{AT_FDCWD, c_char, c_int};

/// The longest path handled; longer ones are not logged.
pub const MAX: usize = 4096;

/// An absolute path: `base` + separator + `rest`, or `rest` alone when it is absolute.
pub struct Abs<'a> {
    base: [u8; MAX],
    base_len: usize,
    rest: &'a [u8],
}

impl<'a> Abs<'a> {
    /// A path that is absolute already.
    fn absolute(rest: &'a [u8]) -> Abs<'a> {
        Abs {
            base: [0; MAX],
            base_len: 0,
            rest,
        }
    }

    /// The parts to write one after the other.
    pub fn parts(&self) -> [&[u8]; 3] {
        let base = &self.base[..self.base_len];
        if base.is_empty() {
            [self.rest, b"", b""]
        } else if self.rest.is_empty() {
            [base, b"", b""]
        } else if base.ends_with(b"/") {
            [base, b"", self.rest]
        } else {
            [base, b"/", self.rest]
        }
    }

    /// Join `rest` to a base directory (absolute).
    fn joined(base: &[u8], rest: &'a [u8]) -> Option<Abs<'a>> {
        if base.len() > MAX || !base.starts_with(b"/") {
            return None;
        }
        let mut a = Abs::absolute(rest);
        a.base[..base.len()].copy_from_slice(base);
        a.base_len = base.len();
        Some(a)
    }
}

/// The path of a descriptor as `/proc/self/fd/N` names it: `None` for one that is not a file
/// in the tree (a pipe, a socket, a deleted file, a path outside the chroot).
pub fn fd(fd: c_int) -> Option<Abs<'static>> {
    if fd < 0 {
        return None;
    }
    let mut link = [0u8; 32];
    proc_fd_path(fd, &mut link)?;
    let mut a = Abs::absolute(b"");
    // SAFETY: `link` is NUL-terminated at `n`; readlink writes at most MAX bytes into `base`.
    let len = unsafe { libc::readlink(link.as_ptr().cast(), a.base.as_mut_ptr().cast(), MAX) };
    if len <= 0 || len as usize >= MAX {
        return None;
    }
    let target = &a.base[..len as usize];
    if !usable_link(target) {
        return None;
    }
    a.base_len = len as usize;
    Some(a)
}

/// Whether a `/proc/self/fd` link names a path in the tree.
pub fn usable_link(target: &[u8]) -> bool {
    target.starts_with(b"/") && !target.ends_with(b" (deleted)")
}

/// Write `/proc/self/fd/N\0` into `buf`; its length without the NUL.
fn proc_fd_path(fd: c_int, buf: &mut [u8; 32]) -> Option<usize> {
    const PREFIX: &[u8] = b"/proc/self/fd/";
    buf[..PREFIX.len()].copy_from_slice(PREFIX);
    let mut digits = [0u8; 12];
    let d = decimal(fd as u64, &mut digits);
    let end = PREFIX.len() + d.len();
    buf[PREFIX.len()..end].copy_from_slice(d);
    buf[end] = 0;
    Some(end)
}

/// `path` (a C string) relative to `dirfd` (or the working directory for `AT_FDCWD`). An empty
/// path (`AT_EMPTY_PATH`) names `dirfd` itself.
///
/// # Safety
/// `path` must be null or a valid NUL-terminated string that outlives the result.
pub unsafe fn at<'a>(dirfd: c_int, path: *const c_char) -> Option<Abs<'a>> {
    if path.is_null() {
        return fd(dirfd);
    }
    // SAFETY: the caller passes a valid C string (the hooked call's own argument).
    let rest = unsafe { CStr::from_ptr(path) }.to_bytes();
    if rest.starts_with(b"/") {
        return Some(Abs::absolute(rest));
    }
    if rest.is_empty() {
        return fd(dirfd);
    }
    if dirfd == AT_FDCWD {
        let mut a = Abs::absolute(rest);
        // SAFETY: getcwd writes at most MAX bytes, NUL-terminated, into `base`.
        let p = unsafe { libc::getcwd(a.base.as_mut_ptr().cast(), MAX) };
        if p.is_null() {
            return None;
        }
        let len = a.base.iter().position(|b| *b == 0)?;
        // Outside the chroot, getcwd answers "(unreachable)/…".
        if !a.base.starts_with(b"/") {
            return None;
        }
        a.base_len = len;
        return Some(a);
    }
    let dir = fd(dirfd)?;
    let base = dir.parts()[0];
    Abs::joined(base, rest)
}

/// `n` in decimal, in `buf`.
pub fn decimal(mut n: u64, buf: &mut [u8; 12]) -> &[u8] {
    if n == 0 {
        buf[11] = b'0';
        return &buf[11..];
    }
    let mut i = buf.len();
    while n > 0 && i > 0 {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    &buf[i..]
}

/// `n` in octal, in `buf` (a mode: `4755`).
pub fn octal(mut n: u32, buf: &mut [u8; 12]) -> &[u8] {
    if n == 0 {
        buf[11] = b'0';
        return &buf[11..];
    }
    let mut i = buf.len();
    while n > 0 && i > 0 {
        i -= 1;
        buf[i] = b'0' + (n % 8) as u8;
        n /= 8;
    }
    &buf[i..]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CString;
    use std::os::fd::AsRawFd;

    fn joined(a: &Abs<'_>) -> Vec<u8> {
        a.parts().concat()
    }

    #[test]
    fn relative_paths_join_the_working_directory() {
        let cwd = std::env::current_dir().unwrap();
        let p = CString::new("a/b").unwrap();
        let a = unsafe { at(AT_FDCWD, p.as_ptr()) }.unwrap();
        assert_eq!(joined(&a), format!("{}/a/b", cwd.display()).into_bytes());
        let p = CString::new("/etc/x").unwrap();
        assert_eq!(
            joined(&unsafe { at(AT_FDCWD, p.as_ptr()) }.unwrap()),
            b"/etc/x"
        );
    }

    #[test]
    fn at_paths_join_their_directory_descriptor() {
        let d = tempfile_dir();
        let dir = std::fs::File::open(&d).unwrap();
        let p = CString::new("x.so").unwrap();
        let a = unsafe { at(dir.as_raw_fd(), p.as_ptr()) }.unwrap();
        assert_eq!(joined(&a), format!("{}/x.so", d.display()).into_bytes());
        // An empty path, or none, names the descriptor itself.
        let e = CString::new("").unwrap();
        let a = unsafe { at(dir.as_raw_fd(), e.as_ptr()) }.unwrap();
        assert_eq!(joined(&a), d.display().to_string().into_bytes());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn descriptors_are_named_through_proc_unless_deleted() {
        let d = tempfile_dir();
        let f = d.join("f");
        let file = std::fs::File::create(&f).unwrap();
        assert_eq!(
            joined(&fd(file.as_raw_fd()).unwrap()),
            f.display().to_string().into_bytes()
        );
        std::fs::remove_file(&f).unwrap();
        assert!(fd(file.as_raw_fd()).is_none());
        assert!(fd(-1).is_none());
        assert!(!usable_link(b"pipe:[1234]"));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn the_root_directory_joins_without_a_double_slash() {
        let a = Abs::joined(b"/", b"etc").unwrap();
        assert_eq!(joined(&a), b"/etc");
        assert!(Abs::joined(b"relative", b"x").is_none());
    }

    #[test]
    fn numbers() {
        let mut b = [0u8; 12];
        assert_eq!(decimal(0, &mut b), b"0");
        assert_eq!(decimal(10042, &mut b), b"10042");
        assert_eq!(octal(0o4755, &mut b), b"4755");
        assert_eq!(octal(0, &mut b), b"0");
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!(
            "upm-shim-test-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&d).unwrap();
        d.canonicalize().unwrap()
    }
}
