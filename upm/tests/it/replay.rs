//! `upm replay` against real builds in overlay sandboxes: five packages from the shared
//! sources in dependency order (not file order), a failure induced in the third that stops the
//! replay with its package, phase and log, `--continue` after the fix, a `kill -9` of upm
//! during the fourth resumed by `--continue`, a second replay skipping what is installed, a
//! dependency cycle refused by name; and a host profile exported from one sandbox replayed in
//! a fresh one to the same package set, which `upm profile diff HOSTDIR` then finds equal.

use std::process::Command;

use crate::harness::{Dir, bin, repo, sources};
use crate::install::{Root, paths};
use crate::needs_root;

/// A recipe inheriting the repository's recipe of `name`, under /usr/local, with `extra`
/// TOML lines (dependencies, a phase).
fn recipe(dir: &Dir, file: &str, name: &str, extra: &str) {
    dir.write(
        file,
        &format!(
            "inherit = [\"{}\"]\n{extra}\n\n[vars]\nprefix = \"/usr/local\"\n",
            repo().join(format!("recipes/{name}.toml")).display()
        ),
    );
}

/// The names of the installed packages.
fn installed(root: &Root) -> Vec<String> {
    let list = root.upm(["--json", "list"]).success().json();
    let mut names: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["state"] == "installed")
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

