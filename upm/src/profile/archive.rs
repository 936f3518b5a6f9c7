//! The binary archive format: `NAME-VERSION-HASH.upm.tar.zst`, a zstd-compressed tar of what
//! one package installed, deterministic (the same install gives the same bytes).
//!
//! Its entries, in this order: `upm/meta.json` (format, name, version, recipe hash, and the
//! manifest: every path with its type, mode, owner and group by name — `package`, `root`,
//! `install` — mtime, size, sha256, symlink target, and the earlier path a hard link shares
//! its inode with), `upm/profile.toml` (the package's profile as written), then one entry per
//! manifest path under `files/`, sorted by path, with the same type, mode and mtime and the
//! owner names in the tar header (numeric ids 0: ids are local to a host). [`build`] makes the
//! bytes from files on disk, refusing any whose content no longer matches the manifest;
//! [`open`] checks an archive whole — paths (absolute, no `.`/`..`, nothing under a symlink
//! of the archive), the entries against the manifest, every file's size and sha256 — and
//! returns it unpacked in memory, before anything is written anywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::pathtext::quoted;

/// The archive format this upm writes and reads.
pub const FORMAT: u32 = 1;
/// The file name suffix of an archive.
pub const SUFFIX: &str = ".upm.tar.zst";
/// The zstd level archives are compressed at.
const LEVEL: i32 = 12;
const META: &str = "upm/meta.json";
const PROFILE: &str = "upm/profile.toml";
const FILES: &str = "files";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Io(#[from] crate::fsutil::PathError),
    #[error(
        "cannot export {}: it changed since it was installed ({why}); `upm check {name}` shows \
         what changed — reinstall {name} to export it",
        quoted(path)
    )]
    Changed {
        name: String,
        path: PathBuf,
        why: String,
    },
    #[error("{what}: not a upm binary archive ({why}); refused, nothing was written")]
    Bad { what: String, why: String },
}

/// One manifest path as an archive carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileMeta {
    pub path: String,
    /// The path's exact bytes (base64) when it is not UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_bytes: Option<String>,
    /// `file`, `dir` or `symlink`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Permission bits, setuid/setgid/sticky included.
    pub mode: u32,
    /// `package`, `root` (and for the group `install`).
    pub owner: String,
    pub group: String,
    pub mtime: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_bytes: Option<String>,
    /// For a hard link: the earlier path of the archive that shares its inode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_bytes: Option<String>,
    /// A directory the package made that is an install directory.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shared: bool,
}

impl FileMeta {
    pub fn path(&self) -> PathBuf {
        decode(&self.path, self.path_bytes.as_deref())
    }

    pub fn target(&self) -> Option<PathBuf> {
        self.target
            .as_deref()
            .map(|t| decode(t, self.target_bytes.as_deref()))
    }

    pub fn link(&self) -> Option<PathBuf> {
        self.link
            .as_deref()
            .map(|t| decode(t, self.link_bytes.as_deref()))
    }
}

/// A name as `(text, exact bytes when it is not UTF-8)`.
pub fn encode(p: &Path) -> (String, Option<String>) {
    (crate::pathtext::text(p), crate::pathtext::bytes(p))
}

fn decode(text: &str, bytes: Option<&str>) -> PathBuf {
    match bytes.and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok()) {
        Some(b) => PathBuf::from(std::ffi::OsString::from_vec(b)),
        None => PathBuf::from(text),
    }
}

/// What an archive says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    pub format: u32,
    pub name: String,
    pub version: String,
    pub recipe_hash: String,
    /// Sorted by path.
    pub files: Vec<FileMeta>,
}

impl Meta {
    /// The archive's file name: `NAME-VERSION-HASH.upm.tar.zst` (the recipe hash's first 16
    /// hex digits).
    pub fn file_name(&self) -> String {
        format!(
            "{}-{}-{}{SUFFIX}",
            self.name,
            self.version,
            &self.recipe_hash[..16.min(self.recipe_hash.len())]
        )
    }
}

/// An archive checked whole and unpacked in memory.
#[derive(Debug)]
pub struct Unpacked {
    pub meta: Meta,
    pub profile: String,
    /// The content of each regular file of `meta.files` (by index; `None` for the rest).
    pub data: Vec<Option<Vec<u8>>>,
}

use crate::manifest::sha256_hex;

/// The name of a manifest path inside the tar.
fn entry_name(p: &Path) -> PathBuf {
    Path::new(FILES).join(p.strip_prefix("/").unwrap_or(p))
}

