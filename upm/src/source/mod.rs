//! Source archives: finding one in the source directories (`/sources` as in LFS, the package's
//! home, `--sources-dir`), verifying its md5 (as the LFS book gives) and/or sha256, and
//! unpacking tar.gz/xz/bz2/zst safely: no entry may land outside the build directory (`../`,
//! absolute paths, symlinks pointing out, links through symlinks), and a refused archive leaves
//! nothing behind.

mod unpack;

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::pathtext::quoted;
use md5::Md5;
use sha2::{Digest, Sha256};

pub use unpack::{Unpacked, unpack};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Io(#[from] crate::fsutil::PathError),
    #[error("source archive {file} not found; looked in: {}", searched.iter().map(|p| quoted(p).to_string()).collect::<Vec<_>>().join(", "))]
    NotFound {
        file: String,
        searched: Vec<PathBuf>,
    },
    #[error(
        "{}: wrong {algo} checksum: the recipe says {expected}, the file has {actual}; \
         the download is corrupt or is another release: fetch it again or fix the recipe",
        quoted(&path)
    )]
    Checksum {
        path: PathBuf,
        algo: &'static str,
        expected: String,
        actual: String,
    },
    #[error("{}: refused entry {entry:?}: {why}; nothing was unpacked", quoted(&archive))]
    Hostile {
        archive: PathBuf,
        entry: String,
        why: &'static str,
    },
    #[error("{}: not a readable tar archive: {source}", quoted(&archive))]
    Corrupt { archive: PathBuf, source: io::Error },
}

pub(crate) use crate::fsutil::io;

/// Find `file` in the first directory of `dirs` that has it.
pub fn find(file: &str, dirs: &[PathBuf]) -> Result<PathBuf, Error> {
    for d in dirs {
        let p = d.join(file);
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(Error::NotFound {
        file: file.into(),
        searched: dirs.to_vec(),
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The md5 and sha256 of a file, in lowercase hex, read once.
pub fn digests(path: &Path) -> Result<(String, String), Error> {
    let mut f = std::fs::File::open(path).map_err(io(path))?;
    let (mut md5, mut sha) = (Md5::new(), Sha256::new());
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f.read(&mut buf).map_err(io(path))?;
        if n == 0 {
            break;
        }
        md5.update(&buf[..n]);
        sha.update(&buf[..n]);
    }
    Ok((hex(&md5.finalize()), hex(&sha.finalize())))
}

/// Check a file against the checksums a recipe gives (either may be absent).
pub fn verify(path: &Path, md5: Option<&str>, sha256: Option<&str>) -> Result<(), Error> {
    if md5.is_none() && sha256.is_none() {
        return Ok(());
    }
    let (m, s) = digests(path)?;
    verify_digests(path, (&m, &s), md5, sha256)
}

/// Check a file's md5 and sha256, already computed, against the expected ones.
pub fn verify_digests(
    path: &Path,
    (m, s): (&str, &str),
    md5: Option<&str>,
    sha256: Option<&str>,
) -> Result<(), Error> {
    for (algo, expected, actual) in [("md5", md5, m), ("sha256", sha256, s)] {
        if let Some(e) = expected
            && !e.eq_ignore_ascii_case(actual)
        {
            return Err(Error::Checksum {
                path: path.to_path_buf(),
                algo,
                expected: e.to_ascii_lowercase(),
                actual: actual.to_string(),
            });
        }
    }
    Ok(())
}

/// Copy a local source directory `src` to `dest` (which must not exist): regular files,
/// directories and symlinks, with their permission bits; anything else is refused.
pub fn copy_dir(src: &Path, dest: &Path) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::symlink_metadata(src).map_err(io(src))?;
    let ft = meta.file_type();
    if ft.is_dir() {
        std::fs::create_dir(dest).map_err(io(dest))?;
        let mut entries: Vec<_> = std::fs::read_dir(src)
            .map_err(io(src))?
            .collect::<Result<_, _>>()
            .map_err(io(src))?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            copy_dir(&e.path(), &dest.join(e.file_name()))?;
        }
        std::fs::set_permissions(
            dest,
            std::fs::Permissions::from_mode(meta.permissions().mode() & 0o7777),
        )
        .map_err(io(dest))?;
        Ok(())
    } else if ft.is_symlink() {
        let target = std::fs::read_link(src).map_err(io(src))?;
        std::os::unix::fs::symlink(target, dest).map_err(io(dest))?;
        Ok(())
    } else if ft.is_file() {
        std::fs::copy(src, dest).map_err(io(dest))?;
        Ok(())
    } else {
        Err(io(src)(std::io::Error::other(
            "not a file, directory or symlink; refusing to copy it",
        ))
        .into())
    }
}
