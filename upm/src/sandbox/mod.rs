//! The overlay sandbox: run commands as root against a throwaway copy of this system.
//!
//! Each command runs in a new mount namespace where an overlay has the host `/` as its lower
//! layer and the sandbox's own upper directory above it, with `/proc`, `/dev`, a tmpfs `/tmp`
//! and chosen read-only binds, and `chroot`s into it. What the command needs from the host's
//! `/tmp` — the directory it is started in and its program (a checkout under `/tmp`) — is
//! bound read-only over the tmpfs at the same place, and so are binds whose source or
//! destination is under `/tmp`. The host is never written. The upper
//! directory holds every change the commands made, which makes it the ground truth tests compare
//! upm's manifests with, and what `upm sandbox` summarises. Commands run one after another share
//! the upper directory (so state carries over); the namespace, and with it every mount, goes
//! away when a command exits. The directories are removed on drop unless kept.

mod changes;
mod ns;

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output};
use std::sync::Arc;

pub use changes::{Change, ChangeKind};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "the sandbox needs root: it mounts an overlay in a new mount namespace (run it as root, e.g. with sudo)"
    )]
    NeedsRoot,
    #[error(
        "overlayfs is not available on this kernel (no 'overlay' in /proc/filesystems): load it with 'modprobe overlay'"
    )]
    NoOverlay,
    #[error("sandbox: {0}")]
    Io(#[from] crate::fsutil::PathError),
    #[error("sandbox: cannot {step}: {source}")]
    Setup {
        step: &'static str,
        source: io::Error,
    },
    /// A step of entering the sandbox, with the paths it was at.
    #[error("sandbox: cannot {what}: {source}")]
    Enter { what: String, source: io::Error },
    #[error("sandbox: cannot start {program} (inside the sandbox): {source}")]
    Spawn { program: String, source: io::Error },
    #[error("sandbox: bad path {}: {why}", quoted(&path))]
    BadPath { path: PathBuf, why: &'static str },
}

use crate::fsutil::io;
use crate::pathtext::quoted;

/// A host directory shown read-only inside the sandbox.
#[derive(Debug, Clone)]
pub struct Bind {
    pub src: PathBuf,
    /// Where it appears inside the sandbox (absolute).
    pub dest: PathBuf,
}

impl Bind {
    /// Parse `SRC[:DEST]`; DEST defaults to SRC's absolute path.
    pub fn parse(spec: &str) -> Result<Bind, Error> {
        let (src, dest) = match spec.split_once(':') {
            Some((s, d)) => (PathBuf::from(s), Some(PathBuf::from(d))),
            None => (PathBuf::from(spec), None),
        };
        let src = std::fs::canonicalize(&src).map_err(io(&src))?;
        let dest = dest.unwrap_or_else(|| src.clone());
        if !dest.is_absolute() {
            return Err(Error::BadPath {
                path: dest,
                why: "a bind destination must be an absolute path",
            });
        }
        Ok(Bind { src, dest })
    }
}

#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Keep the sandbox's directories here (and reuse them if they exist) instead of a
    /// temporary directory removed on drop.
    pub keep: Option<PathBuf>,
    pub binds: Vec<Bind>,
    /// Where temporary sandboxes are made (default `/var/tmp`).
    pub temp_parent: Option<PathBuf>,
}

pub struct Sandbox {
    dir: PathBuf,
    keep: bool,
    upper: PathBuf,
    merged: PathBuf,
    /// The plan without mount points and binds (`mounts` fills them in for each command).
    plan: ns::Plan,
    mounts: Mounts,
    /// The directory commands start in (as this process sees it).
    cwd: PathBuf,
    /// Mount points the sandbox had to create in the upper directory (not changes).
    own_paths: Vec<PathBuf>,
}

/// The read-only binds, with the mount points under `/tmp` they need (the tmpfs is empty, so
/// the child makes them), as paths inside the sandbox.
#[derive(Debug, Clone, Default)]
struct Mounts {
    /// Mount points to make in the tmpfs, parents first; whether a file.
    points: Vec<(PathBuf, bool)>,
    /// (host source, path inside the sandbox)
    binds: Vec<(PathBuf, PathBuf)>,
}

impl Mounts {
    fn add(&mut self, src: &Path, dest: &Path) {
        if let Ok(rest) = dest.strip_prefix("/tmp") {
            let mut at = PathBuf::from("/tmp");
            let n = rest.components().count();
            for (i, c) in rest.components().enumerate() {
                at.push(c);
                let file = i + 1 == n && !src.is_dir();
                if !self.points.iter().any(|(p, _)| *p == at) {
                    self.points.push((at.clone(), file));
                }
            }
        }
        self.binds.push((src.to_path_buf(), dest.to_path_buf()));
    }

