//! The LD_PRELOAD shim in real installs: it logs every file-changing call of coreutils and of a
//! C program using the `*at` calls and `syscall(SYS_renameat2)`; it turns `/usr/bin/install -o
//! root -m 4755` and perl's `chown` into root steps applied (or refused) as the recipe says;
//! and what it cannot see — a statically linked installer, a setgid program (the loader drops
//! LD_PRELOAD for it) — the watcher still puts in the manifest, as `--tracking` shows.

use std::collections::BTreeSet;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::*;
use crate::install::Root;
use crate::needs_root;

/// The C program using the `*at` calls: every change under the directory given.
const AT_CALLS: &str = r#"
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

#define CHECK(x) do { if ((x) < 0) { perror(#x); exit(1); } } while (0)

int main(int argc, char **argv) {
    int d = open(argv[1], O_RDONLY | O_DIRECTORY);
    CHECK(d);
    int f = openat(d, "openat", O_CREAT | O_WRONLY, 0644);
    CHECK(f);
    CHECK(write(f, "x", 1));
    CHECK(fchmod(f, 0640));
    CHECK(fchown(f, getuid(), getgid()));
    CHECK(ftruncate(f, 0));
    CHECK(futimens(f, NULL));
    close(f);
    CHECK(mkdirat(d, "mkdirat", 0755));
    CHECK(linkat(d, "openat", d, "linkat", 0));
    CHECK(symlinkat("openat", d, "symlinkat"));
    CHECK(renameat(d, "linkat", d, "renameat"));
    CHECK(syscall(SYS_renameat2, d, "renameat", d, "renameat2", 0));
    CHECK(fchmodat(d, "openat", 0600, 0));
    CHECK(fchownat(d, "openat", getuid(), getgid(), 0));
    CHECK(utimensat(d, "openat", NULL, 0));
    CHECK(mknodat(d, "fifo", S_IFIFO | 0644, 0));
    CHECK(unlinkat(d, "fifo", 0));
    CHECK(unlinkat(d, "mkdirat", AT_REMOVEDIR));
    FILE *s = fopen("fopen", "w");
    if (!s) { perror("fopen"); exit(1); }
    fclose(s);
    return 0;
}
"#;

/// Makes the file named by its argument (for the static and setgid installers).
const MAKE_FILE: &str = r#"
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
int main(int argc, char **argv) {
    int f = open(argv[1], O_CREAT | O_WRONLY | O_TRUNC, 0644);
    if (f < 0) { perror(argv[1]); return 1; }
    return write(f, "made\n", 5) == 5 ? 0 : 1;
}
"#;

/// Compile `source` in `dir` as `name` with extra `flags`; false when the compiler refuses
/// (no static C library).
fn cc(dir: &Dir, name: &str, source: &str, flags: &[&str]) -> bool {
    let src = dir.write(&format!("{name}.c"), source);
    let out = Command::new("cc")
        .args(flags)
        .arg("-o")
        .arg(dir.join(name))
        .arg(&src)
        .output()
        .expect("cc runs");
    if !out.status.success() {
        eprintln!("cc {name}: {}", String::from_utf8_lossy(&out.stderr));
    }
    out.status.success()
}

/// The shim's log of the install phase of `name`: (kind, path) pairs.
fn shim_log(root: &Root, name: &str) -> BTreeSet<(String, String)> {
    let data = std::fs::read(root.upper(&format!("usr/src/{name}/.upm/shim.log")))
        .expect("the install left its shim log");
    upm_rootstep::Record::parse_all(&data)
        .into_iter()
        .map(|r| {
            (
                String::from_utf8(r.kind).unwrap(),
                String::from_utf8(r.path).unwrap(),
            )
        })
        .collect()
}

/// `upm info NAME --tracking --json`'s rows by path.
fn tracking(root: &Root, name: &str) -> Vec<serde_json::Value> {
    let info = root
        .upm(["--json", "info", name, "--tracking"])
        .success()
        .json();
    info["tracking"].as_array().expect("tracking rows").clone()
}

fn row<'a>(rows: &'a [serde_json::Value], path: &str) -> &'a serde_json::Value {
    rows.iter()
        .find(|r| r["path"] == path)
        .unwrap_or_else(|| panic!("{path} not tracked: {rows:#?}"))
}

