//! Faults and bad input: a upm killed mid-phase leaves nothing of its build running and the
//! next command reports the install; a root that cannot run a phase fails the install with the
//! missing program named; the lock always names its holder; a missing `--root` is an error.

use std::process::{Command, Stdio};

use upm::sandbox::{Options, Sandbox};

use crate::harness::{Dir, bin, upm};
use crate::needs_root;

/// A recipe whose `phase` starts a background process, one that leaves the process group
/// (`setsid`), signals it is ready, and then waits to be killed. (`sleep 99999`: other tests
/// look for their own `sleep 100000` by uid, and package users of other sandboxes share uids.)
fn hanging_recipe(dir: &Dir, name: &str, phase: &str, ready: &str) -> std::path::PathBuf {
    let hang = format!("sleep 99999 &\nsetsid sleep 99999 &\ntouch {ready}\nsleep 99999");
    let (compile, install) = if phase == "compile" {
        (hang, "true".to_string())
    } else {
        (
            "true".to_string(),
            format!(
                "install -d /usr/local/share/{name}\necho a > /usr/local/share/{name}/a\n\
                 if [ -z \"$UPM_TRIAL\" ]; then\n{hang}\nfi"
            ),
        )
    };
    dir.write(
        &format!("{name}.toml"),
        &format!(
            "[package]\nname = \"{name}\"\nversion = \"1\"\n\n[phases]\ncompile = '''\n{compile}\n'''\n\
             install = '''\n{install}\n'''\n"
        ),
    )
}

