//! `GET <serial> <path>` → `SIZE:<n>`, the `n` bytes, `SHA256:<hex>`: a file's content, as the
//! record at `serial` announced it. The path is followed through later renames; a file written
//! again, replaced or deleted since answers `CHANGED` (the client waits for the later record).
//! Only a regular file the snapshot holds is ever served — never a path outside the watched
//! trees, never through a symlink.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::Result;
use crate::proto::Reply;
use crate::proto::codec::hex;
use crate::record::Kind;
use crate::server::session::{Flow, Session};
use crate::store::{snapshot, wmlog};

/// The file a record at `serial` named, open for reading, as `GET`, `SUM` and `DELTA` serve it:
/// the path itself when nothing was logged after `serial` (the common case in an INIT), else
/// followed through later renames; only a regular file the snapshot holds, never through a
/// symlink. `None` when it changed since (a later record tells what became of it).
pub(crate) fn open_served(s: &Session<'_>, serial: u64, path: &Path) -> Result<Option<File>> {
    let now = if serial >= s.served.head.get() {
        Some(path.to_path_buf())
    } else {
        wmlog::follow(&s.db, serial, path, s.served.head.moved())?
    };
    let Some(now) = now else { return Ok(None) };
    if snapshot::get(&s.db, &now)?.is_none_or(|m| m.kind != Kind::File) {
        return Ok(None);
    }
    let flags = (nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_NONBLOCK).bits();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(&now);
    Ok(file
        .ok()
        .filter(|f| f.metadata().is_ok_and(|m| m.is_file())))
}

pub fn apply(s: &mut Session<'_>, serial: u64, path: &Path) -> Result<Flow> {
    if !crate::record::plain_absolute(path) {
        return s.refuse(Reply::INVALID_REALTIME_COMMAND);
    }
    let Some(mut file) = open_served(s, serial, path)? else {
        return s.say(Reply::CHANGED);
    };
    let Ok(size) = file.metadata().map(|m| m.len()) else {
        return s.say(Reply::CHANGED);
    };
    let net = s.net();
    let mut send = || -> std::io::Result<()> {
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
