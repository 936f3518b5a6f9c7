//! One file per command of the protocol; each takes the session and answers on its
//! connection.

pub mod auth;
pub mod delta;
pub mod get;
pub mod init;
pub mod next;
pub mod sn;
pub mod start;
pub mod sum;

use crate::error::Result;
use crate::proto::{BATCH, Reply};
use crate::record::Record;
use crate::server::session::Session;

/// Send one batch: `SERIAL:<serial>`, the records, `EOF`.
pub(crate) fn send_batch<'r>(
    s: &mut Session<'_>,
    serial: u64,
    records: impl Iterator<Item = &'r Record>,
) -> Result<()> {
    let net = s.net();
    let write = || -> std::io::Result<()> {
        s.conn.write_line(&format!("SERIAL:{serial}"))?;
        for r in records.take(BATCH) {
            s.conn.write_line(&r.line())?;
        }
        s.conn.write_line(Reply::EOF)
    };
    write().map_err(net)
}