fn header(kind: tar::EntryType, mode: u32, mtime: i64, owner: &str, group: &str) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_mtime(mtime.max(0) as u64);
    h.set_uid(0);
    h.set_gid(0);
    let _ = h.set_username(owner);
    let _ = h.set_groupname(group);
    h.set_size(0);
    h
}

/// Make an archive's bytes: `meta`, the profile text, and each path's content read from
/// `root` (a host path). A file whose size or sha256 no longer matches `meta` is refused.
pub fn build(meta: &Meta, profile: &str, root: &Path) -> Result<Vec<u8>, Error> {
    let io = |p: &Path, e: std::io::Error| Error::Io(crate::fsutil::io(p)(e));
    let mut tar = tar::Builder::new(Vec::new());
    tar.mode(tar::HeaderMode::Deterministic);
    let json = serde_json::to_vec_pretty(meta).expect("meta serializes");
    let add = |tar: &mut tar::Builder<Vec<u8>>, h: &mut tar::Header, name: &Path, data: &[u8]| {
        h.set_size(data.len() as u64);
        tar.append_data(h, name, data)
            .map_err(|e| io(Path::new("<archive in memory>"), e))
    };
    let mut h = header(tar::EntryType::Regular, 0o644, 0, "root", "root");
    add(&mut tar, &mut h, Path::new(META), &json)?;
    let mut h = header(tar::EntryType::Regular, 0o644, 0, "root", "root");
    add(&mut tar, &mut h, Path::new(PROFILE), profile.as_bytes())?;
    for f in &meta.files {
        let path = f.path();
        let name = entry_name(&path);
        let host = crate::fsutil::on_host(root, &path);
        let changed = |why: String| Error::Changed {
            name: meta.name.clone(),
            path: path.clone(),
            why,
        };
        if let Some(first) = f.link() {
            let mut h = header(tar::EntryType::Link, f.mode, f.mtime, &f.owner, &f.group);
            tar.append_link(&mut h, &name, entry_name(&first))
                .map_err(|e| io(&host, e))?;
            continue;
        }
        match f.kind.as_str() {
            "dir" => {
                let mut h = header(
                    tar::EntryType::Directory,
                    f.mode,
                    f.mtime,
                    &f.owner,
                    &f.group,
                );
                add(&mut tar, &mut h, &name, &[])?;
            }
            "symlink" => {
                let target = f.target().unwrap_or_default();
                let now = std::fs::read_link(&host).map_err(|e| io(&host, e))?;
                if now != target {
                    return Err(changed(format!("the link now points to {}", quoted(&now))));
                }
                let mut h = header(tar::EntryType::Symlink, f.mode, f.mtime, &f.owner, &f.group);
                tar.append_link(&mut h, &name, &target)
                    .map_err(|e| io(&host, e))?;
            }
            _ => {
                let data = std::fs::read(&host).map_err(|e| io(&host, e))?;
                if Some(sha256_hex(&data)) != f.sha256 {
                    return Err(changed("its content differs (sha256)".into()));
                }
                let mut h = header(tar::EntryType::Regular, f.mode, f.mtime, &f.owner, &f.group);
                add(&mut tar, &mut h, &name, &data)?;
            }
        }
    }
    let tar = tar
        .into_inner()
        .map_err(|e| io(Path::new("<archive in memory>"), e))?;
    zstd::stream::encode_all(&tar[..], LEVEL).map_err(|e| io(Path::new("<zstd>"), e))
}

/// A manifest path an archive may hold: absolute, every part a name (no empty part, `.` or
/// `..`), checked on the bytes as written.
fn valid_path(p: &Path) -> bool {
    let b = p.as_os_str().as_bytes();
    b.len() > 1
        && b[0] == b'/'
        && b[1..]
            .split(|c| *c == b'/')
            .all(|part| !part.is_empty() && part != b"." && part != b"..")
}

