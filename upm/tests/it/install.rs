//! Installing real packages as package users in an overlay sandbox, and proving it against the
//! sandbox's upper directory: the manifest is exactly what the install changed, every file is
//! its package user's (or a recorded root step), `owner` answers, `remove` undoes the install,
//! conflicts and killed installs are handled, and bad input changes nothing.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use upm::sandbox::{Options, Sandbox};

use crate::harness::{Dir, Out, bin, repo, sources, upm};
use crate::needs_root;

/// A throwaway root: the host seen through an overlay, with upm initialised in it.
pub(crate) struct Root {
    pub(crate) sb: Sandbox,
}

/// upm's bookkeeping and the accounts files, which the comparisons with the upper directory
/// leave out (the accounts are checked through `upm user list`).
fn bookkeeping(p: &str) -> bool {
    p == "/usr/src"
        || p.starts_with("/usr/src/")
        || p.starts_with("/var/lib/upm")
        || matches!(
            p,
            "/etc/passwd"
                | "/etc/group"
                | "/etc/shadow"
                | "/etc/gshadow"
                | "/etc/.pwd.lock"
                | "/etc/ld.so.cache"
                | "/var/cache/ldconfig"
                | "/var/cache/ldconfig/aux-cache"
        )
}

impl Root {
    pub(crate) fn new() -> Root {
        let r = Root {
            sb: Sandbox::new(&Options::default()).expect("an overlay sandbox"),
        };
        r.upm(["init"]).success();
        r
    }

    pub(crate) fn upm<I: IntoIterator<Item = S>, S: AsRef<std::ffi::OsStr>>(&self, args: I) -> Out {
        upm().args(args).run_in(&self.sb)
    }

    pub(crate) fn install(&self, recipe: &Path) -> Out {
        self.upm([
            "install".as_ref(),
            recipe.as_os_str(),
            "--sources-dir".as_ref(),
            sources().as_os_str(),
            "--set".as_ref(),
            "vars.prefix=/usr/local".as_ref(),
            "--no-check".as_ref(),
        ])
    }

    /// Every change the upper directory holds, but upm's bookkeeping: path → what changed.
    pub(crate) fn state(&self) -> BTreeMap<String, String> {
        self.sb
            .changes()
            .unwrap()
            .into_iter()
            .map(|c| {
                (
                    c.path.display().to_string(),
                    format!("{} {}", c.kind.name(), c.file_kind.name()),
                )
            })
            .filter(|(p, _)| !bookkeeping(p))
            .collect()
    }

    /// The host path of a path inside the sandbox (for files in the upper directory).
    pub(crate) fn upper(&self, p: &str) -> PathBuf {
        self.sb.upper().join(p.trim_start_matches('/'))
    }

    pub(crate) fn uid_of(&self, user: &str) -> u64 {
        let users = self.upm(["--json", "user", "list"]).success().json();
        users
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["name"] == user)
            .unwrap_or_else(|| panic!("no package user {user}: {users}"))["uid"]
            .as_u64()
            .unwrap()
    }
}

