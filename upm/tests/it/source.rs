//! Source archives: every shipped recipe's archive from ../shared/sources verifies against the
//! recipe's checksum and unpacks (gz, xz, bz2) into its top directory, owned as asked; a wrong
//! checksum is refused with both sums named.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use upm::source;

use crate::harness::{Dir, repo, sources};

#[test]
fn every_recipe_source_verifies_and_unpacks() {
    let srcs = sources();
    let root = nix::unistd::geteuid().is_root();
    let mut seen = 0;
    for e in std::fs::read_dir(repo().join("recipes")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_none_or(|x| x != "toml") {
            continue;
        }
        let r = upm::recipe::load(&p).unwrap().recipe;
        let file = r.source.file.as_deref().unwrap();
        let archive = source::find(file, &[PathBuf::from("/nonexistent"), srcs.clone()]).unwrap();
        source::verify(
            &archive,
            r.source.md5.as_deref(),
            r.source.sha256.as_deref(),
        )
        .unwrap();
        let d = Dir::new();
        let owner = root.then_some((12345, 12346));
        let u = source::unpack(&archive, d.path(), owner).unwrap();
        assert_eq!(u.dir.parent().unwrap(), d.path());
        let has_build = ["configure", "Makefile", "CMakeLists.txt", "meson.build"]
            .iter()
            .any(|f| u.dir.join(f).exists());
        assert!(
            has_build,
            "{}: no build files in {}",
            r.package.name,
            u.dir.display()
        );
        if root {
            // The top directory itself and a file in it belong to the requested owner.
            for p in [
                u.dir.clone(),
                std::fs::read_dir(&u.dir)
                    .unwrap()
                    .next()
                    .unwrap()
                    .unwrap()
                    .path(),
            ] {
                let m = std::fs::symlink_metadata(&p).unwrap();
                assert_eq!((m.uid(), m.gid()), (12345, 12346), "{}", p.display());
            }
        }
        // Nothing else is left in the destination (no staging directory).
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
        seen += 1;
    }
    assert!(seen >= 11);
}

#[test]
fn wrong_checksum_and_missing_file_are_clear() {
    let archive = sources().join("hello_2.10.orig.tar.gz");
    let e = source::verify(&archive, Some("00000000000000000000000000000000"), None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("wrong md5 checksum") && e.contains("the file has "),
        "{e}"
    );
    let e = source::find("nope-1.0.tar.xz", &[sources()])
        .unwrap_err()
        .to_string();
    assert!(e.contains("nope-1.0.tar.xz not found; looked in:"), "{e}");
}
