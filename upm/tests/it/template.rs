//! `upm template`: the original design's example built on real directories — base → httpd →
//! LAMP (with vsftpd and MySQL) → docs and monitor, host www2 inheriting docs and monitor —
//! with `inherit` and `custom`, the prompts answered through a real pty (util-linux `script`);
//! `show` and `impact` on it; `unfold` to real files with the declared owners and modes, its
//! report of what changed, and a failed or killed unfold leaving DEST as it was; `check`
//! finding a cycle, a dangling link, an escaping link and a conflict.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::harness::{Dir, bin, upm};
use crate::needs_root;

fn up(repo: &Path) -> crate::harness::Cmd {
    upm().current_dir(repo).arg("template")
}

/// `upm template custom -- sh -c 'SCRIPT' TARGET` writing with `$0` the target.
fn custom(repo: &Path, flags: &[&str], script: &str, target: &str) -> crate::harness::Out {
    up(repo)
        .arg("custom")
        .args(flags)
        .args(["--", "sh", "-c", script, target])
        .run()
}

fn write(repo: &Path, rel: &str, text: &str) {
    let p = repo.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn link(repo: &Path, rel: &str) -> Option<PathBuf> {
    std::fs::read_link(repo.join(rel)).ok()
}

/// The design's example, built with upm.
fn example(dir: &Dir) -> PathBuf {
    let repo = dir.join("conf");
    for (f, t) in [
        ("templates/base/etc/ld.so.conf", "/usr/local/lib\n"),
        ("templates/base/etc/hosts.deny", "ALL: ALL\n"),
        ("templates/base/etc/skel/.bashrc", "set -o vi\n"),
        ("templates/base/etc/rc.d/rc.local", "#!/bin/sh\n"),
        ("templates/base/etc/snmp/snmpd.conf", "rocommunity public\n"),
        (
            "templates/vsftpd/etc/vsftpd/vsftpd.conf",
            "anonymous_enable=NO\n",
        ),
        ("templates/MySQL/etc/my.cnf", "[mysqld]\n"),
    ] {
        write(&repo, f, t);
    }
    up(&repo)
        .args(["inherit", "-t", "templates/base", "templates/httpd"])
        .run()
        .success()
        .stdout_has("templates/httpd/etc -> ../base/etc");
    custom(
        &repo,
        &[],
        "echo '/var/log/httpd/*log { weekly }' > \"$0\"",
        "templates/httpd/etc/logrotate.d/httpd",
    )
    .success();
    // The design's `ct_custom cp -r /tmp/httpd/* templates/httpd/etc/httpd/`: the last
    // argument is the target, a new directory (trailing slash).
    let src = dir.join("httpd");
    write(&src, "conf/httpd.conf", "Listen 80\n");
    up(&repo)
        .args(["custom", "--", "cp", "-r"])
        .arg(src.join("conf"))
        .arg("templates/httpd/etc/httpd/")
        .run()
        .success();
    assert!(
        !repo.join("templates/base/etc/httpd").exists(),
        "nothing written into base"
    );
    up(&repo)
        .args(["inherit", "-t", "templates/httpd", "-t", "templates/vsftpd"])
        .args(["-t", "templates/MySQL", "templates/LAMP"])
        .run()
        .success();
    for (t, f) in [("docs", "sites.conf"), ("monitor", "virtuals.conf")] {
        up(&repo)
            .args(["inherit", "-t", "templates/LAMP", &format!("templates/{t}")])
            .run()
            .success();
        custom(
            &repo,
            &[],
            &format!("echo '# {t}' > \"$0\""),
            &format!("templates/{t}/etc/httpd/conf.d/{f}"),
        )
        .success();
    }
    up(&repo)
        .args([
            "inherit",
            "-t",
            "templates/docs",
            "-t",
            "templates/monitor",
            "hosts/www2",
        ])
        .run()
        .success();
    repo
}

#[test]
fn the_design_example_inherits_by_the_coarsest_links() {
    let dir = Dir::new();
    let repo = example(&dir);
    // httpd: etc split by the customisations, its siblings still links to base.
    assert!(
        std::fs::symlink_metadata(repo.join("templates/httpd/etc"))
            .unwrap()
            .is_dir()
    );
    assert_eq!(
        link(&repo, "templates/httpd/etc/ld.so.conf").unwrap(),
        Path::new("../../base/etc/ld.so.conf")
    );
    assert_eq!(
        link(&repo, "templates/LAMP/etc/my.cnf").unwrap(),
        Path::new("../../MySQL/etc/my.cnf")
    );
    assert_eq!(
        link(&repo, "templates/LAMP/etc/httpd").unwrap(),
        Path::new("../../httpd/etc/httpd")
    );
    // docs: a real etc/httpd/conf.d holding its own file, conf still a link.
    assert_eq!(
        link(&repo, "templates/docs/etc/httpd/conf").unwrap(),
        Path::new("../../../LAMP/etc/httpd/conf")
    );
    assert!(link(&repo, "templates/docs/etc/httpd/conf.d/sites.conf").is_none());
    // www2: the first parent wins, conf.d merged from both, each file from its template.
    for (l, t) in [
        ("etc/ld.so.conf", "../../../templates/docs/etc/ld.so.conf"),
        (
            "etc/httpd/conf",
            "../../../../templates/docs/etc/httpd/conf",
        ),
        (
            "etc/httpd/conf.d/sites.conf",
            "../../../../../templates/docs/etc/httpd/conf.d/sites.conf",
        ),
        (
            "etc/httpd/conf.d/virtuals.conf",
            "../../../../../templates/monitor/etc/httpd/conf.d/virtuals.conf",
        ),
    ] {
        assert_eq!(
            link(&repo, &format!("hosts/www2/{l}")).unwrap(),
            Path::new(t),
            "{l}"
        );
    }
    let inherits = std::fs::read_to_string(repo.join("hosts/www2/.inherits")).unwrap();
    assert!(
        inherits.contains("\ntemplates/docs\ntemplates/monitor\n"),
        "{inherits}"
    );
    assert!(
        inherits.contains("# overlap etc/my.cnf: templates/docs used"),
        "{inherits}"
    );

    // show: the chain down to the template the file really comes from.
    let out = up(&repo)
        .args(["show", "hosts/www2", "etc/httpd/conf/httpd.conf"])
        .run()
        .success()
        .stdout();
    let units: Vec<_> = out.lines().map(|l| l.rsplit('(').next().unwrap()).collect();
    assert_eq!(
        units,
        [
            "hosts/www2)",
            "templates/docs)",
            "templates/LAMP)",
            "templates/httpd)"
        ]
    );

    // impact: transitive, every unit that sees the file.
    let out = up(&repo)
        .args(["impact", "templates/httpd/etc/httpd/conf/httpd.conf"])
        .run()
        .success()
        .stdout();
    let mut units: Vec<_> = out.lines().map(|l| l.split('\t').next().unwrap()).collect();
    units.sort();
    assert_eq!(
        units,
        [
            "hosts/www2",
            "templates/LAMP",
            "templates/docs",
            "templates/monitor"
        ]
    );
    let out = up(&repo)
        .args(["impact", "templates/monitor/etc/httpd/conf.d/virtuals.conf"])
        .run()
        .success()
        .stdout();
    assert_eq!(
        out,
        "hosts/www2\thosts/www2/etc/httpd/conf.d/virtuals.conf\n"
    );
    up(&repo).arg("check").run().success();
}

#[test]
fn two_parents_with_different_contents_are_a_conflict_until_settled() {
    let dir = Dir::new();
    let repo = dir.join("conf");
    write(&repo, "templates/a/etc/motd", "a\n");
    write(&repo, "templates/b/etc/motd", "b\n");
    write(&repo, "templates/b/etc/issue", "b\n");
    up(&repo)
        .args([
            "inherit",
            "-t",
            "templates/a",
            "-t",
            "templates/b",
            "hosts/h",
        ])
        .run()
        .success()
        .stderr_has("hosts/h/etc/motd (from templates/a; also in templates/b)");
    assert_eq!(
        std::fs::read_to_string(repo.join("hosts/h/etc/motd")).unwrap(),
        "a\n"
    );
    assert_eq!(
        std::fs::read_to_string(repo.join("hosts/h/etc/issue")).unwrap(),
        "b\n"
    );
    assert!(
        std::fs::read_to_string(repo.join("hosts/h/.inherits"))
            .unwrap()
            .contains("# CONFLICT etc/motd")
    );
    up(&repo)
        .arg("check")
        .run()
        .code(1)
        .stdout_has("conflict: hosts/h/etc/motd: templates/a and templates/b differ");
    custom(
        &repo,
        &["--force"],
        "echo settled > \"$0\"",
        "hosts/h/etc/motd",
    )
    .success();
    up(&repo).arg("check").run().success();
    // The customisation went into the host, not into template a.
    assert_eq!(
        std::fs::read_to_string(repo.join("templates/a/etc/motd")).unwrap(),
        "a\n"
    );
    assert!(
        link(&repo, "hosts/h/etc/issue").is_some(),
        "a sibling stays a link"
    );
}

/// `upm template custom` on a pseudo-terminal with the answers typed in.
fn custom_on_a_terminal(repo: &Path, args: &str, answers: &str) -> (bool, String) {
    let mut child = Command::new("script")
        .args([
            "-qfec",
            &format!("{} template custom {args}", bin()),
            "/dev/null",
        ])
        .current_dir(repo)
        .env("TERM", "dumb")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("script runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(answers.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn custom_asks_on_a_terminal_cut_off_track_upwards_and_exclude() {
    let dir = Dir::new();
    let repo = example(&dir);
    let read = |rel: &str| std::fs::read_to_string(repo.join(rel)).unwrap();
    let set = "-- sh -c 'echo \"[mysqld] port=3307\" > \"$0\"'";

    // Off a terminal the question is refused, and nothing changes.
    up(&repo)
        .args(["custom", "--", "true", "hosts/www2/etc/my.cnf"])
        .run()
        .failure()
        .stderr_has("a question needs a terminal");
    assert!(link(&repo, "hosts/www2/etc/my.cnf").is_some());

    // Cancel: nothing changes.
    let (ok, screen) =
        custom_on_a_terminal(&repo, &format!("{set} hosts/www2/etc/my.cnf"), "cancel\n");
    assert!(!ok, "{screen}");
    assert!(
        screen.contains("hosts/www2/etc/my.cnf is inherited from templates/docs/etc/my.cnf"),
        "{screen}"
    );
    assert!(link(&repo, "hosts/www2/etc/my.cnf").is_some());

    // Track upwards three times to MySQL's own file; the impact is listed; templates/docs
    // (2nd) is excluded and keeps the old contents, which hosts/www2 inherits from it.
    let (ok, screen) = custom_on_a_terminal(
        &repo,
        &format!("{set} hosts/www2/etc/my.cnf"),
        "track\ntrack\ntrack\nexclude 2\n",
    );
    assert!(ok, "{screen}");
    for (i, u) in [
        "templates/LAMP",
        "templates/docs",
        "templates/monitor",
        "hosts/www2",
    ]
    .iter()
    .enumerate()
    {
        assert!(screen.contains(&format!("{}. {u}", i + 1)), "{screen}");
    }
    assert_eq!(read("templates/MySQL/etc/my.cnf"), "[mysqld] port=3307\n");
    assert_eq!(read("templates/LAMP/etc/my.cnf"), "[mysqld] port=3307\n");
    assert_eq!(read("templates/monitor/etc/my.cnf"), "[mysqld] port=3307\n");
    assert!(
        link(&repo, "templates/docs/etc/my.cnf").is_none(),
        "docs cut off"
    );
    assert_eq!(read("templates/docs/etc/my.cnf"), "[mysqld]\n");
    assert_eq!(read("hosts/www2/etc/my.cnf"), "[mysqld]\n");

    // Cut off at the host: a real file of its own, the template untouched; no one else sees it.
    let (ok, screen) = custom_on_a_terminal(
        &repo,
        "-- sh -c 'echo www2 >> \"$0\"' hosts/www2/etc/ld.so.conf",
        "cut\n",
    );
    assert!(ok, "{screen}");
    assert!(!screen.contains("impacted"), "{screen}");
    assert_eq!(read("hosts/www2/etc/ld.so.conf"), "/usr/local/lib\nwww2\n");
    assert_eq!(read("templates/base/etc/ld.so.conf"), "/usr/local/lib\n");

    // --track-end=LAMP: tracked from the host to LAMP and cut off there, the impact accepted.
    let (ok, screen) = custom_on_a_terminal(
        &repo,
        "--track-end=LAMP -- sh -c 'echo lamp > \"$0\"' hosts/www2/etc/hosts.deny",
        "yes\n",
    );
    assert!(ok, "{screen}");
    assert!(!screen.contains("is inherited from"), "{screen}");
    assert!(link(&repo, "templates/LAMP/etc/hosts.deny").is_none());
    assert_eq!(read("templates/LAMP/etc/hosts.deny"), "lamp\n");
    assert_eq!(read("hosts/www2/etc/hosts.deny"), "lamp\n");
    assert_eq!(read("templates/base/etc/hosts.deny"), "ALL: ALL\n");
    assert_eq!(read("templates/httpd/etc/hosts.deny"), "ALL: ALL\n");
    // Excluding docs made its my.cnf differ from monitor's: www2 now has a conflict to settle.
    up(&repo)
        .arg("check")
        .run()
        .code(1)
        .stdout_has("conflict: hosts/www2/etc/my.cnf: templates/docs and templates/monitor differ");
}

/// Every path under `top` with its type, owner, group, mode and contents.
fn tree(top: &Path) -> BTreeMap<PathBuf, (bool, u32, u32, u32, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![top.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            assert!(!m.file_type().is_symlink(), "{} is a link", p.display());
            let data = if m.is_dir() {
                dirs.push(p.clone());
                Vec::new()
            } else {
                std::fs::read(&p).unwrap()
            };
            out.insert(
                p.strip_prefix(top).unwrap().to_path_buf(),
                (m.is_dir(), m.uid(), m.gid(), m.mode() & 0o7777, data),
            );
        }
    }
    out
}

#[test]
fn unfold_gives_real_files_with_declared_modes_and_reports_changes() {
    needs_root!();
    let dir = Dir::new();
    let repo = example(&dir);
    write(
        &repo,
        "templates/base/.unfold.toml",
        "# owners and modes for unfold\n[\"etc/hosts.deny\"]\nowner = \"root\"\n\
         group = \"daemon\"\nmode = \"0640\"\n\n[\"etc/rc.d/rc.local\"]\nmode = \"0750\"\n",
    );
    write(
        &repo,
        "hosts/www2/.unfold.toml",
        "[\"etc/rc.d/rc.local\"]\nmode = \"0700\"\n",
    );
    let dest = dir.join("www2");
    up(&repo)
        .args(["unfold", "hosts/www2"])
        .arg(&dest)
        .run()
        .success()
        .stdout_has("added    etc/httpd/conf/httpd.conf");
    let got = tree(&dest);
    // Every file is what the link resolves to in the repository.
    for (p, (is_dir, ..)) in &got {
        let src = repo.join("hosts/www2").join(p);
        if !is_dir {
            assert_eq!(got[p].4, std::fs::read(&src).unwrap(), "{}", p.display());
        }
    }
    assert!(got.contains_key(Path::new("etc/httpd/conf.d/virtuals.conf")));
    assert!(!got.contains_key(Path::new(".inherits")));
    assert!(!got.contains_key(Path::new(".unfold.toml")));
    let daemon = nix::unistd::Group::from_name("daemon")
        .unwrap()
        .unwrap()
        .gid
        .as_raw();
    let deny = &got[Path::new("etc/hosts.deny")];
    assert_eq!((deny.1, deny.2, deny.3), (0, daemon, 0o640));
    assert_eq!(
        got[Path::new("etc/rc.d/rc.local")].3,
        0o700,
        "the host's entry wins"
    );
    assert_eq!(got[Path::new("etc/my.cnf")].3, 0o644);
    assert_eq!(got[Path::new("etc/httpd")].3, 0o755);

    // Unchanged: nothing to report. Then one change, reported alone.
    let out = up(&repo)
        .args(["unfold", "hosts/www2"])
        .arg(&dest)
        .run()
        .success();
    assert_eq!(out.stdout(), "");
    write(
        &repo,
        "templates/httpd/etc/httpd/conf/httpd.conf",
        "Listen 8080\n",
    );
    std::fs::remove_file(repo.join("templates/monitor/etc/httpd/conf.d/virtuals.conf")).unwrap();
    let out = up(&repo)
        .args(["unfold", "hosts/www2"])
        .arg(&dest)
        .run()
        .code(1);
    assert!(out.stderr().contains("dangling link"), "{}", out.stderr());
    write(
        &repo,
        "templates/monitor/etc/httpd/conf.d/virtuals.conf",
        "# v2\n",
    );
    let out = up(&repo)
        .args(["unfold", "hosts/www2"])
        .arg(&dest)
        .run()
        .success();
    assert_eq!(
        out.stdout(),
        "changed  etc/httpd/conf/httpd.conf (contents)\n\
         changed  etc/httpd/conf.d/virtuals.conf (contents)\n"
    );
}

#[test]
fn a_failed_or_killed_unfold_leaves_dest_as_it_was() {
    needs_root!();
    let dir = Dir::new();
    let repo = example(&dir);
    let dest = dir.join("www2");
    up(&repo)
        .args(["unfold", "hosts/www2"])
        .arg(&dest)
        .run()
        .success();
    let before = tree(&dest);
    let staging = |d: &Dir| {
        std::fs::read_dir(d.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .contains("upm-unfold")
            })
            .count()
    };

    // A link out of the repository, found after much has been staged: refused, DEST kept.
    write(
        &repo,
        "templates/httpd/etc/httpd/conf/httpd.conf",
        "Listen 81\n",
    );
    std::os::unix::fs::symlink(
        "/etc/passwd",
        repo.join("templates/httpd/etc/httpd/conf/zz"),
    )
    .unwrap();
    up(&repo)
        .args(["unfold", "hosts/www2"])
        .arg(&dest)
        .run()
        .failure()
        .stderr_has("leads out of the repository");
    assert_eq!(tree(&dest), before);
    assert_eq!(staging(&dir), 0);
    std::fs::remove_file(repo.join("templates/httpd/etc/httpd/conf/zz")).unwrap();

    // An unknown owner in the metadata: the same.
    write(
        &repo,
        "hosts/www2/.unfold.toml",
        "[\"etc/my.cnf\"]\nowner = \"no-such-user-x\"\n",
    );
    up(&repo)
        .args(["unfold", "hosts/www2"])
        .arg(&dest)
        .run()
        .failure()
        .stderr_has("no user \"no-such-user-x\"");
    assert_eq!(tree(&dest), before);
    std::fs::remove_file(repo.join("hosts/www2/.unfold.toml")).unwrap();

    // DEST inside the repository is refused.
    up(&repo)
        .args(["unfold", "hosts/www2", "templates/out"])
        .run()
        .failure()
        .stderr_has("lies in the repository");
    assert!(!repo.join("templates/out").exists());

    // A special file in a template (a pipe): refused before anything is read, DEST as it was.
    // Then the staging directory a killed unfold leaves behind: the next unfold removes it and
    // swaps the new tree in.
    let fifo = repo.join("templates/base/etc/skel/fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    let child = Command::new(bin())
        .args(["template", "unfold", "hosts/www2"])
        .arg(&dest)
        .current_dir(&repo)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a regular file"));
    std::fs::remove_file(&fifo).unwrap();
    assert_eq!(tree(&dest), before);
    std::fs::create_dir(dir.join(".www2.upm-unfold-99999999")).unwrap();
    up(&repo)
        .args(["unfold", "hosts/www2"])
        .arg(&dest)
        .run()
        .success();
    assert_eq!(staging(&dir), 0);
    assert_eq!(
        std::fs::read_to_string(dest.join("etc/httpd/conf/httpd.conf")).unwrap(),
        "Listen 81\n"
    );
}

#[test]
fn check_reports_cycles_dangling_and_escaping_links() {
    let dir = Dir::new();
    let repo = dir.join("conf");
    write(&repo, "templates/a/etc/x", "x\n");
    up(&repo)
        .args(["inherit", "-t", "templates/a", "templates/b"])
        .run()
        .success();
    up(&repo).arg("check").arg(&repo).run().success();
    // A cycle: a inherits from b, b from a (inherit refuses to make one).
    up(&repo)
        .args(["inherit", "-t", "templates/b", "templates/a"])
        .run()
        .failure()
        .stderr_has("a cycle");
    write(&repo, "templates/a/.inherits", "templates/b\n");
    std::os::unix::fs::symlink("../a/etc/gone", repo.join("templates/b/dangling")).unwrap();
    std::os::unix::fs::symlink("/etc/shadow", repo.join("templates/b/abs")).unwrap();
    std::os::unix::fs::symlink("../../../../etc", repo.join("templates/a/etc/up")).unwrap();
    std::os::unix::fs::symlink("loop2", repo.join("templates/a/loop1")).unwrap();
    std::os::unix::fs::symlink("loop1", repo.join("templates/a/loop2")).unwrap();
    let out = up(&repo).arg("check").run().code(1).stdout();
    for line in [
        "dangling: templates/b/dangling -> nothing at templates/a/etc/gone",
        "escapes: templates/b/abs -> /etc/shadow leads out of the repository",
        "escapes: templates/a/etc/up -> ../../../../etc leads out of the repository",
        "loop: templates/a/loop1",
        "cycle: templates/a -> templates/b -> templates/a",
    ] {
        assert!(out.contains(line), "lacks {line:?}:\n{out}");
    }
    // show and custom refuse to follow the escaping link.
    up(&repo)
        .args(["show", "templates/a", "etc/up/passwd"])
        .run()
        .failure()
        .stderr_has("leads out of the repository");
    custom(
        &repo,
        &["--force"],
        "echo x > \"$0\"",
        "templates/a/etc/up/passwd",
    )
    .failure()
    .stderr_has("leads out of the repository");
    assert!(!Path::new("/etc/passwd.upm-custom").exists());
}

#[test]
fn unfold_to_user_at_host_goes_through_rsync_over_ssh() {
    needs_root!();
    let dir = Dir::new();
    let repo = example(&dir);
    // An `ssh` first in PATH that runs the remote command here (no sshd needed): rsync's whole
    // transport runs, only the network hop is left out.
    let bin_dir = dir.join("bin");
    write(
        &bin_dir,
        "ssh",
        "#!/bin/sh\necho \"ssh $*\" >> \"$(dirname \"$0\")/log\"\n\
         while [ $# -gt 0 ]; do case $1 in -l|-p|-o) shift 2;; -*) shift;; *) break;; esac; done\n\
         shift\nexec sh -c \"$*\"\n",
    );
    std::fs::set_permissions(
        bin_dir.join("ssh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap());
    let dest = dir.join("remote-www2");
    let target = format!("root@www2:{}", dest.display());
    let out = up(&repo)
        .env("PATH", &path)
        .args(["unfold", "hosts/www2", &target])
        .run()
        .success();
    assert!(
        out.stdout().contains("etc/httpd/conf/httpd.conf"),
        "{}",
        out.stdout()
    );
    let log = std::fs::read_to_string(bin_dir.join("log")).unwrap();
    assert!(log.contains("www2 rsync --server"), "{log}");
    assert_eq!(
        std::fs::read_to_string(dest.join("etc/httpd/conf.d/virtuals.conf")).unwrap(),
        "# monitor\n"
    );
    assert!(!dest.join("etc/httpd/conf").is_symlink());
    // A file gone from the template is deleted on the host; the change is itemised.
    std::fs::write(dest.join("etc/stray"), "x").unwrap();
    let out = up(&repo)
        .env("PATH", &path)
        .args(["unfold", "hosts/www2", &target])
        .run()
        .success();
    assert!(
        out.stdout().contains("*deleting   etc/stray"),
        "{}",
        out.stdout()
    );
    assert!(!dest.join("etc/stray").exists());
}
