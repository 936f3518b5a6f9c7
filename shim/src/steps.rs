//! Root steps: what a package user may not do, recorded for upm to apply as root afterwards
//! (when the recipe's `root.allow` lets it) instead of failing the caller. Active only when
//! the log is on, `UPM_STEPS` names the steps file and the process is not root.
//!
//! - chown/chgrp to an owner or group the caller cannot give: a `chown UID[:GID]` or
//!   `chgrp GID` step; success is returned and the file stays the caller's;
//! - setuid/setgid bits on a regular file (chmod, or a file created with them): the call is
//!   made without the bits and a `setuid`/`setgid` step records the mode asked;
//! - a character or block device: a `mknod c|b MAJOR MINOR mode=MODE` step;
//! - chmod of a directory someone else owns (an install directory such as `/usr/bin`): a no-op
//!   when every permission asked is already granted; otherwise the real call fails as before.

use libc::{c_char, c_int, gid_t, mode_t, uid_t};
use upm_rootstep::env;

use crate::log;
use crate::resolve::{self, Abs, decimal, octal};

/// What a call acts on.
#[derive(Clone, Copy)]
pub enum Target {
    /// A path relative to a directory descriptor; `follow`: whether a final symlink is
    /// followed.
    At {
        dirfd: c_int,
        path: *const c_char,
        follow: bool,
    },
    /// An open descriptor.
    Fd(c_int),
}

impl Target {
    pub fn stat(self) -> Option<libc::stat> {
        // SAFETY: a zeroed stat is a valid buffer to fill.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        let r = match self {
            // SAFETY: `path` is the hooked call's own C string; fstatat only reads it.
            Target::At {
                dirfd,
                path,
                follow,
            } => unsafe {
                if path.is_null() {
                    libc::fstat(dirfd, &mut st)
                } else {
                    let flags = if follow { 0 } else { libc::AT_SYMLINK_NOFOLLOW };
                    libc::fstatat(dirfd, path, &mut st, flags)
                }
            },
            // SAFETY: fstat only writes into `st`.
            Target::Fd(fd) => unsafe { libc::fstat(fd, &mut st) },
        };
        (r == 0).then_some(st)
    }

    /// The absolute path, for a record.
    pub fn path(self) -> Option<Abs<'static>> {
        match self {
            // SAFETY: the hooked call's C string outlives the record written from it.
            Target::At { dirfd, path, .. } => unsafe { resolve::at(dirfd, path) },
            Target::Fd(fd) => resolve::fd(fd),
        }
    }
}

/// Whether root steps are taken in this process.
pub fn enabled() -> bool {
    // SAFETY: geteuid cannot fail.
    log::active() && unsafe { libc::geteuid() } != 0 && log::getenv(env::STEPS).is_some()
}

/// Append one step to the steps file (opened for the one write, then closed).
pub fn record(step: &[u8], arg: &[&[u8]], target: Target) {
    let Some(path) = target.path() else { return };
    let Some(file) = log::getenv(env::STEPS) else {
        return;
    };
    let mut buf = [0u8; log::RECORD_MAX];
    let Some(n) = upm_rootstep::encode(step, arg, &path.parts(), &mut buf) else {
        return;
    };
    if let Some(fd) = log::reopen(file) {
        log::write_once(fd, &buf[..n]);
        // SAFETY: closing the descriptor just opened.
        unsafe { libc::close(fd) };
    }
}

/// Whether this process may give a file group `gid` (its own group or a supplementary one).
fn my_group(gid: gid_t) -> bool {
    // SAFETY: getegid cannot fail; getgroups writes at most 64 ids into `groups`.
    unsafe {
        if libc::getegid() == gid {
            return true;
        }
        let mut groups = [0 as gid_t; 64];
        let n = libc::getgroups(64, groups.as_mut_ptr());
        n > 0 && groups[..n as usize].contains(&gid)
    }
}

