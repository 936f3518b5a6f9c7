//! `upm record`: the recording shell driven through a real pty (util-linux `script`) inside an
//! overlay sandbox — a real package (tree) unpacked, built and installed by typed commands,
//! phases labelled, a stray command rolled back and undone, a failed command, a commit and an
//! exit — then the database and the profile checked, and the profile installed on a fresh
//! sandbox to the same manifest. And `upm record PKG -- CMD` growing an installed package's
//! manifest, a failed one undone.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::harness::{Dir, bin, repo, sources};
use crate::install::Root;
use crate::needs_root;

/// `upm record ...` running on a pseudo-terminal inside the sandbox: lines are typed one at a
/// time, each once the shell shows its prompt again.
struct Terminal {
    child: std::process::Child,
    input: Option<std::process::ChildStdin>,
    screen: Arc<Mutex<String>>,
    prompt: String,
}

/// How long a step may take before the test gives up and shows the screen (a guard against
/// hanging, never an assertion on time).
const PATIENCE: Duration = Duration::from_secs(900);

impl Terminal {
    fn start(root: &Root, args: &str, prompt: &str) -> Terminal {
        let mut cmd = Command::new("script");
        cmd.args(["-qfec", &format!("{} {args}", bin()), "/dev/null"])
            .env("TERM", "dumb")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = root.sb.spawn(cmd).expect("script runs in the sandbox");
        let screen = Arc::new(Mutex::new(String::new()));
        let mut out = child.stdout.take().unwrap();
        let sink = screen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let t = Terminal {
            input: child.stdin.take(),
            child,
            screen,
            prompt: prompt.to_string(),
        };
        t.wait_for_prompts(1);
        t
    }

    fn screen(&self) -> String {
        self.screen.lock().unwrap().clone()
    }

    fn prompts(&self) -> usize {
        self.screen().matches(&self.prompt).count()
    }