/// Run a command in the sandbox; it must succeed. Its standard output.
pub(crate) fn succeeds(sb: &Sandbox, cmd: Command) -> String {
    let out = sb.output(cmd).unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

pub(crate) fn paths(files: &serde_json::Value) -> BTreeSet<String> {
    files
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn real_packages_install_exactly_what_the_upper_dir_shows_and_remove_cleanly() {
    needs_root!();
    let root = Root::new();
    let clean = root.state();
    let mut before = clean.clone();
    let names = ["zlib", "bzip2", "tree", "less"];
    for name in names {
        root.install(&repo().join(format!("recipes/{name}.toml")))
            .success()
            .stdout_has(&format!("installed {name}"));
        let after = root.state();
        let changed: BTreeSet<String> = after
            .iter()
            .filter(|(p, c)| before.get(*p) != Some(c))
            .map(|(p, _)| p.clone())
            .collect();
        let files = root.upm(["--json", "files", name]).success().json();
        let manifest = paths(&files);
        assert_eq!(
            manifest, changed,
            "{name}: the manifest differs from the upper directory"
        );
        assert!(!manifest.is_empty(), "{name} installed nothing?");

        // Every path is its package user's, or was given to root by a recorded root step.
        let uid = root.uid_of(name);
        let info = root.upm(["--json", "info", name]).success().json();
        let stepped: HashSet<&str> = info["root_steps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["applied"] == true)
            .map(|s| s["path"].as_str().unwrap())
            .collect();
        for f in files.as_array().unwrap() {
            let p = f["path"].as_str().unwrap();
            let on_disk = std::fs::symlink_metadata(root.upper(p)).unwrap();
            assert_eq!(on_disk.uid() as u64, f["uid"].as_u64().unwrap(), "{p}");
            assert!(
                f["uid"].as_u64() == Some(uid) || stepped.contains(p),
                "{p} is owned by uid {} and no root step says why",
                f["uid"]
            );
            assert!(f["type"].is_string() && f["mode"].is_u64());
            if f["type"] == "file" {
                assert_eq!(f["sha256"].as_str().unwrap().len(), 64, "{p}");
            }
            if f["type"] == "symlink" {
                assert!(f["target"].is_string(), "{p}");
            }
        }

        // `owner` answers for each path.
        let mut args = vec!["--json".to_string(), "owner".to_string()];
        args.extend(manifest.iter().cloned());
        let owners = root.upm(&args).success().json();
        for o in owners.as_array().unwrap() {
            assert_eq!(o["package"], name, "{o}");
        }
        root.upm(["check", name]).success();
        before = after;
    }
    let list = root.upm(["--json", "list"]).success().json();
    let states: Vec<(String, String)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().into(),
                p["state"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(states.len(), 4);
    assert!(states.iter().all(|(_, s)| s == "installed"), "{states:?}");

    // A file no package installed is answered by owner uid.
    let out = root
        .upm(["owner", "/etc/hostname", "/usr/src/zlib/logs/install.log"])
        .code(1);
    let text = out.stdout();
    assert!(text.contains("/etc/hostname: no package"), "{text}");
    assert!(
        text.contains("owned on disk by package user zlib"),
        "{text}"
    );

    // A dry run changes nothing; the real removals bring the root back to its clean state.
    let full = root.state();
    root.upm(["remove", "--dry-run", "less"])
        .success()
        .stdout_has("would remove /usr/local/bin/less");
    assert_eq!(root.state(), full);
    for name in names.iter().rev() {
        root.upm(["remove", name]).success();
    }
    assert_eq!(root.state(), clean, "removal left changes behind");
    assert_eq!(
        root.upm(["--json", "user", "list"]).success().json(),
        serde_json::json!([])
    );
    assert!(!root.upper("usr/src/zlib").exists());
}

/// tree 2.1.0's upstream archive (the shared sources).
pub(crate) const TREE_SHA256: &str =
    "0160c535bff2b0dc6a830b9944e981e3427380f63e748da96ced7071faebabf6";

/// A recipe for tree written to `dir/file`: its own make install into `${vars.prefix}`
/// (/usr/local), then `more` (lines of the install phase).
pub(crate) fn tree_recipe(dir: &Dir, file: &str, more: &str) -> PathBuf {
    let template = repo().join("recipes/templates/make.toml");
    dir.write(
        file,
        &format!(
            r#"inherit = ["{template}"]

[package]
name = "tree"
version = "2.1.0"

[source]
file = "tree_${{package.version}}.orig.tar.gz"
sha256 = "{TREE_SHA256}"

[phases]
compile = "make"
check = ""
install = """
make PREFIX=${{vars.prefix}} MANDIR=${{vars.prefix}}/share/man install
{more}"""

[vars]
prefix = "/usr/local"
"#,
            template = template.display()
        ),
    )
}

/// A recipe with no source, its phases given.
pub(crate) fn script_recipe(dir: &Dir, name: &str, install: &str) -> PathBuf {
    dir.write(
        &format!("{name}.toml"),
        &format!(
            "[package]\nname = \"{name}\"\nversion = \"1\"\n\n[phases]\ninstall = '''\n{install}\n'''\n"
        ),
    )
}

#[test]
fn a_package_replacing_anothers_file_is_stopped_and_cleaned_up() {
    needs_root!();
    let root = Root::new();
    root.install(&repo().join("recipes/tree.toml")).success();
    let tree_bin = std::fs::read(root.upper("usr/local/bin/tree")).unwrap();
    let dir = Dir::shared();
    let clash = script_recipe(
        &dir,
        "clash",
        "install -d /usr/local/share/clash\necho mine > /usr/local/share/clash/ok\n\
         echo hijack > /usr/local/bin/tree",
    );
    // The trial run finds the conflict before anything is written.
    root.install(&clash).failure().stderr_has(
        "cannot install clash: it would replace /usr/local/bin/tree, which belongs to package tree",
    );
    assert!(!root.upper("usr/local/share/clash").exists());
    assert_eq!(
        std::fs::read(root.upper("usr/local/bin/tree")).unwrap(),
        tree_bin,
        "tree's file was changed"
    );
    root.upm(["check", "tree"]).success();
    let list = root.upm(["--json", "list"]).success().json();
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "clash" && p["state"] == "failed"),
        "{list}"
    );
    let files = paths(&root.upm(["--json", "files", "clash"]).success().json());
    assert!(files.is_empty(), "{files:?}");
    root.upm(["remove", "clash"]).success();
    root.upm(["check", "tree"]).success();

    // A refused write the script hides (`cmd || true`) is a failure all the same, and what
    // the install wrote before it is undone. Here the trial cannot see the clash: the file
    // is written only in the real run.
    let hidden = script_recipe(
        &dir,
        "hidden",
        "install -d /usr/local/share/hidden\necho mine > /usr/local/share/hidden/ok\n\
         if [ -z \"$UPM_TRIAL\" ]; then echo hijack > /usr/local/bin/tree || true; fi",
    );
    root.install(&hidden)
        .failure()
        .stderr_has("/usr/local/bin/tree: it belongs to package tree");
    assert!(!root.upper("usr/local/share/hidden").exists());
    root.upm(["check", "tree"]).success();
}

#[test]
fn a_killed_install_is_reported_recovered_resumed_and_removed() {
    needs_root!();
    let root = Root::new();
    let clean = root.state();
    let dir = Dir::shared();
    // The first attempt installs a file, says so, and waits to be killed; the second finishes.
    let recipe = script_recipe(
        &dir,
        "slow",
        &format!(
            "install -d /usr/local/share/slow\necho a > /usr/local/share/slow/a\n\
             if [ -z \"$UPM_TRIAL\" ] && [ ! -e $HOME/.second ]; then touch $HOME/.second; touch {ready}; sleep 100000; fi\n\
             echo b > /usr/local/share/slow/b",
            ready = "/var/tmp/upm-slow-ready"
        ),
    );
    // One shell in the sandbox runs the install, waits for it to reach the install phase, has
    // a second upm turned away by the lock, then kills the first with SIGKILL. (Commands that
    // must see each other's locks run in one sandbox mount.)
    let script = format!(
        "{upm} install {recipe} > /var/tmp/upm-slow.out 2>&1 & pid=$!\n\
         while [ ! -e /var/tmp/upm-slow-ready ]; do kill -0 $pid || exit 3; sleep 0.05; done\n\
         if {upm} remove slow > /var/tmp/upm-second.out 2>&1; then exit 4; fi\n\
         {{ kill -KILL $pid; wait $pid; }} 2>/dev/null\n\
         {upm} --json list > /var/tmp/upm-list.json 2> /var/tmp/upm-list.err\n\
         {upm} install {recipe} > /var/tmp/upm-resume.out 2>&1 || exit 5",
        upm = bin(),
        recipe = recipe.display()
    );
    let mut cmd = Command::new("/bin/sh");
    cmd.args(["-c", &script]);
    let st = root.sb.status(cmd).unwrap();
    let second = std::fs::read_to_string(root.upper("var/tmp/upm-second.out")).unwrap_or_default();
    assert!(
        st.success(),
        "{st}: install output: {}\nsecond upm: {second}",
        std::fs::read_to_string(root.upper("var/tmp/upm-slow.out")).unwrap_or_default()
    );
    assert!(second.contains("another upm is changing /"), "{second}");
    assert!(second.contains("upm install slow"), "{second}");

    // The list said the install was interrupted and recorded what the killed one left, ending
    // its stray build; the next install built again.
    let list: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.upper("var/tmp/upm-list.json")).unwrap())
            .unwrap();
    assert_eq!(list[0]["state"], "interrupted", "{list}");
    let said = std::fs::read_to_string(root.upper("var/tmp/upm-list.err")).unwrap();
    assert!(
        said.contains("the install of slow was interrupted"),
        "{said}"
    );
    let files = paths(&root.upm(["--json", "files", "slow"]).success().json());
    assert!(
        files.contains("/usr/local/share/slow/a") && files.contains("/usr/local/share/slow/b"),
        "{files:?}"
    );
    let uid = root.uid_of("slow") as u32;
    root.upm(["remove", "slow"]).success();
    let mut state = root.state();
    state.retain(|p, _| !p.starts_with("/var/tmp"));
    let mut clean = clean;
    clean.retain(|p, _| !p.starts_with("/var/tmp"));
    assert_eq!(state, clean);
    // The killed build's `sleep` did not outlive it. (Only this sandbox's: package users of
    // other tests' sandboxes have the same uids.)
    let left: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| e.metadata().is_ok_and(|m| m.uid() == uid))
        .filter(|e| {
            std::fs::read_link(e.path().join("root")).is_ok_and(|r| r.starts_with(root.sb.dir()))
        })
        .filter(|e| {
            std::fs::read(e.path().join("cmdline")).is_ok_and(|c| c == b"sleep\x00100000\x00")
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        left.is_empty(),
        "the killed build's sleep is still running: {left:?}"
    );
}

