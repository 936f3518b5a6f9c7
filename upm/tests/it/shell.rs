//! The shell phases run under: bash when the root has it (the books' commands use brace
//! expansion and `[[`), `sh` when the recipe says `options.shell = "sh"`, and a recipe naming
//! something that is not a shell is refused when checked.

use crate::harness::{Dir, upm};
use crate::install::Root;
use crate::needs_root;

/// A recipe whose install phase is bash: `[[ ]]` and brace expansion.
fn bash_recipe(dir: &Dir, name: &str, options: &str) -> std::path::PathBuf {
    dir.write(
        &format!("{name}.toml"),
        &format!(
            "[package]\nname = \"{name}\"\nversion = \"1\"\n\n{options}\n[phases]\ninstall = '''\n\
             [[ $HOME == /usr/src/* ]]\n\
             install -d /usr/local/share/{name}\n\
             for f in {{a,b}}; do echo $f > /usr/local/share/{name}/$f; done\n'''\n"
        ),
    )
}

#[test]
fn phases_run_under_bash_and_options_shell_sh_makes_bash_syntax_fail() {
    needs_root!();
    let root = Root::new();
    let dir = Dir::shared();
    root.upm([
        "install".as_ref(),
        bash_recipe(&dir, "bashy", "").as_os_str(),
    ])
    .success();
    for f in ["a", "b"] {
        let p = root.upper(&format!("usr/local/share/bashy/{f}"));
        assert_eq!(std::fs::read_to_string(&p).unwrap(), format!("{f}\n"));
    }
    let shy = bash_recipe(&dir, "shy", "[options]\nshell = \"sh\"\n");
    root.upm(["install".as_ref(), shy.as_os_str()])
        .failure()
        .stderr_has("install phase");
    // It fails in the install phase's trial run, before anything is installed.
    let log = std::fs::read_to_string(root.upper("usr/src/shy/logs/install-trial.log")).unwrap();
    assert!(log.contains("[[: not found"), "{log}");
    assert!(!root.upper("usr/local/share/shy").exists());
}

#[test]
fn options_shell_must_name_a_shell() {
    let dir = Dir::new();
    let bad = bash_recipe(&dir, "fishy", "[options]\nshell = \"fish -l\"\n");
    upm()
        .args(["recipe", "check"])
        .arg(&bad)
        .run()
        .code(1)
        .stdout_has("`options.shell` must be \"bash\", \"sh\" or an absolute path");
    let good = bash_recipe(&dir, "bashpath", "[options]\nshell = \"/bin/bash\"\n");
    upm().args(["recipe", "check"]).arg(&good).run().success();
    upm()
        .args(["--json", "recipe", "show"])
        .arg(bash_recipe(&dir, "withsh", "[options]\nshell = \"sh\"\n"))
        .run()
        .success()
        .stdout_has("\"shell\": \"/bin/sh\"");
}
