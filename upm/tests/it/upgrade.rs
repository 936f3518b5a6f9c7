//! Upgrades in the overlay sandbox, with the two versions of the `upg` fixture (packed into
//! tarballs here) and the `libup` library: stale files, configuration files and `.upmnew`,
//! history; a failed build and a failed install phase leave the old version exactly as it
//! was; a `kill -9` during the new version's install phase is put back by the next upm; a
//! library upgrade to a new soname is stopped while another package needs the old one, and
//! with `--force` keeps the old library file.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::{Dir, bin, repo};
use crate::install::{Root, paths};
use crate::needs_root;

fn fixture(p: &str) -> PathBuf {
    repo().join("upm/tests/fixtures").join(p)
}

/// `upg-1.tar.gz` and `upg-2.tar.gz`, packed from the fixture's `v1/` and `v2/`.
fn upg_sources() -> Dir {
    let dir = Dir::shared();
    for v in ["1", "2"] {
        let st = Command::new("tar")
            .arg("-C")
            .arg(fixture("upg"))
            .arg("-czf")
            .arg(dir.join(&format!("upg-{v}.tar.gz")))
            .arg(format!("--transform=s,^v{v},upg-{v},"))
            .arg(format!("v{v}"))
            .status()
            .unwrap();
        assert!(st.success(), "tar of upg {v}");
    }
    for e in std::fs::read_dir(dir.path()).unwrap().flatten() {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(e.path(), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    dir
}

fn install_upg(root: &Root, recipe: &str, src: &Dir) -> crate::harness::Out {
    root.upm([
        "install".as_ref(),
        fixture(&format!("upg/{recipe}")).as_os_str(),
        "--sources-dir".as_ref(),
        src.path().as_os_str(),
    ])
}

/// Run a shell command in the sandbox; it must succeed.
fn sh(root: &Root, script: &str) {
    let mut cmd = Command::new("/bin/sh");
    cmd.args(["-c", script]);
    let st = root.sb.status(cmd).unwrap();
    assert!(st.success(), "{script}: {st}");
}

/// Every path of a package's manifest as it is on disk: type, mode, owner and content.
fn on_disk(root: &Root, name: &str) -> BTreeMap<String, String> {
    let files = root.upm(["--json", "files", name]).success().json();
    paths(&files)
        .into_iter()
        .map(|p| {
            let host = root.upper(&p);
            let m = std::fs::symlink_metadata(&host).unwrap_or_else(|e| panic!("{p}: {e}"));
            let content = if m.is_file() {
                String::from_utf8_lossy(&std::fs::read(&host).unwrap()).into_owned()
            } else if m.file_type().is_symlink() {
                std::fs::read_link(&host).unwrap().display().to_string()
            } else {
                String::new()
            };
            let ino = if m.is_dir() { 0 } else { m.ino() };
            (
                p,
                format!("{:o} {}:{} ino {ino} {content}", m.mode(), m.uid(), m.gid()),
            )
        })
        .collect()
}

fn read(root: &Root, p: &str) -> String {
    std::fs::read_to_string(root.upper(p)).unwrap_or_else(|e| panic!("{p}: {e}"))
}

fn v(version: &str, file: &str) -> String {
    std::fs::read_to_string(fixture(&format!("upg/v{version}/{file}"))).unwrap()
}

#[test]
fn an_upgrade_removes_stale_files_keeps_changed_configuration_and_records_its_history() {
    needs_root!();
    let root = Root::new();
    let src = upg_sources();
    install_upg(&root, "upg-1.toml", &src).success();
    // The user changes a configuration file under /etc, one listed in package.config, and a
    // data file version 2 no longer has.
    sh(
        &root,
        "echo 'level = 9' >> /etc/upg/upg.conf && \
         echo 'colour = red' >> /usr/local/share/upg/settings.ini && \
         echo mine >> /usr/local/share/upg/changed-stale.txt",
    );
    let users_conf = read(&root, "etc/upg/upg.conf");
    let users_ini = read(&root, "usr/local/share/upg/settings.ini");
    let upg2 = fixture("upg/upg-2.toml");
    // `upm upgrade upg` looks in the recipe directories and the package's home: nothing newer
    // yet; then version 2's recipe is put in /usr/src/upg.
    root.upm(["upgrade", "upg"])
        .failure()
        .stderr_has("no newer recipe for upg (installed: 1)");
    sh(
        &root,
        &format!("cp {} /usr/src/upg/upg.toml", upg2.display()),
    );
    let out = root
        .upm([
            "upgrade".as_ref(),
            "upg".as_ref(),
            "--sources-dir".as_ref(),
            src.path().as_os_str(),
        ])
        .success()
        .stderr_has("upg: new version from /usr/src/upg/upg.toml")
        .stdout_has("upgraded upg 1 to 2")
        .stderr_has(
            "/etc/upg/upg.conf: changed since it was installed, kept; the new version is \
             /etc/upg/upg.conf.upmnew",
        )
        .stderr_has("/usr/local/share/upg/changed-stale.txt: kept: changed since it was installed");
    let said = out.stderr();
    assert!(
        said.contains("/usr/local/share/upg/settings.ini: changed since it was installed, kept"),
        "{said}"
    );

    // The program is version 2's; stale files unchanged are gone, the changed one stays.
    assert_eq!(read(&root, "usr/local/bin/upg"), v("2", "upg"));
    assert_eq!(
        read(&root, "usr/local/share/upg/common.txt"),
        v("2", "common.txt")
    );
    assert_eq!(
        read(&root, "usr/local/share/upg/new-only.txt"),
        v("2", "new-only.txt")
    );
    assert!(!root.upper("usr/local/share/upg/old-only.txt").exists());
    assert!(!root.upper("usr/local/share/upg/olddir").exists());
    assert!(read(&root, "usr/local/share/upg/changed-stale.txt").ends_with("mine\n"));
    // An unchanged configuration file is replaced; the changed ones stay, the new ones beside.
    assert_eq!(read(&root, "etc/upg/plain.conf"), v("2", "plain.conf"));
    assert_eq!(read(&root, "etc/upg/upg.conf"), users_conf);
    assert_eq!(read(&root, "etc/upg/upg.conf.upmnew"), v("2", "upg.conf"));
    assert_eq!(read(&root, "usr/local/share/upg/settings.ini"), users_ini);
    assert_eq!(
        read(&root, "usr/local/share/upg/settings.ini.upmnew"),
        v("2", "settings.ini")
    );
    assert!(!root.upper("var/lib/upm/upgrade/upg").exists());

    root.upm(["configs"])
        .success()
        .stdout_is(
            "upg: /etc/upg/upg.conf (new version: /etc/upg/upg.conf.upmnew)\n\
             upg: /usr/local/share/upg/settings.ini (new version: /usr/local/share/upg/settings.ini.upmnew)\n",
        );
    root.upm(["configs", "--diff"])
        .success()
        .stdout_has("--- /etc/upg/upg.conf\n+++ /etc/upg/upg.conf.upmnew\n")
        .stdout_has("-level = 9\n+speed = 2\n")
        .stdout_has("+shape = round\n");

    // One package, version 2, whose manifest holds the .upmnew files and the kept file;
    // `upm check` names the user's changes and never a .upmnew.
    let list = root.upm(["--json", "list"]).success().json();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["version"], "2", "{list}");
    let files = paths(&root.upm(["--json", "files", "upg"]).success().json());
    for p in [
        "/etc/upg/upg.conf.upmnew",
        "/usr/local/share/upg/changed-stale.txt",
        "/usr/local/share/upg/new-only.txt",
    ] {
        assert!(files.contains(p), "{p} not in {files:?}");
    }
    assert!(!files.contains("/usr/local/share/upg/old-only.txt"));
    let check = root.upm(["check", "upg"]).code(1).stdout();
    assert!(!check.contains("upmnew"), "{check}");
    for p in [
        "/etc/upg/upg.conf",
        "/usr/local/share/upg/settings.ini",
        "/usr/local/share/upg/changed-stale.txt",
    ] {
        assert!(check.contains(p), "{p}: {check}");
    }
    // After a merge the .upmnew goes and nothing is pending; check still says nothing of it.
    sh(&root, "rm /etc/upg/upg.conf.upmnew");
    let check = root.upm(["check", "upg"]).code(1).stdout();
    assert!(!check.contains("upmnew"), "{check}");
    root.upm(["configs"])
        .success()
        .stdout_is("upg: /usr/local/share/upg/settings.ini (new version: /usr/local/share/upg/settings.ini.upmnew)\n");

    // The history: old and new version, each one's profile.
    let info = root
        .upm(["--json", "info", "upg", "--history"])
        .success()
        .json();
    let h = info["history"].as_array().unwrap();
    assert_eq!(h.len(), 1, "{info}");
    assert_eq!(h[0]["old_version"], "1");
    assert_eq!(h[0]["new_version"], "2");
    assert_eq!(h[0]["state"], "upgraded");
    assert_eq!(h[0]["old_profile"], "/usr/src/upg/upg-1.profile.toml");
    assert_eq!(h[0]["new_profile"], "/usr/src/upg/upg-2.profile.toml");
    assert!(root.upper("usr/src/upg/upg-1.profile.toml").exists());
    root.upm(["info", "upg", "--history"])
        .success()
        .stdout_has(" 1 -> 2 upgraded\n");

    root.upm(["upgrade", "upg"])
        .failure()
        .stderr_has("no newer recipe for upg (installed: 2)");
    // The same version again is already installed; --reinstall builds it again.
    install_upg(&root, "upg-2.toml", &src)
        .failure()
        .stderr_has("upg 2 is already installed");
    root.upm([
        "install".as_ref(),
        upg2.as_os_str(),
        "--sources-dir".as_ref(),
        src.path().as_os_str(),
        "--reinstall".as_ref(),
    ])
    .success()
    .stdout_has("upgraded upg 2 to 2");

    // Removing it takes the .upmnew with it and keeps the changed files.
    root.upm(["remove", "upg"]).success();
    assert!(
        !root
            .upper("usr/local/share/upg/settings.ini.upmnew")
            .exists()
    );
    assert_eq!(read(&root, "etc/upg/upg.conf"), users_conf);
}

#[test]
fn a_failed_build_or_install_phase_leaves_the_old_version_exactly_as_it_was() {
    needs_root!();
    let root = Root::new();
    let src = upg_sources();
    install_upg(&root, "upg-1.toml", &src).success();
    let before = on_disk(&root, "upg");
    let info_before = root.upm(["--json", "info", "upg"]).success().json();

    // The build fails: nothing of version 1 is touched, not even an inode.
    install_upg(&root, "upg-2-broken.toml", &src)
        .failure()
        .stderr_has("the compile phase of upg failed")
        .stderr_has("upg 1 is installed as it was");
    assert_eq!(on_disk(&root, "upg"), before);
    root.upm(["check"]).success();

    // The install phase fails after writing over version 1: the old files come back exactly
    // (content, mode, owner, the very inodes), version 2's new file is gone.
    install_upg(&root, "upg-2-badinstall.toml", &src)
        .failure()
        .stderr_has("the install phase of upg failed");
    assert_eq!(on_disk(&root, "upg"), before);
    assert!(!root.upper("usr/local/share/upg/new-only.txt").exists());
    assert!(!root.upper("var/lib/upm/upgrade/upg").exists());
    root.upm(["check"]).success();

    let info = root
        .upm(["--json", "info", "upg", "--history"])
        .success()
        .json();
    assert_eq!(info["version"], "1");
    assert_eq!(info["state"], "installed");
    assert_eq!(info["recipe_hash"], info_before["recipe_hash"]);
    let states: Vec<&str> = info["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["failed", "failed"], "{info}");
    let list = root.upm(["--json", "list"]).success().json();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");

    // Version 2 itself then upgrades cleanly.
    install_upg(&root, "upg-2.toml", &src)
        .success()
        .stdout_has("upgraded upg 1 to 2");
    root.upm(["check"]).success();
}

/// Start an upgrade to `recipe` in the sandbox, wait until its phase says it is ready (once
/// `check` holds), kill upm with SIGKILL, then run `upm --json list` (the next upm). What
/// that list said on stderr, and its output.
fn kill_upgrade(root: &Root, src: &Dir, recipe: &str, check: &str) -> (String, serde_json::Value) {
    let script = format!(
        "{upm} install {recipe} --sources-dir {src} > /var/tmp/upg.out 2>&1 & pid=$!\n\
         while [ ! -e /var/tmp/upg-ready ]; do kill -0 $pid || exit 3; sleep 0.05; done\n\
         {check} || exit 4\n\
         {{ kill -KILL $pid; wait $pid; }} 2>/dev/null\n\
         rm /var/tmp/upg-ready\n\
         {upm} --json list > /var/tmp/upg-list.json 2> /var/tmp/upg-list.err",
        upm = bin(),
        recipe = fixture(&format!("upg/{recipe}")).display(),
        src = src.path().display()
    );
    let mut cmd = Command::new("/bin/sh");
    cmd.args(["-c", &script]);
    let st = root.sb.status(cmd).unwrap();
    assert!(
        st.success(),
        "{st}: {}",
        std::fs::read_to_string(root.upper("var/tmp/upg.out")).unwrap_or_default()
    );
    let said = std::fs::read_to_string(root.upper("var/tmp/upg-list.err")).unwrap();
    let list = serde_json::from_slice(&std::fs::read(root.upper("var/tmp/upg-list.json")).unwrap())
        .unwrap();
    (said, list)
}

#[test]
fn a_killed_upgrade_is_put_back_to_the_old_version_by_the_next_upm() {
    needs_root!();
    let root = Root::new();
    let src = upg_sources();
    install_upg(&root, "upg-1.toml", &src).success();
    let before = on_disk(&root, "upg");

    // Killed while building version 2: nothing of version 1 was touched; the new row goes.
    let (said, list) = kill_upgrade(&root, &src, "upg-2-slowbuild.toml", "true");
    assert!(
        said.contains("the upgrade of upg to 2 was interrupted")
            && said.contains("stopped while building the new version"),
        "{said}"
    );
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(on_disk(&root, "upg"), before);
    root.upm(["check"]).success();

    // Killed once its install phase has written version 2 over version 1.
    let (said, list) = kill_upgrade(
        &root,
        &src,
        "upg-2-slow.toml",
        "grep -q 'upg 2' /usr/local/bin/upg",
    );
    assert!(
        said.contains("the upgrade of upg to 2 was interrupted")
            && said.contains("upg 1 was put back"),
        "{said}"
    );
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(
        (&list[0]["name"], &list[0]["version"], &list[0]["state"]),
        (&"upg".into(), &"1".into(), &"installed".into()),
        "{list}"
    );
    // One consistent version: the manifest matches the disk, file for file and inode for inode.
    assert_eq!(on_disk(&root, "upg"), before);
    assert!(!root.upper("usr/local/share/upg/new-only.txt").exists());
    assert!(!root.upper("var/lib/upm/upgrade/upg").exists());
    root.upm(["check"]).success();
    let info = root
        .upm(["--json", "info", "upg", "--history"])
        .success()
        .json();
    let states: Vec<&str> = info["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["interrupted", "interrupted"], "{info}");
    install_upg(&root, "upg-2.toml", &src)
        .success()
        .stdout_has("upgraded upg 1 to 2");
}

#[test]
fn a_library_upgrade_to_a_new_soname_stops_while_another_package_needs_the_old_one() {
    needs_root!();
    let root = Root::new();
    let inst = |recipe: &str, extra: &[&str]| {
        let f = fixture(recipe);
        let mut args: Vec<&std::ffi::OsStr> = vec!["install".as_ref(), f.as_os_str()];
        args.extend(extra.iter().map(std::ffi::OsStr::new));
        root.upm(args)
    };
    inst("libup/libup-1.toml", &[]).success();
    inst("libup/upuser.toml", &[]).success();
    let runs = || {
        let mut cmd = Command::new("/usr/local/bin/upuser");
        cmd.env_clear();
        crate::install::succeeds(&root.sb, cmd)
    };
    assert_eq!(runs(), "upuser linked against libup 1\n");
    let before = on_disk(&root, "libup");

    // Version 2 provides libup.so.2 only: stopped, naming upuser; version 1 as it was.
    inst("libup/libup-2.toml", &[])
        .failure()
        .stderr_has("cannot upgrade libup to 2")
        .stderr_has("upuser (/usr/local/bin/upuser needs libup.so.1)")
        .stderr_has("--force");
    assert_eq!(on_disk(&root, "libup"), before);
    assert!(!root.upper("usr/local/lib/libup.so.2.0").exists());
    assert_eq!(runs(), "upuser linked against libup 1\n");
    root.upm(["check"]).success();
    root.upm(["check", "--libs"]).success();

    // With --force: upgraded, the old library kept (and said), upuser still runs.
    inst("libup/libup-2.toml", &["--force"])
        .success()
        .stdout_has("upgraded libup 1 to 2")
        .stderr_has("rebuild upuser, then run `upm remove --stale-libs libup`");
    assert!(root.upper("usr/local/lib/libup.so.2.0").exists());
    assert!(root.upper("usr/local/lib/libup.so.1.0").exists());
    assert_eq!(runs(), "upuser linked against libup 1\n");
    let info = root.upm(["--json", "info", "libup"]).success().json();
    let kept: Vec<&str> = info["kept_libs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        kept,
        ["/usr/local/lib/libup.so.1", "/usr/local/lib/libup.so.1.0"],
        "{info}"
    );
    root.upm(["check"]).success();
    root.upm(["check", "--libs"]).success();
    root.upm(["rdepends", "libup"])
        .success()
        .stdout_has("upuser: /usr/local/bin/upuser needs libup.so.1");

    // The kept files go only once nothing needs them: after upuser is rebuilt against 2.
    root.upm(["remove", "--stale-libs", "libup"])
        .failure()
        .stderr_has("upuser (/usr/local/bin/upuser needs libup.so.1)");
    root.upm(["remove", "upuser"]).success();
    inst("libup/upuser.toml", &[]).success();
    assert_eq!(runs(), "upuser linked against libup 2\n");
    root.upm(["remove", "--stale-libs", "libup"])
        .success()
        .stdout_has("/usr/local/lib/libup.so.1.0: removed");
    assert!(!root.upper("usr/local/lib/libup.so.1.0").exists());
    assert!(!Path::new(&root.upper("usr/local/lib/libup.so.1")).exists());
    root.upm(["check"]).success();
    root.upm(["check", "--libs"]).success();
}

#[test]
fn files_root_steps_gave_to_root_are_upgraded_and_keep_their_bits() {
    needs_root!();
    let root = Root::new();
    let recipe = fixture("setid/setid-allowed.toml");
    root.upm(["install".as_ref(), recipe.as_os_str()]).success();
    let before = on_disk(&root, "setid");
    let suid = &before["/usr/local/bin/setid-suid"];
    assert!(suid.starts_with("104755 0:0"), "{suid}");
    // The new version writes over root's setuid program: it is the package user's during the
    // install phase, and root's with its bit again after the root steps.
    root.upm([
        "install".as_ref(),
        recipe.as_os_str(),
        "--reinstall".as_ref(),
    ])
    .success()
    .stdout_has("upgraded setid 1 to 1");
    let after = on_disk(&root, "setid");
    for p in ["/usr/local/bin/setid-suid", "/usr/local/bin/setid-sgid"] {
        let (b, a) = (&before[p], &after[p]);
        assert_eq!(b.split(" ino ").next(), a.split(" ino ").next(), "{p}");
    }
    root.upm(["check", "setid"]).success();
    assert!(!root.upper("var/lib/upm/upgrade/setid").exists());
}
