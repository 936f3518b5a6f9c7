//! The system calls of the trial run, each behind a safe function: the helper's private
//! namespaces and mounts (a tmpfs for the upper layer, the overlay of the target root, a
//! read-only `/proc`, a `/dev` holding only the harmless devices, a private `/tmp`), and the
//! script's identity: the package user, keeping only the file capabilities that let it write
//! where the real install would be refused (so the trial shows every write it will attempt),
//! with `no_new_privs` so no setuid program can give it more.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::libc;
use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, unshare};
use nix::unistd::{Gid, Uid};

/// The devices a build may use; everything else of `/dev` stays out of the trial.
const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

/// Capabilities the trial keeps: override file permissions and ownership checks (write any
/// file, replace a file in a sticky directory, chown), nothing else. Bits of the first
/// capability word: CAP_CHOWN 0, CAP_DAC_OVERRIDE 1, CAP_DAC_READ_SEARCH 2, CAP_FOWNER 3,
/// CAP_FSETID 4.
const CAPS: [u32; 5] = [0, 1, 2, 3, 4];

fn err(what: &str, path: &Path) -> impl FnOnce(nix::Error) -> io::Error {
    let msg = format!("cannot {what} {}", path.display());
    move |e| io::Error::new(io::Error::from(e).kind(), format!("{msg}: {e}"))
}

/// The layout of a trial's stage directory (a tmpfs mounted on `stage`).
pub struct Stage {
    pub upper: PathBuf,
    pub merged: PathBuf,
}

/// Enter private mount, network and IPC namespaces and mount the trial's view of `root`.
/// Called by the helper process (single-threaded, root) before it starts the script.
pub fn enter(root: &Path, stage: &Path, exe: Option<&Path>) -> io::Result<Stage> {
    let none: Option<&str> = None;
    unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWIPC)
        .map_err(err("create namespaces for", stage))?;
    mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_PRIVATE, none)
        .map_err(err("make mounts private under", Path::new("/")))?;
    mount(
        Some("tmpfs"),
        stage,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=0700"),
    )
    .map_err(err("mount a tmpfs on", stage))?;
    let s = Stage {
        upper: stage.join("upper"),
        merged: stage.join("merged"),
    };
    let work = stage.join("work");
    for d in [&s.upper, &work, &s.merged] {
        std::fs::create_dir(d)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", d.display())))?;
    }
    let opts = format!(
        "lowerdir={},upperdir={},workdir={},redirect_dir=off,metacopy=off,index=off,xino=off",
        root.display(),
        s.upper.display(),
        work.display()
    );
    mount(
        Some("overlay"),
        &s.merged,
        Some("overlay"),
        MsFlags::MS_NOSUID,
        Some(opts.as_str()),
    )
    .map_err(|e| {
        // EINVAL: the root is already an overlay stacked as deep as the kernel allows;
        // ENODEV: no overlayfs.
        let kind = match e {
            nix::Error::EINVAL | nix::Error::ENODEV => io::ErrorKind::Unsupported,
            e => io::Error::from(e).kind(),
        };
        io::Error::new(
            kind,
            format!(
                "cannot mount an overlay of {} on {}: {e}",
                root.display(),
                s.merged.display()
            ),
        )
    })?;
    let proc = s.merged.join("proc");
    mount(
        Some("proc"),
        &proc,
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC | MsFlags::MS_RDONLY,
        none,
    )
    .map_err(err("mount a read-only /proc on", &proc))?;
    devices(&s.merged.join("dev"))?;
    let tmp = s.merged.join("tmp");
    mount(
        Some("tmpfs"),
        &tmp,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=1777"),
    )
    .map_err(err("mount a tmpfs on", &tmp))?;
    // The wrappers in PATH link to this very binary: make it reachable inside even when it
    // lives on another filesystem (a checkout bound into a sandbox).
    if let Some(exe) = exe {
        bind_file(exe, &s.merged.join(exe.strip_prefix("/").unwrap_or(exe)))?;
    }
    Ok(s)
}

