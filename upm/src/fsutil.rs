//! Small filesystem helpers shared by every part: atomic writes (temp file in the same
//! directory, fsync, rename), so a crash leaves the old file or the new one, never half of one.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

/// Replace `path` with `data` atomically, keeping the old file's permissions when it exists.
pub fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
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
    if let Ok(meta) = fs::metadata(path) {
        fs::set_permissions(tmp.path(), meta.permissions())?;
    }
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    if let Ok(d) = File::open(dir) {
        // Make the rename itself durable; a failure here is not worth failing the write.
        let _ = d.sync_all();
    }
    Ok(())
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
