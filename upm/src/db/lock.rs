//! The root lock: one upm process at a time changes a root. The lock is an `flock` on
//! `var/lib/upm/lock`, so the kernel drops it when its holder dies (even by `kill -9`); the
//! file names the holder so the second process can say who it is waiting for.

use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use super::Error;

pub struct Lock {
    _file: Flock<std::fs::File>,
}

fn open(path: &Path) -> Result<std::fs::File, Error> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| Error::Io {
            path: path.to_path_buf(),
            source: e,
        })
}

pub fn path(root: &Path) -> PathBuf {
    root.join("var/lib/upm/lock")
}

impl Lock {
    /// Take the lock of `root`, or say who holds it.
    pub fn take(root: &Path, what: &str) -> Result<Lock, Error> {
        let p = path(root);
        let file = open(&p)?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(mut f) => {
                let _ = f.set_len(0);
                let _ = f.rewind();
                let _ = write!(f, "{} {what}", std::process::id());
                Ok(Lock { _file: f })
            }
            Err((mut f, _)) => {
                let mut holder = String::new();
                let _ = f.read_to_string(&mut holder);
                Err(Error::Locked {
                    root: root.to_path_buf(),
                    holder: holder.trim().to_string(),
                })
            }
        }
    }

    /// Whether some process holds the lock of `root` right now.
    pub fn held(root: &Path) -> bool {
        let Ok(file) = open(&path(root)) else {
            return false;
        };
        Flock::lock(file, FlockArg::LockExclusiveNonblock).is_err()
    }
}
