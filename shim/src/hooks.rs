//! The exported hooks. Each calls the real function ([`crate::real`]) and, when it succeeded
//! and the shim is active, logs a record; the ownership and mode calls first ask
//! [`crate::steps`] whether the call becomes a root step.
//!
//! `open`, `openat` and their 64-bit names are C-variadic (`int open(const char *, int, ...)`).
//! Stable Rust cannot define a variadic function, so they take the mode as a fixed third (or
//! fourth) argument: on the x86_64 and aarch64 System V ABIs a variadic argument travels in the
//! same register as a fixed one, so the value is right when the caller passed one, and it is
//! only read when O_CREAT or O_TMPFILE is set (when the caller must pass it). `syscall()` is
//! hooked the same way, as a number and six longs (extra ones are ignored by the kernel); only
//! `SYS_renameat2` is looked at, anything else goes to the real `syscall` unchanged.
//!
//! No hook allocates, takes a lock or keeps state beyond atomics, so they are safe in a `vfork`
//! child, in a signal handler and when reentered; a panic in the shim's own work is caught and
//! the call goes on as if the shim were not there. `errno` is the real call's.

use std::panic::{AssertUnwindSafe, catch_unwind};

use libc::{
    AT_FDCWD, AT_REMOVEDIR, AT_SYMLINK_NOFOLLOW, FILE, O_ACCMODE, O_CREAT, O_EXCL, O_RDONLY,
    O_TMPFILE, O_TRUNC, c_char, c_int, c_long, c_uint, dev_t, gid_t, mode_t, off_t, timespec,
    uid_t,
};

use crate::log;
use crate::real;
use crate::resolve::{self, octal};
use crate::steps::{self, Mode, Target};

/// Run the shim's work after a successful real call: only when active, errno kept, panics
/// caught.
fn after(f: impl FnOnce()) {
    if !log::active() {
        return;
    }
    let e = real::errno();
    let _ = catch_unwind(AssertUnwindSafe(f));
    real::set_errno(e);
}

/// Ask the shim before a real call; `default` when inactive or when its work panicked.
fn decide<T: Copy>(default: T, f: impl FnOnce() -> T) -> T {
    if !log::active() {
        return default;
    }
    let e = real::errno();
    let r = catch_unwind(AssertUnwindSafe(f)).unwrap_or(default);
    real::set_errno(e);
    r
}

/// Log `kind` for `target`.
fn log_target(kind: &[u8], arg: &[&[u8]], target: Target) {
    if let Some(p) = target.path() {
        log::record(kind, arg, &p.parts());
    }
}

fn at(dirfd: c_int, path: *const c_char) -> Target {
    Target::At {
        dirfd,
        path,
        follow: true,
    }
}

fn at_nofollow(dirfd: c_int, path: *const c_char, flags: c_int) -> Target {
    Target::At {
        dirfd,
        path,
        follow: flags & AT_SYMLINK_NOFOLLOW == 0,
    }
}

// ---- open and friends -------------------------------------------------------------------

/// Whether a path exists (before a create, to tell a new file from a truncated one).
fn exists(dirfd: c_int, path: *const c_char) -> bool {
    Target::At {
        dirfd,
        path,
        follow: false,
    }
    .stat()
    .is_some()
}

