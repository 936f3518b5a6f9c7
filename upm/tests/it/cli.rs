//! The command line itself: completions and the man page come from the same definitions as
//! the help, and every subcommand is in them.

use crate::harness::upm;

#[test]
fn completions_and_man_page_cover_every_subcommand() {
    let bash = upm().args(["completions", "bash"]).run().success().stdout();
    let man = upm().arg("man").run().success().stdout();
    assert!(man.starts_with(".ie") || man.contains(".TH upm"), "{man}");
    for sub in [
        "init",
        "install",
        "remove",
        "list",
        "info",
        "files",
        "owner",
        "check",
        "orphans",
        "log",
        "installdir",
        "user",
        "tree",
        "recipe",
        "sandbox",
        "template",
    ] {
        assert!(bash.contains(sub), "bash completions lack {sub}");
        assert!(man.contains(sub), "the man page lacks {sub}");
    }
}

#[test]
fn queries_on_a_root_without_upm_say_to_run_init() {
    let d = crate::harness::Dir::new();
    upm()
        .args(["--root".as_ref(), d.path().as_os_str(), "list".as_ref()])
        .run()
        .failure()
        .stderr_has("run `upm init` first");
}