#[test]
fn the_shim_logs_each_call_of_coreutils_and_of_the_at_variants() {
    needs_root!();
    let dir = Dir::shared();
    assert!(
        cc(&dir, "atcalls", AT_CALLS, &[]),
        "cc builds the *at test program"
    );
    let root = Root::new();
    let d = "/usr/local/share/shimcalls";
    let recipe = crate::install::script_recipe(
        &dir,
        "shimcalls",
        &format!(
            "install -d {d}\n\
             echo hello > src.txt\n\
             install -m 644 src.txt {d}/install\n\
             cp src.txt {d}/cp\n\
             mv {d}/cp {d}/mv\n\
             ln -s mv {d}/ln-s\n\
             ln {d}/mv {d}/ln\n\
             mkdir {d}/mkdir\n\
             touch {d}/touch\n\
             truncate -s 10 {d}/touch\n\
             chmod 600 {d}/touch\n\
             chown $(id -u) {d}/touch\n\
             rm {d}/ln\n\
             rmdir {d}/mkdir\n\
             mkdir {d}/at\n\
             cd {d}/at && {} {d}/at",
            dir.join("atcalls").display()
        ),
    );
    root.upm(["install".as_ref(), recipe.as_os_str()]).success();
    let log = shim_log(&root, "shimcalls");
    let want = |kind: &str, path: &str| {
        assert!(
            log.contains(&(kind.to_string(), path.to_string())),
            "no `{kind}` record for {path} in the shim's log: {log:#?}"
        );
    };
    want("mkdir", d);
    want("create", &format!("{d}/install"));
    want("create", &format!("{d}/cp"));
    want("rename", &format!("{d}/mv"));
    want("symlink", &format!("{d}/ln-s"));
    want("link", &format!("{d}/ln"));
    want("mkdir", &format!("{d}/mkdir"));
    want("create", &format!("{d}/touch"));
    want("utimens", &format!("{d}/touch"));
    want("truncate", &format!("{d}/touch"));
    want("chmod", &format!("{d}/touch"));
    want("chown", &format!("{d}/touch"));
    want("unlink", &format!("{d}/ln"));
    want("rmdir", &format!("{d}/mkdir"));
    // The C program: relative to its directory descriptor, fd-based through /proc/self/fd.
    let at = |n: &str| format!("{d}/at/{n}");
    want("create", &at("openat"));
    want("chmod", &at("openat"));
    want("chown", &at("openat"));
    want("truncate", &at("openat"));
    want("utimens", &at("openat"));
    want("mkdir", &at("mkdirat"));
    want("link", &at("linkat"));
    want("symlink", &at("symlinkat"));
    want("rename", &at("renameat"));
    want("rename", &at("renameat2"));
    want("mknod", &at("fifo"));
    want("unlink", &at("fifo"));
    want("rmdir", &at("mkdirat"));
    want("create", &at("fopen"));
    // Both signals saw every file that stayed, and the manifest has them.
    let rows = tracking(&root, "shimcalls");
    for p in [
        format!("{d}/install"),
        format!("{d}/mv"),
        format!("{d}/ln-s"),
        format!("{d}/touch"),
        at("openat"),
        at("symlinkat"),
        at("renameat2"),
        at("fopen"),
    ] {
        let r = row(&rows, &p);
        assert_eq!(
            (
                r["inotify"].as_bool(),
                r["shim"].as_bool(),
                r["verdict"].as_str()
            ),
            (Some(true), Some(true), Some("claimed")),
            "{p}: {r}"
        );
    }
    // The text view says where they disagree.
    root.upm(["info", "shimcalls", "--tracking"])
        .success()
        .stdout_has("watcher and shim both saw");
}

/// A package whose `make install` runs `/usr/bin/install -o root -m 4755` by absolute path and
/// perl's `chown`, allowing `allow`.
fn root_steps_fixture(dir: &Dir, name: &str, allow: &str) -> PathBuf {
    dir.write(&format!("{name}/src/tool.sh"), "#!/bin/sh\necho tool\n");
    dir.write(&format!("{name}/src/tool.conf"), "setting = 1\n");
    dir.write(
        &format!("{name}/src/Makefile"),
        &format!(
            "install:\n\
             \t/usr/bin/install -d /usr/local/bin /usr/local/lib\n\
             \t/usr/bin/install -o root -m 4755 tool.sh /usr/local/bin/{name}\n\
             \t/usr/bin/install -m 644 tool.conf /usr/local/lib/{name}.conf\n\
             \tperl -e 'chown(0, 0, \"/usr/local/lib/{name}.conf\") or die \"chown: $$!\"'\n"
        ),
    );
    dir.write(
        &format!("{name}/{name}.toml"),
        &format!(
            "[package]\nname = \"{name}\"\nversion = \"1\"\n\n[source]\ndir = \"src\"\n\n\
             [phases]\ninstall = \"make install\"\n\n[root]\nallow = [{allow}]\n"
        ),
    )
}

