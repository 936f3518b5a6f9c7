//! Profiles against real installs in overlay sandboxes: the profile an install writes records
//! the recipe as written, the commands, host facts, the archive and the manifest; installing
//! that profile on a fresh root rebuilds the package to the same manifest (and the same
//! profile but for timings); a recipe inheriting the profile builds another version; `upm
//! profile show|diff|path` report them.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::{Dir, sources};
use crate::install::{Root, paths};
use crate::needs_root;

use crate::install::TREE_SHA256;

/// tree, with its version in a documentation directory, so a recipe inheriting its profile
/// with another version shows the version followed.
fn tree_recipe(dir: &Dir) -> PathBuf {
    crate::install::tree_recipe(
        dir,
        "tree.toml",
        "install -d ${vars.prefix}/share/doc/tree-${package.version}\n\
         install -m644 README ${vars.prefix}/share/doc/tree-${package.version}/\n",
    )
}

/// Install a recipe or profile with the shared sources (or the archive given).
fn install(root: &Root, recipe: &Path, archive: Option<&Path>) -> crate::harness::Out {
    let mut args = vec![
        "install".into(),
        recipe.as_os_str().to_owned(),
        "--sources-dir".into(),
        sources().into_os_string(),
        "--no-check".into(),
    ];
    if let Some(a) = archive {
        args.push("--source".into());
        args.push(a.as_os_str().to_owned());
    }
    root.upm(args)
}

/// The profile's lines without the ones that hold durations.
fn without_timings(text: &str) -> Vec<&str> {
    text.lines().filter(|l| !l.contains("_ms = ")).collect()
}

