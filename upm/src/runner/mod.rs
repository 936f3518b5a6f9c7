//! Running a phase: `SHELL -e -c SCRIPT` as the package user (or root, for root commands)
//! inside the target root, with stdin from /dev/null, a clean environment, and the output going
//! to the phase's log file. The shell is bash when the root has `/bin/bash` (the books' commands
//! are bash: brace expansion, `[[`), `/bin/sh` otherwise, or the one the recipe names. On a
//! terminal a progress line shows the phase, the time spent and the last line of the log;
//! otherwise one plain line per phase. Each phase runs in a process group of its own, watched
//! by a guard process ([`guard`]): when the phase ends, or upm dies, nothing it started is left
//! running.

pub mod guard;
mod missing;
mod os;
mod progress;

use std::path::{Path, PathBuf};

use crate::fsutil::io;
use crate::pathtext::quoted;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub use os::{Identity, as_fs_user, enter};
pub use progress::Progress;

/// One script to run.
pub struct Job<'a> {
    /// What the progress display calls it (`zlib configure`).
    pub label: String,
    pub script: &'a str,
    pub who: Identity,
    /// The target root the job runs in (chroot when not `/`).
    pub root: &'a Path,
    /// The working directory, inside the root.
    pub cwd: &'a Path,
    /// The complete environment.
    pub env: &'a [(String, String)],
    /// The log file, as this process opens it (on the host).
    pub log: &'a Path,
    /// The shell to run the script with (a path inside the root); `None`: see [`shell`].
    pub shell: Option<&'a str>,
}

/// How a job ended.
#[derive(Debug, Clone)]
pub struct Ran {
    /// The exit status, or 128+signal.
    pub status: i32,
    pub duration: Duration,
}

impl Ran {
    pub fn success(&self) -> bool {
        self.status == 0
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Io(#[from] crate::fsutil::PathError),
    #[error("cannot start the {label} phase: {source}")]
    Spawn {
        label: String,
        source: std::io::Error,
    },
    #[error(
        "cannot start the {label} phase: {what} {} does not exist in {} (phases run `{program} -e -c SCRIPT` there); install it in that root",
        quoted(path), quoted(root), program = quoted(program)
    )]
    Missing {
        label: String,
        /// "the program", "the interpreter", "the working directory".
        what: &'static str,
        /// The missing path, inside the root.
        path: PathBuf,
        root: PathBuf,
        program: PathBuf,
    },
}

/// The shell a job runs under (`SHELL -e -c SCRIPT`), as a path inside its root: the job's
/// own, else `/bin/bash` when the root has it, else `/bin/sh`.
pub fn shell(root: &Path, wanted: Option<&str>) -> PathBuf {
    match wanted {
        Some(s) => PathBuf::from(s),
        None if crate::fsutil::resolve_in_root(root, Path::new("/bin/bash"))
            .is_some_and(|p| p.is_file()) =>
        {
            PathBuf::from("/bin/bash")
        }
        None => PathBuf::from("/bin/sh"),
    }
}

/// Run a job to its end, showing progress.
pub fn run(job: &Job<'_>, progress: &Progress) -> Result<Ran, Error> {
    let shell = shell(job.root, job.shell);
    // The package user's logs are its own files.
    let open = || {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(job.log)
    };
    let log = if job.who.uid == 0 {
        open()
    } else {
        as_fs_user(job.who.uid, job.who.gid, open)
    }
    .map_err(io(job.log))?;
    let err_log = log.try_clone().map_err(io(job.log))?;
    let mut cmd = Command::new(&shell);
    cmd.args(["-e", "-c", job.script])
        .env_clear()
        .envs(job.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err_log);
    let spawn_err = |source| Error::Spawn {
        label: job.label.clone(),
        source,
    };
    os::prepare(&mut cmd, job.root, job.cwd, job.who).map_err(spawn_err)?;
    let mut guard = guard::Guard::start(job.root, job.who.uid).map_err(|e| Error::Spawn {
        label: job.label.clone(),
        source: std::io::Error::new(e.kind(), format!("its guard (/proc/self/exe): {e}")),
    })?;
    let start = Instant::now();
    let mut child = cmd.spawn().map_err(|e| start_failed(job, &shell, e))?;
    guard.started(child.id());
    let waited = progress.wait(&job.label, child.id(), job.log);
    // What the phase left in its group goes with it, while the group id is still its own.
    os::end_group(child.id());
    let status = child.wait();
    guard.group_ended();
    drop(guard);
    waited.map_err(spawn_err)?;
    let status = status.map_err(spawn_err)?;
    let status = match (
        status.code(),
        std::os::unix::process::ExitStatusExt::signal(&status),
    ) {
        (Some(c), _) => c,
        (None, Some(s)) => 128 + s,
        (None, None) => 1,
    };
    let ran = Ran {
        status,
        duration: start.elapsed(),
    };
    progress.done(&job.label, &ran);
    Ok(ran)
}

/// The error for a phase that could not start: what is missing in the root, when that is why.
fn start_failed(job: &Job<'_>, shell: &Path, e: std::io::Error) -> Error {
    let missing = match e.raw_os_error() {
        Some(nix::libc::ENOENT | nix::libc::ENOTDIR | nix::libc::ELOOP) => {
            missing::find(job.root, shell, job.cwd)
        }
        _ => None,
    };
    match missing {
        Some((path, what)) => Error::Missing {
            label: job.label.clone(),
            what,
            path,
            root: job.root.to_path_buf(),
            program: shell.to_path_buf(),
        },
        None => Error::Spawn {
            label: job.label.clone(),
            source: e,
        },
    }
}

/// The last non-empty line of a log (for progress and error messages).
pub fn last_line(log: &Path) -> Option<String> {
    tail(log, 1).pop()
}

/// The last `n` non-empty lines of a log.
pub fn tail(log: &Path, n: usize) -> Vec<String> {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(log) else {
        return Vec::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let want = (n as u64 * 400).max(4096).min(len);
    if f.seek(SeekFrom::Start(len - want)).is_err() {
        return Vec::new();
    }
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let lines: Vec<String> = text
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    lines[lines.len().saturating_sub(n)..].to_vec()
}
