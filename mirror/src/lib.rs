//! upm's file system mirror, after the original design's mirrord/fs_mirror: the same watcher that
//! tracks installs ([`upm_watch`]) follows a host's trees, and a backup host keeps a copy in
//! near real time.
//!
//! - [`fs_info`]: what to mirror — identities of included and excluded trees.
//! - mirrord ([`daemon`]): boots by walking the trees (watch before list) into the
//!   [`store`]'s snapshot, then the [`monitor`] turns events into serial-numbered wmLog records;
//!   the [`server`] serves clients the line [`proto`]col: the snapshot (`INIT`), the records
//!   after a serial (`SN:`, `NEXT`), file content (`GET`); [`ctl`] changes what it watches
//!   while it runs and tells how it stands.
//! - fs_mirror ([`client`]): resumes from its `sn` file or starts over, and hands each batch
//!   to an fs_sync back-end that applies it under its directory or reports it.
//!
//! This crate does not link the package manager: a backup host needs only `fs_mirror`.

pub mod client;
pub mod ctl;
pub mod daemon;
pub mod error;
pub mod fs_info;
pub mod head;
pub mod log;
pub mod monitor;
pub mod overflow;
pub mod proto;
pub mod record;
pub mod secret;
pub mod server;
pub mod store;

pub use error::{Error, Result};
