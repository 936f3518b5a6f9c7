//! Where a record's path lands in the mirror directory — or why it must not. A record's path
//! is absolute on the server (`/var/www/html/index.php`); it lands at `DIR/var/www/html/index.php`
//! only if it is plain (no `.`, `..`, empty or NUL components), does not name the client's own
//! files (`DIR/sn`, `DIR/.fs_mirror`), and no directory on the way is a symlink (which could
//! lead outside `DIR`). A refused record is logged and skipped, never applied.

use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// The client's own names at the top of the mirror directory.
pub const RESERVED: [&str; 2] = ["sn", ".fs_mirror"];

/// Why a record's path is refused.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("{0}: not a plain absolute path (it would escape the mirror directory)")]
    NotPlain(String),
    #[error("{0}: names the mirror's own state")]
    Reserved(String),
    #[error("{0}: {1} on the way is a symlink (it could lead outside the mirror directory)")]
    ThroughSymlink(String, String),
}

/// Whether `path` may name something in a mirror at all (before looking at the mirror).
pub fn check(path: &Path) -> Result<(), Refused> {
    let shown = || path.display().to_string();
    if !crate::record::plain_absolute(path) {
        return Err(Refused::NotPlain(shown()));
    }
    let rel = path
        .strip_prefix("/")
        .map_err(|_| Refused::NotPlain(shown()))?;
    if let Some(Component::Normal(first)) = rel.components().next()
        && RESERVED.iter().any(|r| first.as_bytes() == r.as_bytes())
    {
        return Err(Refused::Reserved(shown()));
    }
    Ok(())
}

/// `DIR` + `path`, checked. `known` answers for directories already found to be real
/// directories (a cache of the caller's; it must forget them when the mirror changes shape).
pub fn place_known(
    dir: &Path,
    path: &Path,
    known: &mut dyn FnMut(&Path) -> bool,
) -> Result<PathBuf, Refused> {
    let shown = || path.display().to_string();
    check(path)?;
    let rel = path
        .strip_prefix("/")
        .map_err(|_| Refused::NotPlain(shown()))?;
    let full = dir.join(rel);
    let mut at = dir.to_path_buf();
    let parts: Vec<_> = rel.components().collect();
    for c in &parts[..parts.len() - 1] {
        at.push(c);
        if known(&at) {
            continue;
        }
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(Refused::ThroughSymlink(shown(), at.display().to_string()));
            }
            // Nothing below a missing directory exists either.
            Err(_) => break,
            _ => {}
        }
    }
    Ok(full)
}

/// `DIR` + `path`, checked, looking at every directory on the way.
pub fn place(dir: &Path, path: &Path) -> Result<PathBuf, Refused> {
    place_known(dir, path, &mut |_| false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_refused() {
        let d = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/etc", d.path().join("link")).unwrap();
        for bad in [
            "../x",
            "/a//b",
            "/a/b/",
            "/a/..",
            "/a/../../etc/passwd",
            "/a/./b",
            "relative",
            "/",
            "/sn",
            "/.fs_mirror/t",
            "/link/passwd",
        ] {
            assert!(place(d.path(), Path::new(bad)).is_err(), "{bad} accepted");
        }
        assert_eq!(
            place(d.path(), Path::new("/var/www/x")).unwrap(),
            d.path().join("var/www/x")
        );
        // A symlink as the last component is replaced, not followed: allowed.
        assert!(place(d.path(), Path::new("/link")).is_ok());
    }
}
