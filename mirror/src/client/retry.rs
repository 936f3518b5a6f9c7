//! What fs_mirror does when it cannot go on: a lost connection is retried quickly (the server
//! may just be restarting), a fault of the backup host itself — a full disk, a permission
//! refused, a read-only mount — stops applying at the record that failed, says which file,
//! why and what to do, and is retried with a growing pause (1 s doubling to 60 s) until the
//! cause is mended. Nothing is lost meanwhile: `sn` only moves past records carried out and
//! synced, so the retry resumes from the last one applied.

use std::path::Path;
use std::time::Duration;

use crate::error::Error;

/// Pauses that double from `first` up to `cap`.
pub struct Backoff {
    first: Duration,
    cap: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(first: Duration, cap: Duration) -> Backoff {
        Backoff {
            first,
            cap,
            next: first,
        }
    }

    /// The pause to take now; the next one is twice as long, up to the cap.
    pub fn step(&mut self) -> Duration {
        let now = self.next;
        self.next = (self.next * 2).min(self.cap);
        now
    }

    pub fn reset(&mut self) {
        self.next = self.first;
    }
}

/// Whether an error is the backup host's own (its disk, its permissions), not the network's
/// or the server's: every I/O error of the client names a local path.
pub fn local(err: &Error) -> bool {
    matches!(err, Error::Io { .. })
}

/// What to do about a local fault, by its errno.
pub fn advice(err: &Error, datadir: &Path) -> String {
    let Error::Io { source, .. } = err else {
        return String::new();
    };
    let dir = datadir.display();
    use nix::libc;
    match source.raw_os_error() {
        Some(libc::ENOSPC) => format!(
            "the disk holding {dir} is full: free space there (df -h {dir}) or give the mirror a bigger disk"
        ),
        Some(libc::EDQUOT) => format!("the disk quota of {dir}'s owner is used up: raise it"),
        Some(libc::EACCES) | Some(libc::EPERM) => format!(
            "permission refused: run fs_mirror as root (it sets owners) or make {dir} its own; \
             an immutable file or directory (lsattr, chattr -i) refuses even root"
        ),
        Some(libc::EROFS) => format!("{dir} is on a read-only mount: remount it read-write"),
        Some(libc::EIO) => format!("the disk holding {dir} reports I/O errors: check it (dmesg)"),
        _ => format!("mend the cause under {dir}"),
    }
}

/// The message for a local fault: what failed, after which record, what to do, when again.
pub fn local_message(
    err: &Error,
    datadir: &Path,
    applied: Option<(String, u64)>,
    pause: Duration,
) -> String {
    let at = match applied {
        Some((_, serial)) => format!("stopped applying after serial {serial}"),
        None => "stopped applying".to_string(),
    };
    format!(
        "fs_mirror: cannot apply a record: {err}; {at} (nothing is skipped: sn stays at what is \
         on disk); {}; retrying in {}s",
        advice(err, datadir),
        pause.as_secs()
    )
}

/// Remove what a failed batch left half-written in `DIR/.fs_mirror` (its temporary files hold
/// space a full disk needs back); `applied` stays, and so do the directories new files are
/// made in ([`crate::client::spread`]), emptied.
pub fn clear_temps(datadir: &Path) {
    let tmp = datadir.join(".fs_mirror");
    let Ok(rd) = std::fs::read_dir(&tmp) else {
        return;
    };
    for e in rd.flatten() {
        if e.file_name() == "applied" {
            continue;
        }
        let p = e.path();
        let _ = match e.file_type() {
            Ok(t) if t.is_dir() && crate::client::spread::is_spread_dir(&e.file_name()) => {
                std::fs::read_dir(&p).map(|rd| {
                    for e in rd.flatten() {
                        let _ = crate::client::reaper::remove(&e.path());
                    }
                })
            }
            Ok(t) if t.is_dir() => std::fs::remove_dir_all(&p),
            _ => std::fs::remove_file(&p),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_up_to_the_cap_and_start_over_after_a_reset() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        let got: Vec<u64> = (0..9).map(|_| b.step().as_secs()).collect();
        assert_eq!(got, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        b.reset();
        assert_eq!(b.step(), Duration::from_secs(1));
    }

    #[test]
    fn a_full_disk_is_local_and_says_what_to_do() {
        let e = Error::Io {
            path: "/data/m/.fs_mirror/t3".into(),
            source: std::io::Error::from_raw_os_error(nix::libc::ENOSPC),
        };
        assert!(local(&e));
        let m = local_message(
            &e,
            Path::new("/data/m"),
            Some(("s".into(), 41)),
            Duration::from_secs(4),
        );
        for want in [
            "/data/m/.fs_mirror/t3",
            "after serial 41",
            "df -h /data/m",
            "4s",
        ] {
            assert!(m.contains(want), "{want} not in {m}");
        }
        let net = Error::Net {
            peer: "h:2123".into(),
            source: std::io::ErrorKind::ConnectionReset.into(),
        };
        assert!(!local(&net));
    }
}
