//! Install directories: shared directories (`/usr/bin`, `/usr/share/man/man1`, …) owned by
//! root, group `install`, mode 1775 — group-writable so every package user can add files, and
//! sticky so none can delete or replace another's.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use nix::unistd::{Gid, Uid, chown};

use super::Error;
use crate::fsutil::on_host;

/// The mode of an install directory: sticky, rwxrwxr-x.
pub const MODE: u32 = 0o1775;

/// What an install directory looks like now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    Missing,
    /// root:install 1775, as it should be.
    Ok,
    /// A directory with the wrong owner, group or mode.
    Wrong {
        uid: u32,
        gid: u32,
        mode: u32,
    },
    /// Something other than a directory (a symlink is left alone: its target is what counts).
    NotDir,
}

impl State {
    pub fn describe(&self) -> String {
        match self {
            State::Missing => "missing".into(),
            State::Ok => "ok".into(),
            State::Wrong { uid, gid, mode } => format!("{uid}:{gid} {mode:04o}"),
            State::NotDir => "not a directory".into(),
        }
    }
}

/// The state of install directory `dir` (as seen inside `root`).
pub fn state(root: &Path, dir: &Path, gid: u32) -> State {
    match std::fs::symlink_metadata(on_host(root, dir)) {
        Err(_) => State::Missing,
        Ok(m) if !m.is_dir() => State::NotDir,
        Ok(m) => {
            let mode = m.mode() & 0o7777;
            if m.uid() == 0 && m.gid() == gid && mode == MODE {
                State::Ok
            } else {
                State::Wrong {
                    uid: m.uid(),
                    gid: m.gid(),
                    mode,
                }
            }
        }
    }
}

/// Make `dir` an install directory, creating it (and missing parents, root 0755) when needed.
/// Returns the state it was in before.
pub fn fix(root: &Path, dir: &Path, gid: u32) -> Result<State, Error> {
    let before = state(root, dir, gid);
    let p = on_host(root, dir);
    match before {
        State::Ok | State::NotDir => return Ok(before),
        State::Missing => std::fs::create_dir_all(&p).map_err(super::io(&p))?,
        State::Wrong { .. } => {}
    }
    make(&p, gid)?;
    Ok(before)
}

/// Turn an existing directory (a host path) into an install directory.
pub fn make(p: &Path, gid: u32) -> Result<(), Error> {
    chown(p, Some(Uid::from_raw(0)), Some(Gid::from_raw(gid)))
        .map_err(|e| super::io(p)(e.into()))?;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(MODE)).map_err(super::io(p))?;
    Ok(())
}

/// Put `dir` back to an ordinary root:root 0755 directory (for `upm installdir remove`).
pub fn unmake(root: &Path, dir: &Path) -> Result<(), Error> {
    let p = on_host(root, dir);
    if !p.is_dir() {
        return Ok(());
    }
    chown(&p, Some(Uid::from_raw(0)), Some(Gid::from_raw(0)))
        .map_err(|e| super::io(&p)(e.into()))?;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).map_err(super::io(&p))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fix_creates_and_reports() {
        if !nix::unistd::geteuid().is_root() {
            // Loudly, like the integration tests; under CI (root) a skip is a failure.
            assert!(
                std::env::var_os("CI").is_none(),
                "fix_creates_and_reports needs root, and CI must run as root"
            );
            eprintln!("*** SKIPPED fix_creates_and_reports: needs root to chown ***");
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let dir = Path::new("/usr/share/man/man1");
        assert_eq!(fix(d.path(), dir, 9999).unwrap(), State::Missing);
        assert_eq!(state(d.path(), dir, 9999), State::Ok);
        assert_eq!(fix(d.path(), dir, 9999).unwrap(), State::Ok);
        unmake(d.path(), dir).unwrap();
        assert!(matches!(
            state(d.path(), dir, 9999),
            State::Wrong { mode: 0o755, .. }
        ));
    }
}
