//! Package users for packages whose name the system already uses (Debian's `sudo` group): a
//! user by the naming rule, never a second line for the name, and removal leaving the account
//! files exactly as they were.

use std::os::unix::fs::MetadataExt;
use std::process::Command;

use crate::harness::Dir;
use crate::install::{Root, script_recipe, succeeds};
use crate::needs_root;

fn sh(script: &str) -> Command {
    let mut c = Command::new("/bin/sh");
    c.args(["-ec", script]);
    c
}

/// The account files of the sandbox's root.
fn accounts(root: &Root) -> String {
    succeeds(
        &root.sb,
        sh("cat /etc/passwd /etc/group /etc/shadow /etc/gshadow"),
    )
}

/// The lines of /etc/group whose name is `name`.
fn group_lines(root: &Root, name: &str) -> Vec<String> {
    succeeds(&root.sb, sh("cat /etc/group"))
        .lines()
        .filter(|l| l.split(':').next() == Some(name))
        .map(String::from)
        .collect()
}

#[test]
fn a_package_named_like_a_system_group_gets_a_prefixed_user_and_removal_restores_the_accounts() {
    needs_root!();
    let root = Root::new();
    // A group of the system with the package's name, as Debian's `sudo` group (gid 27).
    succeeds(
        &root.sb,
        sh("echo 'upmclash:x:4242:' >> /etc/group\n\
            if [ -f /etc/gshadow ]; then echo 'upmclash:!::' >> /etc/gshadow; fi"),
    );
    let before = accounts(&root);
    let dir = Dir::shared();
    let recipe = script_recipe(
        &dir,
        "upmclash",
        "install -d /usr/local/share/upmclash\necho mine > /usr/local/share/upmclash/file",
    );
    for round in 0..2 {
        root.upm(["install".as_ref(), recipe.as_os_str()])
            .success()
            .stderr_has("created package user pkg-upmclash");
        assert_eq!(
            group_lines(&root, "upmclash"),
            ["upmclash:x:4242:"],
            "round {round}"
        );
        assert_eq!(group_lines(&root, "pkg-upmclash").len(), 1, "round {round}");
        let users = root.upm(["--json", "user", "list"]).success().json();
        let user = users
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["package"] == "upmclash")
            .unwrap_or_else(|| panic!("no user for upmclash: {users}"));
        assert_eq!(user["name"], "pkg-upmclash");
        let uid = user["uid"].as_u64().unwrap();
        let file = root.upper("usr/local/share/upmclash/file");
        assert_eq!(u64::from(std::fs::metadata(file).unwrap().uid()), uid);
        root.upm(["info", "upmclash"])
            .success()
            .stdout_has(&format!("user:        pkg-upmclash (uid {uid}"));
        root.upm(["user", "list"])
            .success()
            .stdout_has("upmclash")
            .stdout_has("pkg-upmclash");
        root.upm(["remove", "upmclash"]).success();
        assert_eq!(
            accounts(&root),
            before,
            "round {round}: the accounts changed"
        );
    }

    // Refused by the naming rule: nothing is written, nothing recorded.
    root.upm([
        "tree",
        "set",
        "/etc/upm/upm.toml",
        "users.collision",
        "refuse",
    ])
    .success();
    root.upm(["install".as_ref(), recipe.as_os_str()])
        .failure()
        .stderr_has("its name is already group upmclash (gid 4242)")
        .stderr_has("users.collision = \"prefix\"");
    assert_eq!(accounts(&root), before);
    assert_eq!(
        root.upm(["--json", "list"]).success().json(),
        serde_json::json!([])
    );
}
