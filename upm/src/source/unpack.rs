//! Safe unpacking. The archive is unpacked into a staging directory inside the destination;
//! every entry is checked before it is written (no absolute paths, no `..`, no symlink or hard
//! link pointing out, no device nodes), and `tar`'s `unpack_in` refuses writes through symlinks
//! that leave the staging directory. Only when the whole archive is good does its top directory
//! move into place; otherwise the staging directory is removed and nothing is left behind.

use std::fs;
use std::io::{BufReader, Read};
use std::path::{Component, Path, PathBuf};

use super::{Error, io};

/// The result of an unpack: the source tree's top directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unpacked {
    pub dir: PathBuf,
}

fn decoder(archive: &Path) -> Result<Box<dyn Read>, Error> {
    let mut f = fs::File::open(archive).map_err(io(archive))?;
    let mut magic = [0u8; 6];
    let n = f.read(&mut magic).map_err(io(archive))?;
    let f = fs::File::open(archive).map_err(io(archive))?;
    let r = BufReader::with_capacity(256 * 1024, f);
    let m = &magic[..n];
    Ok(if m.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(r))
    } else if m.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Box::new(liblzma::read::XzDecoder::new_multi_decoder(r))
    } else if m.starts_with(b"BZh") {
        Box::new(bzip2::read::MultiBzDecoder::new(r))
    } else if m.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(zstd::stream::read::Decoder::with_buffer(r).map_err(io(archive))?)
    } else {
        Box::new(r)
    })
}

/// Why a path inside the archive is refused, if it is.
fn bad_path(p: &Path) -> Option<&'static str> {
    for c in p.components() {
        match c {
            Component::RootDir | Component::Prefix(_) => return Some("absolute path"),
            Component::ParentDir => return Some("path climbs out with '..'"),
            _ => {}
        }
    }
    None
}

/// Whether a symlink at `at` (relative to the top) pointing to `target` stays inside.
fn link_escapes(at: &Path, target: &Path) -> bool {
    if target.is_absolute() {
        return true;
    }
    let mut depth: i64 = at.parent().map_or(0, |p| {
        p.components()
            .filter(|c| matches!(c, Component::Normal(_)))
            .count() as i64
    });
    for c in target.components() {
        match c {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            _ => return true,
        }
        if depth < 0 {
            return true;
        }
    }
    false
}

fn chown_tree(dir: &Path, uid: u32, gid: u32) -> Result<(), Error> {
    let (u, g) = (
        Some(nix::unistd::Uid::from_raw(uid)),
        Some(nix::unistd::Gid::from_raw(gid)),
    );
    let lchown = |p: &Path| {
        nix::unistd::fchownat(
            nix::fcntl::AT_FDCWD,
            p,
            u,
            g,
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| Error::from(io(p)(e.into())))
    };
    lchown(dir)?;
    for e in fs::read_dir(dir).map_err(io(dir))? {
        let e = e.map_err(io(dir))?;
        let p = e.path();
        if e.file_type().map_err(io(&p))?.is_dir() {
            chown_tree(&p, uid, gid)?;
        } else {
            lchown(&p)?;
        }
    }
    Ok(())
}

/// The name of an archive without its `.tar.*` / `.tgz` suffix.
fn stem(archive: &Path) -> String {
    let name = archive
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "source".into());
    for suffix in [".tar.gz", ".tar.xz", ".tar.bz2", ".tar.zst", ".tgz", ".tar"] {
        if let Some(s) = name.strip_suffix(suffix) {
            return s.to_string();
        }
    }
    name
}