    /// Whether `p` is visible through a bind already.
    fn covers(&self, p: &Path) -> bool {
        self.binds.iter().any(|(_, d)| p.starts_with(d))
    }
}

/// The entry of the host's `/tmp` holding `p` (`/tmp/upm` for `/tmp/upm/target/debug/upm`),
/// if `p` is under `/tmp`.
fn tmp_entry(p: &Path) -> Option<PathBuf> {
    let first = p.strip_prefix("/tmp").ok()?.components().next()?;
    Some(Path::new("/tmp").join(first))
}

fn cstring(p: &Path) -> Result<CString, Error> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| Error::BadPath {
        path: p.to_path_buf(),
        why: "it contains a NUL byte",
    })
}

/// Check that this process can make sandboxes.
pub fn preflight() -> Result<(), Error> {
    if !nix::unistd::geteuid().is_root() {
        return Err(Error::NeedsRoot);
    }
    let fs =
        std::fs::read_to_string("/proc/filesystems").map_err(io(Path::new("/proc/filesystems")))?;
    if !fs
        .lines()
        .any(|l| l.split_whitespace().last() == Some("overlay"))
    {
        return Err(Error::NoOverlay);
    }
    Ok(())
}

impl Sandbox {
    pub fn new(opts: &Options) -> Result<Sandbox, Error> {
        preflight()?;
        let (dir, keep) = match &opts.keep {
            Some(d) => {
                std::fs::create_dir_all(d).map_err(io(d))?;
                (std::fs::canonicalize(d).map_err(io(d))?, true)
            }
            None => {
                let parent = opts
                    .temp_parent
                    .clone()
                    .unwrap_or_else(|| PathBuf::from("/var/tmp"));
                let d = tempfile::Builder::new()
                    .prefix("upm-sandbox-")
                    .tempdir_in(&parent)
                    .map_err(io(&parent))?;
                (d.keep(), false)
            }
        };
        let upper = dir.join("upper");
        let work = dir.join("work");
        let merged = dir.join("merged");
        for d in [&upper, &work, &merged] {
            std::fs::create_dir_all(d).map_err(io(d))?;
        }
        for p in [&upper, &work] {
            if p.as_os_str()
                .as_bytes()
                .iter()
                .any(|b| matches!(b, b',' | b':' | b'\\'))
            {
                return Err(Error::BadPath {
                    path: p.clone(),
                    why: "overlay directories may not contain ',', ':' or '\\'",
                });
            }
        }
        let mut own_paths = Vec::new();
        let mut mounts = Mounts::default();
        for b in &opts.binds {
            let rel = b.dest.strip_prefix("/").unwrap_or(&b.dest);
            // A mount point missing on the host is made in the upper layer, and not reported
            // (under /tmp, the child makes it in the tmpfs).
            if !b.dest.starts_with("/tmp") && std::fs::symlink_metadata(&b.dest).is_err() {
                let mut created = PathBuf::from("/");
                let mut first_new = None;
                for c in rel.components() {
                    created.push(c);
                    if first_new.is_none() && std::fs::symlink_metadata(&created).is_err() {
                        first_new = Some(created.clone());
                    }
                }
                let point = upper.join(rel);
                if b.src.is_dir() {
                    std::fs::create_dir_all(&point).map_err(io(&point))?;
                } else {
                    if let Some(parent) = point.parent() {
                        std::fs::create_dir_all(parent).map_err(io(parent))?;
                    }
                    std::fs::write(&point, b"").map_err(io(&point))?;
                }
                own_paths.extend(first_new);
            }
            mounts.add(&b.src, &b.dest);
        }
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
        let opts_text = format!(
            "lowerdir=/,upperdir={},workdir={},redirect_dir=off,metacopy=off,index=off",
            upper.display(),
            work.display()
        );
        let plan = ns::Plan {
            overlay_opts: CString::new(opts_text).map_err(|_| Error::BadPath {
                path: upper.clone(),
                why: "it contains a NUL byte",
            })?,
            merged: cstring(&merged)?,
            proc: cstring(&merged.join("proc"))?,
            dev: cstring(&merged.join("dev"))?,
            tmp: cstring(&merged.join("tmp"))?,
            points: Vec::new(),
            binds: Vec::new(),
            cwd: cstring(&cwd)?,
        };
        Ok(Sandbox {
            dir,
            keep,
            upper,
            merged,
            plan,
            mounts,
            cwd,
            own_paths,
        })
    }

