//! Library dependencies read from the installed ELF files: zlib and xz built from their
//! upstream archives and the `zxcat` fixture linked against both (and a library of its own),
//! in the overlay sandbox; `depends`, `rdepends`, `check --libs` and the soname guard of
//! `remove`.

use std::path::PathBuf;

use crate::harness::repo;
use crate::install::Root;
use crate::needs_root;

fn fixture(p: &str) -> PathBuf {
    repo().join("upm/tests/fixtures").join(p)
}

/// The `packages` of one soname in `upm --json depends` output.
fn providers(deps: &serde_json::Value, soname: &str) -> Vec<String> {
    let n = deps
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["soname"] == soname)
        .unwrap_or_else(|| panic!("{soname} not in {deps}"));
    n["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn depends_rdepends_check_libs_and_the_removal_guard_for_zlib_xz_and_a_program() {
    needs_root!();
    let root = Root::new();
    for name in ["zlib", "xz"] {
        root.install(&repo().join(format!("recipes/{name}.toml")))
            .success();
    }
    let zxcat = fixture("zxcat/zxcat.toml");
    root.upm(["install".as_ref(), zxcat.as_os_str()]).success();

    // zxcat needs zlib's and xz's libraries; libc no package provides, found unowned; its own
    // libzx.so.1 is no dependency.
    let deps = root.upm(["--json", "depends", "zxcat"]).success().json();
    assert_eq!(providers(&deps, "libz.so.1"), ["zlib"], "{deps}");
    assert_eq!(providers(&deps, "liblzma.so.5"), ["xz"], "{deps}");
    assert!(providers(&deps, "libc.so.6").is_empty(), "{deps}");
    let libc = deps
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["soname"] == "libc.so.6")
        .unwrap();
    assert!(libc["found"]["path"].is_string(), "{deps}");
    assert!(
        !deps
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["soname"] == "libzx.so.1"),
        "{deps}"
    );
    root.upm(["depends", "zxcat"])
        .success()
        .stdout_has("libz.so.1: zlib\n")
        .stdout_has("liblzma.so.5: xz\n");
    // xz's programs need its own liblzma: no other package.
    let xz = root.upm(["--json", "depends", "xz"]).success().json();
    assert!(
        xz.as_array()
            .unwrap()
            .iter()
            .all(|n| n["packages"].as_array().unwrap().is_empty() && n["soname"] != "liblzma.so.5"),
        "{xz}"
    );

    let r = root.upm(["--json", "rdepends", "zlib"]).success().json();
    assert_eq!(
        r,
        serde_json::json!([{"package": "zxcat", "path": "/usr/local/bin/zxcat", "soname": "libz.so.1"}])
    );
    root.upm(["rdepends", "xz"])
        .success()
        .stdout_is("zxcat: /usr/local/bin/zxcat needs liblzma.so.5\n");
    root.upm(["rdepends", "zxcat"])
        .success()
        .stdout_has("no installed package needs a library of zxcat");

    root.upm(["check", "--libs"])
        .success()
        .stdout_has("every installed ELF file finds");

    // Removing zlib would take away libz.so.1 from zxcat: refused, naming it; nothing changed.
    root.upm(["remove", "zlib"])
        .failure()
        .stderr_has("cannot remove zlib")
        .stderr_has("zxcat (/usr/local/bin/zxcat needs libz.so.1)");
    root.upm(["remove", "xz", "--dry-run"])
        .failure()
        .stderr_has("zxcat (/usr/local/bin/zxcat needs liblzma.so.5)");
    assert!(root.upper("usr/local/lib/libz.so.1").exists());
    root.upm(["check", "zlib"]).success();

    // A library gone from the root: check --libs names the file that needs it.
    std::fs::remove_file(root.upper("usr/local/lib/libzx.so.1.0")).unwrap();
    root.upm(["check", "--libs"])
        .code(1)
        .stdout_has("zxcat: /usr/local/bin/zxcat: needs libzx.so.1, which is missing");

    // --force removes it anyway; without dependents the guard lets a removal through.
    root.upm(["remove", "xz", "--force"]).success();
    root.upm(["remove", "zxcat"]).success();
    root.upm(["remove", "zlib"]).success();
}
