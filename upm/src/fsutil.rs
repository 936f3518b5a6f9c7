//! Small filesystem helpers shared by every part: the one error type for a failed filesystem
//! call ([`PathError`]: the path and the cause, made with [`io`]); atomic writes (temp file in
//! the same directory, fsync, rename), so a crash leaves the old file or the new one, never
//! half of one, and the new one has the old one's owner, group and mode; mapping paths between
//! a root and the host, and following symlinks the way a process chrooted in a root would.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::pathtext::quoted;

/// A filesystem call that failed, with the path it failed on. Every part's error type holds
/// one (`Io(#[from] PathError)`), so every filesystem error upm reports names its file.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", quoted(path))]
pub struct PathError {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

impl PathError {
    /// The kind of the underlying error (`NotFound`, `PermissionDenied`, ...).
    pub fn kind(&self) -> io::ErrorKind {
        self.source.kind()
    }
}

/// The error maker for a call on `path`: `fs::read(p).map_err(io(p))?`.
pub fn io(path: &Path) -> impl FnOnce(io::Error) -> PathError + '_ {
    move |source| PathError {
        path: path.to_path_buf(),
        source,
    }
}

/// Owner, group and mode of a file [`write_atomic_new`] creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewFile {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

impl NewFile {
    /// root:root with `mode`.
    pub fn root(mode: u32) -> NewFile {
        NewFile {
            mode,
            uid: 0,
            gid: 0,
        }
    }
}

/// Replace `path` with `data` atomically. The file it replaces keeps its owner, group and
/// mode; a new file is 0644, owned by whoever this process makes files as.
pub fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    write_atomic_inner(path, data, None)
}

/// [`write_atomic`], with the owner, group and mode a new file gets.
pub fn write_atomic_new(path: &Path, data: &[u8], new: NewFile) -> io::Result<()> {
    write_atomic_inner(path, data, Some(new))
}

fn write_atomic_inner(path: &Path, data: &[u8], new: Option<NewFile>) -> io::Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt, fchown};
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    // A missing directory is reported as such, not as a failure to make a temp file in it.
    fs::metadata(dir)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".upm-tmp-")
        .tempfile_in(dir)?;
    tmp.write_all(data)?;
    let (mode, owner) = match (fs::metadata(path), new) {
        (Ok(m), _) => (m.mode() & 0o7777, Some((m.uid(), m.gid()))),
        (Err(_), Some(n)) => (n.mode, Some((n.uid, n.gid))),
        (Err(_), None) => (0o644, None),
    };
    // Owner first: a chown clears setuid and setgid bits, which the mode then sets again.
    if let Some((uid, gid)) = owner {
        fchown(tmp.as_file(), Some(uid), Some(gid))?;
    }
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(mode))?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    if let Ok(d) = File::open(dir) {
        // Make the rename itself durable; a failure here is not worth failing the write.
        let _ = d.sync_all();
    }
    Ok(())
}

/// Where `path` (inside `root`) leads when a process chrooted there opens it: symlinks are
/// followed inside the root (an absolute target starts again at the root). The host path of
/// what it names, or `None` when some part of it does not exist (or the links loop).
pub fn resolve_in_root(root: &Path, path: &Path) -> Option<std::path::PathBuf> {
    use std::ffi::OsString;
    use std::path::Component;
    fn push_rev(todo: &mut Vec<OsString>, p: &Path) {
        let parts: Vec<OsString> = p
            .components()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(n.to_os_string()),
                Component::ParentDir => Some("..".into()),
                _ => None,
            })
            .collect();
        todo.extend(parts.into_iter().rev());
    }
    let mut todo = Vec::new();
    push_rev(&mut todo, path);
    let mut cur = std::path::PathBuf::from("/");
    let mut links = 0;
    while let Some(part) = todo.pop() {
        if part == ".." {
            cur.pop();
            continue;
        }
        let next = cur.join(&part);
        let host = on_host(root, &next);
        let meta = fs::symlink_metadata(&host).ok()?;
        if !meta.file_type().is_symlink() {
            cur = next;
            continue;
        }
        links += 1;
        if links > 40 {
            return None;
        }
        let target = fs::read_link(&host).ok()?;
        if target.is_absolute() {
            cur = std::path::PathBuf::from("/");
        }
        push_rev(&mut todo, &target);
    }
    Some(on_host(root, &cur))
}

/// Map a path inside the target root to the path this process opens.
pub fn on_host(root: &Path, path: &Path) -> std::path::PathBuf {
    root.join(path.strip_prefix("/").unwrap_or(path))
}