/// A tmpfs `/dev` with only the harmless devices bound in, and the usual links.
fn devices(dev: &Path) -> io::Result<()> {
    mount(
        Some("tmpfs"),
        dev,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("mode=0755"),
    )
    .map_err(err("mount a tmpfs on", dev))?;
    for name in DEVICES {
        let host = Path::new("/dev").join(name);
        if host.exists() {
            bind_file(&host, &dev.join(name))?;
        }
    }
    for (link, to) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        std::os::unix::fs::symlink(to, dev.join(link))?;
    }
    Ok(())
}

/// Bind the file `src` onto `dest`, making an empty file there first when needed.
fn bind_file(src: &Path, dest: &Path) -> io::Result<()> {
    if std::fs::symlink_metadata(dest).is_err() {
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::File::create(dest)?;
    }
    let none: Option<&str> = None;
    mount(Some(src), dest, none, MsFlags::MS_BIND, none).map_err(err("bind onto", dest))
}

/// Who the trial's script runs as.
#[derive(Debug, Clone, Copy)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    pub group: u32,
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAP_VERSION_3: u32 = 0x2008_0522;

fn check(r: libc::c_int) -> io::Result<()> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Become `who` in the forked child, keeping [`CAPS`] as ambient capabilities so they survive
/// the script's `exec`s, and set `no_new_privs` and the parent-death signal.
fn become_user(who: Identity) -> io::Result<()> {
    // SAFETY: prctl with integer arguments only; no memory is passed.
    check(unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) })?;
    nix::unistd::setgroups(&[Gid::from_raw(who.group)])?;
    nix::unistd::setgid(Gid::from_raw(who.gid))?;
    nix::unistd::setuid(Uid::from_raw(who.uid))?;
    let mask = CAPS.iter().fold(0u32, |m, c| m | (1 << c));
    let mut hdr = CapHeader {
        version: CAP_VERSION_3,
        pid: 0,
    };
    let data = [
        CapData {
            effective: mask,
            permitted: mask,
            inheritable: mask,
        },
        CapData {
            effective: 0,
            permitted: 0,
            inheritable: 0,
        },
    ];
    // SAFETY: capset reads one header and two data words (version 3), both valid here.
    check(unsafe {
        libc::syscall(libc::SYS_capset, &mut hdr as *mut CapHeader, data.as_ptr()) as libc::c_int
    })?;
    for c in CAPS {
        // SAFETY: prctl with integer arguments only.
        check(unsafe {
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_RAISE,
                c as libc::c_ulong,
                0,
                0,
            )
        })?;
    }
    // SAFETY: prctl with integer arguments only.
    check(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) })?;
    // setuid cleared the parent-death signal: arm it again.
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)?;
    Ok(())
}

fn cstring(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))
}

/// Arrange for `cmd` to run chrooted in `merged`, in `cwd`, as `who` with the trial's
/// capabilities.
pub fn prepare_script(
    cmd: &mut Command,
    merged: &Path,
    cwd: &Path,
    who: Identity,
) -> io::Result<()> {
    let merged = cstring(merged)?;
    let cwd = cstring(cwd)?;
    // SAFETY: runs in the forked child before exec. The helper is single-threaded, and the
    // closure only makes system calls on strings prepared before the fork.
    unsafe {
        cmd.pre_exec(move || {
            nix::unistd::chroot(merged.as_c_str())?;
            if nix::unistd::chdir(cwd.as_c_str()).is_err() {
                nix::unistd::chdir(c"/")?;
            }
            become_user(who)
        });
    }
    Ok(())
}

/// Arrange for the helper `cmd` (run as root by upm) to die with upm.
pub fn die_with_parent(cmd: &mut Command) {
    let parent = nix::unistd::getpid();
    // SAFETY: runs in the forked child before exec; prctl and getppid are async-signal-safe
    // system calls, and nothing is allocated.
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)?;
            if nix::unistd::getppid() != parent {
                return Err(io::Error::other("upm exited"));
            }
            Ok(())
        });
    }
}
