//! Entering the sandbox: the code that runs in the forked child between `fork` and `exec`.
//! It makes a new mount namespace, mounts the overlay (host `/` below, the sandbox's upper
//! directory above), `/proc`, `/dev`, a tmpfs `/tmp` and read-only binds, then `chroot`s.
//!
//! Between fork and exec only async-signal-safe calls are allowed (the parent may have other
//! threads holding the allocator's locks), so every string is prepared as a `CString` before
//! the fork and the child only makes system calls. Which step failed is reported through a
//! pipe: the child writes the step number, and which mount point or bind, before each step.
//!
//! Mount points under `/tmp` cannot be made beforehand (the tmpfs hides whatever is there), so
//! the child makes them in the tmpfs before binding onto them.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::Arc;

use nix::fcntl::OFlag;
use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, unshare};

/// Everything the child needs, prepared before the fork.
#[derive(Clone)]
pub struct Plan {
    pub overlay_opts: CString,
    pub merged: CString,
    pub proc: CString,
    pub dev: CString,
    pub tmp: CString,
    /// Mount points to make in the tmpfs, parents first (under `merged`); whether a file.
    pub points: Vec<(CString, bool)>,
    /// (host source, mount point under `merged`)
    pub binds: Vec<(CString, CString)>,
    pub cwd: CString,
}

/// The steps, by the number the child reports.
pub const STEPS: &[&str] = &[
    "start",
    "create a mount namespace (unshare)",
    "make the mounts private",
    "mount the overlay",
    "mount /proc",
    "bind /dev",
    "mount a tmpfs on /tmp",
    "bind a read-only directory",
    "make a bind read-only",
    "chroot into the overlay",
    "make a mount point in /tmp",
    "start the command",
];

pub const STEP_OVERLAY: u8 = 3;
pub const STEP_PROC: u8 = 4;
pub const STEP_DEV: u8 = 5;
pub const STEP_TMP: u8 = 6;
pub const STEP_BIND: u8 = 7;
pub const STEP_BIND_RO: u8 = 8;
pub const STEP_CHROOT: u8 = 9;
pub const STEP_POINT: u8 = 10;
/// Everything is set up: only the command's own exec is left.
pub const STEP_EXEC: u8 = 11;

const ROOT: &std::ffi::CStr = c"/";

fn enter(plan: &Plan, report: &OwnedFd) -> io::Result<()> {
    let step_at = |n: u8, i: usize| {
        // Best effort: a failed report only loses detail in an error message.
        let i = u16::try_from(i).unwrap_or(u16::MAX).to_be_bytes();
        let _ = nix::unistd::write(report.as_fd(), &[n, i[0], i[1]]);
    };
    let step = |n: u8| step_at(n, 0);
    let none: Option<&std::ffi::CStr> = None;
    step(1);
    unshare(CloneFlags::CLONE_NEWNS)?;
    step(2);
    mount(
        none,
        ROOT,
        none,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        none,
    )?;
    step(STEP_OVERLAY);
    mount(
        Some(c"overlay"),
        plan.merged.as_c_str(),
        Some(c"overlay"),
        MsFlags::empty(),
        Some(plan.overlay_opts.as_c_str()),
    )?;
    step(STEP_PROC);
    mount(
        Some(c"proc"),
        plan.proc.as_c_str(),
        Some(c"proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        none,
    )?;
    step(STEP_DEV);
    mount(
        Some(c"/dev"),
        plan.dev.as_c_str(),
        none,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        none,
    )?;
    step(STEP_TMP);
    mount(
        Some(c"tmpfs"),
        plan.tmp.as_c_str(),
        Some(c"tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(c"mode=1777"),
    )?;
    for (i, (point, file)) in plan.points.iter().enumerate() {
        step_at(STEP_POINT, i);
        let made = if *file {
            nix::sys::stat::mknod(
                point.as_c_str(),
                nix::sys::stat::SFlag::S_IFREG,
                nix::sys::stat::Mode::from_bits_truncate(0o600),
                0,
            )
        } else {
            nix::unistd::mkdir(
                point.as_c_str(),
                nix::sys::stat::Mode::from_bits_truncate(0o755),
            )
        };
        match made {
            Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
            Err(e) => return Err(e.into()),
        }
    }
    for (i, (src, dest)) in plan.binds.iter().enumerate() {
        step_at(STEP_BIND, i);
        mount(
            Some(src.as_c_str()),
            dest.as_c_str(),
            none,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            none,
        )?;
        step_at(STEP_BIND_RO, i);
        mount(
            none,
            dest.as_c_str(),
            none,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_REC,
            none,
        )?;
    }
    step(STEP_CHROOT);
    nix::unistd::chroot(plan.merged.as_c_str())?;
    if nix::unistd::chdir(plan.cwd.as_c_str()).is_err() {
        nix::unistd::chdir(ROOT)?;
    }
    step(STEP_EXEC);
    Ok(())
}

/// A pipe whose read end tells, after a failed spawn, which step failed.
pub struct StepReport {
    read: OwnedFd,
}

impl StepReport {
    /// The number of the last step the child started (0 if none), and which mount point or
    /// bind it was at.
    pub fn last_step(self) -> (u8, usize) {
        use std::io::Read;
        let mut buf = Vec::new();
        let _ = std::fs::File::from(self.read).read_to_end(&mut buf);
        match buf.len() / 3 {
            0 => (0, 0),
            n => {
                let r = &buf[(n - 1) * 3..n * 3];
                (r[0], usize::from(u16::from_be_bytes([r[1], r[2]])))
            }
        }
    }
}

/// A step's number in words, for error messages.
pub fn step_name(n: u8) -> &'static str {
    STEPS.get(usize::from(n)).copied().unwrap_or("start")
}

/// Arrange for `cmd` to enter the sandbox described by `plan` before it execs.
pub fn prepare(cmd: &mut Command, plan: Arc<Plan>) -> io::Result<StepReport> {
    let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    // SAFETY: the closure runs in the child after fork. It only makes system calls
    // (unshare, mount, mkdir, mknod, chroot, chdir, write) on data prepared before the fork;
    // it allocates nothing and takes no locks, so it is async-signal-safe.
    unsafe {
        cmd.pre_exec(move || enter(&plan, &write));
    }
    Ok(StepReport { read })
}