    fn wait_for_prompts(&self, n: usize) {
        let since = Instant::now();
        while self.prompts() < n {
            assert!(
                since.elapsed() < PATIENCE,
                "no prompt {n} ({:?}); the screen:\n{}",
                self.prompt,
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Type a line and wait until the shell prompts again.
    fn type_line(&mut self, line: &str) {
        let n = self.prompts();
        let input = self.input.as_mut().unwrap();
        input.write_all(format!("{line}\n").as_bytes()).unwrap();
        input.flush().unwrap();
        self.wait_for_prompts(n + 1);
    }

    /// Type `exit` and wait for upm to end; its exit status and the whole screen.
    fn exit(mut self) -> (std::process::ExitStatus, String) {
        let input = self.input.as_mut().unwrap();
        input.write_all(b"exit\n").unwrap();
        input.flush().unwrap();
        let since = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // The reader has the last output once the pipe closes.
                std::thread::sleep(Duration::from_millis(100));
                return (status, self.screen());
            }
            assert!(
                since.elapsed() < PATIENCE,
                "upm did not end; the screen:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A manifest as path → (type, mode, owner) with owners named (`package`, `root`), from `upm
/// files --json`.
fn manifest(root: &Root, pkg: &str) -> BTreeMap<String, String> {
    let uid = root.uid_of(pkg);
    let files = root.upm(["--json", "files", pkg]).success().json();
    files
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let owner = match f["uid"].as_u64().unwrap() {
                0 => "root".to_string(),
                u if u == uid => "package".to_string(),
                u => format!("#{u}"),
            };
            (
                f["path"].as_str().unwrap().to_string(),
                format!("{} {:o} {owner}", f["type"], f["mode"].as_u64().unwrap()),
            )
        })
        .collect()
}

/// The recipe part of a profile (before its recorded `[profile]` data).
fn recipe_part(profile: &str) -> &str {
    profile.split("\n[profile]").next().unwrap()
}

#[test]
fn a_recorded_shell_session_makes_a_profile_that_rebuilds_the_package() {
    needs_root!();
    let root = Root::new();
    let clean = root.state();
    let src = sources().join("tree_2.1.0.orig.tar.gz");
    let mut t = Terminal::start(&root, "record tree --version 2.1.0", "(upm record tree)");
    t.type_line("phase prepare");
    t.type_line(&format!("tar xf {}", src.display()));
    t.type_line("cd tree-2.1.0");
    t.type_line("phase compile");
    t.type_line("make");
    t.type_line("phase install");
    t.type_line("make PREFIX=/usr/local MANDIR=/usr/local/share/man install");
    t.type_line("commit");
    // A stray command, forgotten and undone.
    t.type_line("mkdir -p /usr/local/share/tree-junk && echo x > /usr/local/share/tree-junk/f");
    t.type_line("rollback --undo");
    // A failed command is recorded, and left out of the phases; leaving commits it.
    t.type_line("ls /nonexistent-upm-record");
    let (status, screen) = t.exit();
    assert!(status.success(), "upm record failed; the screen:\n{screen}");
    assert!(
        screen.contains("committed 4 command(s) and 2 path(s)")
            && screen.contains("recorded tree 2.1.0: 5 command(s), 2 path(s) in 2 commit(s)"),
        "{screen}"
    );
    assert!(
        screen.contains("forgot 1 command(s)") && screen.contains("/usr/local/share/tree-junk/f"),
        "{screen}"
    );
    assert!(screen.contains("1 failed command(s) left out"), "{screen}");

    // The database: exactly the files the session installed, and nothing of the stray one.
    let files = manifest(&root, "tree");
    let paths: Vec<&str> = files.keys().map(String::as_str).collect();
    assert_eq!(
        paths,
        ["/usr/local/bin/tree", "/usr/local/share/man/man1/tree.1"]
    );
    assert!(!root.upper("usr/local/share/tree-junk").exists());
    let added: Vec<String> = root
        .state()
        .into_iter()
        .filter(|(p, what)| !clean.contains_key(p) && what.starts_with("added"))
        .map(|(p, _)| p)
        .collect();
    assert_eq!(added, paths, "the sandbox's new paths are the manifest's");
    root.upm(["check", "tree"]).success();

    // The profile: phases with the version templated, the commands with their status.
    let text = std::fs::read_to_string(root.upper("usr/src/tree/tree-2.1.0.profile.toml"))
        .expect("the profile is written");
    let recipe = recipe_part(&text);
    assert!(
        recipe.contains("tar xf ") && recipe.contains("tree_${package.version}.orig.tar.gz"),
        "{text}"
    );
    assert!(
        recipe.contains("cd /usr/src/tree/build/tree-${package.version}\nmake\n"),
        "{text}"
    );
    assert!(
        recipe.contains("make PREFIX=/usr/local MANDIR=/usr/local/share/man install"),
        "{text}"
    );
    assert!(
        !recipe.contains("nonexistent") && !recipe.contains("tree-junk"),
        "{text}"
    );
    assert!(text.contains("ls /nonexistent-upm-record"), "{text}");
    assert!(text.contains("status = 2"), "{text}");
    let info = root.upm(["info", "tree"]).success().stdout();
    assert!(info.contains("tree-2.1.0.profile.toml"), "{info}");

    // The profile rebuilds the package on a fresh root to the same manifest.
    let fresh = Root::new();
    let dir = Dir::shared();
    let copy = dir.write("tree-2.1.0.profile.toml", &text);
    fresh.upm(["install".as_ref(), copy.as_os_str()]).success();
    assert_eq!(manifest(&fresh, "tree"), files);
}

#[test]
fn recording_one_command_grows_an_installed_package_and_a_failed_one_is_undone() {
    needs_root!();
    let root = Root::new();
    root.install(&repo().join("recipes/tree.toml")).success();
    let before = manifest(&root, "tree");
    root.upm([
        "record",
        "tree",
        "--",
        "sh",
        "-c",
        "mkdir -p /usr/local/share/tree && echo extra > /usr/local/share/tree/extra",
    ])
    .success()
    .stdout_has("recorded tree 2.1.0: 1 command(s), 2 path(s)");
    let after = manifest(&root, "tree");
    assert_eq!(after.len(), before.len() + 2, "{after:?}");
    assert!(before.keys().all(|p| after.contains_key(p)));
    assert_eq!(after["/usr/local/share/tree/extra"], "\"file\" 644 package");
    root.upm(["owner", "/usr/local/share/tree/extra"])
        .success()
        .stdout_has("tree");
    // The profile keeps the install's phases and adds the command to its install phase.
    let text = std::fs::read_to_string(root.upper("usr/src/tree/tree-2.1.0.profile.toml")).unwrap();
    let recipe = recipe_part(&text);
    assert!(recipe.contains("make PREFIX="), "{text}");
    assert!(
        recipe.contains(
            "'mkdir -p /usr/local/share/tree && echo extra > /usr/local/share/tree/extra'"
        ),
        "{text}"
    );

    // A root step the shim records (python's os.chown, no chown program involved) is
    // applied when allowed: the file ends root's, in the manifest as root's.
    root.upm([
        "record",
        "tree",
        "--allow",
        "chown",
        "--",
        "python3",
        "-c",
        "import os; p = '/usr/local/share/tree/owned'; open(p, 'w').write('x'); os.chown(p, 0, 0)",
    ])
    .success();
    let after = manifest(&root, "tree");
    assert_eq!(after["/usr/local/share/tree/owned"], "\"file\" 644 root");
    let tracking = root.upm(["info", "tree", "--tracking"]).success().stdout();
    // The watcher and the shim both saw it.
    let line = tracking
        .lines()
        .find(|l| l.ends_with("/usr/local/share/tree/owned"))
        .unwrap_or_else(|| panic!("{tracking}"));
    assert!(
        line.trim_start().starts_with("yes     yes  claimed"),
        "{tracking}"
    );

    // A failed command is rolled back and what it made removed; the manifest stays.
    root.upm([
        "record",
        "tree",
        "--",
        "sh",
        "-c",
        "echo y > /usr/local/share/tree/y; exit 3",
    ])
    .failure()
    .stderr_has("failed with status 3");
    assert!(!root.upper("usr/local/share/tree/y").exists());
    assert_eq!(manifest(&root, "tree"), after);

    // Bad input is refused before anything changes.
    root.upm(["record", "tree", "--version", "9", "--", "true"])
        .failure()
        .stderr_has("tree 2.1.0 is installed");
    root.upm(["record", "newpkg", "--", "true"])
        .failure()
        .stderr_has("--version VERSION");
    root.upm(["user", "list"]).success();
    assert!(!root.upm(["list"]).success().stdout().contains("newpkg"));
}

#[test]
fn without_bash_a_loop_upm_drives_records_each_line() {
    needs_root!();
    let root = Root::new();
    let mut cmd = Command::new(bin());
    cmd.args(["record", "notes", "--version", "1.0", "--shell", "sh"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = root.sb.spawn(cmd).unwrap();
    let lines = "phase install\n\
                 mkdir -p /usr/local/share/notes\n\
                 cd /usr/local/share/notes\n\
                 echo one > one-1.0.txt\n\
                 commit\n\
                 echo stray > stray.txt\n\
                 rollback\n\
                 exit\n";
    child
        .stdin
        .take()
        .unwrap()
        .write_all(lines.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("committed 2 command(s) and 2 path(s)"),
        "{err}"
    );
    // A plain rollback names what the forgotten line made and leaves it.
    assert!(
        err.contains("forgot 1 command(s)") && err.contains("/usr/local/share/notes/stray.txt"),
        "{err}"
    );
    assert!(root.upper("usr/local/share/notes/stray.txt").exists());
    let files = manifest(&root, "notes");
    let paths: Vec<&str> = files.keys().map(String::as_str).collect();
    assert_eq!(
        paths,
        [
            "/usr/local/share/notes",
            "/usr/local/share/notes/one-1.0.txt"
        ]
    );
    let text = std::fs::read_to_string(root.upper("usr/src/notes/notes-1.0.profile.toml")).unwrap();
    assert!(
        recipe_part(&text).contains(
            "cd /usr/src/notes/build\nmkdir -p /usr/local/share/notes\n\
             cd /usr/local/share/notes\necho one > one-${package.version}.txt\n"
        ),
        "{text}"
    );
}

#[test]
fn a_recipe_inheriting_a_recorded_profile_builds_another_version() {
    needs_root!();
    let dir = Dir::shared();
    // The same source as another version: unpacked, renamed, packed again.
    let orig = sources().join("tree_2.1.0.orig.tar.gz");
    std::fs::copy(&orig, dir.join("tree_2.1.0.orig.tar.gz")).unwrap();
    let sh = |script: &str| {
        let st = Command::new("sh")
            .args(["-ec", script])
            .current_dir(dir.path())
            .status()
            .unwrap();
        assert!(st.success(), "{script}");
    };
    sh(
        "tar xzf tree_2.1.0.orig.tar.gz && mv tree-2.1.0 tree-2.1.1 && \
        tar czf tree_2.1.1.orig.tar.gz tree-2.1.1 && rm -r tree-2.1.1",
    );
    let root = Root::new();
    let archive = dir.join("tree_2.1.0.orig.tar.gz");
    let archive = archive.to_str().unwrap();
    for (phase, cmd) in [
        ("prepare", vec!["tar", "xzf", archive]),
        ("compile", vec!["make", "-C", "tree-2.1.0"]),
        (
            "install",
            vec![
                "make",
                "-C",
                "tree-2.1.0",
                "PREFIX=/usr/local",
                "MANDIR=/usr/local/share/man",
                "install",
            ],
        ),
    ] {
        let mut args = vec![
            "record",
            "tree",
            "--version",
            "2.1.0",
            "--phase",
            phase,
            "--",
        ];
        args.extend(cmd);
        root.upm(args).success();
    }
    let text = std::fs::read_to_string(root.upper("usr/src/tree/tree-2.1.0.profile.toml")).unwrap();
    assert!(
        recipe_part(&text).contains("make -C tree-${package.version}"),
        "{text}"
    );
    dir.write("tree-2.1.0.profile.toml", &text);
    let recipe = dir.write(
        "tree-2.1.1.toml",
        "inherit = [\"tree-2.1.0.profile.toml\"]\n\n[package]\nversion = \"2.1.1\"\n",
    );

    let fresh = Root::new();
    fresh
        .upm(["install".as_ref(), recipe.as_os_str()])
        .success();
    let list = fresh.upm(["--json", "list"]).success().json();
    assert_eq!(list[0]["version"], "2.1.1", "{list}");
    assert_eq!(manifest(&fresh, "tree"), manifest(&root, "tree"));
    let built =
        std::fs::read_to_string(fresh.upper("usr/src/tree/tree-2.1.1.profile.toml")).unwrap();
    assert!(built.contains("tree_2.1.1.orig.tar.gz"), "{built}");
}