    /// The mounts for `cmd`: the sandbox's binds, and what it needs from the host's `/tmp`
    /// (the entry holding its working directory and the one holding its program), read-only.
    fn mounts_for(&self, cmd: &Command) -> Mounts {
        let mut m = Mounts::default();
        let start = cmd.get_current_dir().unwrap_or(&self.cwd);
        let program = Path::new(cmd.get_program());
        let mut needed = vec![self.cwd.clone()];
        if program.components().count() > 1 {
            needed.push(start.join(program));
        }
        for p in needed {
            let Ok(p) = std::fs::canonicalize(&p) else {
                continue;
            };
            if let Some(entry) = tmp_entry(&p)
                && !m.covers(&entry)
                && !self.mounts.covers(&entry)
            {
                m.add(&entry, &entry);
            }
        }
        // The sandbox's own binds last, so one inside such an entry is not hidden by it.
        for (src, dest) in &self.mounts.binds {
            m.add(src, dest);
        }
        m
    }

    /// The child's plan for these mounts.
    fn plan(&self, m: &Mounts) -> Result<ns::Plan, Error> {
        let inside = |p: &Path| self.merged.join(p.strip_prefix("/").unwrap_or(p));
        let mut plan = self.plan.clone();
        for (p, file) in &m.points {
            plan.points.push((cstring(&inside(p))?, *file));
        }
        for (src, dest) in &m.binds {
            plan.binds.push((cstring(src)?, cstring(&inside(dest))?));
        }
        Ok(plan)
    }

    /// What the child was doing when it failed, with its paths.
    fn failed_step(&self, m: &Mounts, step: u8, i: usize) -> String {
        let merged = quoted(&self.merged);
        let bind = |i: usize| {
            m.binds.get(i).map_or_else(String::new, |(src, dest)| {
                format!("{} at {}", quoted(src), quoted(dest))
            })
        };
        match step {
            ns::STEP_OVERLAY => format!(
                "mount the overlay on {merged} (upper directory {})",
                quoted(&self.upper)
            ),
            ns::STEP_PROC => format!("mount /proc on {merged}/proc"),
            ns::STEP_DEV => format!("bind /dev on {merged}/dev"),
            ns::STEP_TMP => format!("mount a tmpfs on {merged}/tmp"),
            ns::STEP_POINT => format!(
                "make the mount point {} in the sandbox's /tmp",
                m.points
                    .get(i)
                    .map_or(String::new(), |p| quoted(&p.0).to_string())
            ),
            ns::STEP_BIND => format!("bind {} read-only", bind(i)),
            ns::STEP_BIND_RO => format!("make the bind of {} read-only", bind(i)),
            ns::STEP_CHROOT => format!("chroot into {merged}"),
            n => format!("{} (sandbox {})", ns::step_name(n), quoted(&self.dir)),
        }
    }

    /// The directory holding every change made inside the sandbox.
    pub fn upper(&self) -> &Path {
        &self.upper
    }

    /// The sandbox's own directory (upper, work and merged live in it).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Start `cmd` inside the sandbox, as root, with the caller's environment and stdio.
    pub fn spawn(&self, mut cmd: Command) -> Result<Child, Error> {
        let program = cmd.get_program().to_string_lossy().into_owned();
        let mounts = self.mounts_for(&cmd);
        let plan = Arc::new(self.plan(&mounts)?);
        let report = ns::prepare(&mut cmd, plan).map_err(|source| Error::Setup {
            step: "create a pipe",
            source,
        })?;
        let spawned = cmd.spawn();
        drop(cmd);
        match spawned {
            Ok(child) => Ok(child),
            Err(source) => match report.last_step() {
                // Every step passed: the command itself could not be run.
                (ns::STEP_EXEC, _) => Err(Error::Spawn { program, source }),
                (step, i) => Err(Error::Enter {
                    what: self.failed_step(&mounts, step, i),
                    source,
                }),
            },
        }
    }

    /// Run `cmd` inside the sandbox and wait for it.
    pub fn status(&self, cmd: Command) -> Result<ExitStatus, Error> {
        let mut child = self.spawn(cmd)?;
        child.wait().map_err(|source| Error::Setup {
            step: "wait for the command",
            source,
        })
    }

    /// Run `cmd` inside the sandbox, capturing its output.
    pub fn output(&self, mut cmd: Command) -> Result<Output, Error> {
        cmd.stdout(std::process::Stdio::piped());
        cmd.stderr(std::process::Stdio::piped());
        self.spawn(cmd)?
            .wait_with_output()
            .map_err(|source| Error::Setup {
                step: "wait for the command",
                source,
            })
    }

    /// Every change the sandbox's commands made so far, sorted by path.
    pub fn changes(&self) -> Result<Vec<Change>, Error> {
        changes::scan(&self.upper, Path::new("/"), &self.own_paths)
            .map_err(|(path, source)| Error::Io(crate::fsutil::PathError { path, source }))
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if !self.keep {
            // Nothing is mounted here any more: the mounts lived in the commands' namespaces.
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
