//! Signing keys for binary archives (ed25519): a root's own key pair under `etc/upm/`
//! (`signing.key`, root-only, and `signing.pub`), and the public keys it trusts in
//! `etc/upm/trusted-keys/*.pub`. An archive's signature sits beside it (`ARCHIVE.sig`) and
//! covers the sha256 of the archive's bytes, so nothing in the archive is read before the
//! signature checks out.
//!
//! Text formats, one line each: a public key `upm-ed25519 BASE64 COMMENT`, a secret key
//! `upm-ed25519-secret BASE64`, a signature `upm-signature-1 KEYID BASE64`. A key's id is the
//! first 16 hex digits of the sha256 of its 32 public bytes.

use std::path::{Path, PathBuf};

use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::fsutil::{NewFile, io, on_host};
use crate::pathtext::quoted;

/// The secret key, inside a root.
pub const SECRET: &str = "/etc/upm/signing.key";
/// The public key, inside a root.
pub const PUBLIC: &str = "/etc/upm/signing.pub";
/// The trusted public keys, inside a root.
pub const TRUSTED_DIR: &str = "/etc/upm/trusted-keys";

const PUBLIC_TAG: &str = "upm-ed25519";
const SECRET_TAG: &str = "upm-ed25519-secret";
const SIG_TAG: &str = "upm-signature-1";
/// What is signed: this prefix and the sha256 of the archive.
const SIGNED_PREFIX: &[u8] = b"upm binary archive v1\n";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Io(#[from] crate::fsutil::PathError),
    #[error(
        "{} exists already; this root has a signing key (`upm key show`). Give --force to \
         replace it (archives signed with the old key then no longer verify where only it is trusted)",
        quoted(path)
    )]
    Exists { path: PathBuf },
    #[error("no signing key in {}: run `upm key generate` first", quoted(path))]
    NoKey { path: PathBuf },
    #[error("{}: not a upm {what} ({why})", quoted(path))]
    Bad {
        path: PathBuf,
        what: &'static str,
        why: String,
    },
    #[error(
        "{what} is not signed: no signature {}; refused, nothing was written. Export it again \
         with `upm export`, which writes the signature beside the archive",
        quoted(sig)
    )]
    Unsigned { what: String, sig: PathBuf },
    #[error(
        "{what} is signed by key {key}, which this root does not trust; refused, nothing was \
         written. If you trust that key, copy its .pub file (`upm key show` on the build host) \
         and run `upm key trust FILE`"
    )]
    Untrusted { what: String, key: String },
    #[error(
        "{what}: the signature does not match (the archive was changed after it was signed, or \
         the signature belongs to another archive); refused, nothing was written"
    )]
    BadSignature { what: String },
}

/// A public key and its comment.
#[derive(Debug, Clone)]
pub struct PublicKey {
    pub key: VerifyingKey,
    pub comment: String,
}

impl PublicKey {
    /// The key's id: the first 16 hex digits of the sha256 of its bytes.
    pub fn id(&self) -> String {
        key_id(&self.key)
    }

    /// The key as the one line of a `.pub` file.
    pub fn line(&self) -> String {
        format!(
            "{PUBLIC_TAG} {} {}\n",
            b64().encode(self.key.as_bytes()),
            self.comment
        )
    }

    /// Parse a `.pub` file's text (`path` names it in errors).
    pub fn parse(text: &str, path: &Path) -> Result<PublicKey, Error> {
        let bad = |why: &str| Error::Bad {
            path: path.to_path_buf(),
            what: "public key",
            why: why.into(),
        };
        let line = text.lines().next().unwrap_or("");
        let mut parts = line.splitn(3, ' ');
        if parts.next() != Some(PUBLIC_TAG) {
            return Err(bad(&format!("it does not start with `{PUBLIC_TAG}`")));
        }
        let bytes = b64()
            .decode(parts.next().unwrap_or(""))
            .map_err(|_| bad("the key is not base64"))?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| bad("the key is not 32 bytes"))?;
        let key = VerifyingKey::from_bytes(&bytes).map_err(|_| bad("not an ed25519 key"))?;
        Ok(PublicKey {
            key,
            comment: parts.next().unwrap_or("").trim().to_string(),
        })
    }
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

fn key_id(k: &VerifyingKey) -> String {
    let d = Sha256::digest(k.as_bytes());
    d.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// Make this root's key pair (`--force` replaces an existing one) and trust its public key.
pub fn generate(root: &Path, comment: &str, force: bool) -> Result<PublicKey, Error> {
    let secret = on_host(root, Path::new(SECRET));
    if secret.exists() && !force {
        return Err(Error::Exists { path: secret });
    }
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed)
        .map_err(|e| io(&secret)(std::io::Error::other(format!("no randomness: {e}"))))?;
    let signing = SigningKey::from_bytes(&seed);
    let public = PublicKey {
        key: signing.verifying_key(),
        comment: comment.to_string(),
    };
    let dir = secret.parent().expect("the key has a directory");
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let text = format!("{SECRET_TAG} {}\n", b64().encode(seed));
    crate::fsutil::write_atomic_new(&secret, text.as_bytes(), NewFile::root(0o600))
        .map_err(io(&secret))?;
    let pubfile = on_host(root, Path::new(PUBLIC));
    crate::fsutil::write_atomic_new(&pubfile, public.line().as_bytes(), NewFile::root(0o644))
        .map_err(io(&pubfile))?;
    trust(root, &public)?;
    Ok(public)
}

