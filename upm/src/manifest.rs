//! The manifest: what one install left on disk, path by path — type, mode, owner, size, mtime,
//! sha256 for regular files, link target for symlinks. The tracker builds entries, the
//! database stores them, and `check` and `remove` compare them with what is on disk now.

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::fsutil::{FileKind, on_host};
use crate::pathtext::quoted;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The path as seen inside the target root.
    pub path: PathBuf,
    pub kind: FileKind,
    /// Permission bits including setuid/setgid/sticky.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub mtime: i64,
    pub sha256: Option<String>,
    pub target: Option<PathBuf>,
    /// A directory the package created that was made an install directory, so other packages
    /// can add to it; removing the package removes it only once it is empty.
    pub shared: bool,
}

/// How a path on disk differs from its manifest entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Diff {
    Missing,
    Kind(FileKind),
    Mode(u32),
    Owner(u32, u32),
    Size(u64),
    Sha256,
    Target(PathBuf),
}

impl std::fmt::Display for Diff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Diff::Missing => write!(f, "missing"),
            Diff::Kind(k) => write!(f, "is now a {}", k.name()),
            Diff::Mode(m) => write!(f, "mode is now {m:04o}"),
            Diff::Owner(u, g) => write!(f, "owner is now {u}:{g}"),
            Diff::Size(s) => write!(f, "size is now {s}"),
            Diff::Sha256 => write!(f, "content changed (sha256)"),
            Diff::Target(t) => write!(f, "link now points to {}", quoted(t)),
        }
    }
}

/// The sha256 of a file, in lowercase hex.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 128 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// The sha256 of bytes in memory, in lowercase hex.
pub fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Of the paths recorded before, those neither in `now` nor on disk any more: the rows to
/// drop when an install's new manifest is recorded over an earlier one.
pub fn vanished<'a>(
    root: &Path,
    recorded: impl IntoIterator<Item = &'a Path>,
    now: &[Entry],
) -> Vec<PathBuf> {
    let now: std::collections::HashSet<&Path> = now.iter().map(|e| e.path.as_path()).collect();
    recorded
        .into_iter()
        .filter(|p| !now.contains(p))
        .filter(|p| Entry::read(root, p).ok().flatten().is_none())
        .map(Path::to_path_buf)
        .collect()
}

impl Entry {
    /// Read the entry for `path` (inside `root`) from disk; `None` when it does not exist.
    pub fn read(root: &Path, path: &Path) -> std::io::Result<Option<Entry>> {
        let host = on_host(root, path);
        let m = match std::fs::symlink_metadata(&host) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let kind = FileKind::of(&m.file_type());
        let sha256 = match kind {
            FileKind::File => Some(sha256_file(&host)?),
            _ => None,
        };
        let target = match kind {
            FileKind::Symlink => Some(std::fs::read_link(&host)?),
            _ => None,
        };
        Ok(Some(Entry {
            path: path.to_path_buf(),
            kind,
            mode: m.mode() & 0o7777,
            uid: m.uid(),
            gid: m.gid(),
            size: if kind == FileKind::Dir { 0 } else { m.size() },
            mtime: m.mtime(),
            sha256,
            target,
            shared: false,
        }))
    }

    /// How the path differs now from this entry (empty when it is as installed). Directories
    /// compare by type, mode and owner only.
    pub fn diff(&self, root: &Path) -> std::io::Result<Vec<Diff>> {
        let host = on_host(root, &self.path);
        let m = match std::fs::symlink_metadata(&host) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![Diff::Missing]),
            Err(e) => return Err(e),
        };
        let kind = FileKind::of(&m.file_type());
        if kind != self.kind {
            return Ok(vec![Diff::Kind(kind)]);
        }
        let mut out = Vec::new();
        if kind != FileKind::Symlink && m.mode() & 0o7777 != self.mode {
            out.push(Diff::Mode(m.mode() & 0o7777));
        }
        if (m.uid(), m.gid()) != (self.uid, self.gid) {
            out.push(Diff::Owner(m.uid(), m.gid()));
        }
        match kind {
            FileKind::File => {
                if m.size() != self.size {
                    out.push(Diff::Size(m.size()));
                } else if self.sha256.as_deref() != Some(sha256_file(&host)?.as_str()) {
                    out.push(Diff::Sha256);
                }
            }
            FileKind::Symlink => {
                let t = std::fs::read_link(&host)?;
                if Some(&t) != self.target.as_ref() {
                    out.push(Diff::Target(t));
                }
            }
            _ => {}
        }
        Ok(out)
    }

    pub fn is_setid(&self) -> bool {
        self.kind == FileKind::File && self.mode & 0o6000 != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_and_diff() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("f"), "abc").unwrap();
        std::os::unix::fs::symlink("f", d.path().join("l")).unwrap();
        let e = Entry::read(d.path(), Path::new("/f")).unwrap().unwrap();
        assert_eq!(e.kind, FileKind::File);
        assert_eq!(
            e.sha256.as_deref(),
            Some("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        assert!(e.diff(d.path()).unwrap().is_empty());
        std::fs::write(d.path().join("f"), "abd").unwrap();
        assert_eq!(e.diff(d.path()).unwrap(), vec![Diff::Sha256]);
        let l = Entry::read(d.path(), Path::new("/l")).unwrap().unwrap();
        assert_eq!(l.target, Some(PathBuf::from("f")));
        std::fs::remove_file(d.path().join("f")).unwrap();
        assert_eq!(e.diff(d.path()).unwrap(), vec![Diff::Missing]);
        assert!(Entry::read(d.path(), Path::new("/nope")).unwrap().is_none());
    }
}
