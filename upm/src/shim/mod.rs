//! The LD_PRELOAD shim as upm uses it. The library (the `upm-shim` crate) is built by
//! `build.rs` and embedded in the `upm` binary; [`library`] writes it into a target root
//! (`/var/lib/upm/lib/libupm_shim-HASH.so`, root's, mode 0644, so chrooted package users can
//! load it), so copying `upm` into an LFS chroot stays the whole set-up.
//!
//! A [`Session`] runs any command with the shim active and reads its log back:
//!
//! ```ignore
//! // The log lives in the package's home; the package user's processes may reopen it.
//! let shim = shim::Session::start(root, &home_inside.join(".upm/shim.log"), Some((uid, gid)))?;
//! let mut env = setup::environment(user, jobs, &recipe.env);
//! env.extend(shim.env());            // LD_PRELOAD, UPM_SHIM_LOG, UPM_SHIM_FD
//! runner::run(&Job { env: &env, .. }, &progress)?;
//! let seen: Touched = shim.finish(root, cfg)?;   // what the command changed, paths in the root
//! ```
//!
//! Root steps the shim records go to the file named by `UPM_STEPS` (in the environment
//! [`crate::ops::setup::environment`] makes), like the wrappers'. The shim is on unless the
//! settings say `track.shim = false` or upm runs with `UPM_SHIM=0` ([`enabled`]).

pub mod log;

use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::envvars;
use crate::fsutil::{PathError, io, on_host};
use crate::track::Touched;

/// The library, as `build.rs` built it.
pub const LIBRARY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/libupm_shim.so"));

/// Where the library is written, inside a root.
pub const DIR: &str = "/var/lib/upm/lib";

/// Whether installs load the shim: `track.shim` in the settings, unless `UPM_SHIM=0`.
pub fn enabled(cfg: &Config) -> bool {
    match std::env::var(envvars::SHIM_SWITCH) {
        Ok(v) if v == "0" || v == "off" || v == "false" => false,
        _ => cfg.track_shim,
    }
}

/// The library's file name: its content's hash in it, so a new upm never rewrites a library a
/// running process has mapped.
fn file_name() -> &'static str {
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(|| {
        use sha2::Digest;
        let hash = sha2::Sha256::digest(LIBRARY);
        let hex: String = hash[..6].iter().map(|b| format!("{b:02x}")).collect();
        format!("libupm_shim-{hex}.so")
    })
}

/// Write the library into `root` (once); its path inside the root.
pub fn library(root: &Path) -> Result<PathBuf, PathError> {
    let inside = Path::new(DIR).join(file_name());
    let host = on_host(root, &inside);
    if std::fs::metadata(&host).is_ok_and(|m| m.len() == LIBRARY.len() as u64 && m.uid() == 0) {
        return Ok(inside);
    }
    let dir = on_host(root, Path::new(DIR));
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).map_err(io(&dir))?;
    crate::fsutil::write_atomic_new(&host, LIBRARY, crate::fsutil::NewFile::root(0o644))
        .map_err(io(&host))?;
    Ok(inside)
}

/// The libraries the shim itself needs besides the C library (Rust's unwinder).
const NEEDS: &[&str] = &["libgcc_s.so.1"];

/// Where a root's dynamic loader finds libraries.
const LIB_DIRS: &[&str] = &[
    "/lib",
    "/lib64",
    "/usr/lib",
    "/usr/lib64",
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib/aarch64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
];

/// Why the shim cannot be loaded in `root`, if it cannot: a library it needs is missing (an
/// LFS chroot before its GCC is built has no `libgcc_s.so.1`), and every program would fail
/// to start with it preloaded.
pub fn unusable(root: &Path) -> Option<String> {
    for lib in NEEDS {
        let found = LIB_DIRS.iter().any(|d| {
            crate::fsutil::resolve_in_root(root, &Path::new(d).join(lib))
                .is_some_and(|p| p.is_file())
        });
        if !found {
            return Some(format!(
                "the LD_PRELOAD shim needs {lib}, which {} does not have",
                root.display()
            ));
        }
    }
    None
}

/// A shim log being written: the library loaded, the log handed down by descriptor.
pub struct Session {
    /// The log on the host.
    host: PathBuf,
    /// The log inside the root (for processes that closed the descriptor).
    inside: PathBuf,
    lib: PathBuf,
    file: std::fs::File,
    /// How much of the log [`Session::take`] has read.
    read: u64,
}

impl Session {
    /// Write the library into `root` and start an empty log at `log` (inside the root), owned
    /// by `owner` (uid, gid) when given so a package user's processes can reopen it.
    pub fn start(root: &Path, log: &Path, owner: Option<(u32, u32)>) -> Result<Session, PathError> {
        let lib = library(root)?;
        let host = on_host(root, log);
        let open = || {
            std::fs::OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(true)
                .open(&host)
        };
        let file = match owner {
            Some((uid, gid)) => crate::runner::as_fs_user(uid, gid, open),
            None => open(),
        }
        .map_err(io(&host))?;
        drop(file);
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(&host)
            .map_err(io(&host))?;
        inheritable(&file).map_err(io(&host))?;
        Ok(Session {
            host,
            inside: log.to_path_buf(),
            lib,
            file,
            read: 0,
        })
    }