/// A chown the caller cannot make: record it and say success (`Some(0)`); `None` lets the
/// real call run (it may do it itself, or fail as it would have: a missing file).
pub fn own(target: Target, uid: uid_t, gid: gid_t) -> Option<c_int> {
    if !enabled() {
        return None;
    }
    const KEEP: u32 = u32::MAX;
    // SAFETY: geteuid cannot fail.
    let me = unsafe { libc::geteuid() };
    let other_uid = uid != KEEP && uid != me;
    let other_gid = gid != KEEP && !my_group(gid);
    if !other_uid && !other_gid {
        return None;
    }
    let st = target.stat()?;
    let same_uid = uid == KEEP || st.st_uid == uid;
    let same_gid = gid == KEEP || st.st_gid == gid;
    // Already so (an install directory that is root's): nothing to do.
    if same_uid && same_gid {
        return Some(0);
    }
    let (mut u, mut g) = ([0u8; 12], [0u8; 12]);
    if uid != KEEP {
        let u = decimal(u64::from(uid), &mut u);
        if gid != KEEP {
            record(
                b"chown",
                &[u, b":", decimal(u64::from(gid), &mut g)],
                target,
            );
        } else {
            record(b"chown", &[u], target);
        }
    } else {
        record(b"chgrp", &[decimal(u64::from(gid), &mut g)], target);
    }
    Some(0)
}

/// What to do with a chmod.
#[derive(Clone, Copy)]
pub enum Mode {
    /// Make the call as asked.
    Pass,
    /// Do nothing and say success.
    NoOp,
    /// Make the call with this mode, then record steps for the bits taken out.
    Strip(mode_t),
}

const SETID: mode_t = libc::S_ISUID | libc::S_ISGID;

/// Decide a chmod of `target` to `mode`.
pub fn chmod(target: Target, mode: mode_t) -> Mode {
    if !enabled() {
        return Mode::Pass;
    }
    let Some(st) = target.stat() else {
        return Mode::Pass;
    };
    // SAFETY: geteuid cannot fail.
    let me = unsafe { libc::geteuid() };
    let kind = st.st_mode & libc::S_IFMT;
    if kind == libc::S_IFDIR && st.st_uid != me {
        let asked = mode & 0o777;
        return if st.st_mode & asked == asked {
            Mode::NoOp
        } else {
            Mode::Pass
        };
    }
    if kind == libc::S_IFREG && mode & SETID != 0 {
        return Mode::Strip(mode & !SETID);
    }
    Mode::Pass
}

/// After a successful call made without the setuid/setgid bits of `asked`: record them.
pub fn stripped(target: Target, asked: mode_t) {
    let mut b = [0u8; 12];
    let arg = octal(asked & 0o7777, &mut b);
    if asked & libc::S_ISUID != 0 {
        record(b"setuid", &[arg], target);
    }
    if asked & libc::S_ISGID != 0 {
        record(b"setgid", &[arg], target);
    }
}

/// The mode to create a regular file with (open/creat with O_CREAT): without setuid/setgid
/// bits when steps are on. Returns (mode to use, whether bits were taken out).
pub fn create_mode(mode: mode_t) -> (mode_t, bool) {
    if mode & SETID != 0 && enabled() {
        (mode & !SETID, true)
    } else {
        (mode, false)
    }
}

/// A device node the caller cannot make: record it and say success.
pub fn mknod(target: Target, mode: mode_t, dev: libc::dev_t) -> Option<c_int> {
    let kind = mode & libc::S_IFMT;
    let letter: &[u8] = match kind {
        libc::S_IFCHR => b"c",
        libc::S_IFBLK => b"b",
        _ => return None,
    };
    if !enabled() {
        return None;
    }
    let (mut a, mut b, mut m) = ([0u8; 12], [0u8; 12], [0u8; 12]);
    let major = decimal(u64::from(libc::major(dev)), &mut a);
    let minor = decimal(u64::from(libc::minor(dev)), &mut b);
    let perm = octal(mode & 0o7777, &mut m);
    record(
        b"mknod",
        &[letter, b" ", major, b" ", minor, b" mode=", perm],
        target,
    );
    Some(0)
}
