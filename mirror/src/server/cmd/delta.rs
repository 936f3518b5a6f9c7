//! `DELTA <serial> <path>`, then `SIG:<n>` and the `n` bytes of the signature of the client's
//! copy → `DELTA:<m>`, the `m` bytes of an rsync-style delta, `SHA256:<hex>` of the whole
//! file as the delta rebuilds it; or `CHANGED` (as for `GET`); or, for a file too large to
//! diff in memory, the `GET` answer (`SIZE:` …). The file is found as `GET` finds it (see
//! [`super::get`]): followed through later renames, only a regular file the snapshot holds.

use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::get::file_to_serve;
use crate::client::delta::{DELTA_MAX, diff};
use crate::error::Result;
use crate::proto::Reply;
use crate::proto::codec::hex;
use crate::server::session::{Flow, Session};

/// The largest signature accepted (that of a [`DELTA_MAX`] file is far smaller).
const SIG_MAX: u64 = 64 << 20;

pub fn apply(s: &mut Session<'_>, serial: u64, path: &Path) -> Result<Flow> {
    let Some(sig) = signature(s)? else {
        return s.refuse(Reply::INVALID_REALTIME_COMMAND);
    };
    let mut file = match file_to_serve(s, serial, path)? {
        Ok(f) => f,
        Err(answered) => return Ok(answered),
    };
    let Ok(size) = file.metadata().map(|m| m.len()) else {
        return s.say(Reply::CHANGED);
    };
    if size > DELTA_MAX {
        return super::get::apply(s, serial, path);
    }
    let mut data = Vec::with_capacity(size as usize);
    if file.read_to_end(&mut data).is_err() {
        // It went away or changed while read: its later record says what became of it.
        return s.say(Reply::CHANGED);
    }
    let delta = match diff(sig, &data) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("mirrord: {}: bad signature for DELTA: {e}", s.conn.peer());
            return s.refuse(Reply::INVALID_REALTIME_COMMAND);
        }
    };
    let sha = hex(&Sha256::digest(&data));
    let net = s.net();
    let mut send = || -> std::io::Result<()> {
        s.conn.write_line(&format!("DELTA:{}", delta.len()))?;
        s.conn.write_bytes(&delta)?;
        s.conn.write_line(&format!("SHA256:{sha}"))
    };
    send().map_err(net)?;
    Ok(Flow::Go)
}

/// The `SIG:<n>` line and its bytes that follow the command; `None` when malformed.
fn signature(s: &mut Session<'_>) -> Result<Option<Vec<u8>>> {
    let line = s.conn.read_line().map_err(s.net())?;
    let Some(n) = line
        .as_deref()
        .and_then(|l| std::str::from_utf8(l).ok())
        .and_then(|l| l.strip_prefix("SIG:"))
        .and_then(|n| n.trim().parse::<u64>().ok())
        .filter(|n| *n <= SIG_MAX)
    else {
        return Ok(None);
    };
    let mut sig = Vec::with_capacity(n as usize);
    s.conn
        .read_bytes(n, &mut |b| {
            sig.extend_from_slice(b);
            Ok(())
        })
        .map_err(s.net())?;
    Ok(Some(sig))
}