fn states(report: &serde_json::Value) -> Vec<(String, String)> {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["state"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

const ORDER: [&str; 5] = ["zlib", "bzip2", "tree", "hello", "less"];

#[test]
fn five_packages_replay_in_dependency_order_stop_at_a_failure_and_resume_after_kill_9() {
    needs_root!();
    let root = Root::new();
    let dir = Dir::shared();
    let go = dir.join("go");
    let ready = "/var/tmp/upm-replay-hello-ready";
    // File order is the reverse of the dependency order.
    recipe(
        &dir,
        "set/1-less.toml",
        "less",
        "[package]\ndepends = [\"hello\"]",
    );
    // hello's first attempt says it is ready and waits to be killed; the second goes on.
    recipe(
        &dir,
        "set/2-hello.toml",
        "hello",
        &format!(
            "[package]\ndepends = [\"tree\"]\n\n[phases]\nprepare = '''\n\
             if [ ! -e $HOME/.second ]; then touch $HOME/.second; touch {ready}; sleep 100000; fi\n'''"
        ),
    );
    // tree fails until the marker exists.
    recipe(
        &dir,
        "set/3-tree.toml",
        "tree",
        &format!(
            "[package]\ndepends = [\"bzip2\"]\n\n[phases]\nprepare = '''\n\
             echo looking for the marker\n\
             test -e {} || {{ echo \"the marker is missing\"; exit 7; }}\n'''",
            go.display()
        ),
    );
    recipe(
        &dir,
        "set/4-bzip2.toml",
        "bzip2",
        "[package]\ndepends = [\"zlib\"]",
    );
    recipe(&dir, "set/5-zlib.toml", "zlib", "");
    let set = dir.join("set");
    let src = sources();

    // The dry run shows the order and changes nothing.
    let dry = root
        .upm([
            "--json".as_ref(),
            "replay".as_ref(),
            set.as_os_str(),
            "--dry-run".as_ref(),
        ])
        .success()
        .json();
    let order: Vec<(String, String)> = ORDER
        .iter()
        .map(|n| (n.to_string(), "build".into()))
        .collect();
    assert_eq!(states(&dry), order, "{dry}");
    let text = root
        .upm(["replay".as_ref(), set.as_os_str(), "--dry-run".as_ref()])
        .success()
        .stdout();
    assert!(
        text.starts_with("  1. build zlib 1.2.13\n  2. build bzip2 1.0.8\n"),
        "{text}"
    );
    root.upm([
        "replay".as_ref(),
        set.as_os_str(),
        "--dry-run".as_ref(),
        "--from".as_ref(),
        "hello".as_ref(),
    ])
    .success()
    .stdout_is("  1. build hello 2.10\n  2. build less 590\n");
    root.upm([
        "replay".as_ref(),
        set.as_os_str(),
        "--only".as_ref(),
        "nosuch".as_ref(),
    ])
    .failure()
    .stderr_has(
        "nosuch is not part of this replay; its packages are: zlib, bzip2, tree, hello, less",
    );
    assert!(installed(&root).is_empty());

    // The third fails: the replay stops there, naming the package, the phase and the log.
    let out = root
        .upm([
            "replay".as_ref(),
            set.as_os_str(),
            "--sources-dir".as_ref(),
            src.as_os_str(),
            "--no-check".as_ref(),
        ])
        .failure();
    let err = out.stderr();
    assert!(
        err.contains("replay stopped: tree failed in its prepare phase"),
        "{err}"
    );
    assert!(err.contains("the marker is missing"), "{err}");
    assert!(err.contains("upm replay --continue"), "{err}");
    assert_eq!(installed(&root), ["bzip2", "zlib"]);
    let table = out.stdout();
    assert!(
        table.contains("tree") && table.contains("failed"),
        "{table}"
    );
    assert!(table.contains("2 built, 0 skipped, 3 left of 5"), "{table}");

    // Fixed, the replay continues; upm is killed during the fourth (hello) and the next
    // --continue finishes, the killed install recovered. One shell runs it all, in one mount.
    std::fs::write(&go, "").unwrap();
    let script = format!(
        "{upm} replay --continue > /var/tmp/upm-replay-1.out 2>&1 & pid=$!\n\
         while [ ! -e {ready} ]; do kill -0 $pid || exit 3; sleep 0.05; done\n\
         {{ kill -KILL $pid; wait $pid; }} 2>/dev/null\n\
         {upm} --json replay --continue > /var/tmp/upm-replay-2.json 2> /var/tmp/upm-replay-2.err || exit 5",
        upm = bin(),
    );
    let mut cmd = Command::new("/bin/sh");
    cmd.args(["-c", &script]);
    let st = root.sb.status(cmd).unwrap();
    let read = |p: &str| std::fs::read_to_string(root.upper(p)).unwrap_or_default();
    assert!(
        st.success(),
        "{st}: first: {}\nsecond: {}\n{}",
        read("var/tmp/upm-replay-1.out"),
        read("var/tmp/upm-replay-2.json"),
        read("var/tmp/upm-replay-2.err")
    );
    let first = read("var/tmp/upm-replay-1.out");
    assert!(
        first.contains("continuing the replay: 3 of 5 package(s) left"),
        "{first}"
    );
    let second_err = read("var/tmp/upm-replay-2.err");
    assert!(
        second_err.contains("continuing the replay: 2 of 5 package(s) left"),
        "{second_err}"
    );
    assert!(
        second_err.contains("the install of hello was interrupted"),
        "{second_err}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&read("var/tmp/upm-replay-2.json")).unwrap();
    let done: Vec<(String, String)> = ORDER
        .iter()
        .map(|n| (n.to_string(), "done".into()))
        .collect();
    assert_eq!(states(&report), done, "{report}");
    assert!(report["failed"].is_null(), "{report}");
    let steps = report["steps"].as_array().unwrap();
    assert_eq!(steps[0]["sbu"], 1.0, "{report}");
    for s in steps {
        assert!(s["installed_bytes"].as_i64().unwrap() > 0, "{s}");
        assert!(s["build_bytes"].as_i64().unwrap() > 0, "{s}");
        assert!(s["sbu"].as_f64().unwrap() > 0.0, "{s}");
    }
    let mut all: Vec<String> = ORDER.iter().map(|s| s.to_string()).collect();
    all.sort();
    assert_eq!(installed(&root), all);
    // The build trees were measured and removed.
    assert!(!root.upper("usr/src/less/build").exists());
    let files = paths(&root.upm(["--json", "files", "hello"]).success().json());
    assert!(files.contains("/usr/local/bin/hello"), "{files:?}");
    root.upm(["check", "hello"]).success();

    // Nothing left to continue; a new replay skips what is installed from the same recipes.
    root.upm(["replay", "--continue"])
        .failure()
        .stderr_has("no replay to continue");
    let again = root
        .upm([
            "--json".as_ref(),
            "replay".as_ref(),
            set.as_os_str(),
            "--sources-dir".as_ref(),
            src.as_os_str(),
        ])
        .success();
    let skipped: Vec<(String, String)> = ORDER
        .iter()
        .map(|n| (n.to_string(), "skipped".into()))
        .collect();
    assert_eq!(states(&again.json()), skipped);
    assert!(
        again.stderr().contains(
            "zlib 1.2.13: already installed at the same version and recipe hash, skipped"
        ),
        "{}",
        again.stderr()
    );
}

#[test]
fn a_dependency_cycle_is_refused_by_name() {
    needs_root!();
    let root = Root::new();
    let dir = Dir::shared();
    recipe(
        &dir,
        "tree.toml",
        "tree",
        "[package]\ndepends = [\"bzip2\"]",
    );
    recipe(
        &dir,
        "bzip2.toml",
        "bzip2",
        "[package]\ndepends = [\"less\"]",
    );
    recipe(&dir, "less.toml", "less", "[package]\ndepends = [\"tree\"]");
    let out = root
        .upm([
            "replay".as_ref(),
            dir.path().as_os_str(),
            "--dry-run".as_ref(),
        ])
        .failure();
    let err = out.stderr();
    assert!(err.contains("dependency cycle: "), "{err}");
    for n in ["tree", "bzip2", "less"] {
        assert!(err.contains(n), "{err}");
    }
    // A cycle through an optional dependency is broken as BLFS does: without it.
    recipe(
        &dir,
        "less.toml",
        "less",
        "[package]\n\n[depends]\noptional = [\"tree\"]",
    );
    root.upm([
        "replay".as_ref(),
        dir.path().as_os_str(),
        "--dry-run".as_ref(),
    ])
    .success()
    .stdout_is("  1. build less 590\n  2. build bzip2 1.0.8\n  3. build tree 2.1.0\n");
}

fn same_files(a: &Root, b: &Root, name: &str) {
    let fa = paths(&a.upm(["--json", "files", name]).success().json());
    let fb = paths(&b.upm(["--json", "files", name]).success().json());
    assert_eq!(fa, fb, "{name}");
}

#[test]
fn a_host_profile_exported_from_one_sandbox_replays_in_a_fresh_one() {
    needs_root!();
    let dir = Dir::shared();
    // A hand-written host profile: its packages in order, recipes found beside it, one key
    // set for the host.
    recipe(&dir, "recipes/tree.toml", "tree", "");
    recipe(&dir, "recipes/bzip2.toml", "bzip2", "");
    let host = dir.write(
        "web.toml",
        "[host]\nname = \"web\"\nrecipes = [\"recipes\"]\npackages = [\"bzip2\", \"tree\"]\n\n\
         [set.tree]\n\"vars.prefix\" = \"/usr/local/tree\"\n",
    );
    let src = sources();
    let first = Root::new();
    first
        .upm([
            "replay".as_ref(),
            host.as_os_str(),
            "--sources-dir".as_ref(),
            src.as_os_str(),
            "--no-check".as_ref(),
        ])
        .success()
        .stdout_has("2 built, 0 skipped, 0 left of 2");
    assert!(first.upper("usr/local/tree/bin/tree").is_file());

    // Exported inside the first sandbox, then carried to the host (as a git push would).
    first
        .upm(["profile", "export", "/var/tmp/export"])
        .success()
        .stdout_has("and 2 profile(s)");
    let inside = first.upper("var/tmp/export");
    let text = std::fs::read_to_string(inside.join("host.toml")).unwrap();
    assert!(text.contains("packages = [\"bzip2\", \"tree\"]"), "{text}");
    assert!(text.contains("tree = \"2.1.0\""), "{text}");
    assert!(
        !text.contains("_ms"),
        "no timings in a host profile: {text}"
    );
    let tree_profile = std::fs::read_to_string(inside.join("tree.profile.toml")).unwrap();
    assert!(tree_profile.contains("/usr/local/tree"), "{tree_profile}");
    // Stable: a second export writes the same bytes.
    first
        .upm(["profile", "export", "/var/tmp/export"])
        .success();
    assert_eq!(
        std::fs::read_to_string(inside.join("host.toml")).unwrap(),
        text
    );
    first
        .upm(["profile", "diff", "/var/tmp/export"])
        .success()
        .stdout_has("this host matches");
    let export = dir.join("export");
    std::fs::create_dir_all(&export).unwrap();
    for e in std::fs::read_dir(&inside).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), export.join(e.file_name())).unwrap();
    }

    // A fresh sandbox: the host differs (everything missing), then the replay of the export
    // rebuilds the same package set, with the same files, and the host matches.
    let second = Root::new();
    second
        .upm(["profile".as_ref(), "diff".as_ref(), export.as_os_str()])
        .failure()
        .stdout_has("- tree 2.1.0 (missing here)");
    second
        .upm([
            "replay".as_ref(),
            export.as_os_str(),
            "--sources-dir".as_ref(),
            src.as_os_str(),
            "--no-check".as_ref(),
        ])
        .success();
    assert_eq!(installed(&second), ["bzip2", "tree"]);
    same_files(&first, &second, "tree");
    same_files(&first, &second, "bzip2");
    assert!(second.upper("usr/local/tree/bin/tree").is_file());
    second
        .upm(["profile".as_ref(), "diff".as_ref(), export.as_os_str()])
        .success()
        .stdout_has("this host matches");
}
