//! The overlay sandbox: commands change a throwaway overlay of the host, the upper directory
//! shows exactly what they changed, and the host is untouched.

use std::path::Path;
use std::process::Command;

use upm::fsutil::FileKind;
use upm::sandbox::{Bind, ChangeKind, Options, Sandbox};

use crate::harness::{Dir, upm};
use crate::needs_root;

fn sh(script: &str) -> Command {
    let mut c = Command::new("/bin/sh");
    c.args(["-ec", script]);
    c
}

#[test]
fn writes_land_in_upper_and_host_is_unchanged() {
    needs_root!();
    // Files on the host, in the lower layer, for the command to modify and remove.
    let host = tempfile::Builder::new()
        .prefix("upm-it-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let h = host.path();
    std::fs::write(h.join("keep"), "same").unwrap();
    std::fs::write(h.join("edit"), "old").unwrap();
    std::fs::write(h.join("gone"), "bye").unwrap();
    std::fs::create_dir(h.join("olddir")).unwrap();
    std::fs::write(h.join("olddir/inner"), "x").unwrap();

    let sb = Sandbox::new(&Options::default()).unwrap();
    let script = format!(
        "mkdir -p /usr/local/upm-it/sub && echo hi > /usr/local/upm-it/sub/file && \
         ln -s file /usr/local/upm-it/sub/link && cat {h}/keep >/dev/null && \
         echo new > {h}/edit && rm {h}/gone && rm -r {h}/olddir && chmod 600 {h}/keep.x 2>/dev/null || true",
        h = h.display()
    );
    let st = sb.status(sh(&script)).unwrap();
    assert!(st.success());
    assert!(
        !Path::new("/usr/local/upm-it").exists(),
        "host /usr/local changed"
    );
    assert_eq!(std::fs::read_to_string(h.join("edit")).unwrap(), "old");
    assert!(h.join("gone").exists() && h.join("olddir/inner").exists());
    assert_eq!(
        std::fs::read_to_string(sb.upper().join("usr/local/upm-it/sub/file")).unwrap(),
        "hi\n"
    );
    let changes = sb.changes().unwrap();
    let got: Vec<(String, ChangeKind, FileKind)> = changes
        .iter()
        .map(|c| (c.path.display().to_string(), c.kind, c.file_kind))
        .collect();
    let hs = h.display().to_string();
    let want = vec![
        ("/usr/local/upm-it".into(), ChangeKind::Added, FileKind::Dir),
        (
            "/usr/local/upm-it/sub".into(),
            ChangeKind::Added,
            FileKind::Dir,
        ),
        (
            "/usr/local/upm-it/sub/file".into(),
            ChangeKind::Added,
            FileKind::File,
        ),
        (
            "/usr/local/upm-it/sub/link".into(),
            ChangeKind::Added,
            FileKind::Symlink,
        ),
        (format!("{hs}/edit"), ChangeKind::Modified, FileKind::File),
        (format!("{hs}/gone"), ChangeKind::Removed, FileKind::File),
        (format!("{hs}/olddir"), ChangeKind::Removed, FileKind::Dir),
        (
            format!("{hs}/olddir/inner"),
            ChangeKind::Removed,
            FileKind::File,
        ),
    ];
    assert_eq!(got, want);

    // State carries over to the next command, which sees /proc, /dev and a private /tmp.
    let out = sb
        .output(sh(
            "cat /usr/local/upm-it/sub/file; test -e /proc/self/status; test -c /dev/null; \
                    touch /tmp/scratch; echo ok",
        ))
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\nok\n", "{out:?}");
    assert!(!Path::new("/tmp/scratch").exists());
}

#[test]
fn dropped_even_on_panic() {
    needs_root!();
    let dir = std::sync::Mutex::new(None);
    let r = std::panic::catch_unwind(|| {
        let sb = Sandbox::new(&Options::default()).unwrap();
        *dir.lock().unwrap() = Some(sb.dir().to_path_buf());
        sb.status(sh("echo x > /usr/local/upm-it-panic")).unwrap();
        panic!("test failure inside a sandbox");
    });
    assert!(r.is_err());
    let d = dir.lock().unwrap().clone().unwrap();
    assert!(!d.exists(), "{} left behind", d.display());
    // No mount of it is left in this namespace either.
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&d.display().to_string()));
}

#[test]
fn read_only_binds() {
    needs_root!();
    let src = Dir::new();
    std::fs::write(src.join("pkg.tar"), "data").unwrap();
    let sb = Sandbox::new(&Options {
        binds: vec![Bind::parse(&format!("{}:/upm-it-sources", src.path().display())).unwrap()],
        ..Options::default()
    })
    .unwrap();
    let out = sb
        .output(sh("cat /upm-it-sources/pkg.tar; if touch /upm-it-sources/x 2>/dev/null; then echo writable; fi"))
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "data");
    // The mount point the sandbox made is not a change of the command's.
    assert_eq!(sb.changes().unwrap(), vec![]);
}

