//! Root steps that cannot leave a hole, each shown with a fixture package of
//! `upm/tests/fixtures/` installed as its package user in the overlay sandbox: no setuid or
//! setgid file stays a package user's (whatever `root.allow` says, and after a failed install),
//! the linker cache stays root's when a Makefile runs ldconfig by absolute path, and removing a
//! package takes every entry its info pages put into the `dir` file back out.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::{Dir, repo};
use crate::install::{Root, info_recipe, script_recipe, succeeds};
use crate::needs_root;

fn fixture(p: &str) -> PathBuf {
    repo().join("upm/tests/fixtures").join(p)
}

/// Every setuid/setgid file the install left in the upper directory that a package user owns
/// (uid in the package range) or whose group is a package's or the install group.
fn package_setid_files(root: &Root) -> Vec<(PathBuf, u32, u32, u32)> {
    fn walk(dir: &Path, out: &mut Vec<(PathBuf, u32, u32, u32)>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let m = e.path().symlink_metadata().unwrap();
            if m.is_dir() {
                walk(&e.path(), out);
            } else if m.is_file()
                && m.mode() & 0o6000 != 0
                && ((10000..=19999).contains(&m.uid())
                    || m.gid() == 9999
                    || (10000..=19999).contains(&m.gid()))
            {
                out.push((e.path(), m.mode() & 0o7777, m.uid(), m.gid()));
            }
        }
    }
    let mut out = Vec::new();
    walk(root.sb.upper(), &mut out);
    out
}

/// `upm --json files PKG` as path → entry.
fn files(root: &Root, pkg: &str) -> std::collections::BTreeMap<String, serde_json::Value> {
    let files = root.upm(["--json", "files", pkg]).success().json();
    files
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["path"].as_str().unwrap().to_string(), f.clone()))
        .collect()
}