/// A manifest from `upm files --json`: path, type, mode (no ids, no contents).
fn shape(files: &serde_json::Value) -> Vec<(String, String, u64)> {
    files
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_string(),
                f["type"].as_str().unwrap().to_string(),
                f["mode"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn a_profile_records_the_install_and_rebuilds_it_on_a_fresh_root() {
    needs_root!();
    let dir = Dir::shared();
    let recipe = tree_recipe(&dir);
    let first = Root::new();
    install(&first, &recipe, None)
        .success()
        .stderr_has("profile: /usr/src/tree/tree-2.1.0.profile.toml");

    first
        .upm(["profile", "path", "tree"])
        .success()
        .stdout_is("/usr/src/tree/tree-2.1.0.profile.toml\n");
    let file = first.upper("usr/src/tree/tree-2.1.0.profile.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    // Owned by the package user like the rest of its home.
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(&file).unwrap();
    assert_eq!(meta.uid() as u64, first.uid_of("tree"));
    assert_eq!(meta.mode() & 0o7777, 0o644);

    // The recipe as written (template merged, references kept), then the recorded data.
    assert!(text.contains("\nrecorded = [\"profile\"]\n"), "{text}");
    assert!(
        text.contains("file = \"tree_${package.version}.orig.tar.gz\""),
        "{text}"
    );
    assert!(
        text.contains("install -d ${vars.prefix}/share/doc/tree-${package.version}"),
        "{text}"
    );
    assert!(
        !text.contains("\ninherit ="),
        "templates are merged: {text}"
    );
    assert!(
        text.contains("source.file = \"tree_2.1.0.orig.tar.gz\""),
        "{text}"
    );
    assert!(
        text.contains(&format!("source.sha256 = \"{TREE_SHA256}\"")),
        "{text}"
    );
    assert!(text.contains("host.compiler = \"gcc "), "{text}");
    assert!(
        text.contains("install -d /usr/local/share/doc/tree-2.1.0"),
        "the commands as run, expanded: {text}"
    );
    assert!(
        text.contains("manifest.\"/usr/local/bin/tree\" = \"file 0755 package:package "),
        "{text}"
    );
    assert!(!text.contains("uid"), "owners by name, never ids: {text}");
    // Sorted manifest.
    let manifest: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("manifest."))
        .collect();
    let mut sorted = manifest.clone();
    sorted.sort();
    assert_eq!(manifest, sorted);
    assert_eq!(
        manifest.len(),
        paths(&first.upm(["--json", "files", "tree"]).success().json()).len()
    );

    // The profile is a valid recipe, without a warning.
    first
        .upm(["recipe", "check", "/usr/src/tree/tree-2.1.0.profile.toml"])
        .success()
        .stdout_has("ok (tree 2.1.0, 0 warning(s))");

    // `show` prints the text as written, and as data.
    first
        .upm(["profile", "show", "tree"])
        .success()
        .stdout_is(&text);
    let json = first
        .upm(["--json", "profile", "show", "tree"])
        .success()
        .json();
    assert_eq!(json["name"], "tree");
    assert_eq!(json["version"], "2.1.0");
    assert_eq!(json["source"]["sha256"], TREE_SHA256);
    assert_eq!(
        json["recipe"]["source.file"],
        "tree_${package.version}.orig.tar.gz"
    );
    assert!(!json["host"]["arch"].as_str().unwrap().is_empty());
    let phases: Vec<&str> = json["commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["phase"].as_str().unwrap())
        .collect();
    assert_eq!(phases, ["compile", "install-trial", "install"]);
    for c in json["commands"].as_array().unwrap() {
        assert_eq!(c["status"], 0, "{c}");
        assert_eq!(c["cwd"], "/usr/src/tree/build/tree-2.1.0", "{c}");
        assert_eq!(c["user"], "package", "{c}");
    }
    let bin = json["manifest"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "/usr/local/bin/tree")
        .expect("the manifest has /usr/bin/tree");
    assert_eq!(bin["owner"], "package");
    assert_eq!(bin["mode"], 0o755);
    assert_eq!(bin["sha256"].as_str().unwrap().len(), 64);

    // Installing the profile on a fresh root rebuilds the package: the same manifest, and the
    // same profile but for how long things took.
    let copy = dir.write("tree-2.1.0.profile.toml", &text);
    let second = Root::new();
    install(&second, &copy, None)
        .success()
        .stderr_has("same manifest as the profile it was built from");
    let again =
        std::fs::read_to_string(second.upper("usr/src/tree/tree-2.1.0.profile.toml")).unwrap();
    assert_eq!(without_timings(&again), without_timings(&text));
    assert_eq!(
        shape(&second.upm(["--json", "files", "tree"]).success().json()),
        shape(&first.upm(["--json", "files", "tree"]).success().json())
    );
    second.upm(["check", "tree"]).success();

    // `diff` of the two: nothing differs beyond contents; a file compared with itself neither.
    let rebuilt = dir.write("rebuilt.profile.toml", &again);
    let out = second
        .upm(["profile", "diff", copy.to_str().unwrap(), "tree"])
        .success();
    assert!(
        out.stdout().contains("no differences") || out.stdout().contains("differ in content only"),
        "{}",
        out.stdout()
    );
    let d = second
        .upm([
            "--json",
            "profile",
            "diff",
            copy.to_str().unwrap(),
            rebuilt.to_str().unwrap(),
        ])
        .success()
        .json();
    assert_eq!(d["recipe"], serde_json::json!([]));
    assert_eq!(d["commands"], serde_json::json!([]));
    assert!(
        d["manifest"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["content_only"] == true),
        "{d}"
    );
}

#[test]
fn a_recipe_inheriting_a_profile_builds_another_version() {
    needs_root!();
    let dir = Dir::shared();
    let recipe = tree_recipe(&dir);
    let root = Root::new();
    install(&root, &recipe, None).success();
    let base = std::fs::read_to_string(root.upper("usr/src/tree/tree-2.1.0.profile.toml")).unwrap();
    let profile = dir.write("tree-2.1.0.profile.toml", &base);

    // "2.1.1": the same upstream source repacked under another name and top directory.
    let work = dir.join("repack");
    std::fs::create_dir_all(&work).unwrap();
    let tar = |args: &[&str]| {
        let st = Command::new("tar")
            .args(args)
            .current_dir(&work)
            .status()
            .unwrap();
        assert!(st.success(), "tar {args:?}");
    };
    tar(&[
        "xzf",
        sources().join("tree_2.1.0.orig.tar.gz").to_str().unwrap(),
    ]);
    std::fs::rename(work.join("tree-2.1.0"), work.join("tree-2.1.1")).unwrap();
    let srcs = dir.join("srcs");
    std::fs::create_dir_all(&srcs).unwrap();
    // Named unlike the recipe's `source.file`, given with `--source`: the profile records the
    // archive actually used.
    let archive = srcs.join("tree-repacked.tar.gz");
    tar(&["czf", archive.to_str().unwrap(), "tree-2.1.1"]);
    let sha = upm::manifest::sha256_file(&archive).unwrap();
    let newer = dir.write(
        "tree-2.1.1.toml",
        &format!(
            "inherit = [\"tree-2.1.0.profile.toml\"]\n\n[package]\nversion = \"2.1.1\"\n\n\
             [source]\nsha256 = \"{sha}\"\n"
        ),
    );
    // Inheriting a profile passes on its recipe, not its recorded data.
    let shown = root
        .upm(["recipe", "show", newer.to_str().unwrap()])
        .success()
        .stdout();
    assert!(
        !shown.contains("[profile]") && !shown.contains("recorded"),
        "{shown}"
    );
    assert!(
        shown.contains("file = \"tree_2.1.1.orig.tar.gz\""),
        "{shown}"
    );
    assert!(profile.is_file());

    root.upm(["remove", "tree"]).success();
    install(&root, &newer, Some(&archive))
        .success()
        .stdout_has("installed tree 2.1.1");
    let files = paths(&root.upm(["--json", "files", "tree"]).success().json());
    assert!(
        files.contains("/usr/local/share/doc/tree-2.1.1/README"),
        "{files:?}"
    );
    assert!(files.contains("/usr/local/bin/tree"), "{files:?}");
    assert!(!files.iter().any(|f| f.contains("tree-2.1.0")), "{files:?}");
    let text = std::fs::read_to_string(root.upper("usr/src/tree/tree-2.1.1.profile.toml")).unwrap();
    assert!(
        text.contains("source.file = \"tree-repacked.tar.gz\""),
        "{text}"
    );
    assert!(
        text.contains(&format!("source.sha256 = \"{sha}\"")),
        "{text}"
    );
    assert!(
        text.contains("install -d /usr/local/share/doc/tree-2.1.1"),
        "{text}"
    );

    // The two versions compared: the version, the archive's checksum, the commands' working
    // directory and the documentation directory differ.
    let out = root
        .upm(["profile", "diff", profile.to_str().unwrap(), "tree"])
        .code(1);
    let d = out.stdout();
    assert!(
        d.contains("~ package.version: \"2.1.0\" -> \"2.1.1\""),
        "{d}"
    );
    assert!(d.contains("~ source.sha256"), "{d}");
    assert!(d.contains("+ /usr/local/share/doc/tree-2.1.1: dir"), "{d}");
    assert!(
        d.contains("- /usr/local/share/doc/tree-2.1.0/README: file"),
        "{d}"
    );
    assert!(d.contains("~ install:"), "{d}");
    assert!(!d.contains("/usr/local/bin/tree: mode"), "{d}");
}

#[test]
fn profile_commands_name_what_is_missing() {
    needs_root!();
    let root = Root::new();
    root.upm(["profile", "path", "nosuch"])
        .failure()
        .stderr_has("nosuch is not installed");
    let dir = Dir::shared();
    let not = dir.write("plain.toml", "[package]\nname = \"x\"\n");
    root.upm(["profile", "show", not.to_str().unwrap()])
        .failure()
        .stderr_has("not a profile");
}
