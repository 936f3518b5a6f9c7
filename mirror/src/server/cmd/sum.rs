//! `SUM <serial> <path>` → `SHA256:<hex>` (or `CHANGED`): the SHA-256 of a file's content as
//! the record at `serial` announced it, found as `GET` finds it (followed through later
//! renames, only a regular file the snapshot holds, never through a symlink), without sending
//! it. A differential INIT asks it for a file the client has with the same size but another
//! mtime: the same hash, and only the mtime is set; another, and the client `GET`s it.

use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::get::file_to_serve;
use crate::error::Result;
use crate::proto::Reply;
use crate::proto::codec::hex;
use crate::server::session::{Flow, Session};

pub fn apply(s: &mut Session<'_>, serial: u64, path: &Path) -> Result<Flow> {
    let mut file = match file_to_serve(s, serial, path)? {
        Ok(f) => f,
        Err(answered) => return Ok(answered),
    };
    let mut sha = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => sha.update(&buf[..n]),
            Err(_) => return s.say(Reply::CHANGED),
        }
    }
    if s.served.verbose {
        eprintln!("mirrord: {}: SUM {}", s.conn.peer(), path.display());
    }
    s.say(&format!("SHA256:{}", hex(&sha.finalize())))
}
