//! The process-level system calls of the runner, each behind a safe function: becoming the
//! package user in a forked child (chroot, chdir, setgroups, setgid, setuid, a parent-death
//! signal), and acting as the package user for file operations in this process (fsuid).

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use nix::unistd::{Gid, Uid};

/// Who a child runs as.
#[derive(Debug, Clone, Copy)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups (the install group for a package user).
    pub groups: [u32; 1],
}

fn cstring(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))
}

/// Arrange for `cmd` to run inside `root` (chroot unless it is `/`), in `cwd` (inside the
/// root), as `who`, in its own process group, and to be killed if upm dies.
pub fn prepare(cmd: &mut Command, root: &Path, cwd: &Path, who: Identity) -> io::Result<()> {
    let chroot = (root != Path::new("/"))
        .then(|| cstring(root))
        .transpose()?;
    let cwd = cstring(cwd)?;
    let parent = nix::unistd::getpid();
    cmd.process_group(0);
    // SAFETY: the closure runs in the forked child before exec and only makes system calls
    // (no allocation: the C strings were made before the fork), which is async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)?;
            // The parent may already have died before the signal was armed.
            if nix::unistd::getppid() != parent {
                return Err(io::Error::other("upm exited"));
            }
            if let Some(r) = &chroot {
                nix::unistd::chroot(r.as_c_str())?;
            }
            nix::unistd::chdir(cwd.as_c_str())?;
            if who.uid != 0 {
                nix::unistd::setgroups(&[Gid::from_raw(who.groups[0])])?;
                nix::unistd::setgid(Gid::from_raw(who.gid))?;
                nix::unistd::setuid(Uid::from_raw(who.uid))?;
            }
            Ok(())
        });
    }
    Ok(())
}

/// Run `f` with this thread's filesystem identity set to `uid`/`gid`, so the files it makes
/// belong to the package user and its access is checked as the package user's (the kernel
/// drops root's file capabilities while fsuid is not 0). Restored afterwards.
pub fn as_fs_user<T>(uid: u32, gid: u32, f: impl FnOnce() -> T) -> T {
    // setfsuid/setfsgid act on the calling thread only and cannot fail in a way that matters
    // here: they return the previous id.
    let old_gid = nix::unistd::setfsgid(Gid::from_raw(gid));
    let old_uid = nix::unistd::setfsuid(Uid::from_raw(uid));
    let out = f();
    nix::unistd::setfsuid(old_uid);
    nix::unistd::setfsgid(old_gid);
    out
}
