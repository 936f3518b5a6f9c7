//! The differential INIT: a client that must start over (a new server, or a log trimmed past
//! its serial: `SERIAL OVERDUE OR INVALID`) usually has most files already. The snapshot's
//! records carry each file's size and mtime, so before a batch of the snapshot is applied,
//! [`prune`] looks at the mirror: a file there with the same size and mtime is not fetched;
//! one with the same size and another mtime is checked with `SUM` (its SHA-256, the content
//! not sent) and only its mtime is set when the hashes agree. Such records are applied as
//! `ATTRIB` (mode, owner); only the files that differ are `GET`. What the snapshot does not
//! name is removed at the INIT's end as before.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use crate::client::link::Link;
use crate::client::place::{place, place_known};
use crate::error::{Result, io};
use crate::proto::Request;
use crate::proto::codec::hex;
use crate::record::{Op, Record};

/// What a batch of the snapshot left unfetched.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Files found the same by size and mtime.
    pub same: u64,
    /// Files found the same by SHA-256 (the mtime set).
    pub summed: u64,
    /// Their bytes, not fetched.
    pub bytes: u64,
}

fn sha256(p: &Path) -> std::io::Result<String> {
    let mut f = File::open(p)?;
    let mut sha = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        match f.read(&mut buf)? {
            0 => return Ok(hex(&sha.finalize())),
            n => sha.update(&buf[..n]),
        }
    }
}

fn set_mtime(p: &Path, ns: i64) -> std::io::Result<()> {
    let t = if ns >= 0 {
        SystemTime::UNIX_EPOCH + Duration::from_nanos(ns as u64)
    } else {
        SystemTime::UNIX_EPOCH - Duration::from_nanos(ns.unsigned_abs())
    };
    File::open(p)?.set_modified(t)
}

/// Turn the FWRITE records of a snapshot batch whose file the mirror `dir` already has into
/// ATTRIB records, asking `SUM` where only the mtime differs.
pub fn prune(link: &mut Link, dir: &Path, records: &mut [(u64, Record)]) -> Result<Pruned> {
    let mut pruned = Pruned::default();
    let mut ask = Vec::new();
    // Whether each parent directory is in the mirror (reached without a symlink), looked at
    // once per directory rather than once per file: the batch's files come by directory,
    // and into an empty mirror none is.
    let mut parents: HashMap<PathBuf, bool> = HashMap::new();
    for (i, (_, r)) in records.iter_mut().enumerate() {
        let (Op::Fwrite, Some(m)) = (r.op, &r.meta) else {
            continue;
        };
        let Some(parent) = r.path.parent() else {
            continue;
        };
        let there = *parents.entry(parent.to_path_buf()).or_insert_with(|| {
            place(dir, &r.path).is_ok_and(|t| {
                t.parent()
                    .and_then(|p| std::fs::symlink_metadata(p).ok())
                    .is_some_and(|m| m.is_dir())
            })
        });
        if !there {
            continue;
        }
        let Ok(target) = place_known(dir, &r.path, &mut |_| true) else {
            continue;
        };
        let Ok(local) = std::fs::symlink_metadata(&target) else {
            continue;
        };
        if !local.is_file() || local.len() != m.size {
            continue;
        }
        if local.mtime() * 1_000_000_000 + local.mtime_nsec() == m.mtime_ns {
            r.op = Op::Attrib;
            pruned.same += 1;
            pruned.bytes += m.size;
        } else {
            ask.push((i, target));
        }
    }
    if ask.is_empty() {
        return Ok(pruned);
    }
    for (i, _) in &ask {
        let (serial, r) = &records[*i];
        link.send(&Request::Sum {
            serial: *serial,
            path: r.path.clone(),
        })?;
    }
    link.flush()?;
    for (i, target) in ask {
        let l = link.line()?;
        // CHANGED: its GET will say so too, and a later record brings it.
        let Some(theirs) = l.strip_prefix("SHA256:") else {
            continue;
        };
        if sha256(&target).is_ok_and(|ours| ours == theirs) {
            let r = &mut records[i].1;
            let m = r.meta.as_ref().expect("an FWRITE has its state");
            set_mtime(&target, m.mtime_ns).map_err(io(&target))?;
            pruned.summed += 1;
            pruned.bytes += m.size;
            r.op = Op::Attrib;
        }
    }
    Ok(pruned)
}
