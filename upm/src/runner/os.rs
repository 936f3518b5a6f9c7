//! The process-level system calls of the runner, each behind a safe function: becoming the
//! package user in a forked child (chroot, chdir, setgroups, setgid, setuid, then a
//! parent-death signal), waiting for a phase without reaping it, ending its process group, and
//! acting as the package user for file operations in this process (fsuid).

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
use nix::unistd::{Gid, Pid, Uid};

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
/// root), as `who`, in a process group of its own (so the whole phase can be ended at once),
/// and to be killed if upm dies.
pub fn prepare(cmd: &mut Command, root: &Path, cwd: &Path, who: Identity) -> io::Result<()> {
    cmd.process_group(0);
    enter(cmd, root, cwd, who)
}

/// Arrange for `cmd` to run inside `root`, in `cwd`, as `who`, killed if upm dies — in upm's
/// own process group, so an interactive shell on upm's terminal can take the terminal over
/// (`upm record`); [`prepare`] puts a phase in a group of its own instead.
pub fn enter(cmd: &mut Command, root: &Path, cwd: &Path, who: Identity) -> io::Result<()> {
    // Everything the child needs is made here, before the fork: between fork and exec only
    // async-signal-safe system calls may run (another thread may hold the allocator's lock).
    let chroot = (root != Path::new("/"))
        .then(|| cstring(root))
        .transpose()?;
    let cwd = cstring(cwd)?;
    let groups = [Gid::from_raw(who.groups[0])];
    let parent = nix::unistd::getpid();
    // SAFETY: the closure runs in the forked child before exec. It only makes system calls
    // (chroot, chdir, setgroups, setgid, setuid, prctl, getppid) on data made before the fork,
    // and builds its errors from errno without allocating: all async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            if let Some(r) = &chroot {
                nix::unistd::chroot(r.as_c_str())?;
            }
            nix::unistd::chdir(cwd.as_c_str())?;
            if who.uid != 0 {
                nix::unistd::setgroups(&groups)?;
                nix::unistd::setgid(Gid::from_raw(who.gid))?;
                nix::unistd::setuid(Uid::from_raw(who.uid))?;
            }
            // Armed after the id change, which clears it (prctl(2)).
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
            // upm may have died before the signal was armed: then nothing may start.
            if nix::unistd::getppid() != parent {
                return Err(Errno::ESRCH.into());
            }
            Ok(())
        });
    }
    Ok(())
}

/// Whether child `pid` has ended, leaving it unreaped (a zombie), so its process group id
/// cannot be given to another process before [`end_group`]. With `block`, wait for it.
pub fn exited(pid: u32, block: bool) -> io::Result<bool> {
    let mut flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT;
    if !block {
        flags |= WaitPidFlag::WNOHANG;
    }
    loop {
        match waitid(Id::Pid(Pid::from_raw(pid as i32)), flags) {
            Ok(WaitStatus::StillAlive) => return Ok(false),
            Ok(_) => return Ok(true),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Kill whatever is left in the process group `pgid` (a phase's background processes). Call
/// only while the group's leader is unreaped, so the id is still the phase's.
pub fn end_group(pgid: u32) {
    // ESRCH (nothing left) is the usual answer; nothing else can be done about another error.
    let _ = killpg(Pid::from_raw(pgid as i32), Signal::SIGKILL);
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
