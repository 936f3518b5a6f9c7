//! The shared secret of `--secret-file`: read once, refused when others may read it.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::error::{Error, Result, io};

pub fn read(path: &Path) -> Result<Vec<u8>> {
    let meta = std::fs::metadata(path).map_err(io(path))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(Error::Secret {
            path: path.to_path_buf(),
            what: "others may read this secret; run chmod 600 on it".into(),
        });
    }
    let mut s = std::fs::read(path).map_err(io(path))?;
    while s.last().is_some_and(|c| c.is_ascii_whitespace()) {
        s.pop();
    }
    if s.is_empty() {
        return Err(Error::Secret {
            path: path.to_path_buf(),
            what: "the secret is empty; put a long random string in it (e.g. head -c 32 /dev/urandom | base64)".into(),
        });
    }
    Ok(s)
}