/// Trust a public key: write it to `etc/upm/trusted-keys/ID.pub`. Returns where (inside the root).
pub fn trust(root: &Path, key: &PublicKey) -> Result<PathBuf, Error> {
    let inside = Path::new(TRUSTED_DIR).join(format!("{}.pub", key.id()));
    let host = on_host(root, &inside);
    let dir = host.parent().expect("a directory");
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    crate::fsutil::write_atomic_new(&host, key.line().as_bytes(), NewFile::root(0o644))
        .map_err(io(&host))?;
    Ok(inside)
}

/// Read a public key file (a host path).
pub fn read_public(path: &Path) -> Result<PublicKey, Error> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    PublicKey::parse(&text, path)
}

/// This root's public key.
pub fn own_public(root: &Path) -> Result<PublicKey, Error> {
    let host = on_host(root, Path::new(PUBLIC));
    if !host.exists() {
        return Err(Error::NoKey { path: host });
    }
    read_public(&host)
}

/// The keys this root trusts (unreadable or malformed files are skipped).
pub fn trusted(root: &Path) -> Vec<PublicKey> {
    let dir = on_host(root, Path::new(TRUSTED_DIR));
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return out;
    };
    let mut files: Vec<PathBuf> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "pub"))
        .collect();
    files.sort();
    for f in files {
        if let Ok(k) = read_public(&f) {
            out.push(k);
        }
    }
    out
}

fn message(data: &[u8]) -> Vec<u8> {
    let mut m = SIGNED_PREFIX.to_vec();
    m.extend_from_slice(&Sha256::digest(data));
    m
}

/// Sign `data` with this root's key; returns the signature file's text.
pub fn sign(root: &Path, data: &[u8]) -> Result<String, Error> {
    let secret = on_host(root, Path::new(SECRET));
    if !secret.exists() {
        return Err(Error::NoKey { path: secret });
    }
    let text = std::fs::read_to_string(&secret).map_err(io(&secret))?;
    let bad = |why: &str| Error::Bad {
        path: secret.clone(),
        what: "secret key",
        why: why.into(),
    };
    let b = text
        .trim()
        .strip_prefix(SECRET_TAG)
        .ok_or_else(|| bad("wrong first word"))?
        .trim();
    let seed: [u8; 32] = b64()
        .decode(b)
        .map_err(|_| bad("not base64"))?
        .try_into()
        .map_err(|_| bad("not 32 bytes"))?;
    let key = SigningKey::from_bytes(&seed);
    let sig = key.sign(&message(data));
    Ok(format!(
        "{SIG_TAG} {} {}\n",
        key_id(&key.verifying_key()),
        b64().encode(sig.to_bytes())
    ))
}

/// Check `data` against its signature text with the keys this root trusts. `what` names the
/// archive in errors, `sig_path` where the signature was looked for. Returns the key's id.
pub fn verify(
    root: &Path,
    what: &str,
    data: &[u8],
    sig: Option<&str>,
    sig_path: &Path,
) -> Result<String, Error> {
    let Some(sig) = sig else {
        return Err(Error::Unsigned {
            what: what.into(),
            sig: sig_path.to_path_buf(),
        });
    };
    let bad = |why: &str| Error::Bad {
        path: sig_path.to_path_buf(),
        what: "signature",
        why: why.into(),
    };
    let mut parts = sig.trim().split(' ');
    if parts.next() != Some(SIG_TAG) {
        return Err(bad(&format!("it does not start with `{SIG_TAG}`")));
    }
    let id = parts.next().ok_or_else(|| bad("no key id"))?.to_string();
    let bytes: [u8; 64] = b64()
        .decode(parts.next().ok_or_else(|| bad("no signature"))?)
        .map_err(|_| bad("not base64"))?
        .try_into()
        .map_err(|_| bad("not 64 bytes"))?;
    let signature = Signature::from_bytes(&bytes);
    let Some(key) = trusted(root).into_iter().find(|k| k.id() == id) else {
        return Err(Error::Untrusted {
            what: what.into(),
            key: id,
        });
    };
    key.key
        .verify_strict(&message(data), &signature)
        .map_err(|_| Error::BadSignature { what: what.into() })?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_data_verifies_and_nothing_else_does() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        let k = generate(root, "test", false).unwrap();
        assert!(matches!(
            generate(root, "again", false),
            Err(Error::Exists { .. })
        ));
        let sig = sign(root, b"archive bytes").unwrap();
        let p = Path::new("x.sig");
        assert_eq!(
            verify(root, "x", b"archive bytes", Some(&sig), p).unwrap(),
            k.id()
        );
        assert!(matches!(
            verify(root, "x", b"archive bytes!", Some(&sig), p),
            Err(Error::BadSignature { .. })
        ));
        assert!(matches!(
            verify(root, "x", b"archive bytes", None, p),
            Err(Error::Unsigned { .. })
        ));
        // Another root that does not trust the key refuses; trusting it makes it verify.
        let other = tempfile::tempdir().unwrap();
        assert!(matches!(
            verify(other.path(), "x", b"archive bytes", Some(&sig), p),
            Err(Error::Untrusted { .. })
        ));
        let read = PublicKey::parse(&k.line(), Path::new("k.pub")).unwrap();
        assert_eq!(read.comment, "test");
        trust(other.path(), &read).unwrap();
        verify(other.path(), "x", b"archive bytes", Some(&sig), p).unwrap();
    }
}
