//! `GET <serial> <path>` → `SIZE:<n>`, the `n` bytes, `SHA256:<hex>`: a file's content, as the
//! record at `serial` announced it. The path is followed through later renames; a file written
//! again, replaced or deleted since answers `CHANGED` (the client waits for the later record).
//! Only a regular file the snapshot holds is ever served — never a path outside the watched
//! trees, never through a symlink.

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

pub fn apply(s: &mut Session<'_>, serial: u64, path: &Path) -> Result<Flow> {
    if !crate::record::plain_absolute(path) {
        return s.refuse(Reply::INVALID_REALTIME_COMMAND);
    }
    // Nothing logged after `serial` (the common case in an INIT): the path is as it was.
    let now = if serial >= s.served.head.get() {
        Some(path.to_path_buf())
    } else {
        wmlog::follow(&s.db, serial, path)?
    };
    let Some(now) = now else {
        return s.say(Reply::CHANGED);
    };
    if snapshot::get(&s.db, &now)?.is_none_or(|m| m.kind != Kind::File) {
        return s.say(Reply::CHANGED);
    }
    let flags = (nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_NONBLOCK).bits();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(&now);
    let Ok(mut file) = file else {
        return s.say(Reply::CHANGED);
    };
    let size = match file.metadata() {
        Ok(m) if m.is_file() => m.len(),
        _ => return s.say(Reply::CHANGED),
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
        eprintln!(
            "mirrord: {}: GET {} sent {size} bytes",
            s.conn.peer(),
            path.display()
        );
    }
    Ok(Flow::Go)
}
