//! The README's main job, as the README gives it: `upm sandbox -- sh demo/run.sh` sets up a
//! root, builds and installs the demo package as its own package user, and shows what it
//! installed and who owns what; this system stays unchanged.

use std::ffi::OsStr;

use upm_scenarios::{needs_root, repo, sandbox, upm};

#[test]
fn the_readme_main_job_installs_the_demo_and_names_its_owner() {
    needs_root!();
    let run_sh = repo().join("demo/run.sh");
    let upm = upm();
    let run = sandbox(
        &[("UPM", upm.as_os_str())],
        &[OsStr::new("sh"), run_sh.as_os_str()],
    );
    let text = &run.text;
    assert!(run.output.status.success(), "the demo failed:\n{text}");
    assert_eq!(run.summary["exit_code"], 0, "{text}");

    // The install: built as package user upm-demo, the program given to root (a root step).
    assert!(
        text.contains("installed upm-demo 1.0 as package user upm-demo (uid 10000)"),
        "{text}"
    );
    // The manifest (`upm files -l`): each file with its owner, the program root's, the library
    // the package user's, the symlink pointing at it.
    let line = |path: &str| {
        text.lines()
            .find(|l| l.ends_with(path) || l.contains(&format!("{path} -> ")))
            .unwrap_or_else(|| panic!("no manifest line for {path}:\n{text}"))
            .to_string()
    };
    assert!(
        line("/usr/local/bin/upm-demo").starts_with("file    0755     0:0    "),
        "{text}"
    );
    assert!(
        line("/usr/local/lib/libgreet.so.1").starts_with("file    0755 10000:10000"),
        "{text}"
    );
    assert!(
        line("/usr/local/lib/libgreet.so").ends_with("/usr/local/lib/libgreet.so -> libgreet.so.1"),
        "{text}"
    );
    assert!(
        line("/usr/local/include/greet.h").starts_with("file    0644 10000:10000"),
        "{text}"
    );
    // The owners (`upm owner`), and the program runs against its library.
    for path in [
        "/usr/local/bin/upm-demo",
        "/usr/local/lib/libgreet.so.1",
        "/usr/local/include/greet.h",
    ] {
        assert!(text.contains(&format!("{path}: upm-demo\n")), "{text}");
    }
    assert!(text.contains("Hello, LFS builder!"), "{text}");

    // What the sandbox saw the run add: the demo's files, in the install directories.
    let added = run.added();
    for (path, kind) in [
        ("/usr/local/bin/upm-demo", "file"),
        ("/usr/local/lib/libgreet.so.1", "file"),
        ("/usr/local/lib/libgreet.so", "symlink"),
        ("/usr/local/include/greet.h", "file"),
        ("/usr/local/share/man/man1/upm-demo.1", "file"),
        ("/usr/local/share/doc/upm-demo", "dir"),
        ("/var/lib/upm/upm.db", "file"),
    ] {
        assert!(
            added.iter().any(|(p, k)| p == path && k == kind),
            "{path} ({kind}) not among the added paths: {added:?}"
        );
    }
}