/// Check the manifest of an archive: valid, sorted, unique paths; owners by name; hard links
/// to earlier regular files; nothing under a symlink the archive itself installs.
fn check_meta(meta: &Meta, bad: &dyn Fn(String) -> Error) -> Result<(), Error> {
    if meta.format != FORMAT {
        return Err(bad(format!(
            "format {}, this upm reads format {FORMAT}",
            meta.format
        )));
    }
    if !crate::recipe::valid_name(&meta.name) {
        return Err(bad(format!("package name {:?} is not valid", meta.name)));
    }
    let mut seen: BTreeMap<PathBuf, &FileMeta> = BTreeMap::new();
    let mut links: BTreeSet<PathBuf> = BTreeSet::new();
    let mut last: Option<PathBuf> = None;
    for f in &meta.files {
        let p = f.path();
        if !valid_path(&p) {
            return Err(bad(format!(
                "path {} is not absolute, or has `.`, `..` or an empty part",
                quoted(&p)
            )));
        }
        if last.as_ref().is_some_and(|l| *l >= p) {
            return Err(bad(format!("path {} is out of order or twice", quoted(&p))));
        }
        if let Some(l) = p.ancestors().skip(1).find(|a| links.contains(*a)) {
            return Err(bad(format!(
                "{} lies under {}, a symlink the archive installs",
                quoted(&p),
                quoted(l)
            )));
        }
        let owner_ok = matches!(f.owner.as_str(), "package" | "root");
        let group_ok = matches!(f.group.as_str(), "package" | "root" | "install");
        if !owner_ok || !group_ok {
            return Err(bad(format!(
                "{} is owned by {}:{}; an archive's files belong to the package, root or the \
                 install group",
                quoted(&p),
                f.owner,
                f.group
            )));
        }
        match (f.kind.as_str(), f.link()) {
            ("file", Some(first)) => match seen.get(&first) {
                Some(t) if t.kind == "file" && t.link.is_none() => {}
                _ => {
                    return Err(bad(format!(
                        "{} is a hard link to {}, not an earlier file of the archive",
                        quoted(&p),
                        quoted(&first)
                    )));
                }
            },
            ("file", None) => {
                if f.sha256.as_deref().is_none_or(|h| h.len() != 64) || f.size.is_none() {
                    return Err(bad(format!("{} has no size or sha256", quoted(&p))));
                }
            }
            ("dir", None) => {}
            ("symlink", None) if f.target.is_some() => {
                links.insert(p.clone());
            }
            (k, _) => {
                return Err(bad(format!("{} has type {k:?}", quoted(&p))));
            }
        }
        seen.insert(p.clone(), f);
        last = Some(p);
    }
    Ok(())
}