#[test]
fn a_bind_under_tmp_shows_through_the_sandboxs_own_tmp() {
    needs_root!();
    // A checkout under /tmp: the sandbox's /tmp is a fresh tmpfs, the bind is made in it.
    let src = tempfile::tempdir_in("/tmp").unwrap();
    std::fs::create_dir(src.path().join("demo")).unwrap();
    std::fs::write(src.path().join("demo/run.sh"), "echo ran").unwrap();
    let here = src.path().display().to_string();
    let sb = Sandbox::new(&Options {
        binds: vec![Bind::parse(&here).unwrap()],
        ..Options::default()
    })
    .unwrap();
    let out = sb
        .output(sh(&format!("sh {here}/demo/run.sh; ls -A /tmp")))
        .unwrap();
    // The sandbox's /tmp holds only the mount point (and, when these tests run from a
    // checkout under /tmp, that checkout's entry, which the sandbox shows as the working
    // directory's).
    let mut want = vec![
        src.path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned(),
    ];
    let cwd = std::env::current_dir().unwrap().canonicalize().unwrap();
    if let Some(first) = cwd.strip_prefix("/tmp").ok().and_then(|r| r.iter().next()) {
        want.push(first.to_string_lossy().into_owned());
    }
    want.sort();
    let text = String::from_utf8_lossy(&out.stdout);
    let mut got: Vec<&str> = text.lines().collect();
    assert_eq!(got.first(), Some(&"ran"), "{out:?}");
    got.remove(0);
    got.sort();
    assert_eq!(got, want, "{out:?}");
    assert_eq!(sb.changes().unwrap(), vec![]);
}

#[test]
fn cli_summary_exit_code_and_keep() {
    needs_root!();
    let d = Dir::new();
    let keep = d.join("kept");
    let out = upm()
        .args(["sandbox", "--keep"])
        .arg(&keep)
        .args(["--", "sh", "-c", "echo hi > /usr/local/upm-it-cli; exit 3"])
        .run()
        .code(3);
    let err = out.stderr();
    assert!(
        err.contains("exited with status 3; it changed 1 path(s): 1 added, 0 modified, 0 removed"),
        "{err}"
    );
    assert!(err.contains("  + /usr/local/upm-it-cli\n"), "{err}");
    assert!(keep.join("upper/usr/local/upm-it-cli").exists());
    assert!(!Path::new("/usr/local/upm-it-cli").exists());
    // A second run in the kept sandbox sees the first one's work.
    let out = upm()
        .args(["--json", "sandbox", "--keep"])
        .arg(&keep)
        .args([
            "--",
            "sh",
            "-c",
            "cat /usr/local/upm-it-cli && rm /usr/local/upm-it-cli",
        ])
        .run()
        .success();
    let j = out.json();
    assert_eq!(j["exit_code"], 0);
    assert_eq!(j["changes"], serde_json::json!([]));
    // The command's output went to stderr, keeping stdout for the JSON (parsed above).
    assert!(out.stderr().lines().any(|l| l == "hi"), "{}", out.stderr());
    assert!(!out.stdout().contains("hi"), "{}", out.stdout());
}

#[test]
fn refuses_without_root_with_a_clear_message() {
    needs_root!();
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(crate::harness::bin())
        .args(["sandbox", "--", "true"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the sandbox needs root"), "{err}");
}

#[test]
fn binds_and_programs_under_tmp_are_reachable_and_errors_name_their_paths() {
    needs_root!();
    // The sandbox's /tmp is its own tmpfs: a host directory under /tmp is bound over it.
    let t = tempfile::Builder::new()
        .prefix("upm-it-")
        .tempdir_in("/tmp")
        .unwrap();
    let p = t.path().display().to_string();
    std::fs::write(t.path().join("f"), "host\n").unwrap();
    upm()
        .args(["sandbox", "--bind", &p, "--bind"])
        .arg(format!("{p}/f:/tmp/upm-it-new/g"))
        .args(["--", "cat"])
        .arg(format!("{p}/f"))
        .arg("/tmp/upm-it-new/g")
        .run()
        .success()
        .stdout_is("host\nhost\n");
    // A checkout under /tmp: its program, started from there, is reachable inside.
    std::fs::create_dir(t.path().join("bin")).unwrap();
    // Copied by cp: a file this process had open for writing could be inherited by another
    // test's fork and be "busy" when run.
    let cp = Command::new("cp")
        .arg(crate::harness::bin())
        .arg(t.path().join("bin/upm"))
        .status()
        .unwrap();
    assert!(cp.success());
    let out = Command::new(t.path().join("bin/upm"))
        .current_dir(t.path())
        .args(["sandbox", "--", "./bin/upm", "--version"])
        .output()
        .unwrap();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).starts_with("upm "),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // What cannot be set up names its paths (/proc hides a mount point made below it).
    upm()
        .args(["sandbox", "--bind"])
        .arg(format!("{p}:/proc/upm-it-none"))
        .args(["--", "true"])
        .run()
        .failure()
        .stderr_has(&format!("cannot bind {p} at /proc/upm-it-none read-only"));
}