fn report_kinds(root: &Root, pkg: &str) -> Vec<String> {
    let info = root.upm(["--json", "info", pkg]).success().json();
    info["reports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn without_chown_allowed_no_setid_file_stays_a_package_users() {
    needs_root!();
    let root = Root::new();
    let recipe = fixture("setid/setid.toml");
    root.upm(["install".as_ref(), recipe.as_os_str()])
        .success()
        .stderr_has(r#"add "chown" and "setuid" to root.allow"#)
        .stderr_has(r#"add "chown" and "setgid" to root.allow"#);
    assert_eq!(package_setid_files(&root), vec![]);
    let uid = root.uid_of("setid");
    let files = files(&root, "setid");
    for name in ["setid-suid", "setid-sgid", "setid-bare"] {
        let path = format!("/usr/local/bin/{name}");
        let e = &files[&path];
        assert_eq!(e["mode"].as_u64().unwrap(), 0o755, "{path}: {e}");
        assert_eq!(e["uid"].as_u64().unwrap(), uid, "{path}: {e}");
        let m = std::fs::metadata(root.upper(&path)).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o755, "{path} on disk");
    }
    // The manifest is the final state: nothing differs.
    root.upm(["check", "setid"]).success();
    let kinds = report_kinds(&root, "setid");
    assert_eq!(
        kinds.iter().filter(|k| *k == "setid-removed").count(),
        3,
        "{kinds:?}"
    );
}

#[test]
fn with_chown_and_setuid_allowed_setid_files_end_root_owned() {
    needs_root!();
    let root = Root::new();
    let recipe = fixture("setid/setid-allowed.toml");
    // The bare `chmod u+s` is not made root's by anything: its bit still goes.
    root.upm(["install".as_ref(), recipe.as_os_str()])
        .success()
        .stderr_has("/usr/local/bin/setid-bare: setuid bit removed")
        .stderr_has("nothing in the install gave it to root");
    assert_eq!(package_setid_files(&root), vec![]);
    let files = files(&root, "setid");
    for (name, mode) in [("setid-suid", 0o4755), ("setid-sgid", 0o2755)] {
        let path = format!("/usr/local/bin/{name}");
        let m = std::fs::metadata(root.upper(&path)).unwrap();
        assert_eq!(
            (m.uid(), m.gid(), m.mode() & 0o7777),
            (0, 0, mode),
            "{path}"
        );
        let e = &files[&path];
        assert_eq!(
            (e["uid"].as_u64(), e["mode"].as_u64()),
            (Some(0), Some(mode as u64)),
            "{path}: {e}"
        );
    }
    let bare = std::fs::metadata(root.upper("/usr/local/bin/setid-bare")).unwrap();
    assert_eq!(bare.mode() & 0o7777, 0o755);
    root.upm(["check", "setid"]).success();
    let info = root.upm(["--json", "info", "setid"]).success().json();
    let applied: Vec<String> = info["root_steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["applied"] == true)
        .map(|s| {
            format!(
                "{} {}",
                s["step"].as_str().unwrap(),
                s["path"].as_str().unwrap()
            )
        })
        .collect();
    for want in [
        "chown /usr/local/bin/setid-suid",
        "setuid /usr/local/bin/setid-suid",
        "setgid /usr/local/bin/setid-sgid",
    ] {
        assert!(applied.contains(&want.to_string()), "{want}: {applied:?}");
    }
}

#[test]
fn a_failed_install_leaves_no_setid_file_a_package_users() {
    needs_root!();
    let root = Root::new();
    let dir = Dir::shared();
    let recipe = script_recipe(
        &dir,
        "setidfail",
        "install -m 4755 /bin/true /usr/local/bin/setidfail\n[ -n \"$UPM_TRIAL\" ] || false",
    );
    // Undone: the file is gone.
    root.upm(["install".as_ref(), recipe.as_os_str()])
        .failure()
        .stderr_has("the failed install was undone");
    assert!(!root.upper("usr/local/bin/setidfail").exists());
    assert_eq!(package_setid_files(&root), vec![]);
    root.upm(["remove", "setidfail"]).success();
    // Kept for debugging: the file stays, without its bit.
    root.upm([
        "install".as_ref(),
        recipe.as_os_str(),
        "--keep-failed".as_ref(),
    ])
    .failure()
    .stderr_has("setuid bit removed");
    assert_eq!(package_setid_files(&root), vec![]);
    if let Some(e) = files(&root, "setidfail").get("/usr/local/bin/setidfail") {
        assert_eq!(e["mode"].as_u64().unwrap() & 0o6000, 0, "{e}");
    }
}

#[test]
fn ldconfig_by_absolute_path_leaves_the_linker_cache_roots() {
    needs_root!();
    let root = Root::new();
    let recipe = fixture("sysfiles/sysfiles.toml");
    let cache = "/etc/ld.so.cache";
    // A fresh chroot has no linker cache: the package's ldconfig makes one, as its user.
    let mut rm = Command::new("rm");
    rm.args(["-f", cache]);
    succeeds(&root.sb, rm);
    // Then, with the cache there (root's): its ldconfig leaves `ld.so.cache~` behind.
    for round in ["no cache", "cache"] {
        root.upm(["install".as_ref(), recipe.as_os_str()]).success();
        let m = std::fs::metadata(root.upper(cache)).unwrap();
        assert_eq!((m.uid(), m.gid()), (0, 0), "{round}");
        assert_eq!(m.mode() & 0o7777, 0o644, "{round}");
        assert!(!root.upper("/etc/ld.so.cache~").exists(), "{round}");
        let files = files(&root, "sysfiles");
        assert!(
            !files.keys().any(|p| p.starts_with("/etc/ld.so.cache")),
            "{round}: {files:?}"
        );
        // Nothing of the package user's is outside its manifest.
        let uid = root.uid_of("sysfiles") as u32;
        for c in root.sb.changes().unwrap() {
            let p = c.path.display().to_string();
            if p.starts_with("/usr/src") {
                continue;
            }
            if let Ok(m) = root.upper(&p).symlink_metadata()
                && m.uid() == uid
            {
                assert!(files.contains_key(&p), "{round}: {p} is the package user's");
            }
        }
        root.upm(["check", "sysfiles"]).success();
        root.upm(["remove", "sysfiles"]).success();
    }
}

#[test]
fn removing_a_package_takes_all_its_info_entries_out() {
    needs_root!();
    assert!(
        Command::new("install-info")
            .arg("--version")
            .output()
            .is_ok(),
        "install-info (Debian package install-info) is needed for this test"
    );
    let root = Root::new();
    // infotwo first: its `/usr/bin/install-info` makes the dir file, as its package user.
    let recipe = fixture("infotwo/infotwo.toml");
    root.upm(["install".as_ref(), recipe.as_os_str()]).success();
    let dir = Dir::shared();
    root.upm(["install".as_ref(), info_recipe(&dir, "infoa").as_os_str()])
        .success();
    let dirfile = root.upper("usr/local/share/info/dir");
    let text = std::fs::read_to_string(&dirfile).unwrap();
    for entry in ["* Two:", "* twotool:", "* Three:", "* infoa:"] {
        assert!(text.contains(entry), "{entry}: {text}");
    }
    let m = std::fs::metadata(&dirfile).unwrap();
    assert_eq!((m.uid(), m.gid()), (0, 0), "the dir file is root's");
    root.upm(["owner", "/usr/local/share/info/dir"])
        .code(1)
        .stdout_has("no package");
    root.upm(["check", "infotwo"]).success();
    root.upm(["remove", "infotwo"]).success();
    let text = std::fs::read_to_string(&dirfile).unwrap();
    for entry in ["* Two:", "* twotool:", "Three", "documented elsewhere"] {
        assert!(!text.contains(entry), "{entry} left: {text}");
    }
    assert!(text.contains("* infoa:"), "{text}");
}
