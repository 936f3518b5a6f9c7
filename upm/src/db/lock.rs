//! The root lock: one upm process at a time changes a root. The lock is an `flock` on
//! `var/lib/upm/lock`, so the kernel drops it when its holder dies (even by `kill -9`); the
//! file names the holder (one line: pid and command) so the second process can say who it is
//! waiting for; a reader that looks before the holder has written its line looks again.

use std::io::{Read, Seek};
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
        .map_err(|e| crate::fsutil::io(path)(e).into())
}

pub fn path(root: &Path) -> PathBuf {
    root.join("var/lib/upm/lock")
}

impl Lock {
    /// Take the lock of `root`, or say who holds it.
    pub fn take(root: &Path, what: &str) -> Result<Lock, Error> {
        let p = path(root);
        let mut file = open(&p)?;
        // The holder writes its name just after taking the lock: a second process that looks
        // in between finds the previous holder's name (a process that is gone) or nothing, and
        // looks again. It takes the lock itself if the holder finished meanwhile.
        for _ in 0..200 {
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(f) => return Ok(Lock::holding(f, what)),
                Err((f, _)) => {
                    file = f;
                    if let Some(holder) = live_holder(&mut file) {
                        return Err(Error::Locked {
                            root: root.to_path_buf(),
                            holder,
                        });
                    }
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
            }
        }
        Err(Error::Locked {
            root: root.to_path_buf(),
            holder: format!("not named in {}", p.display()),
        })
    }

    /// Write this process's pid and command into the lock file: one line, written at once,
    /// then the file cut to it, so a reader sees a whole line (the old one or this one).
    fn holding(file: Flock<std::fs::File>, what: &str) -> Lock {
        use std::os::unix::fs::FileExt;
        let line = format!("{} {what}\n", std::process::id());
        // Naming the holder is a courtesy to a waiting upm; the lock is held either way.
        if file.write_all_at(line.as_bytes(), 0).is_ok() {
            let _ = file.set_len(line.len() as u64);
        }
        Lock { _file: file }
    }

    /// Whether some process holds the lock of `root` right now.
    pub fn held(root: &Path) -> bool {
        // Read-only, so a user who may not write the root can still ask.
        let Ok(file) = std::fs::File::open(path(root)) else {
            return false;
        };
        Flock::lock(file, FlockArg::LockExclusiveNonblock).is_err()
    }
}

/// The holder named in the lock file, if it is a whole line naming a running process.
fn live_holder(file: &mut std::fs::File) -> Option<String> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.read_to_string(&mut text).ok()?;
    let (line, _) = text.split_once('\n')?;
    let pid: i32 = line.split_whitespace().next()?.parse().ok()?;
    let alive = match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        Ok(()) | Err(nix::errno::Errno::EPERM) => true,
        Err(_) => false,
    };
    alive.then(|| line.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileExt;

    #[test]
    fn a_waiting_upm_skips_a_dead_holders_name_and_reads_the_new_one() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("var/lib/upm")).unwrap();
        let p = path(d.path());
        // The previous holder (a pid no process can have) left its name; the new holder has
        // the lock but has not written its own yet.
        std::fs::write(&p, "4194305 upm install old\n").unwrap();
        let held = Flock::lock(open(&p).unwrap(), FlockArg::LockExclusiveNonblock).unwrap();
        let line = format!("{} upm install new\n", std::process::id());
        let writer = std::thread::spawn(move || {
            held.write_all_at(line.as_bytes(), 0).unwrap();
            held.set_len(line.len() as u64).unwrap();
            held
        });
        let e = Lock::take(d.path(), "upm remove x").err().unwrap();
        let _held = writer.join().unwrap();
        assert!(
            e.to_string()
                .contains(&format!("{} upm install new)", std::process::id())),
            "{e}"
        );
    }
}
