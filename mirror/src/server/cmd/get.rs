//! `GET <serial> <path>` → `SIZE:<n>`, the `n` bytes, `SHA256:<hex>`: a file's content, as
//! the record at `serial` announced it. The path is followed through later renames; a file written
//! again, replaced or deleted since answers `CHANGED` (the client waits for the later record).
//! Only a regular file the snapshot holds is ever served — never a path outside the watched
//! trees, never through a symlink.
//!
//! The disk may be ahead of the log: a file renamed, replaced or deleted a moment ago, its
//! record not logged yet. Then nothing (or another file) is where the log says the file is,
//! and no later record is there to bring the content; answering `CHANGED` would leave the
//! client waiting for one (a MOVE carries no content), serving the newcomer would put the
//! wrong content under the old name. So the answer waits for the monitor to log what became
//! of the file, and follows it then (see [`open_served`]).

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::error::Result;
use crate::proto::Reply;
use crate::proto::codec::hex;
use crate::record::Kind;
use crate::server::session::{Flow, Session};
use crate::store::snapshot::{self, Id};
use crate::store::wmlog;

/// How long an answer waits for the monitor to log what the disk shows already. It lags by
/// milliseconds; an overflow's rescan holds it for seconds. Past this the connection closes
/// and the client asks again later, from the same record.
const CATCH_UP: Duration = Duration::from_secs(30);

/// What [`open_served`] found for a record.
pub(crate) enum Found {
    /// The file, open for reading.
    File(File),
    /// Changed since: a later record tells what became of it (answer `CHANGED`).
    Changed,
    /// The log did not catch up with the disk in time, or the server stops: close without
    /// an answer, so the client asks again.
    Closing,
}

/// The file a record at `serial` named, open for reading, as `GET`, `SUM` and `DELTA` serve it:
/// the path itself when nothing was logged after `serial` (the common case in an INIT), else
/// followed through later renames; only a regular file the snapshot holds, never through a
/// symlink, and only the one the snapshot knows there (same device and inode). When the disk
/// shows something else there, the monitor has yet to log it: wait for its records, and
/// follow again.
pub(crate) fn open_served(s: &mut Session<'_>, serial: u64, path: &Path) -> Result<Found> {
    let started = Instant::now();
    let mut said = Instant::now();
    loop {
        let Some((now, id)) = logged_as(s, serial, path)? else {
            return Ok(Found::Changed);
        };
        match open_as(&now, id) {
            Opened::File(f) => return Ok(Found::File(f)),
            Opened::Unreadable => return Ok(Found::Changed),
            Opened::Ahead => {}
        }
        if s.shutdown.is_set() {
            return Ok(Found::Closing);
        }
        if started.elapsed() >= CATCH_UP {
            eprintln!(
                "mirrord: {}: {} is not on disk as logged ({}), and nothing was logged about \
                 it for {}s; closing, the client asks again",
                s.conn.peer(),
                path.display(),
                now.display(),
                CATCH_UP.as_secs()
            );
            return Ok(Found::Closing);
        }
        // What this read saw of the log is let go, so the monitor's next records are seen;
        // the answers before this one go out meanwhile, and a long wait is kept alive.
        let seen = wmlog::head(&s.db)?;
        s.reading(false)?;
        s.conn.flush().map_err(s.net())?;
        let keepalive = s.served.keepalive;
        let left = keepalive.saturating_sub(said.elapsed());
        s.served.head.wait_beyond(
            seen,
            left.clamp(Duration::from_millis(1), Duration::from_secs(1)),
        );
        if said.elapsed() >= keepalive {
            s.say(Reply::KEEPALIVE)?;
            said = Instant::now();
        }
        s.reading(true)?;
    }
}

/// Where the log says the file of the record at `serial` is now, with the identity the
/// snapshot knows for it (`None`: changed since, or not a regular file the snapshot holds),
/// read in the session's read transaction, so the two agree.
fn logged_as(s: &Session<'_>, serial: u64, path: &Path) -> Result<Option<(PathBuf, Option<Id>)>> {
    let now = if serial >= s.served.head.get() {
        Some(path.to_path_buf())
    } else {
        wmlog::follow(&s.db, serial, path, || s.served.head.moved())?
    };
    let Some(now) = now else {
        return Ok(None);
    };
    Ok(match snapshot::get_id(&s.db, &now)? {
        Some((m, id)) if m.kind == Kind::File => Some((now, id)),
        _ => None,
    })
}