/// Unpack `archive` into `dest`, returning the source tree's top directory (whatever its
/// name; an archive without one gets a directory named after the archive). An existing tree of
/// that name is replaced. With `owner`, the tree is given to that uid and gid.
pub fn unpack(archive: &Path, dest: &Path, owner: Option<(u32, u32)>) -> Result<Unpacked, Error> {
    fs::create_dir_all(dest).map_err(io(dest))?;
    let staging = tempfile::Builder::new()
        .prefix(".upm-unpack-")
        .tempdir_in(dest)
        .map_err(io(dest))?;
    let hostile = |entry: &[u8], why| Error::Hostile {
        archive: archive.to_path_buf(),
        entry: String::from_utf8_lossy(entry).into_owned(),
        why,
    };
    let corrupt = |source| Error::Corrupt {
        archive: archive.to_path_buf(),
        source,
    };
    let mut ar = tar::Archive::new(decoder(archive)?);
    ar.set_preserve_permissions(true);
    ar.set_preserve_mtime(true);
    ar.set_overwrite(true);
    for entry in ar.entries().map_err(corrupt)? {
        let mut entry = entry.map_err(corrupt)?;
        let raw = entry.path_bytes().into_owned();
        let path = entry.path().map_err(corrupt)?.into_owned();
        if let Some(why) = bad_path(&path) {
            return Err(hostile(&raw, why));
        }
        let kind = entry.header().entry_type();
        if kind.is_symlink() || kind.is_hard_link() {
            let target = entry
                .link_name()
                .map_err(corrupt)?
                .ok_or_else(|| hostile(&raw, "link without a target"))?
                .into_owned();
            let escapes = if kind.is_symlink() {
                link_escapes(&path, &target)
            } else {
                bad_path(&target).is_some()
            };
            if escapes {
                return Err(hostile(&raw, "link pointing outside the build directory"));
            }
        } else if kind.is_character_special() || kind.is_block_special() || kind.is_fifo() {
            return Err(hostile(&raw, "device node or fifo in a source archive"));
        }
        if !entry.unpack_in(staging.path()).map_err(corrupt)? {
            return Err(hostile(&raw, "would land outside the build directory"));
        }
    }
    let mut top: Vec<_> = fs::read_dir(staging.path())
        .map_err(io(staging.path()))?
        .filter_map(Result::ok)
        .collect();
    let single_dir = top.len() == 1 && top[0].file_type().is_ok_and(|t| t.is_dir());
    let (from, name) = if single_dir {
        let e = top.remove(0);
        (e.path(), e.file_name().to_string_lossy().into_owned())
    } else {
        (staging.path().to_path_buf(), stem(archive))
    };
    let to = dest.join(&name);
    if fs::symlink_metadata(&to).is_ok() {
        fs::remove_dir_all(&to).map_err(io(&to))?;
    }
    fs::rename(&from, &to).map_err(io(&to))?;
    if !single_dir {
        // The staging directory itself became the tree; keep TempDir from removing it.
        let _ = staging.keep();
    }
    if let Some((uid, gid)) = owner {
        chown_tree(&to, uid, gid)?;
    }
    Ok(Unpacked { dir: to })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tar entry with a raw name, bypassing the builder's own path checks.
    fn raw_entry(
        b: &mut tar::Builder<Vec<u8>>,
        name: &str,
        kind: tar::EntryType,
        link: &str,
        data: &[u8],
    ) {
        let mut h = tar::Header::new_gnu();
        h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
        h.as_gnu_mut().unwrap().linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_entry_type(kind);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_cksum();
        b.append(&h, data).unwrap();
    }

    type Spec<'a> = (&'a str, tar::EntryType, &'a str);

    fn archive(dir: &Path, entries: &[Spec]) -> PathBuf {
        let mut b = tar::Builder::new(Vec::new());
        for (name, kind, link) in entries {
            let data: &[u8] = if *kind == tar::EntryType::Regular {
                b"x"
            } else {
                b""
            };
            raw_entry(&mut b, name, *kind, link, data);
        }
        let p = dir.join("t.tar");
        fs::write(&p, b.into_inner().unwrap()).unwrap();
        p
    }

    #[test]
    fn hostile_archives_are_refused_and_leave_nothing() {
        use tar::EntryType::{Directory as D, Regular as F, Symlink as L};
        let cases: &[(&[Spec], &str)] = &[
            (&[("pkg/", D, ""), ("pkg/../../evil", F, "")], "'..'"),
            (&[("/etc/evil", F, "")], "absolute"),
            (
                &[("pkg/", D, ""), ("pkg/l", L, "../../etc")],
                "link pointing outside",
            ),
            (
                &[("pkg/", D, ""), ("pkg/l", L, "/etc")],
                "link pointing outside",
            ),
            (
                &[("pkg/", D, ""), ("pkg/ok", L, "../pkg/x"), ("pkg/x", F, "")],
                "",
            ),
        ];
        for (entries, why) in cases {
            let d = tempfile::tempdir().unwrap();
            let a = archive(d.path(), entries);
            let dest = d.path().join("build");
            let r = unpack(&a, &dest, None);
            if why.is_empty() {
                assert_eq!(r.unwrap().dir, dest.join("pkg"));
                continue;
            }
            let e = r.unwrap_err().to_string();
            assert!(e.contains(why) && e.contains("nothing was unpacked"), "{e}");
            assert_eq!(
                fs::read_dir(&dest).unwrap().count(),
                0,
                "{entries:?} left files"
            );
            assert!(!d.path().join("evil").exists());
        }
    }

    #[test]
    fn archive_without_top_dir_gets_one() {
        let d = tempfile::tempdir().unwrap();
        let a = archive(
            d.path(),
            &[
                ("a.c", tar::EntryType::Regular, ""),
                ("b.c", tar::EntryType::Regular, ""),
            ],
        );
        let u = unpack(&a, &d.path().join("build"), None).unwrap();
        assert_eq!(u.dir, d.path().join("build/t"));
        assert!(u.dir.join("a.c").exists() && u.dir.join("b.c").exists());
    }

    #[test]
    fn links_inside_are_fine_outside_are_not() {
        assert!(!link_escapes(Path::new("p/a/l"), Path::new("../b")));
        assert!(!link_escapes(Path::new("p/l"), Path::new("x/../y")));
        assert!(link_escapes(Path::new("p/l"), Path::new("../../x")));
        assert!(link_escapes(Path::new("l"), Path::new("..")));
    }
}