#[test]
fn install_o_root_and_perls_chown_become_root_steps_applied_or_refused() {
    needs_root!();
    let dir = Dir::shared();
    let root = Root::new();
    let allowed = root_steps_fixture(&dir, "shimsu", "\"chown\", \"setuid\"");
    root.upm(["install".as_ref(), allowed.as_os_str()])
        .success();
    let tool = std::fs::metadata(root.upper("usr/local/bin/shimsu")).unwrap();
    assert_eq!((tool.uid(), tool.mode() & 0o7777), (0, 0o4755));
    let conf = std::fs::metadata(root.upper("usr/local/lib/shimsu.conf")).unwrap();
    assert_eq!(
        (conf.uid(), conf.gid(), conf.mode() & 0o7777),
        (0, 0, 0o644)
    );
    let steps = root.upm(["--json", "info", "shimsu"]).success().json()["root_steps"].clone();
    let applied: BTreeSet<String> = steps
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
    for s in [
        "chown /usr/local/bin/shimsu",
        "setuid /usr/local/bin/shimsu",
        "chown /usr/local/lib/shimsu.conf",
    ] {
        assert!(applied.contains(s), "{s} not applied: {steps:#}");
    }
    // Once each: the wrappers stepped aside for the shim.
    assert_eq!(
        steps
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["step"] == "setuid")
            .count(),
        1,
        "{steps:#}"
    );

    // Without setuid in root.allow: the file is root's, without the bit, and the step shows
    // as refused.
    let refused = root_steps_fixture(&dir, "shimnosu", "\"chown\"");
    root.upm(["install".as_ref(), refused.as_os_str()])
        .success()
        .stderr_has("not allowed by the recipe");
    let tool = std::fs::metadata(root.upper("usr/local/bin/shimnosu")).unwrap();
    assert_eq!((tool.uid(), tool.mode() & 0o7777), (0, 0o755));
    let info = root.upm(["info", "shimnosu"]).success();
    info.stdout_has("setuid")
        .stdout_has("not applied: not allowed by the recipe: add \"setuid\" to root.allow");
}

#[test]
fn a_static_installer_and_a_setgid_program_are_tracked_by_the_watcher() {
    needs_root!();
    let dir = Dir::shared();
    let root = Root::new();
    let have_static = cc(&dir, "mk-static", MAKE_FILE, &["-static"]);
    assert!(
        have_static,
        "cc -static failed: the static C library (libc6-dev's libc.a) is needed for this test"
    );
    assert!(cc(&dir, "mk-sgid", MAKE_FILE, &[]));
    // Setgid to the install group: the loader runs it in secure mode, without LD_PRELOAD.
    let sgid = dir.join("mk-sgid");
    std::os::unix::fs::chown(&sgid, Some(0), Some(9999)).unwrap();
    std::fs::set_permissions(&sgid, std::fs::Permissions::from_mode(0o2755)).unwrap();
    let d = "/usr/local/share/shimblind";
    let recipe = crate::install::script_recipe(
        &dir,
        "shimblind",
        &format!(
            "mkdir -p {d}\n{} {d}/static\n{} {d}/setgid\necho seen > {d}/shell",
            dir.join("mk-static").display(),
            sgid.display()
        ),
    );
    let out = root
        .upm([
            "install".as_ref(),
            recipe.as_os_str(),
            "--explain-tracking".as_ref(),
        ])
        .success();
    out.stdout_has("the shim did not log it");
    let files = root.upm(["--json", "files", "shimblind"]).success().json();
    let listed = crate::install::paths(&files);
    for f in ["static", "setgid", "shell"] {
        assert!(listed.contains(&format!("{d}/{f}")), "{d}/{f}: {listed:?}");
    }
    let made = std::fs::metadata(root.upper(&format!("{}/setgid", &d[1..]))).unwrap();
    assert_eq!(made.gid(), 9999, "the setgid program ran with its group");
    let rows = tracking(&root, "shimblind");
    for f in ["static", "setgid"] {
        let r = row(&rows, &format!("{d}/{f}"));
        assert_eq!(
            (r["inotify"].as_bool(), r["shim"].as_bool()),
            (Some(true), Some(false)),
            "{f}: {r}"
        );
        assert!(r["disagreement"].as_str().unwrap().contains("shim did not"));
    }
    let r = row(&rows, &format!("{d}/shell"));
    assert_eq!(r["shim"].as_bool(), Some(true), "{r}");
    assert!(Path::new(&root.upper(&format!("{}/static", &d[1..]))).is_file());
}

#[test]
fn with_upm_shim_0_the_install_is_tracked_by_the_watcher_alone() {
    needs_root!();
    let dir = Dir::shared();
    let root = Root::new();
    let recipe = crate::install::script_recipe(
        &dir,
        "shimoff",
        "mkdir -p /usr/local/share/shimoff\necho x > /usr/local/share/shimoff/f",
    );
    upm()
        .env("UPM_SHIM", "0")
        .args(["install".as_ref(), recipe.as_os_str()])
        .run_in(&root.sb)
        .success();
    assert!(!root.upper("usr/src/shimoff/.upm/shim.log").exists());
    let rows = tracking(&root, "shimoff");
    let r = row(&rows, "/usr/local/share/shimoff/f");
    assert_eq!(
        (
            r["inotify"].as_bool(),
            r["shim"].is_null(),
            r["verdict"].as_str()
        ),
        (Some(true), true, Some("claimed")),
        "{r}"
    );
    root.upm(["info", "shimoff", "--tracking"])
        .success()
        .stdout_has("the shim was off");
}
