//! Package users: written into a target root's passwd/group/shadow under the lock, with ids
//! from 10000-19999 never reused, and read back by the system's own tools.

use std::collections::BTreeSet;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::{Command, Stdio};

use upm::sandbox::{Options, Sandbox};

use crate::harness::{Dir, bin, upm};
use crate::needs_root;

/// `upm --root D --json user list`, parsed.
/// upm run with `--root` set to this test's root.
fn at(d: &Dir) -> crate::harness::Cmd {
    upm().arg("--root").arg(d.path())
}

fn users_json(d: &Dir) -> serde_json::Value {
    at(d)
        .args(["--json", "user", "list"])
        .run()
        .success()
        .json()
}

fn root_with_accounts() -> Dir {
    let d = Dir::new();
    d.write(
        "etc/passwd",
        "# kept\nroot:x:0:0:root:/root:/bin/bash\ntaken:x:10000:100::/:/bin/false\n",
    );
    d.write("etc/group", "root:x:0:\nusers:x:100:\nodd:x:10001:\n");
    d.write("etc/shadow", "root:*:19000:0:99999:7:::\n");
    d.write("etc/gshadow", "root:*::\n");
    d
}

#[test]
fn add_list_and_idempotence() {
    needs_root!();
    let d = root_with_accounts();
    at(&d).args(["user", "add", "zlib", "xz"]).run().success();
    // 10000 is a uid and 10001 a gid already: the first id free as both is 10002.
    let j = users_json(&d);
    assert_eq!(j[0]["name"], "taken");
    assert_eq!(
        j[1],
        serde_json::json!({
            "package": "zlib", "name": "zlib", "uid": 10002, "gid": 10002, "home": "/usr/src/zlib"
        })
    );
    assert_eq!(j[2]["uid"], 10003);
    let passwd = d.read("etc/passwd");
    assert!(
        passwd.starts_with("# kept\nroot:x:0:0:root:/root:/bin/bash\n"),
        "{passwd}"
    );
    assert!(d.read("etc/group").contains("install:x:9999:zlib,xz\n"));
    assert!(d.read("etc/gshadow").contains("install:!::zlib,xz\n"));
    assert!(d.read("etc/shadow").contains("\nzlib:!:"));
    let home = std::fs::metadata(d.join("usr/src/zlib")).unwrap();
    assert_eq!((home.uid(), home.gid()), (10002, 10002));
    // Adding again changes nothing.
    let before = d.read("etc/passwd");
    at(&d)
        .args(["user", "add", "zlib"])
        .run()
        .success()
        .stdout_has("exists");
    assert_eq!(d.read("etc/passwd"), before);
    // A name the system uses: refused when the settings say so, else prefixed.
    d.write("etc/upm/upm.toml", "[users]\ncollision = \"refuse\"\n");
    at(&d)
        .args(["user", "add", "root"])
        .run()
        .failure()
        .stderr_has("its name is already user root (uid 0)");
    assert_eq!(d.read("etc/passwd"), before);
    std::fs::remove_file(d.join("etc/upm/upm.toml")).unwrap();
    at(&d)
        .args(["user", "add", "root"])
        .run()
        .success()
        .stdout_has("created package user pkg-root for package root");
    assert_eq!(d.read("etc/passwd").matches("\nroot:").count(), 1);
}

#[test]
fn concurrent_adds_get_distinct_ids() {
    needs_root!();
    let d = root_with_accounts();
    // Every `upm user add` is started and held at a barrier (a shell waiting on its stdin);
    // all are released at once, then waited for: they race for the accounts lock.
    let mut held: Vec<_> = (0..8)
        .map(|i| {
            let mut c = Command::new("/bin/sh");
            c.args(["-c", "read go && exec \"$0\" \"$@\""])
                .arg(bin())
                .arg("--root")
                .arg(d.path())
                .args(["user", "add", &format!("pkg{i}")])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            c.spawn().unwrap()
        })
        .collect();
    let gates: Vec<_> = held.iter_mut().map(|c| c.stdin.take().unwrap()).collect();
    for mut g in gates {
        g.write_all(b"go\n").unwrap();
    }
    for c in held {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "{out:?}");
    }
    let j = users_json(&d);
    let users = j.as_array().unwrap();
    let uids: BTreeSet<u64> = users.iter().map(|u| u["uid"].as_u64().unwrap()).collect();
    let names: BTreeSet<&str> = users.iter().map(|u| u["name"].as_str().unwrap()).collect();
    assert_eq!((uids.len(), names.len()), (9, 9), "{j}");
    let group = d.read("etc/group");
    let members = group
        .lines()
        .find_map(|l| l.strip_prefix("install:x:9999:"))
        .unwrap_or_else(|| panic!("{group}"));
    assert_eq!(members.split(',').count(), 8, "{group}");
}

