//! Entering the sandbox: the code that runs in the forked child between `fork` and `exec`.
//! It makes a new mount namespace, mounts the overlay (host `/` below, the sandbox's upper
//! directory above), `/proc`, `/dev`, a tmpfs `/tmp` and read-only binds, then `chroot`s.
//!
//! Between fork and exec only async-signal-safe calls are allowed (the parent may have other
//! threads holding the allocator's locks), so every string is prepared as a `CString` before
//! the fork and the child only makes system calls. Which step failed is reported through a
//! pipe: the child writes the step number before each step.

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
pub struct Plan {
    pub overlay_opts: CString,
    pub merged: CString,
    pub proc: CString,
    pub dev: CString,
    pub tmp: CString,
    /// Mount points to make in the fresh tmpfs for binds under `/tmp`, parents first.
    pub tmp_dirs: Vec<CString>,
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
    "make a bind's mount point in the sandbox's /tmp",
];

/// The step making the mount points of binds under `/tmp`.
const STEP_TMP_DIRS: u8 = 10;

/// The number of the last step: past it, only the command's own exec can fail.
pub const STEP_CHROOT: u8 = 9;

const ROOT: &std::ffi::CStr = c"/";

fn enter(plan: &Plan, report: &OwnedFd) -> io::Result<()> {
    let step = |n: u8| {
        // Best effort: a failed report only loses detail in an error message.
        let _ = nix::unistd::write(report.as_fd(), &[n]);
    };
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
    step(3);
    mount(
        Some(c"overlay"),
        plan.merged.as_c_str(),
        Some(c"overlay"),
        MsFlags::empty(),
        Some(plan.overlay_opts.as_c_str()),
    )?;
    step(4);
    mount(
        Some(c"proc"),
        plan.proc.as_c_str(),
        Some(c"proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        none,
    )?;
    step(5);
    mount(
        Some(c"/dev"),
        plan.dev.as_c_str(),
        none,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        none,
    )?;
    step(6);
    mount(
        Some(c"tmpfs"),
        plan.tmp.as_c_str(),
        Some(c"tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(c"mode=1777"),
    )?;
    step(STEP_TMP_DIRS);
    for d in &plan.tmp_dirs {
        match nix::unistd::mkdir(
            d.as_c_str(),
            nix::sys::stat::Mode::from_bits_truncate(0o755),
        ) {
            Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
            Err(e) => return Err(e.into()),
        }
    }
    for (src, dest) in &plan.binds {
        step(7);
        mount(
            Some(src.as_c_str()),
            dest.as_c_str(),
            none,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            none,
        )?;
        step(8);
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
    Ok(())
}

/// A pipe whose read end tells, after a failed spawn, which step failed.
pub struct StepReport {
    read: OwnedFd,
}

impl StepReport {
    /// The number of the last step the child started (0 if none).
    pub fn last_step(self) -> u8 {
        use std::io::Read;
        let mut buf = Vec::new();
        let _ = std::fs::File::from(self.read).read_to_end(&mut buf);
        buf.last().copied().unwrap_or(0)
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
    // (unshare, mount, mkdir, chroot, chdir, write) on data prepared before the fork; it allocates
    // nothing and takes no locks, so it is async-signal-safe.
    unsafe {
        cmd.pre_exec(move || enter(&plan, &write));
    }
    Ok(StepReport { read })
}