#[test]
fn bad_checksum_malformed_recipe_and_hostile_tarball_change_nothing() {
    needs_root!();
    let root = Root::new();
    let clean = root.state();
    let dir = Dir::shared();

    let wrong = dir.write(
        "wrongsum.toml",
        &std::fs::read_to_string(repo().join("recipes/tree.toml"))
            .unwrap()
            .replace(
                "0160c535bff2b0dc6a830b9944e981e3427380f63e748da96ced7071faebabf6",
                &"0".repeat(64),
            )
            .replace(
                "templates/",
                &format!("{}/recipes/templates/", repo().display()),
            ),
    );
    root.install(&wrong)
        .failure()
        .stderr_has("wrong sha256 checksum");

    let bad = dir.write(
        "bad.toml",
        "[package]\nname = \"bad\"\nversion = \"1\"\n[phases]\ninstall = \"make install\n",
    );
    root.install(&bad).failure().stderr_has("bad.toml:5");

    // ../escape in a tarball.
    let work = dir.join("work");
    std::fs::create_dir_all(work.join("pkg")).unwrap();
    std::fs::write(work.join("escape"), "x").unwrap();
    let tarball = dir.join("evil-1.tar.gz");
    let st = Command::new("tar")
        .current_dir(work.join("pkg"))
        .args(["-czPf".as_ref(), tarball.as_os_str(), "../escape".as_ref()])
        .status()
        .unwrap();
    assert!(st.success());
    let evil = dir.write(
        "evil.toml",
        "[package]\nname = \"evil\"\nversion = \"1\"\n[source]\nfile = \"evil-1.tar.gz\"\n\
         [phases]\ninstall = \"true\"\n",
    );
    root.upm([
        "install".as_ref(),
        evil.as_os_str(),
        "--sources-dir".as_ref(),
        dir.path().as_os_str(),
    ])
    .failure()
    .stderr_has("refused entry");

    assert_eq!(root.state(), clean, "a refused install changed the root");
    assert_eq!(
        root.upm(["--json", "list"]).success().json(),
        serde_json::json!([])
    );
    assert_eq!(
        root.upm(["--json", "user", "list"]).success().json(),
        serde_json::json!([])
    );
}

