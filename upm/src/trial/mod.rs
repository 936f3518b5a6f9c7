//! The trial run: the install phase run once in a throwaway overlay of the target root, before
//! the real install, to learn exactly which paths it will write — which existing files it will
//! replace or delete, and which existing directories it writes into — while nothing real is
//! touched. The install uses that to find conflicts with other packages before anything is
//! written, to take over files no package owns (the temporary tools of an LFS chroot, a
//! distribution's files), and to make the directories it needs writable.
//!
//! The trial runs in a helper process (this binary again, `upm __trial`), which enters private
//! mount, network and IPC namespaces, mounts a tmpfs holding the overlay's upper layer over the
//! root, and runs the script there as the package user with only the file capabilities that
//! override permission checks (so every write the real install would attempt succeeds and
//! shows in the upper layer), `no_new_privs`, a read-only `/proc` and a `/dev` of harmless
//! devices. It then lists the upper layer on its standard output and exits with the
//! script's status. It works for any installer, static binaries included: it watches the
//! filesystem, not the calls.

mod ns;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub use ns::Identity;

/// The argument that makes this binary the trial helper.
pub const HELPER_ARG: &str = "__trial";

/// What the trial's upper layer holds at a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upper {
    File,
    Symlink,
    Dir,
    /// A directory made anew over one that existed (its old content is hidden).
    OpaqueDir,
    /// A deletion of what the lower layer has there.
    Whiteout,
    /// A device, fifo or socket.
    Other,
}

impl Upper {
    fn code(self) -> u8 {
        match self {
            Upper::File => b'f',
            Upper::Symlink => b'l',
            Upper::Dir => b'd',
            Upper::OpaqueDir => b'o',
            Upper::Whiteout => b'w',
            Upper::Other => b's',
        }
    }

    fn from_code(c: u8) -> Option<Upper> {
        Some(match c {
            b'f' => Upper::File,
            b'l' => Upper::Symlink,
            b'd' => Upper::Dir,
            b'o' => Upper::OpaqueDir,
            b'w' => Upper::Whiteout,
            b's' => Upper::Other,
            _ => return None,
        })
    }
}

/// What to run.
pub struct Spec<'a> {
    /// The target root, on the host.
    pub root: &'a Path,
    /// An empty directory inside the root for the helper's tmpfs (on the host).
    pub stage: &'a Path,
    /// The working directory, inside the root.
    pub cwd: &'a Path,
    pub who: Identity,
    /// The shell to run the script with, inside the root.
    pub shell: &'a Path,
    pub script: &'a str,
    /// The complete environment.
    pub env: &'a [(String, String)],
    /// Where the script's output goes (on the host).
    pub log: &'a Path,
}

/// What the trial saw: every path of the upper layer (inside the root), and how the script
/// ended.
#[derive(Debug)]
pub struct Trial {
    pub status: i32,
    pub paths: BTreeMap<PathBuf, Upper>,
    pub duration: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the trial run of the install could not start: {0}")]
    Start(std::io::Error),
    #[error("the trial run of the install failed to set up: {0}")]
    Setup(String),
    /// This kernel cannot stack an overlay on the root (the root is itself an overlay of an
    /// overlay, or overlayfs is missing).
    #[error("no trial run is possible here: {0}")]
    Unavailable(String),
}

/// The helper's exit code when the overlay cannot be mounted.
const UNAVAILABLE: i32 = 124;

/// Run the trial and collect its upper layer.
pub fn run(spec: &Spec<'_>) -> Result<Trial, Error> {
    let started = Instant::now();
    let exe = std::env::current_exe().map_err(Error::Start)?;
    let mut cmd = Command::new(&exe);
    cmd.arg(HELPER_ARG)
        .arg(spec.root)
        .arg(spec.stage)
        .arg(spec.cwd)
        .arg(spec.who.uid.to_string())
        .arg(spec.who.gid.to_string())
        .arg(spec.who.group.to_string())
        .arg(spec.shell)
        .arg(spec.log)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| {
            // The shim is for the script, not the helper: the helper sets it for the script.
            let k = if k == crate::envvars::LD_PRELOAD {
                crate::envvars::TRIAL_PRELOAD
            } else {
                k.as_str()
            };
            (k, v)
        }))
        .env(crate::envvars::TRIAL, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    ns::die_with_parent(&mut cmd);
    std::fs::create_dir_all(spec.stage).map_err(Error::Start)?;
    let mut child = cmd.spawn().map_err(Error::Start)?;
    if let Some(mut stdin) = child.stdin.take() {
        // A script the helper did not read (it failed first) shows in its error instead.
        let _ = stdin.write_all(spec.script.as_bytes());
    }
    let out = child.wait_with_output().map_err(Error::Start)?;
    let _ = std::fs::remove_dir(spec.stage);
    let (paths, status) = parse(&out.stdout);
    let why = String::from_utf8_lossy(&out.stderr).trim().to_string();
    match status {
        Some(status) => Ok(Trial {
            status,
            paths,
            duration: started.elapsed(),
        }),
        None if out.status.code() == Some(UNAVAILABLE) => Err(Error::Unavailable(why)),
        None => Err(Error::Setup(why)),
    }
}

