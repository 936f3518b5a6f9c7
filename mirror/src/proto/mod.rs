//! The line protocol between mirrord and fs_mirror, after the original design's: CRLF-terminated
//! lines a person can type over telnet, records in batches opened by `SERIAL:<n>` and closed
//! by `EOF`, file content as `SIZE:<n>`, the bytes, `SHA256:<hex>`. [`codec`] reads and writes
//! lines and requests; [`connection`] buffers them over a socket.

pub mod codec;
pub mod connection;

pub use codec::{Reply, Request};
pub use connection::Connection;

/// Records in one batch, at most (the original design's limit).
pub const BATCH: usize = 1024;