/// What opening a logged file found on disk.
enum Opened {
    File(File),
    /// Nothing, something else, or another file: the disk is ahead of the log.
    Ahead,
    /// There, but it cannot be read.
    Unreadable,
}

fn open_as(now: &Path, id: Option<Id>) -> Opened {
    let flags = (nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_NONBLOCK).bits();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(now);
    match file {
        Ok(f) => match f.metadata() {
            Ok(m) if m.is_file() && id.is_none_or(|id| id == Id::of(&m)) => Opened::File(f),
            Ok(_) => Opened::Ahead,
            Err(_) => Opened::Unreadable,
        },
        // Gone, a directory above it gone or replaced, or a symlink in its place.
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(nix::libc::ENOENT | nix::libc::ENOTDIR | nix::libc::ELOOP)
            ) =>
        {
            Opened::Ahead
        }
        Err(_) => Opened::Unreadable,
    }
}

/// Files larger than this are sent outside the read transaction of a run of GETs.
const LET_GO: u64 = 256 * 1024;

pub fn apply(s: &mut Session<'_>, serial: u64, path: &Path) -> Result<Flow> {
    serve(s, serial, path, false)
}

/// `GET <serial> <path> META`: the same answer opened by `META:mode=… uid=… gid=… mtime=…`,
/// the state of the file served (for a file whose record carries none).
pub fn with_meta(s: &mut Session<'_>, serial: u64, path: &Path) -> Result<Flow> {
    serve(s, serial, path, true)
}

/// The file a `GET`, `SUM` or `DELTA` of `path` at `serial` serves, or the answer given
/// instead (a refusal, `CHANGED`, or closing).
pub(crate) fn file_to_serve(
    s: &mut Session<'_>,
    serial: u64,
    path: &Path,
) -> Result<std::result::Result<File, Flow>> {
    if !crate::record::plain_absolute(path) {
        return s.refuse(Reply::INVALID_REALTIME_COMMAND).map(Err);
    }
    match open_served(s, serial, path)? {
        Found::File(f) => Ok(Ok(f)),
        Found::Changed => s.say(Reply::CHANGED).map(Err),
        Found::Closing => Ok(Err(Flow::Close)),
    }
}

fn serve(s: &mut Session<'_>, serial: u64, path: &Path, meta: bool) -> Result<Flow> {
    let mut file = match file_to_serve(s, serial, path)? {
        Ok(f) => f,
        Err(answered) => return Ok(answered),
    };
    let Ok(stat) = file.metadata() else {
        return s.say(Reply::CHANGED);
    };
    let size = stat.len();
    if size > LET_GO {
        // A slow client may take its time over this one: the database is not held meanwhile
        // (a reader pins the log's write-ahead file).
        s.reading(false)?;
    }
    let net = s.net();
    let mut send = || -> std::io::Result<()> {
        if meta {
            use std::os::unix::fs::MetadataExt;
            s.conn.write_line(&format!(
                "META:mode={:o} uid={} gid={} mtime={}",
                stat.mode() & 0o7777,
                stat.uid(),
                stat.gid(),
                stat.mtime() * 1_000_000_000 + stat.mtime_nsec()
            ))?;
        }
        s.conn.write_line(&format!("SIZE:{size}"))?;
        let mut sha = Sha256::new();
        let mut left = size;
        // Sized to the file: most are small, and zeroing a large buffer per GET costs more
        // than reading them.
        let mut buf = vec![0u8; (size as usize).clamp(1, 256 * 1024)];
        while left > 0 {
            let want = buf.len().min(left as usize);
            let n = match file.read(&mut buf[..want]) {
                Ok(0) | Err(_) => {
                    // It shrank while being read: the size was promised, so pad; the write
                    // that shrank it is logged and the client fetches it again.
                    buf[..want].fill(0);
                    want
                }
                Ok(n) => n,
            };
            sha.update(&buf[..n]);
            s.conn.write_bytes(&buf[..n])?;
            left -= n as u64;
        }
        s.conn
            .write_line(&format!("SHA256:{}", hex(&sha.finalize())))
    };
    send().map_err(net)?;
    if s.served.verbose {
        // Tests and benchmarks add these up: the content bytes a change cost.
        let shown = path.display();
        s.note(format_args!("GET {shown} sent {size} bytes"));
    }
    Ok(Flow::Go)
}