#[test]
fn wrappers_record_root_steps_and_new_directories_are_shared() {
    needs_root!();
    let root = Root::new();
    // The demo's Makefile runs `install -d` on install directories, `install -o root` and
    // ldconfig; its recipe allows chown and ldconfig.
    root.upm([
        "install",
        &repo().join("demo/demo.toml").display().to_string(),
    ])
    .success();
    let files = root.upm(["--json", "files", "upm-demo"]).success().json();
    let get = |p: &str| {
        files
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["path"] == p)
            .unwrap_or_else(|| panic!("{p} not in {files}"))
            .clone()
    };
    assert_eq!(get("/usr/local/bin/upm-demo")["uid"], 0);
    // A directory the package made outside the shared trees keeps the mode it gave it...
    let doc = get("/usr/local/share/doc/upm-demo");
    assert_eq!(doc["mode"], 0o755);
    let demo_uid = root.uid_of("upm-demo");
    assert_eq!(doc["uid"], demo_uid);
    let info = root.upm(["--json", "info", "upm-demo"]).success().json();
    let steps: Vec<String> = info["root_steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| format!("{} {} {}", s["step"], s["path"], s["applied"]))
        .collect();
    assert!(
        steps.contains(&r#""chown" "/usr/local/bin/upm-demo" true"#.to_string()),
        "{steps:?}"
    );
    assert!(
        steps.iter().any(|s| s.starts_with("\"ldconfig\"")),
        "{steps:?}"
    );

    // Another package may add to the directory the demo created, but not replace its files.
    let dir = Dir::shared();
    let other = script_recipe(
        &dir,
        "other",
        "echo notes > /usr/local/share/doc/upm-demo/other-notes\nchown root /usr/local/share/doc/upm-demo/other-notes",
    );
    root.upm(["install".as_ref(), other.as_os_str()])
        .success()
        .stderr_has("not allowed by the recipe")
        .stderr_has("/usr/local/share/doc/upm-demo: made an install directory");
    // ...until a second package needs to write into it: then it is an install directory.
    let doc = std::fs::metadata(root.upper("usr/local/share/doc/upm-demo")).unwrap();
    assert_eq!(
        (doc.uid(), doc.gid(), doc.mode() & 0o7777),
        (0, 9999, 0o1775)
    );
    let owners = root
        .upm([
            "--json",
            "owner",
            "/usr/local/share/doc/upm-demo/other-notes",
            "/usr/local/share/doc/upm-demo/Makefile.example",
        ])
        .success()
        .json();
    assert_eq!(owners[0]["package"], "other");
    assert_eq!(owners[1]["package"], "upm-demo");
    // Removing the demo keeps the directory while another package's file is in it.
    root.upm(["remove", "upm-demo"])
        .success()
        .stdout_has("kept /usr/local/share/doc/upm-demo: not empty");
    root.upm(["remove", "other"]).success();
}

#[test]
fn init_is_idempotent_and_installdirs_are_managed() {
    needs_root!();
    let root = Root::new();
    let again = root.upm(["--json", "init"]).success().json();
    assert_eq!(
        again["install_dirs_fixed"],
        serde_json::json!([]),
        "{again}"
    );
    assert_eq!(again["config_written"], false);
    root.upm(["installdir", "add", "/usr/local/upm-games"])
        .success()
        .stdout_has("/usr/local/upm-games: fixed (was missing)");
    let m = std::fs::metadata(root.upper("usr/local/upm-games")).unwrap();
    assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (0, 9999, 0o1775));
    root.upm(["installdir", "list"])
        .success()
        .stdout_has("/usr/local/upm-games");
    let conf = std::fs::read_to_string(root.upper("etc/upm/upm.toml")).unwrap();
    assert!(conf.contains("\"/usr/local/upm-games\""), "{conf}");
    assert!(
        conf.contains("# Package users get uids"),
        "comments kept: {conf}"
    );
    root.upm(["installdir", "remove", "/usr/local/upm-games"])
        .success();
    let m = std::fs::metadata(root.upper("usr/local/upm-games")).unwrap();
    assert_eq!((m.gid(), m.mode() & 0o7777), (0, 0o755));
    // Someone broke an install directory: fix puts it back.
    std::fs::set_permissions(
        root.upper("usr/local/bin"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    root.upm(["installdir", "fix"])
        .success()
        .stdout_has("/usr/local/bin: fixed");
}

#[test]
fn remove_keeps_changed_configuration_and_install_dir_tricks_work() {
    needs_root!();
    let root = Root::new();
    let dir = Dir::shared();
    // chmod and install -d on install directories, a setuid file of its own (which loses its
    // bit: nothing makes it root's), a config file.
    let recipe = script_recipe(
        &dir,
        "conf",
        "chmod 755 /usr/local/bin\ninstall -d -m 755 /usr/local/share/man/man1 /usr/local/share/conf\n\
         echo setting=1 > /etc/conf.conf\necho data > /usr/local/share/conf/data\n\
         install -m 755 /bin/true /usr/local/bin/conf-helper\nchmod u+s /usr/local/bin/conf-helper\n\
         '''\n[root]\ncommands = '''\necho by-root > /usr/local/share/conf/root-made\necho conf >> /etc/hostname",
    );
    root.upm(["install".as_ref(), recipe.as_os_str()])
        .success()
        .stderr_has("/usr/local/bin/conf-helper: setuid bit removed");
    // Nothing made it root's: a setuid file of a package user's would be a hole.
    let helper = std::fs::metadata(root.upper("usr/local/bin/conf-helper")).unwrap();
    assert_eq!(helper.mode() & 0o7777, 0o755);
    let m = std::fs::metadata(root.upper("usr/local/bin")).unwrap();
    assert_eq!(
        m.mode() & 0o7777,
        0o1775,
        "the install directory kept its mode"
    );
    // The recipe's root commands are tracked: what they made is the package's; a base-system
    // file they changed is reported, not claimed.
    let owners = root
        .upm([
            "--json",
            "owner",
            "/usr/local/share/conf/root-made",
            "/etc/hostname",
        ])
        .code(1)
        .json();
    assert_eq!(owners[0]["package"], "conf", "{owners}");
    assert_eq!(owners[1]["package"], serde_json::Value::Null, "{owners}");
    let info = root.upm(["--json", "info", "conf"]).success().json();
    assert!(
        info["reports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["kind"] == "foreign" && r["path"] == "/etc/hostname"),
        "{info}"
    );
    root.upm(["log", "conf", "install"]).success();
    root.upm(["log", "conf"]).success().stdout_has("install");
    root.upm(["orphans", "/usr/local/share/conf"])
        .success()
        .stdout_is("");
    // The administrator edits the configuration; upm check sees it, remove keeps it.
    std::fs::write(root.upper("etc/conf.conf"), "setting=22\n").unwrap();
    root.upm(["check", "conf"])
        .code(1)
        .stdout_has("/etc/conf.conf: size is now 11");
    root.upm(["remove", "conf"])
        .success()
        .stdout_has("kept /etc/conf.conf: configuration changed");
    assert_eq!(
        std::fs::read_to_string(root.upper("etc/conf.conf")).unwrap(),
        "setting=22\n"
    );
    assert!(!root.upper("usr/local/share/conf").exists());
    assert!(!root.upper("usr/local/bin/conf-helper").exists());
    assert!(
        std::fs::read_to_string(root.upper("etc/hostname"))
            .unwrap()
            .ends_with("conf\n"),
        "remove took a base-system file"
    );
    // Kept, it passes to root rather than to whoever gets the package's uid next.
    assert_eq!(
        std::fs::metadata(root.upper("etc/conf.conf"))
            .unwrap()
            .uid(),
        0
    );
    root.upm(["owner", "/etc/conf.conf"])
        .code(1)
        .stdout_has("/etc/conf.conf: no package");
}

/// A recipe installing an info page and registering it with install-info, as automake does.
pub(crate) fn info_recipe(dir: &Dir, name: &str) -> PathBuf {
    dir.write(
        &format!("{name}.info"),
        &format!(
            "This is {name}.info.\n\nINFO-DIR-SECTION Test\nSTART-INFO-DIR-ENTRY\n\
             * {name}: ({name}).   The {name} test manual.\nEND-INFO-DIR-ENTRY\n\n\x1f\n\
             File: {name}.info,  Node: Top,  Up: (dir)\n\n{name}\n****\n"
        ),
    );
    let install = format!(
        "install -d /usr/local/share/info\n\
         install -m 644 {d}/{name}.info /usr/local/share/info/{name}.info\n\
         install-info --info-dir=/usr/local/share/info /usr/local/share/info/{name}.info",
        d = dir.path().display()
    );
    let q = "'''";
    dir.write(
        &format!("{name}.toml"),
        &format!(
            "[package]\nname = \"{name}\"\nversion = \"1\"\n\n[phases]\ninstall = {q}\n{install}\n{q}\n\n\
             [root]\nallow = [\"install-info\"]\n"
        ),
    )
}

/// Make sure the sandbox's root has `install-info` (Debian's package of it), installing it
/// there with apt-get when missing — in the throwaway overlay, never on the host. False, after
/// saying so loudly, when that cannot be done (and a failure under CI).
fn install_info_in(root: &Root) -> bool {
    let script = "command -v install-info >/dev/null && exit 0\n\
                  echo 'install-info is missing: installing it in the sandbox with apt-get'\n\
                  apt-get install -y -q install-info || \
                  { apt-get update -q && apt-get install -y -q install-info; }\n\
                  command -v install-info >/dev/null";
    let mut cmd = Command::new("/bin/sh");
    cmd.args(["-c", script]);
    let out = root.sb.output(cmd).unwrap();
    if out.status.success() {
        return true;
    }
    let why = format!(
        "install-info is missing and apt-get could not install it in the sandbox:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(std::env::var_os("CI").is_none(), "{why}");
    eprintln!(
        "*** SKIPPED the install-info test: {why}\n*** (apt-get install -y install-info) ***"
    );
    false
}

#[test]
fn info_pages_of_several_packages_share_the_dir_file() {
    needs_root!();
    let root = Root::new();
    if !install_info_in(&root) {
        return;
    }
    let dir = Dir::shared();
    for name in ["infoa", "infob"] {
        root.upm(["install".as_ref(), info_recipe(&dir, name).as_os_str()])
            .success();
    }
    // The recorded step shows as the command it stands for, quoted as a shell needs it.
    let info = root.upm(["info", "infoa"]).success().stdout();
    assert!(
        info.contains(
            "root step:   install-info --info-dir=/usr/local/share/info \
             /usr/local/share/info/infoa.info (applied)"
        ) && !info.contains('\u{1f}'),
        "{info}"
    );
    let dirfile = root.upper("usr/local/share/info/dir");
    let text = std::fs::read_to_string(&dirfile).unwrap();
    assert!(
        text.contains("* infoa:") && text.contains("* infob:"),
        "{text}"
    );
    // The dir file is the system's, not the first package's.
    assert_eq!(std::fs::metadata(&dirfile).unwrap().uid(), 0);
    root.upm(["owner", "/usr/local/share/info/dir"])
        .code(1)
        .stdout_has("no package");
    root.upm(["remove", "infoa"]).success();
    let text = std::fs::read_to_string(&dirfile).unwrap();
    assert!(
        !text.contains("* infoa:") && text.contains("* infob:"),
        "{text}"
    );
}

#[test]
fn removing_a_package_keeps_the_entries_of_a_distributions_page_of_the_same_name() {
    needs_root!();
    let root = Root::new();
    if !install_info_in(&root) {
        return;
    }
    let dir = Dir::shared();
    let recipe = info_recipe(&dir, "infod");
    // The distribution's compressed page of the same manual, registered as its packages do.
    let mut cmd = Command::new("/bin/sh");
    cmd.args([
        "-ec",
        &format!(
            "mkdir -p /usr/local/share/info\n\
             gzip -c {d}/infod.info > /usr/local/share/info/infod.info.gz\n\
             install-info --info-dir=/usr/local/share/info /usr/local/share/info/infod.info.gz",
            d = dir.path().display()
        ),
    ]);
    succeeds(&root.sb, cmd);
    let dirfile = root.upper("usr/local/share/info/dir");
    let before = std::fs::read_to_string(&dirfile).unwrap();
    assert!(before.contains("* infod:"), "{before}");
    root.upm(["install".as_ref(), recipe.as_os_str()]).success();
    root.upm(["remove", "infod", "--restore"]).success();
    // The distribution's page is still there, and so are its entries.
    assert!(root.upper("usr/local/share/info/infod.info.gz").exists());
    assert_eq!(std::fs::read_to_string(&dirfile).unwrap(), before);
}

#[test]
fn install_into_another_root_runs_the_build_chrooted_there() {
    needs_root!();
    // Inside the sandbox, a second overlay of the system at /mnt/lfs plays the LFS partition:
    // `upm --root /mnt/lfs` must build in it (chrooted), record there, and leave / alone.
    let sb = Sandbox::new(&Options::default()).unwrap();
    let script = format!(
        "set -e\nmkdir -p /tmp/u /tmp/w /mnt/lfs\n\
         mount -t overlay overlay -o lowerdir=/,upperdir=/tmp/u,workdir=/tmp/w /mnt/lfs\n\
         mount --rbind /dev /mnt/lfs/dev\n\
         {upm} --root /mnt/lfs init >/dev/null\n\
         {upm} --root /mnt/lfs install {recipe} --sources-dir {src} --set vars.prefix=/usr/local\n\
         {upm} --root /mnt/lfs owner /usr/local/bin/tree\n\
         test -x /mnt/lfs/usr/local/bin/tree\n\
         test ! -e /usr/local/bin/tree\n\
         test ! -e /var/lib/upm/upm.db\n\
         grep -q '^tree:' /mnt/lfs/etc/passwd\n\
         ! grep -q '^tree:' /etc/passwd\n",
        upm = bin(),
        recipe = repo().join("recipes/tree.toml").display(),
        src = sources().display(),
    );
    let mut cmd = Command::new("/bin/sh");
    cmd.args(["-c", &script]);
    let text = succeeds(&sb, cmd);
    assert!(text.contains("/usr/local/bin/tree: tree"), "{text}");
}