/// The common part of the open hooks: `call` makes the real call with the mode given.
fn opened(
    dirfd: c_int,
    path: *const c_char,
    flags: c_int,
    mode: mode_t,
    call: impl FnOnce(mode_t) -> c_int,
) -> c_int {
    let tmpfile = flags & O_TMPFILE == O_TMPFILE;
    let creates = flags & O_CREAT != 0;
    let writes = flags & O_ACCMODE != O_RDONLY || creates || tmpfile || flags & O_TRUNC != 0;
    if !writes || tmpfile || !log::active() {
        return call(mode);
    }
    let (m, strip) = if creates {
        decide((mode, false), || steps::create_mode(mode))
    } else {
        (mode, false)
    };
    let new = creates && (flags & O_EXCL != 0 || decide(true, || !exists(dirfd, path)));
    let fd = call(m);
    if fd >= 0 {
        after(|| {
            let t = Target::Fd(fd);
            log_target(if new { b"create" } else { b"open" }, &[], t);
            if strip {
                steps::stripped(t, mode);
            }
        });
    }
    fd
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn open(path: *const c_char, flags: c_int, mode: mode_t) -> c_int {
    // SAFETY (all hooks): the arguments are the caller's, passed on unchanged to the real
    // function with the same prototype.
    opened(AT_FDCWD, path, flags, mode, |m| unsafe {
        real::open(path, flags, m)
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn open64(path: *const c_char, flags: c_int, mode: mode_t) -> c_int {
    opened(AT_FDCWD, path, flags, mode, |m| unsafe {
        real::open64(path, flags, m)
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn __open_2(path: *const c_char, flags: c_int) -> c_int {
    opened(AT_FDCWD, path, flags, 0, |_| unsafe {
        real::__open_2(path, flags)
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn __open64_2(path: *const c_char, flags: c_int) -> c_int {
    opened(AT_FDCWD, path, flags, 0, |_| unsafe {
        real::__open64_2(path, flags)
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn openat(
    dirfd: c_int,
    path: *const c_char,
    flags: c_int,
    mode: mode_t,
) -> c_int {
    opened(dirfd, path, flags, mode, |m| unsafe {
        real::openat(dirfd, path, flags, m)
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn openat64(
    dirfd: c_int,
    path: *const c_char,
    flags: c_int,
    mode: mode_t,
) -> c_int {
    opened(dirfd, path, flags, mode, |m| unsafe {
        real::openat64(dirfd, path, flags, m)
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn __openat_2(dirfd: c_int, path: *const c_char, flags: c_int) -> c_int {
    opened(dirfd, path, flags, 0, |_| unsafe {
        real::__openat_2(dirfd, path, flags)
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn __openat64_2(dirfd: c_int, path: *const c_char, flags: c_int) -> c_int {
    opened(dirfd, path, flags, 0, |_| unsafe {
        real::__openat64_2(dirfd, path, flags)
    })
}

const CREAT_FLAGS: c_int = libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC;

#[unsafe(no_mangle)]
pub unsafe extern "C" fn creat(path: *const c_char, mode: mode_t) -> c_int {
    opened(AT_FDCWD, path, CREAT_FLAGS, mode, |m| unsafe {
        real::creat(path, m)
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn creat64(path: *const c_char, mode: mode_t) -> c_int {
    opened(AT_FDCWD, path, CREAT_FLAGS, mode, |m| unsafe {
        real::creat64(path, m)
    })
}

/// Whether an fopen mode string writes, and whether it may create.
fn fopen_mode(mode: *const c_char) -> (bool, bool) {
    if mode.is_null() {
        return (false, false);
    }
    // SAFETY: the caller's mode string.
    let m = unsafe { std::ffi::CStr::from_ptr(mode) }.to_bytes();
    let creates = m.first().is_some_and(|c| *c == b'w' || *c == b'a');
    (creates || m.contains(&b'+'), creates)
}

fn fopened(
    path: *const c_char,
    mode: *const c_char,
    call: impl FnOnce() -> *mut FILE,
) -> *mut FILE {
    let (writes, creates) = fopen_mode(mode);
    if !writes || path.is_null() || !log::active() {
        return call();
    }
    let new = creates && decide(true, || !exists(AT_FDCWD, path));
    let f = call();
    if !f.is_null() {
        after(|| {
            // SAFETY: a stream fopen just returned.
            let fd = unsafe { libc::fileno(f) };
            log_target(if new { b"create" } else { b"open" }, &[], Target::Fd(fd));
        });
    }
    f
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn fopen(path: *const c_char, mode: *const c_char) -> *mut FILE {
    fopened(path, mode, || unsafe { real::fopen(path, mode) })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn fopen64(path: *const c_char, mode: *const c_char) -> *mut FILE {
    fopened(path, mode, || unsafe { real::fopen64(path, mode) })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn freopen(
    path: *const c_char,
    mode: *const c_char,
    stream: *mut FILE,
) -> *mut FILE {
    fopened(path, mode, || unsafe { real::freopen(path, mode, stream) })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn freopen64(
    path: *const c_char,
    mode: *const c_char,
    stream: *mut FILE,
) -> *mut FILE {
    fopened(path, mode, || unsafe {
        real::freopen64(path, mode, stream)
    })
}

// ---- rename, link, symlink ----------------------------------------------------------------

/// Log a rename (or, with RENAME_EXCHANGE, a swap) from `a` to `b`.
fn renamed(da: c_int, a: *const c_char, db: c_int, b: *const c_char, flags: c_uint) {
    after(|| {
        // SAFETY: the caller's path strings.
        let (Some(from), Some(to)) = (unsafe { resolve::at(da, a) }, unsafe { resolve::at(db, b) })
        else {
            return;
        };
        let kind: &[u8] = if flags & libc::RENAME_EXCHANGE != 0 {
            b"exchange"
        } else {
            b"rename"
        };
        log::record(kind, &from.parts(), &to.parts());
    });
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rename(a: *const c_char, b: *const c_char) -> c_int {
    let r = unsafe { real::rename(a, b) };
    if r == 0 {
        renamed(AT_FDCWD, a, AT_FDCWD, b, 0);
    }
    r
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn renameat(
    da: c_int,
    a: *const c_char,
    db: c_int,
    b: *const c_char,
) -> c_int {
    let r = unsafe { real::renameat(da, a, db, b) };
    if r == 0 {
        renamed(da, a, db, b, 0);
    }
    r
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn renameat2(
    da: c_int,
    a: *const c_char,
    db: c_int,
    b: *const c_char,
    flags: c_uint,
) -> c_int {
    let r = unsafe { real::renameat2(da, a, db, b, flags) };
    if r == 0 {
        renamed(da, a, db, b, flags);
    }
    r
}

/// `syscall(2)`, C-variadic: see the module documentation.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn syscall(
    nr: c_long,
    a1: c_long,
    a2: c_long,
    a3: c_long,
    a4: c_long,
    a5: c_long,
    a6: c_long,
) -> c_long {
    let r = unsafe { real::syscall(nr, a1, a2, a3, a4, a5, a6) };
    if nr == libc::SYS_renameat2 && r == 0 {
        renamed(
            a1 as c_int,
            a2 as *const c_char,
            a3 as c_int,
            a4 as *const c_char,
            a5 as c_uint,
        );
    }
    r
}

fn linked(da: c_int, a: *const c_char, db: c_int, b: *const c_char) {
    after(|| {
        // SAFETY: the caller's path strings.
        let Some(to) = (unsafe { resolve::at(db, b) }) else {
            return;
        };
        match unsafe { resolve::at(da, a) } {
            Some(from) => log::record(b"link", &from.parts(), &to.parts()),
            // A file made with O_TMPFILE has no name to give.
            None => log::record(b"link", &[], &to.parts()),
        }
    });
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn link(a: *const c_char, b: *const c_char) -> c_int {
    let r = unsafe { real::link(a, b) };
    if r == 0 {
        linked(AT_FDCWD, a, AT_FDCWD, b);
    }
    r
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn linkat(
    da: c_int,
    a: *const c_char,
    db: c_int,
    b: *const c_char,
    flags: c_int,
) -> c_int {
    let r = unsafe { real::linkat(da, a, db, b, flags) };
    if r == 0 {
        linked(da, a, db, b);
    }
    r
}

fn symlinked(target: *const c_char, dirfd: c_int, path: *const c_char) {
    after(|| {
        if target.is_null() {
            return;
        }
        // SAFETY: the caller's strings.
        let t = unsafe { std::ffi::CStr::from_ptr(target) }.to_bytes();
        log_target(
            b"symlink",
            &[t],
            at_nofollow(dirfd, path, AT_SYMLINK_NOFOLLOW),
        );
    });
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn symlink(target: *const c_char, path: *const c_char) -> c_int {
    let r = unsafe { real::symlink(target, path) };
    if r == 0 {
        symlinked(target, AT_FDCWD, path);
    }
    r
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn symlinkat(
    target: *const c_char,
    dirfd: c_int,
    path: *const c_char,
) -> c_int {
    let r = unsafe { real::symlinkat(target, dirfd, path) };
    if r == 0 {
        symlinked(target, dirfd, path);
    }
    r
}

// ---- directories and removal --------------------------------------------------------------

fn with_mode(kind: &'static [u8], mode: mode_t, t: Target) {
    after(|| {
        let mut b = [0u8; 12];
        log_target(kind, &[octal(mode & 0o7777, &mut b)], t);
    });
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn mkdir(path: *const c_char, mode: mode_t) -> c_int {
    let r = unsafe { real::mkdir(path, mode) };
    if r == 0 {
        with_mode(b"mkdir", mode, at(AT_FDCWD, path));
    }
    r
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn mkdirat(dirfd: c_int, path: *const c_char, mode: mode_t) -> c_int {
    let r = unsafe { real::mkdirat(dirfd, path, mode) };
    if r == 0 {
        with_mode(b"mkdir", mode, at(dirfd, path));
    }
    r
}

fn removed(kind: &'static [u8], dirfd: c_int, path: *const c_char) {
    after(|| log_target(kind, &[], at_nofollow(dirfd, path, AT_SYMLINK_NOFOLLOW)));
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn unlink(path: *const c_char) -> c_int {
    let r = unsafe { real::unlink(path) };
    if r == 0 {
        removed(b"unlink", AT_FDCWD, path);
    }
    r
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn unlinkat(dirfd: c_int, path: *const c_char, flags: c_int) -> c_int {
    let r = unsafe { real::unlinkat(dirfd, path, flags) };
    if r == 0 {
        let kind: &'static [u8] = if flags & AT_REMOVEDIR != 0 {
            b"rmdir"
        } else {
            b"unlink"
        };
        removed(kind, dirfd, path);
    }
    r
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn rmdir(path: *const c_char) -> c_int {
    let r = unsafe { real::rmdir(path) };
    if r == 0 {
        removed(b"rmdir", AT_FDCWD, path);
    }
    r
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn remove(path: *const c_char) -> c_int {
    let r = unsafe { real::remove(path) };
    if r == 0 {
        removed(b"unlink", AT_FDCWD, path);
    }
    r
}

// ---- modes and owners -----------------------------------------------------------------------

/// A chmod-style call: `call` makes the real call with the mode given.
fn chmodded(t: Target, mode: mode_t, call: impl FnOnce(mode_t) -> c_int) -> c_int {
    let (m, strip) = match decide(Mode::Pass, || steps::chmod(t, mode)) {
        Mode::NoOp => return 0,
        Mode::Pass => (mode, false),
        Mode::Strip(m) => (m, true),
    };
    let r = call(m);
    if r == 0 {
        with_mode(b"chmod", m, t);
        if strip {
            after(|| steps::stripped(t, mode));
        }
    }
    r
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn chmod(path: *const c_char, mode: mode_t) -> c_int {
    chmodded(at(AT_FDCWD, path), mode, |m| unsafe {
        real::chmod(path, m)
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn fchmod(fd: c_int, mode: mode_t) -> c_int {
    chmodded(Target::Fd(fd), mode, |m| unsafe { real::fchmod(fd, m) })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn fchmodat(
    dirfd: c_int,
    path: *const c_char,
    mode: mode_t,
    flags: c_int,
) -> c_int {
    chmodded(at_nofollow(dirfd, path, flags), mode, |m| unsafe {
        real::fchmodat(dirfd, path, m, flags)
    })
}

/// A chown-style call.
fn chowned(t: Target, uid: uid_t, gid: gid_t, call: impl FnOnce() -> c_int) -> c_int {
    if let Some(r) = decide(None, || steps::own(t, uid, gid)) {
        return r;
    }
    let r = call();
    if r == 0 {
        after(|| {
            let (mut a, mut b) = ([0u8; 12], [0u8; 12]);
            let u = resolve::decimal(u64::from(uid), &mut a);
            let g = resolve::decimal(u64::from(gid), &mut b);
            log_target(b"chown", &[u, b":", g], t);
        });
    }
    r
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn chown(path: *const c_char, uid: uid_t, gid: gid_t) -> c_int {
    chowned(at(AT_FDCWD, path), uid, gid, || unsafe {
        real::chown(path, uid, gid)
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn lchown(path: *const c_char, uid: uid_t, gid: gid_t) -> c_int {
    chowned(
        at_nofollow(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW),
        uid,
        gid,
        || unsafe { real::lchown(path, uid, gid) },
    )
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn fchown(fd: c_int, uid: uid_t, gid: gid_t) -> c_int {
    chowned(Target::Fd(fd), uid, gid, || unsafe {
        real::fchown(fd, uid, gid)
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn fchownat(
    dirfd: c_int,
    path: *const c_char,
    uid: uid_t,
    gid: gid_t,
    flags: c_int,
) -> c_int {
    chowned(at_nofollow(dirfd, path, flags), uid, gid, || unsafe {
        real::fchownat(dirfd, path, uid, gid, flags)
    })
}

// ---- sizes, nodes, times --------------------------------------------------------------------

fn logged(r: c_int, kind: &'static [u8], t: Target) -> c_int {
    if r == 0 {
        after(|| log_target(kind, &[], t));
    }
    r
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn truncate(path: *const c_char, len: off_t) -> c_int {
    logged(
        unsafe { real::truncate(path, len) },
        b"truncate",
        at(AT_FDCWD, path),
    )
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn truncate64(path: *const c_char, len: off_t) -> c_int {
    logged(
        unsafe { real::truncate64(path, len) },
        b"truncate",
        at(AT_FDCWD, path),
    )
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftruncate(fd: c_int, len: off_t) -> c_int {
    logged(
        unsafe { real::ftruncate(fd, len) },
        b"truncate",
        Target::Fd(fd),
    )
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn ftruncate64(fd: c_int, len: off_t) -> c_int {
    logged(
        unsafe { real::ftruncate64(fd, len) },
        b"truncate",
        Target::Fd(fd),
    )
}

fn made_node(t: Target, mode: mode_t, dev: dev_t, call: impl FnOnce() -> c_int) -> c_int {
    if let Some(r) = decide(None, || steps::mknod(t, mode, dev)) {
        return r;
    }
    let r = call();
    if r == 0 {
        with_mode(b"mknod", mode, t);
    }
    r
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn mknod(path: *const c_char, mode: mode_t, dev: dev_t) -> c_int {
    made_node(at(AT_FDCWD, path), mode, dev, || unsafe {
        real::mknod(path, mode, dev)
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn mknodat(
    dirfd: c_int,
    path: *const c_char,
    mode: mode_t,
    dev: dev_t,
) -> c_int {
    made_node(at(dirfd, path), mode, dev, || unsafe {
        real::mknodat(dirfd, path, mode, dev)
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn utimensat(
    dirfd: c_int,
    path: *const c_char,
    times: *const timespec,
    flags: c_int,
) -> c_int {
    logged(
        unsafe { real::utimensat(dirfd, path, times, flags) },
        b"utimens",
        at_nofollow(dirfd, path, flags),
    )
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn futimens(fd: c_int, times: *const timespec) -> c_int {
    logged(
        unsafe { real::futimens(fd, times) },
        b"utimens",
        Target::Fd(fd),
    )
}
