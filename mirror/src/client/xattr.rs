//! Whether a file carries extended attributes (POSIX ACLs, security labels, user data): a file
//! with any is never reused for another's content, since an ACL entry outlives chown and chmod.

use std::fs::File;
use std::os::fd::AsRawFd;

/// Whether `f` has no extended attribute at all (an error answers no).
pub fn none(f: &File) -> bool {
    // SAFETY: with a null buffer and size 0, flistxattr(2) only returns the size the list
    // would need and writes nothing; `f` is open for the call's duration.
    let n = unsafe { nix::libc::flistxattr(f.as_raw_fd(), std::ptr::null_mut(), 0) };
    n == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_file_has_none_and_a_labelled_one_has() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        std::fs::write(&p, b"x").unwrap();
        let f = File::options().write(true).open(&p).unwrap();
        assert!(none(&f));
        // SAFETY: name and value point to live byte strings (the name NUL-terminated) of the
        // lengths given; `f` is open.
        let r = unsafe {
            nix::libc::fsetxattr(
                f.as_raw_fd(),
                c"user.upm".as_ptr(),
                b"1".as_ptr().cast(),
                1,
                0,
            )
        };
        assert_eq!(r, 0, "{}", std::io::Error::last_os_error());
        assert!(!none(&f));
    }
}
