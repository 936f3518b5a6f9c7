//! Large files by delta, rsync's way (with the `fast_rsync` crate): when a file to fetch is at
//! least `--delta-min` bytes and the mirror already holds a copy, the client sends the
//! signature of its copy (`DELTA <serial> <path>`, `SIG:<n>` and the bytes) and the server
//! answers only what differs (`DELTA:<n>`, the bytes, `SHA256:<hex>` of the whole new file),
//! or the whole file as for `GET` when that is cheaper, or `CHANGED`.
//!
//! Requests are pipelined, so the mirror's copy may be replaced before the answer arrives: the
//! signature is taken from a hard link of the copy made when asking (the **base**, under
//! `DIR/.fs_mirror/`); since the mirror replaces files by rename, never in place, the base
//! keeps the content the signature describes. The rebuilt file is checked against the
//! server's SHA-256 before it is handed on (and renamed into place by the caller).

use std::path::{Path, PathBuf};

use fast_rsync::{Signature, SignatureOptions};
use sha2::{Digest, Sha256};

use crate::proto::codec::hex;

/// Files above this are always fetched whole (a delta holds the file in memory).
pub const DELTA_MAX: u64 = 1 << 30;

/// The default `--delta-min`.
pub const DELTA_MIN: u64 = 1 << 20;

/// The signature's strong hash length in bytes (MD4 truncated; the SHA-256 of the result
/// catches what it misses).
const HASH_SIZE: u32 = 8;

/// The block size for a file of `len` bytes: about its square root (rsync's rule), a
/// multiple of 8, between 1 KiB and 128 KiB.
pub fn block_size(len: u64) -> u32 {
    let root = (len as f64).sqrt() as u64;
    (root.clamp(1024, 128 * 1024) & !7) as u32
}

/// The signature of `data`.
pub fn signature(data: &[u8]) -> Vec<u8> {
    Signature::calculate(
        data,
        SignatureOptions {
            block_size: block_size(data.len() as u64),
            crypto_hash_size: HASH_SIZE,
        },
    )
    .into_serialized()
}

/// The delta that turns the file `signature` describes into `data` (server side).
pub fn diff(signature: Vec<u8>, data: &[u8]) -> Result<Vec<u8>, String> {
    let sig = Signature::deserialize(signature).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    fast_rsync::diff(&sig.index(), data, &mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

/// `base` with `delta` applied, checked against `sha256`; `None` when it does not match.
pub fn rebuild(base: &[u8], delta: &[u8], sha256: &str) -> Result<Option<Vec<u8>>, String> {
    let mut out = Vec::new();
    fast_rsync::apply_limited(base, delta, &mut out, DELTA_MAX as usize)
        .map_err(|e| e.to_string())?;
    Ok((hex(&Sha256::digest(&out)) == sha256).then_some(out))
}

/// The mirror's copy as it was when a delta was asked for: a hard link under
/// `DIR/.fs_mirror/`, removed when dropped.
pub struct Base {
    pub path: PathBuf,
}

impl Drop for Base {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// When to ask for a delta.
pub struct Deltas {
    /// The smallest file sent by delta; `None`: never.
    min: Option<u64>,
    tmp: PathBuf,
    n: u64,
}

impl Deltas {
    /// `tmp`: the client's own directory in the mirror (`DIR/.fs_mirror`), on the mirror's
    /// filesystem so a base is a hard link.
    pub fn new(min: Option<u64>, tmp: &Path) -> Deltas {
        Deltas {
            min,
            tmp: tmp.to_path_buf(),
            n: 0,
        }
    }

    /// The base and its signature when the mirror's copy at `local` is worth a delta.
    pub fn prepare(&mut self, local: &Path) -> Option<(Base, Vec<u8>)> {
        let min = self.min?;
        let m = std::fs::symlink_metadata(local).ok()?;
        if !m.is_file() || m.len() < min || m.len() > DELTA_MAX {
            return None;
        }
        self.n += 1;
        let base = Base {
            path: self
                .tmp
                .join(format!("base{}.{}", std::process::id(), self.n)),
        };
        let _ = std::fs::remove_file(&base.path);
        std::fs::hard_link(local, &base.path).ok()?;
        let data = std::fs::read(&base.path).ok()?;
        Some((base, signature(&data)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_middle_travels_as_a_small_delta_and_rebuilds_exactly() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let old: Vec<u8> = (0..4_000_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let mut new = old.clone();
        for b in &mut new[1_000_000..1_100_000] {
            *b = b.wrapping_add(1);
        }
        new.extend_from_slice(b"and a tail");
        let sig = signature(&old);
        let d = diff(sig, &new).unwrap();
        assert!(d.len() < 150_000, "delta of {} bytes", d.len());
        let sha = hex(&Sha256::digest(&new));
        assert_eq!(rebuild(&old, &d, &sha).unwrap().as_deref(), Some(&new[..]));
        // Against another base, the check refuses the result.
        let mut other = old.clone();
        other[5] ^= 1;
        assert_eq!(rebuild(&other, &d, &sha).unwrap(), None);
        assert_eq!(block_size(0), 1024);
        assert_eq!(block_size(64 << 20), 8192);
        assert_eq!(block_size(1 << 40), 128 * 1024);
    }
}