/// Run upm's install of `name` in the sandbox until its phase is ready, kill upm with SIGKILL,
/// and return what is still running as the package user in the sandbox's root once its
/// guard has had the chance to act (looked for until there is none, or for 20 s).
fn kill_during(phase: &str) {
    let sb = Sandbox::new(&Options::default()).unwrap();
    let dir = Dir::shared();
    let name = format!("killed{phase}");
    let ready = format!("/var/tmp/upm-{name}-ready");
    let recipe = hanging_recipe(&dir, &name, phase, &ready);
    let script = format!(
        "set -u\n{upm} init >/dev/null\n\
         {upm} install {recipe} > /var/tmp/upm-{name}.out 2>&1 & pid=$!\n\
         while [ ! -e {ready} ]; do kill -0 $pid || exit 3; sleep 0.05; done\n\
         kill -KILL $pid; wait $pid\n\
         uid=$(sed -n 's/^{name}:x:\\([0-9]*\\):.*/\\1/p' /etc/passwd)\n\
         here=$(stat -Lc %d:%i /)\n\
         left() {{ for p in /proc/[0-9]*; do\n\
           [ \"$(stat -c %u $p 2>/dev/null)\" = \"$uid\" ] || continue\n\
           [ \"$(stat -Lc %d:%i $p/root 2>/dev/null)\" = \"$here\" ] || continue\n\
           echo \"${{p#/proc/}} $(tr '\\0' ' ' < $p/cmdline)\"; done; }}\n\
         n=0; while [ -n \"$(left)\" ] && [ $n -lt 200 ]; do sleep 0.1; n=$((n+1)); done\n\
         echo \"uid $uid\"\n\
         left | sed 's/^/left: /'\n\
         {upm} --json list > /var/tmp/upm-{name}-list.json 2> /var/tmp/upm-{name}-list.err\n",
        upm = bin(),
        recipe = recipe.display(),
    );
    let mut cmd = Command::new("/bin/sh");
    cmd.args(["-c", &script]);
    let out = sb.output(cmd).unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let upper = |p: &str| sb.upper().join(p.trim_start_matches('/'));
    let install_out =
        std::fs::read_to_string(upper(&format!("/var/tmp/upm-{name}.out"))).unwrap_or_default();
    assert!(
        out.status.success(),
        "{text}\n{}\ninstall: {install_out}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.lines().any(|l| l.starts_with("uid 1")),
        "no package user: {text}"
    );
    assert!(
        !text.contains("left: "),
        "the killed upm's {phase} phase is still running:\n{text}\ninstall: {install_out}"
    );
    // The next command, a mere query, reports the install and records it as interrupted.
    let err = std::fs::read_to_string(upper(&format!("/var/tmp/upm-{name}-list.err"))).unwrap();
    assert!(
        err.contains(&format!("the install of {name} was interrupted"))
            && err.contains(&format!("during the {phase} phase")),
        "{err}"
    );
    let list: serde_json::Value = serde_json::from_slice(
        &std::fs::read(upper(&format!("/var/tmp/upm-{name}-list.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(list[0]["name"], name.as_str(), "{list}");
    assert_eq!(list[0]["state"], "interrupted", "{list}");
    // Recorded, not merely shown: a later query says nothing more.
    let again = upm().args(["--json", "list"]).run_in(&sb).success();
    assert!(
        !again.stderr().contains("interrupted"),
        "{}",
        again.stderr()
    );
    assert_eq!(again.json()[0]["state"], "interrupted");
}

#[test]
fn a_upm_killed_during_the_compile_phase_leaves_nothing_running() {
    needs_root!();
    kill_during("compile");
}

#[test]
fn a_upm_killed_during_the_install_phase_leaves_nothing_running() {
    needs_root!();
    kill_during("install");
}

#[test]
fn a_root_without_a_shell_fails_the_install_naming_it() {
    needs_root!();
    use std::os::unix::fs::PermissionsExt;
    let d = Dir::shared();
    let root = d.join("root");
    let recipe = d.write(
        "demo.toml",
        "[package]\nname = \"demo\"\nversion = \"1\"\n[phases]\ncompile = \"true\"\ninstall = \"true\"\n",
    );
    upm()
        .arg("--root")
        .arg(&root)
        .args(["init", "--create"])
        .run()
        .success();
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(!root.join("bin/sh").exists());
    upm()
        .arg("--root")
        .arg(&root)
        .arg("install")
        .arg(&recipe)
        .run()
        .failure()
        .stderr_has(&format!(
            "cannot start the demo compile phase: the program /bin/sh does not exist in {}",
            root.display()
        ));
    let list = upm()
        .arg("--root")
        .arg(&root)
        .args(["--json", "list"])
        .run()
        .success();
    assert_eq!(list.json()[0]["state"], "failed", "{}", list.stdout());
    assert!(!list.stderr().contains("interrupted"), "{}", list.stderr());
}

#[test]
fn the_lock_always_names_its_holder() {
    needs_root!();
    let d = Dir::new();
    upm()
        .arg("--root")
        .arg(d.path())
        .arg("init")
        .run()
        .success();
    let mut refused = 0;
    for _ in 0..5 {
        let children: Vec<_> = (0..6)
            .map(|_| {
                Command::new(bin())
                    .arg("--root")
                    .arg(d.path())
                    .args(["installdir", "fix"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for c in children {
            let out = c.wait_with_output().unwrap();
            if out.status.success() {
                continue;
            }
            refused += 1;
            let err = String::from_utf8_lossy(&out.stderr);
            let holder = err
                .split_once("(pid and command: ")
                .and_then(|(_, rest)| rest.split_once(')'))
                .map(|(h, _)| h)
                .unwrap_or_else(|| panic!("not a lock message: {err}"));
            let (pid, what) = holder
                .split_once(' ')
                .unwrap_or_else(|| panic!("no holder named: {err}"));
            assert!(pid.parse::<u32>().is_ok(), "{err}");
            assert_eq!(what, "upm installdir fix", "{err}");
        }
    }
    // Not an assertion on timing: with 30 racing processes, at least one meets another's lock
    // in practice; say so when none did, since then the race was not exercised.
    if refused == 0 {
        eprintln!("*** the_lock_always_names_its_holder: no process met the lock this time ***");
    }
}

#[test]
fn a_missing_root_is_an_error_and_init_create_makes_one() {
    let d = Dir::new();
    let gone = d.join("nonexistent");
    for args in [
        vec!["list"],
        vec!["init"],
        vec!["user", "list"],
        vec!["completions", "bash"],
    ] {
        upm()
            .arg("--root")
            .arg(&gone)
            .args(&args)
            .run()
            .failure()
            .stderr_has(&format!("--root {}: no such directory", gone.display()))
            .stderr_has("init --create");
    }
    assert!(!gone.exists(), "a missing root was created");
    upm()
        .arg("--root")
        .arg(d.write("afile", ""))
        .arg("list")
        .run()
        .failure();
    upm()
        .args(["sandbox", "--root", "/", "--", "true"])
        .run()
        .failure()
        .stderr_has("--root does not apply");
    if !crate::harness::have_root("a_missing_root_is_an_error_and_init_create_makes_one") {
        return;
    }
    upm()
        .arg("--root")
        .arg(&gone)
        .args(["init", "--create"])
        .run()
        .success();
    assert!(gone.join("var/lib/upm/upm.db").exists());
    upm().arg("--root").arg(&gone).arg("list").run().success();
}
