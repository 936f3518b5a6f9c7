//! Package users: written into a target root's passwd/group/shadow under the lock, with ids
//! from 10000-19999 never reused, and read back by the system's own tools.

use std::os::unix::fs::MetadataExt;
use std::process::Command;

use upm::sandbox::{Options, Sandbox};

use crate::harness::{Dir, bin, upm};
use crate::needs_root;

/// `upm --root D --json user list`, parsed.
fn users_json(d: &Dir) -> serde_json::Value {
    upm()
        .arg("--root")
        .arg(d.path())
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
    upm()
        .arg("--root")
        .arg(d.path())
        .args(["user", "add", "zlib", "xz"])
        .run()
        .success();
    // 10000 is a uid and 10001 a gid already: the first id free as both is 10002.
    let j = users_json(&d);
    assert_eq!(j[0]["name"], "taken");
    assert_eq!(
        j[1],
        serde_json::json!({"name": "zlib", "uid": 10002, "gid": 10002, "home": "/usr/src/zlib"})
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
    upm()
        .arg("--root")
        .arg(d.path())
        .args(["user", "add", "zlib"])
        .run()
        .success()
        .stdout_has("exists");
    assert_eq!(d.read("etc/passwd"), before);
    upm()
        .arg("--root")
        .arg(d.path())
        .args(["user", "add", "root"])
        .run()
        .failure()
        .stderr_has("not a package user");
}

#[test]
fn concurrent_adds_get_distinct_ids() {
    needs_root!();
    let d = root_with_accounts();
    let children: Vec<_> = (0..8)
        .map(|i| {
            Command::new(bin())
                .arg("--root")
                .arg(d.path())
                .args(["user", "add", &format!("pkg{i}")])
                .output()
        })
        .collect();
    for c in children {
        assert!(c.unwrap().status.success());
    }
    let j = users_json(&d);
    let mut uids: Vec<u64> = j
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["uid"].as_u64().unwrap())
        .collect();
    uids.dedup();
    assert_eq!(uids.len(), 9, "{j}");
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