    /// The variables that load the shim and point it at this log.
    pub fn env(&self) -> Vec<(String, String)> {
        let m = self.file.metadata().ok();
        let (dev, ino) = m.map_or((0, 0), |m| (m.dev(), m.ino()));
        vec![
            (envvars::LD_PRELOAD.into(), self.lib.display().to_string()),
            (envvars::SHIM_LOG.into(), self.inside.display().to_string()),
            (
                envvars::SHIM_FD.into(),
                format!("{}:{dev}:{ino}", self.file.as_raw_fd()),
            ),
        ]
    }

    /// What the log gained since the last call, whole records only (a record is one write),
    /// read as [`Session::finish`] reads it; the log goes on. `upm record` takes it at each
    /// command's end, so each command gets the paths it changed.
    pub fn take(&mut self, root: &Path, cfg: &Config) -> Result<Touched, PathError> {
        use std::io::{Read, Seek, SeekFrom};
        let mut f = std::fs::File::open(&self.host).map_err(io(&self.host))?;
        f.seek(SeekFrom::Start(self.read)).map_err(io(&self.host))?;
        let mut data = Vec::new();
        f.read_to_end(&mut data).map_err(io(&self.host))?;
        let whole = data.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        self.read += whole as u64;
        Ok(log::touched(root, cfg, &data[..whole]))
    }

    /// Stop handing the log down and read what it holds: the paths changed, inside the root,
    /// under the tracked trees of `cfg`.
    pub fn finish(self, root: &Path, cfg: &Config) -> Result<Touched, PathError> {
        drop(self.file);
        let data = std::fs::read(&self.host).map_err(io(&self.host))?;
        Ok(log::touched(root, cfg, &data))
    }
}

/// Let children inherit `file` (std opens everything close-on-exec).
fn inheritable(file: &std::fs::File) -> std::io::Result<()> {
    use nix::fcntl::{FcntlArg, FdFlag, fcntl};
    fcntl(file, FcntlArg::F_SETFD(FdFlag::empty()))?;
    Ok(())
}

/// The variables for the install phase's trial run: the shim loaded and logging to `log`
/// (inside the root, so what it writes lands in the throwaway overlay), no descriptor.
pub fn trial_env(root: &Path, log: &Path) -> Result<Vec<(String, String)>, PathError> {
    let lib = library(root)?;
    Ok(vec![
        (envvars::LD_PRELOAD.into(), lib.display().to_string()),
        (envvars::SHIM_LOG.into(), log.display().to_string()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_reads_each_whole_record_once() {
        use std::io::Write;
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::create_dir_all(root.join("usr/bin")).unwrap();
        std::fs::create_dir_all(root.join("var/log")).unwrap();
        let cfg = Config::defaults(root.join("etc/upm/upm.toml"));
        let mut s = Session::start(root, Path::new("/var/log/shim.log"), None).unwrap();
        let line = |path: &str| {
            upm_rootstep::Record::new("create", b"", path.as_bytes())
                .line()
                .unwrap()
        };
        let mut log = std::fs::OpenOptions::new()
            .append(true)
            .open(root.join("var/log/shim.log"))
            .unwrap();
        log.write_all(&line("/usr/bin/a")).unwrap();
        let half = line("/usr/bin/b");
        log.write_all(&half[..4]).unwrap();
        let first = s.take(root, &cfg).unwrap();
        assert_eq!(first.appeared, [PathBuf::from("/usr/bin/a")].into());
        // The half-written record is read once it is whole, and nothing twice.
        log.write_all(&half[4..]).unwrap();
        let second = s.take(root, &cfg).unwrap();
        assert_eq!(second.appeared, [PathBuf::from("/usr/bin/b")].into());
        assert!(s.take(root, &cfg).unwrap().changed.is_empty());
    }

    #[test]
    fn the_embedded_library_exports_the_hooks() {
        assert!(LIBRARY.starts_with(b"\x7fELF"));
        for sym in [&b"renameat2"[..], b"fchownat", b"syscall", b"__openat_2"] {
            assert!(
                LIBRARY.windows(sym.len()).any(|w| w == sym),
                "{}",
                String::from_utf8_lossy(sym)
            );
        }
    }

    #[test]
    fn a_root_without_the_unwinder_cannot_load_it() {
        let d = tempfile::tempdir().unwrap();
        assert!(unusable(d.path()).unwrap().contains("libgcc_s.so.1"));
        std::fs::create_dir_all(d.path().join("usr/lib")).unwrap();
        std::os::unix::fs::symlink("usr/lib", d.path().join("lib")).unwrap();
        std::fs::write(d.path().join("usr/lib/libgcc_s.so.1"), "").unwrap();
        assert_eq!(unusable(d.path()), None);
    }

    #[test]
    fn the_library_is_written_once_as_roots_readable_file() {
        let d = tempfile::tempdir().unwrap();
        let p = library(d.path()).unwrap();
        assert!(p.starts_with(DIR));
        let m = std::fs::metadata(on_host(d.path(), &p)).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o644);
        assert_eq!(m.len(), LIBRARY.len() as u64);
        assert_eq!(library(d.path()).unwrap(), p);
    }
}