/// Check an archive (`what` names it in errors) and unpack it in memory. Every entry must be
/// the manifest's, in order, of the same type; every file's size and sha256 must match.
pub fn open(what: &str, bytes: &[u8]) -> Result<Unpacked, Error> {
    let bad = |why: String| Error::Bad {
        what: what.to_string(),
        why,
    };
    let tar = zstd::stream::decode_all(bytes).map_err(|e| bad(format!("zstd: {e}")))?;
    let mut ar = tar::Archive::new(&tar[..]);
    let mut entries = ar.entries().map_err(|e| bad(format!("tar: {e}")))?;
    let mut next =
        |want: &str| -> Result<(PathBuf, tar::EntryType, Option<PathBuf>, Vec<u8>), Error> {
            let mut e = match entries.next() {
                Some(Ok(e)) => e,
                Some(Err(e)) => return Err(bad(format!("tar: {e}"))),
                None => return Err(bad(format!("it ends before {want}"))),
            };
            let path = e.path_bytes().into_owned();
            let path = PathBuf::from(std::ffi::OsString::from_vec(path));
            let kind = e.header().entry_type();
            let link = e
                .link_name_bytes()
                .map(|l| PathBuf::from(std::ffi::OsString::from_vec(l.into_owned())));
            let mut data = Vec::new();
            e.read_to_end(&mut data)
                .map_err(|err| bad(format!("tar: {}: {err}", quoted(&path))))?;
            Ok((path, kind, link, data))
        };
    let (name, _, _, json) = next(META)?;
    if name != Path::new(META) {
        return Err(bad(format!(
            "its first entry is {}, not {META}",
            quoted(&name)
        )));
    }
    let meta: Meta = serde_json::from_slice(&json).map_err(|e| bad(format!("{META}: {e}")))?;
    check_meta(&meta, &bad)?;
    let (name, _, _, profile) = next(PROFILE)?;
    if name != Path::new(PROFILE) {
        return Err(bad(format!(
            "its second entry is {}, not {PROFILE}",
            quoted(&name)
        )));
    }
    let profile = String::from_utf8(profile).map_err(|_| bad(format!("{PROFILE} is not UTF-8")))?;
    let mut data = Vec::with_capacity(meta.files.len());
    for f in &meta.files {
        let p = f.path();
        let want = entry_name(&p);
        let (name, kind, link, content) = next(&want.display().to_string())?;
        let mismatch = |why: &str| bad(format!("{}: {why}", quoted(&p)));
        if name != want {
            return Err(bad(format!(
                "entry {} where the manifest has {}",
                quoted(&name),
                quoted(&want)
            )));
        }
        match (f.kind.as_str(), f.link(), kind) {
            ("file", Some(first), tar::EntryType::Link) => {
                if link != Some(entry_name(&first)) {
                    return Err(mismatch("the hard link differs from the manifest"));
                }
                data.push(None);
            }
            ("file", None, tar::EntryType::Regular) => {
                if Some(content.len() as u64) != f.size || Some(sha256_hex(&content)) != f.sha256 {
                    return Err(mismatch(
                        "its content does not match its sha256 in the manifest (changed after it was made)",
                    ));
                }
                data.push(Some(content));
            }
            ("dir", None, tar::EntryType::Directory) => data.push(None),
            ("symlink", None, tar::EntryType::Symlink) => {
                if link != f.target() {
                    return Err(mismatch("the link target differs from the manifest"));
                }
                data.push(None);
            }
            _ => return Err(mismatch("the entry's type differs from the manifest")),
        }
    }
    if next("the end").is_ok() {
        return Err(bad("it has entries beyond its manifest".into()));
    }
    Ok(Unpacked {
        meta,
        profile,
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, kind: &str) -> FileMeta {
        FileMeta {
            path: path.into(),
            path_bytes: None,
            kind: kind.into(),
            mode: 0o644,
            owner: "package".into(),
            group: "package".into(),
            mtime: 1,
            size: None,
            sha256: None,
            target: None,
            target_bytes: None,
            link: None,
            link_bytes: None,
            shared: false,
        }
    }

    fn sample(root: &Path) -> Meta {
        std::fs::create_dir_all(root.join("usr/bin")).unwrap();
        std::fs::write(root.join("usr/bin/a"), b"hello\n").unwrap();
        std::os::unix::fs::symlink("a", root.join("usr/bin/b")).unwrap();
        let mut a = file("/usr/bin/a", "file");
        a.size = Some(6);
        a.sha256 = Some(sha256_hex(b"hello\n"));
        let mut b = file("/usr/bin/b", "symlink");
        b.target = Some("a".into());
        let mut c = file("/usr/bin/c", "file");
        c.link = Some("/usr/bin/a".into());
        Meta {
            format: FORMAT,
            name: "hello".into(),
            version: "1".into(),
            recipe_hash: "ab".repeat(32),
            files: vec![file("/usr/bin", "dir"), a, b, c],
        }
    }

    #[test]
    fn built_twice_the_same_bytes_and_opened_back() {
        let d = tempfile::tempdir().unwrap();
        let meta = sample(d.path());
        let one = build(&meta, "profile text", d.path()).unwrap();
        let two = build(&meta, "profile text", d.path()).unwrap();
        assert_eq!(one, two, "deterministic");
        let u = open("x", &one).unwrap();
        assert_eq!(u.meta, meta);
        assert_eq!(u.profile, "profile text");
        assert_eq!(u.data[1].as_deref(), Some(&b"hello\n"[..]));
        assert_eq!(meta.file_name(), "hello-1-abababababababab.upm.tar.zst");
    }

    #[test]
    fn changed_files_and_bad_paths_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let meta = sample(d.path());
        std::fs::write(d.path().join("usr/bin/a"), b"jello\n").unwrap();
        assert!(matches!(
            build(&meta, "", d.path()),
            Err(Error::Changed { .. })
        ));
        let bad = |m: &Meta| {
            check_meta(m, &|why| Error::Bad {
                what: "x".into(),
                why,
            })
        };
        for p in ["/usr/../etc/passwd", "usr/bin/x", "/usr/./bin", "/"] {
            let mut m = sample(tempfile::tempdir().unwrap().path());
            m.files = vec![file(p, "dir")];
            assert!(bad(&m).is_err(), "{p}");
        }
        // A file under a symlink the archive installs.
        let mut m = sample(tempfile::tempdir().unwrap().path());
        let mut l = file("/usr/lib", "symlink");
        l.target = Some("/etc".into());
        m.files = vec![l, file("/usr/lib/x", "dir")];
        assert!(
            bad(&m)
                .unwrap_err()
                .to_string()
                .contains("a symlink the archive installs")
        );
        // An owner that is not the package's or root's.
        let mut m = sample(tempfile::tempdir().unwrap().path());
        m.files[0].owner = "#0".into();
        assert!(bad(&m).is_err());
    }
}
