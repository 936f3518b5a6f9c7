//! upm on a real system: an install replaces files no package owns (LFS chapter 8's temporary
//! tools, a distribution's files) by taking them over, never leaving a hole, and `remove
//! --restore` puts them back; shared directories that exist become writable when needed; a
//! directory a package makes keeps its mode; a failed install leaves nothing behind.

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::process::Command;

use crate::harness::{Dir, repo, sources};
use crate::install::{Root, paths, script_recipe, succeeds};
use crate::needs_root;

/// Run a shell script as root in the sandbox; it must succeed.
fn sh(root: &Root, script: &str) -> String {
    let mut cmd = Command::new("/bin/sh");
    cmd.args(["-ec", script]);
    succeeds(&root.sb, cmd)
}

/// (inode, uid) of a file in the sandbox's upper directory.
fn ident(root: &Root, p: &str) -> (u64, u32) {
    let m = std::fs::symlink_metadata(root.upper(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
    (m.ino(), m.uid())
}

#[test]
fn chapter8_temporary_tools_are_taken_over_and_restored() {
    needs_root!();
    let root = Root::new();
    // The temporary tools: zlib built and installed as root without upm, then chowned to
    // root, as LFS chapter 7 leaves them.
    let build = Dir::shared();
    sh(
        &root,
        &format!(
            "cd {b}; tar xf {src}/zlib_1.2.13.dfsg.orig.tar.bz2; cd zlib-1.2.13.dfsg\n\
             ./configure --prefix=/usr >/dev/null; make -s >/dev/null 2>&1; make install >/dev/null\n\
             chown -R root:root /usr/lib/libz.* /usr/include/zlib.h /usr/include/zconf.h",
            b = build.path().display(),
            src = sources().display()
        ),
    );
    let temporary = [
        "/usr/include/zconf.h",
        "/usr/include/zlib.h",
        "/usr/lib/libz.a",
        "/usr/lib/libz.so",
        "/usr/lib/libz.so.1",
        "/usr/lib/libz.so.1.2.13",
        "/usr/lib/pkgconfig/zlib.pc",
        "/usr/share/man/man3/zlib.3",
    ];
    let before: Vec<(u64, u32)> = temporary.iter().map(|p| ident(&root, p)).collect();
    let state_before = root.state();

    // The book's recipe, prefix /usr, over them.
    root.upm([
        "install".as_ref(),
        repo().join("recipes/zlib.toml").as_os_str(),
        "--sources-dir".as_ref(),
        sources().as_os_str(),
        "--no-check".as_ref(),
    ])
    .success()
    .stderr_has("zlib: replaced 8 file(s) no package owned");
    let uid = root.uid_of("zlib") as u32;
    // The manifest is what the upper directory shows as the package user's, file for file.
    let manifest = paths(&root.upm(["--json", "files", "zlib"]).success().json());
    let truth: BTreeSet<String> = root
        .state()
        .keys()
        .filter(|p| {
            std::fs::symlink_metadata(root.upper(p)).is_ok_and(|m| m.uid() == uid && !m.is_dir())
        })
        .cloned()
        .collect();
    assert_eq!(manifest, truth);
    for p in temporary.iter().filter(|p| **p != "/usr/lib/libz.a") {
        assert!(manifest.contains(*p), "{p} not in {manifest:?}");
    }
    root.upm(["check", "zlib"]).success();
    // upm info lists what it replaced, with the original owner.
    let info = root.upm(["--json", "info", "zlib"]).success().json();
    let replaced: BTreeSet<String> = info["replaced"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r["uid"], 0, "{r}");
            r["path"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(replaced, temporary.iter().map(|p| p.to_string()).collect());
    root.upm(["info", "zlib"])
        .success()
        .stdout_has("replaced:    /usr/lib/libz.so.1.2.13 (was uid 0 gid 0 mode 0755");

    // Removing with --restore brings back the temporary tools' very files.
    root.upm(["remove", "zlib", "--restore"])
        .success()
        .stdout_has("put back the original /usr/lib/libz.so.1.2.13");
    let after: Vec<(u64, u32)> = temporary.iter().map(|p| ident(&root, p)).collect();
    assert_eq!(after, before);
    assert_eq!(root.state(), state_before);
}

#[test]
fn an_install_that_runs_the_program_it_replaces_succeeds() {
    needs_root!();
    let root = Root::new();
    // A temporary `install` (coreutils' own, root's) that the package's install phase uses to
    // replace itself, then runs again, as coreutils' and glibc's installs do.
    sh(
        &root,
        "cp /usr/bin/install /usr/local/bin/upm-fx-install\n\
         cp /usr/bin/install /var/tmp/upm-fx-original",
    );
    let dir = Dir::shared();
    let new = dir.write(
        "new-install",
        "#!/bin/sh\nif [ \"$1\" = --which ]; then echo NEW; exit 0; fi\nexec /usr/bin/install \"$@\"\n",
    );
    let recipe = script_recipe(
        &dir,
        "fxinstall",
        &format!(
            "upm-fx-install -m 644 /dev/null /usr/local/share/upm-fx-before\n\
             upm-fx-install -m 755 {new} /usr/local/bin/upm-fx-install\n\
             test \"$(upm-fx-install --which)\" = NEW\n\
             upm-fx-install -m 644 /dev/null /usr/local/share/upm-fx-after",
            new = new.display()
        ),
    );
    root.upm(["install".as_ref(), recipe.as_os_str()]).success();
    let files = paths(&root.upm(["--json", "files", "fxinstall"]).success().json());
    for p in [
        "/usr/local/bin/upm-fx-install",
        "/usr/local/share/upm-fx-before",
        "/usr/local/share/upm-fx-after",
    ] {
        assert!(files.contains(p), "{p} not in {files:?}");
    }
    root.upm(["remove", "fxinstall", "--restore"]).success();
    assert_eq!(
        std::fs::read(root.upper("usr/local/bin/upm-fx-install")).unwrap(),
        std::fs::read("/usr/bin/install").unwrap()
    );
    assert_eq!(ident(&root, "/usr/local/bin/upm-fx-install").1, 0);
}

#[test]
fn existing_locale_and_man_directories_become_install_directories() {
    needs_root!();
    let root = Root::new();
    // Root-owned 0755 directories of the base system, as the temporary tools leave them.
    sh(
        &root,
        "mkdir -p /usr/share/locale/upmxx/LC_MESSAGES /usr/share/man/upmxx/man1\n\
         chmod 755 /usr/share/locale/upmxx/LC_MESSAGES /usr/share/man/upmxx/man1",
    );
    let dir = Dir::shared();
    let recipe = script_recipe(
        &dir,
        "fxlocale",
        "echo mo > /usr/share/locale/upmxx/LC_MESSAGES/fxlocale.mo\n\
         echo man > /usr/share/man/upmxx/man1/fxlocale.1",
    );
    root.upm(["install".as_ref(), recipe.as_os_str()])
        .success()
        .stderr_has("/usr/share/locale/upmxx/LC_MESSAGES: made an install directory");
    for d in [
        "usr/share/locale/upmxx/LC_MESSAGES",
        "usr/share/man/upmxx/man1",
    ] {
        let m = std::fs::metadata(root.upper(d)).unwrap();
        assert_eq!(
            (m.uid(), m.gid(), m.mode() & 0o7777),
            (0, 9999, 0o1775),
            "{d}"
        );
    }
    let files = paths(&root.upm(["--json", "files", "fxlocale"]).success().json());
    assert!(files.contains("/usr/share/locale/upmxx/LC_MESSAGES/fxlocale.mo"));

    // `upm init` turns the existing ones matching install.patterns into install directories
    // up front.
    sh(&root, "mkdir -p /usr/share/locale/upmyy/LC_MESSAGES");
    root.upm(["init"]).success();
    let m = std::fs::metadata(root.upper("usr/share/locale/upmyy/LC_MESSAGES")).unwrap();
    assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (0, 9999, 0o1775));
}

#[test]
fn a_directory_the_package_makes_keeps_its_mode() {
    needs_root!();
    let root = Root::new();
    let dir = Dir::shared();
    let recipe = script_recipe(
        &dir,
        "fxmodes",
        "install -d -m 750 /etc/upm-fx.d\ninstall -m 640 /dev/null /etc/upm-fx.d/rules\n\
         install -d -m 700 /var/lib/upm-fx",
    );
    root.upm(["install".as_ref(), recipe.as_os_str()]).success();
    let uid = root.uid_of("fxmodes") as u32;
    for (d, mode) in [("etc/upm-fx.d", 0o750), ("var/lib/upm-fx", 0o700)] {
        let m = std::fs::metadata(root.upper(d)).unwrap();
        assert_eq!((m.uid(), m.mode() & 0o7777), (uid, mode), "{d}");
    }
    root.upm(["check", "fxmodes"]).success();
}

#[test]
fn a_failed_install_leaves_nothing_behind() {
    needs_root!();
    let root = Root::new();
    sh(
        &root,
        "echo original > /usr/local/bin/upm-fx-tool; chmod 755 /usr/local/bin/upm-fx-tool",
    );
    let clean = root.state();
    let dir = Dir::shared();
    // It writes a setuid program, a root-only configuration file, replaces a file no package
    // owns, and then fails (only in the real run: the trial passes).
    let recipe = script_recipe(
        &dir,
        "fxfail",
        "install -m 4755 /usr/bin/true /usr/local/bin/upm-fx-suid\n\
         install -d /etc/upm-fx\ninstall -m 600 /dev/null /etc/upm-fx/secret.conf\n\
         echo mine > /usr/local/bin/upm-fx-tool\n\
         if [ -z \"$UPM_TRIAL\" ]; then exit 7; fi",
    );
    root.upm(["install".as_ref(), recipe.as_os_str()])
        .failure()
        .stderr_has("the install phase of fxfail failed with status 7")
        .stderr_has("the failed install was undone");
    assert_eq!(root.state(), clean);
    assert_eq!(
        std::fs::read_to_string(root.upper("usr/local/bin/upm-fx-tool")).unwrap(),
        "original\n"
    );
    assert_eq!(ident(&root, "/usr/local/bin/upm-fx-tool").1, 0);
    let list = root.upm(["--json", "list"]).success().json();
    assert_eq!(list[0]["state"], "failed", "{list}");
    root.upm(["remove", "fxfail"]).success();

    // With --keep-failed the files stay for debugging, recorded as the failed install's, and
    // `remove --restore` cleans up and puts the original back.
    root.upm([
        "install".as_ref(),
        recipe.as_os_str(),
        "--keep-failed".as_ref(),
    ])
    .failure();
    let files = paths(&root.upm(["--json", "files", "fxfail"]).success().json());
    assert!(files.contains("/etc/upm-fx/secret.conf"), "{files:?}");
    root.upm(["remove", "fxfail", "--restore"]).success();
    assert_eq!(
        std::fs::read_to_string(root.upper("usr/local/bin/upm-fx-tool")).unwrap(),
        "original\n"
    );
}

#[test]
fn with_replace_none_an_unowned_file_is_refused_before_anything_is_written() {
    needs_root!();
    let root = Root::new();
    sh(&root, "echo base > /usr/local/bin/upm-fx-base");
    root.upm([
        "tree",
        "set",
        "/etc/upm/upm.toml",
        "install.replace",
        "none",
    ])
    .success();
    let clean = root.state();
    let dir = Dir::shared();
    let recipe = script_recipe(
        &dir,
        "fxnone",
        "echo a > /usr/local/share/upm-fx-none\necho b > /usr/local/bin/upm-fx-base",
    );
    root.upm(["install".as_ref(), recipe.as_os_str()])
        .failure()
        .stderr_has("it would replace /usr/local/bin/upm-fx-base (uid 0), which no package owns")
        .stderr_has("install.replace is \"none\"");
    assert_eq!(root.state(), clean);
}

#[test]
fn a_write_outside_the_tracked_trees_is_refused_before_anything_is_written() {
    needs_root!();
    let root = Root::new();
    // sudo's `make install` makes /run/sudo: a root-owned 0755 directory outside track.roots.
    sh(&root, "mkdir -p /upm-fx-run; chmod 755 /upm-fx-run");
    let clean = root.state();
    let dir = Dir::shared();
    let recipe = script_recipe(
        &dir,
        "fxrun",
        "echo a > /usr/local/share/upm-fx-run\ninstall -d -m 711 /upm-fx-run/fxrun",
    );
    root.upm(["install".as_ref(), recipe.as_os_str()])
        .failure()
        .stderr_has("it writes /upm-fx-run/fxrun, outside the trees upm tracks, into /upm-fx-run")
        .stderr_has("Add the tree to track.roots");
    assert_eq!(root.state(), clean);

    // Tracked, it installs: the directory is recorded and keeps its mode.
    root.upm([
        "tree",
        "set",
        "/etc/upm/upm.toml",
        "track.roots",
        r#"["/usr", "/etc", "/opt", "/var", "/srv", "/upm-fx-run"]"#,
    ])
    .success();
    root.upm(["install".as_ref(), recipe.as_os_str()]).success();
    let files = paths(&root.upm(["--json", "files", "fxrun"]).success().json());
    assert!(files.contains("/upm-fx-run/fxrun"), "{files:?}");
    let m = std::fs::metadata(root.upper("upm-fx-run/fxrun")).unwrap();
    assert_eq!(m.mode() & 0o7777, 0o711);
}

#[test]
fn a_file_the_root_commands_give_to_root_stays_the_packages() {
    needs_root!();
    let root = Root::new();
    let dir = Dir::shared();
    // As sudo's: the Makefile copies a config file with `cp -p`, and the recipe's root
    // commands give it to root (as the book's `make install` as root would have).
    let recipe = dir.write(
        "fxgiven.toml",
        "[package]\nname = \"fxgiven\"\nversion = \"1\"\n\n[phases]\ninstall = '''\n\
         install -m 440 /dev/null /etc/upm-fx-given.dist\n\
         cp -p /etc/upm-fx-given.dist /etc/upm-fx-given\n'''\n\n\
         [root]\ncommands = \"chown root:root /etc/upm-fx-given\"\n",
    );
    root.upm(["install".as_ref(), recipe.as_os_str()]).success();
    let files = paths(&root.upm(["--json", "files", "fxgiven"]).success().json());
    assert!(files.contains("/etc/upm-fx-given"), "{files:?}");
    assert_eq!(ident(&root, "/etc/upm-fx-given").1, 0);
    root.upm(["check", "fxgiven"]).success();
    root.upm(["remove", "fxgiven"]).success();
    assert!(!root.upper("etc/upm-fx-given").exists());
}