#[test]
fn account_files_keep_or_get_conventional_modes_and_groups() {
    needs_root!();
    // An empty root: passwd and group are made world-readable, as every system has them.
    let empty = Dir::new();
    upm()
        .arg("--root")
        .arg(empty.path())
        .args(["user", "add", "zlib"])
        .run()
        .success();
    for f in ["etc/passwd", "etc/group"] {
        let m = std::fs::metadata(empty.join(f)).unwrap();
        assert_eq!((m.mode() & 0o7777, m.uid(), m.gid()), (0o644, 0, 0), "{f}");
    }
    // A root whose shadow files are root:shadow 0640 keeps them so.
    let d = root_with_accounts();
    let mut group = d.read("etc/group");
    group.push_str("shadow:x:42:\n");
    std::fs::write(d.join("etc/group"), group).unwrap();
    for f in ["etc/shadow", "etc/gshadow"] {
        std::os::unix::fs::chown(d.join(f), Some(0), Some(42)).unwrap();
        std::fs::set_permissions(d.join(f), std::fs::Permissions::from_mode(0o640)).unwrap();
    }
    at(&d).args(["user", "add", "zlib"]).run().success();
    assert!(d.read("etc/shadow").contains("\nzlib:!:"));
    for f in ["etc/shadow", "etc/gshadow"] {
        let m = std::fs::metadata(d.join(f)).unwrap();
        assert_eq!((m.mode() & 0o7777, m.uid(), m.gid()), (0o640, 0, 42), "{f}");
    }
    let m = std::fs::metadata(d.join("etc/passwd")).unwrap();
    assert_eq!(m.mode() & 0o7777, 0o644);
}

#[test]
fn ids_come_from_the_roots_settings() {
    needs_root!();
    let d = root_with_accounts();
    d.write(
        "etc/upm/upm.toml",
        "[install]\ngid = 7777\n[users]\nfirst = 20000\nlast = 20001\n",
    );
    at(&d).args(["user", "add", "zlib", "xz"]).run().success();
    // `taken` (uid 10000) is outside the configured range: not a package user here.
    let j = users_json(&d);
    assert_eq!(
        j,
        serde_json::json!([
            {"package": "zlib", "name": "zlib", "uid": 20000, "gid": 20000, "home": "/usr/src/zlib"},
            {"package": "xz", "name": "xz", "uid": 20001, "gid": 20001, "home": "/usr/src/xz"},
        ])
    );
    assert!(d.read("etc/group").contains("install:x:7777:zlib,xz\n"));
    at(&d)
        .args(["user", "add", "bzip2"])
        .run()
        .failure()
        .stderr_has("no free id left between 20000 and 20001");
}

#[test]
fn system_tools_see_the_users() {
    needs_root!();
    let sb = Sandbox::new(&Options::default()).unwrap();
    let mut c = Command::new(bin());
    c.args(["user", "add", "upmitpkg"]);
    assert!(sb.status(c).unwrap().success());
    let mut c = Command::new("/bin/sh");
    c.args([
        "-ec",
        "id -nG upmitpkg; su -s /bin/sh upmitpkg -c 'id -un; echo $HOME; touch $HOME/ok'",
    ]);
    let out = sb.output(c).unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text, "upmitpkg install\nupmitpkg\n/usr/src/upmitpkg\n",
        "{out:?}"
    );
    assert!(sb.upper().join("usr/src/upmitpkg/ok").exists());
}