/// Parse the helper's listing: `CODE PATH \0` records, then `X STATUS \0`.
fn parse(out: &[u8]) -> (BTreeMap<PathBuf, Upper>, Option<i32>) {
    let mut paths = BTreeMap::new();
    let mut status = None;
    for rec in out.split(|b| *b == 0).filter(|r| !r.is_empty()) {
        let (code, rest) = (rec[0], &rec[1..]);
        if code == b'X' {
            status = std::str::from_utf8(rest).ok().and_then(|s| s.parse().ok());
        } else if let Some(kind) = Upper::from_code(code) {
            paths.insert(
                PathBuf::from(std::ffi::OsString::from_vec(rest.to_vec())),
                kind,
            );
        }
    }
    (paths, status)
}

/// When this binary was started as the trial helper, act as it and return its exit code.
pub fn dispatch() -> Option<i32> {
    let mut args = std::env::args_os().skip(1);
    if args.next()? != HELPER_ARG {
        return None;
    }
    let args: Vec<PathBuf> = args.map(PathBuf::from).collect();
    Some(match helper(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{e}");
            if e.kind() == std::io::ErrorKind::Unsupported {
                UNAVAILABLE
            } else {
                125
            }
        }
    })
}

fn num(p: &Path) -> std::io::Result<u32> {
    p.to_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not a number: {}", p.display())))
}

/// The helper: enter the trial's namespaces, run the script, list the upper layer.
fn helper(args: &[PathBuf]) -> std::io::Result<i32> {
    let [root, stage, cwd, uid, gid, group, shell, log] = args else {
        return Err(std::io::Error::other(
            "usage: upm __trial ROOT STAGE CWD UID GID GROUP SHELL LOG",
        ));
    };
    let who = Identity {
        uid: num(uid)?,
        gid: num(gid)?,
        group: num(group)?,
    };
    let mut script = String::new();
    std::io::stdin().read_to_string(&mut script)?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", log.display())))?;
    nix::unistd::fchown(&log, Some(who.uid.into()), Some(who.gid.into()))?;
    let exe = std::env::current_exe().ok();
    let stage = ns::enter(
        root,
        stage,
        exe.as_deref().filter(|_| root == Path::new("/")),
    )?;
    let mut cmd = Command::new(shell);
    if let Some(preload) = std::env::var_os(crate::envvars::TRIAL_PRELOAD) {
        cmd.env(crate::envvars::LD_PRELOAD, preload)
            .env_remove(crate::envvars::TRIAL_PRELOAD);
    }
    cmd.args(["-e", "-c", &script])
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    ns::prepare_script(&mut cmd, &stage.merged, cwd, who)?;
    let status = cmd.status().map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot run {} in the trial: {e}", shell.display()),
        )
    })?;
    let code = status.code().unwrap_or_else(|| {
        128 + std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(0)
    });
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    list(&stage.upper, &mut out)?;
    write!(out, "X{code}\0")?;
    out.flush()?;
    Ok(0)
}

/// Write every entry of the upper layer as `CODE PATH \0` (paths inside the root).
fn list(upper: &Path, out: &mut impl Write) -> std::io::Result<()> {
    let mut stack = vec![upper.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let p = entry.path();
            let m = entry.metadata()?;
            let ft = m.file_type();
            let kind = if ft.is_dir() {
                stack.push(p.clone());
                let opaque = crate::sys::lgetxattr(&p, "trusted.overlay.opaque")?;
                if opaque.as_deref() == Some(b"y") {
                    Upper::OpaqueDir
                } else {
                    Upper::Dir
                }
            } else if ft.is_symlink() {
                Upper::Symlink
            } else if ft.is_file() {
                Upper::File
            } else if ft.is_char_device() && m.rdev() == 0 {
                Upper::Whiteout
            } else {
                Upper::Other
            };
            let inside = Path::new("/").join(p.strip_prefix(upper).unwrap_or(&p));
            out.write_all(&[kind.code()])?;
            out.write_all(inside.as_os_str().as_bytes())?;
            out.write_all(b"\0")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_round_trips_any_name() {
        let mut buf = Vec::new();
        for (c, p) in [
            (b'f', &b"/usr/bin/a b"[..]),
            (b'w', b"/usr/bin/\n\xff"),
            (b'o', b"/etc/x"),
        ] {
            buf.push(c);
            buf.extend_from_slice(p);
            buf.push(0);
        }
        buf.extend_from_slice(b"X3\0");
        let (paths, status) = parse(&buf);
        assert_eq!(status, Some(3));
        assert_eq!(paths.len(), 3);
        assert_eq!(
            paths[&PathBuf::from(std::ffi::OsString::from_vec(b"/usr/bin/\n\xff".to_vec()))],
            Upper::Whiteout
        );
        assert_eq!(paths[Path::new("/etc/x")], Upper::OpaqueDir);
    }

    #[test]
    fn a_helper_that_died_gives_no_status() {
        assert_eq!(parse(b"f/usr/bin/a\0").1, None);
    }
}