/// The path inside the target root of a path this process sees (the inverse of [`on_host`]);
/// a path outside the root is returned as it is.
pub fn in_root(root: &Path, host: &Path) -> std::path::PathBuf {
    match host.strip_prefix(root) {
        Ok(rest) => Path::new("/").join(rest),
        Err(_) => host.to_path_buf(),
    }
}

/// `p` made absolute against the working directory and cleaned lexically (`.` and `..`
/// resolved without touching the filesystem, so it works for paths inside another root).
pub fn absolute(p: &Path) -> std::path::PathBuf {
    let joined = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(p)
    };
    let mut out = std::path::PathBuf::from("/");
    for c in joined.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::Normal(n) => out.push(n),
            _ => {}
        }
    }
    out
}

/// The type of a filesystem object, as manifests and change lists name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileKind {
    File,
    Dir,
    Symlink,
    CharDev,
    BlockDev,
    Fifo,
    Socket,
}

impl FileKind {
    pub fn of(ft: &fs::FileType) -> FileKind {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_dir() {
            FileKind::Dir
        } else if ft.is_symlink() {
            FileKind::Symlink
        } else if ft.is_char_device() {
            FileKind::CharDev
        } else if ft.is_block_device() {
            FileKind::BlockDev
        } else if ft.is_fifo() {
            FileKind::Fifo
        } else if ft.is_socket() {
            FileKind::Socket
        } else {
            FileKind::File
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            FileKind::File => "file",
            FileKind::Dir => "dir",
            FileKind::Symlink => "symlink",
            FileKind::CharDev => "chardev",
            FileKind::BlockDev => "blockdev",
            FileKind::Fifo => "fifo",
            FileKind::Socket => "socket",
        }
    }

    pub fn from_name(s: &str) -> Option<FileKind> {
        [
            FileKind::File,
            FileKind::Dir,
            FileKind::Symlink,
            FileKind::CharDev,
            FileKind::BlockDev,
            FileKind::Fifo,
            FileKind::Socket,
        ]
        .into_iter()
        .find(|k| k.name() == s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    #[test]
    fn atomic_writes_keep_owner_group_and_mode() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        write_atomic(&p, b"one").unwrap();
        assert_eq!(fs::metadata(&p).unwrap().mode() & 0o7777, 0o644);
        fs::set_permissions(&p, fs::Permissions::from_mode(0o640)).unwrap();
        let root = nix::unistd::geteuid().is_root();
        if root {
            std::os::unix::fs::chown(&p, Some(1), Some(42)).unwrap();
        }
        write_atomic(&p, b"two").unwrap();
        let m = fs::metadata(&p).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(m.mode() & 0o7777, 0o640);
        if root {
            assert_eq!((m.uid(), m.gid()), (1, 42));
        } else {
            eprintln!(
                "*** SKIPPED the owner half of atomic_writes_keep_owner_group_and_mode: needs root ***"
            );
        }
        let q = d.path().join("g");
        let me = NewFile {
            mode: 0o600,
            uid: nix::unistd::geteuid().as_raw(),
            gid: nix::unistd::getegid().as_raw(),
        };
        write_atomic_new(&q, b"x", me).unwrap();
        assert_eq!(fs::metadata(&q).unwrap().mode() & 0o7777, 0o600);
    }

    #[test]
    fn resolving_follows_links_inside_the_root() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        fs::create_dir_all(r.join("usr/bin")).unwrap();
        fs::write(r.join("usr/bin/dash"), "").unwrap();
        std::os::unix::fs::symlink("usr/bin", r.join("bin")).unwrap();
        std::os::unix::fs::symlink("/bin/dash", r.join("usr/bin/sh")).unwrap();
        std::os::unix::fs::symlink("../../../../loop", r.join("loop")).unwrap();
        assert_eq!(
            resolve_in_root(r, Path::new("/bin/sh")),
            Some(r.join("usr/bin/dash"))
        );
        assert_eq!(
            resolve_in_root(r, Path::new("/bin/../../usr")),
            Some(r.join("usr"))
        );
        assert_eq!(resolve_in_root(r, Path::new("/bin/bash")), None);
        assert_eq!(resolve_in_root(r, Path::new("/loop")), None);
    }

    #[test]
    fn a_path_error_names_its_path_unambiguously() {
        let p = Path::new(OsStr::from_bytes(b"/nonexistent/a b\xff"));
        let e = std::fs::read(p).map_err(io(p)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert_eq!(
            e.to_string(),
            r"$'/nonexistent/a b\xff': No such file or directory (os error 2)"
        );
        assert_eq!(e.path, p);
    }
}
