//! `mirrord ctl` against a running mirrord through its real control socket: include and
//! exclude while a client mirrors (persisted in fs_info), status with clients and their lag,
//! and the socket's guard (mode 0600, root only by the peer's credentials).

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

use crate::harness::*;

/// Run `mirrord --state-dir STATE ctl ARGS...`.
fn ctl(state: &Path, args: &[&str]) -> Output {
    Command::new(bin("mirrord"))
        .arg("--state-dir")
        .arg(state)
        .arg("ctl")
        .args(args)
        .output()
        .unwrap()
}

/// `ctl` that must succeed; its stdout.
fn ctl_ok(state: &Path, args: &[&str]) -> String {
    let out = ctl(state, args);
    assert!(
        out.status.success(),
        "mirrord ctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn status(state: &Path) -> Value {
    serde_json::from_str(&ctl_ok(state, &["status", "--json"])).unwrap()
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn include_and_exclude_change_what_a_running_mirrord_watches_and_persist() {
    let s = Setup::new();
    let state = s.path("state");
    std::fs::create_dir_all(s.src.join("sub/deep")).unwrap();
    std::fs::write(s.src.join("sub/deep/old"), b"kept by the mirror").unwrap();
    let other = s.path("other");
    std::fs::create_dir_all(other.join("d")).unwrap();
    std::fs::write(other.join("d/f"), b"included later").unwrap();
    let d = s.mirrord(&[]);
    let m = s.path("mirror");
    let c = FsMirror::start(d.port, &m, &[]);
    let logs = || format!("{}\n{}", d.log(), c.log());
    converge(&s.src, &s.mirrored(&m), 30, &logs);

    // A new tree: walked, logged as created, fetched by the client, watched from then on.
    let said = ctl_ok(&state, &["include", p(&other)]);
    assert!(said.contains("included"), "{said}");
    let other_m = m.join(other.strip_prefix("/").unwrap());
    converge(&other, &other_m, 30, &logs);
    std::fs::write(other.join("d/g"), b"written after the include").unwrap();
    converge(&other, &other_m, 30, &logs);
    let listed = fs_info(&s.info, &["-l", "system"]);
    assert!(
        listed.contains(&format!("t:{}", other.display())),
        "{listed}"
    );

    // Excluded: no longer watched, nothing deleted on the mirror.
    let sub = s.src.join("sub");
    ctl_ok(&state, &["exclude", p(&sub)]);
    std::fs::write(sub.join("deep/new"), b"not mirrored").unwrap();
    std::fs::remove_file(sub.join("deep/old")).unwrap();
    std::fs::write(s.src.join("marker"), b"after the exclude").unwrap();
    eventually(30, "the marker", || {
        std::fs::read(s.mirrored(&m).join("marker")).map_err(|e| format!("{e}\n{}", logs()))
    });
    let sub_m = s.mirrored(&m).join("sub");
    assert_eq!(
        std::fs::read(sub_m.join("deep/old")).unwrap(),
        b"kept by the mirror",
        "the mirror keeps its copy of an excluded tree"
    );
    assert!(!sub_m.join("deep/new").exists(), "{}", logs());
    let st = status(&state);
    assert_eq!(st["excluded"].as_array().unwrap().len(), 2, "{st}");
    let listed = fs_info(&s.info, &["-l", "system"]);
    assert!(listed.contains(&format!("x:{}", sub.display())), "{listed}");

    // Included again: its exclusion goes and its content comes as it is now.
    ctl_ok(&state, &["include", p(&sub)]);
    eventually(30, "the excluded tree's new file", || {
        std::fs::read(sub_m.join("deep/new")).map_err(|e| format!("{e}\n{}", logs()))
    });
    let listed = fs_info(&s.info, &["-l", "system"]);
    assert!(
        !listed.contains(&format!("x:{}", sub.display())),
        "{listed}"
    );

    // A restarted mirrord watches what the changes left.
    drop(c);
    drop(d);
    let d = s.mirrord(&[]);
    let st = status(&state);
    let trees: Vec<&str> = st["trees"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(trees.contains(&p(&other)), "{st}\n{}", d.log());
}

#[test]
fn a_change_that_makes_no_sense_is_refused_with_the_reason() {
    let s = Setup::new();
    let state = s.path("state");
    let _d = s.mirrord(&[]);
    let cases: [(&[&str], &str); 5] = [
        (&["include", p(&s.src)], "mirrored already"),
        (&["exclude", "/nonexistent-upm-ctl"], "not mirrored"),
        (&["include", "/nonexistent-upm-ctl"], "no such file"),
        (&["include", "relative/path"], "absolute"),
        (&["exclude", p(&s.src)], "only tree"),
    ];
    for (args, why) in cases {
        let out = ctl(&state, args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} was accepted");
        assert!(err.contains(why), "{args:?}: {err}");
    }
    // Nothing was changed by the refusals.
    let listed = fs_info(&s.info, &["-l", "system"]);
    assert_eq!(listed.lines().count(), 2, "{listed}");
}

#[test]
fn status_shows_each_client_and_its_lag() {
    let s = Setup::new();
    let state = s.path("state");
    let d = s.mirrord(&[]);
    let (m1, m2) = (s.path("m1"), s.path("m2"));
    let c1 = FsMirror::start(d.port, &m1, &[]);
    let c2 = FsMirror::start(d.port, &m2, &[]);
    std::fs::write(s.src.join("f"), b"x").unwrap();
    converge(&s.src, &s.mirrored(&m1), 30, &|| d.log());
    converge(&s.src, &s.mirrored(&m2), 30, &|| d.log());
    let caught_up = eventually(30, "both clients at the head", || {
        let st = status(&state);
        let cl = st["clients"].as_array().unwrap().clone();
        let at_head = cl
            .iter()
            .filter(|c| c["phase"] == "realtime" && c["lag_records"] == 0)
            .count();
        if cl.len() == 2 && at_head == 2 {
            Ok(st)
        } else {
            Err(st.to_string())
        }
    });
    assert_eq!(caught_up["backend"], "inotify");
    assert!(caught_up["watches"].as_u64().unwrap() >= 1);
    assert!(
        caught_up["log"]["records"].as_u64().unwrap() >= 1,
        "{caught_up}"
    );
    assert_eq!(
        caught_up["clients"][0]["session"], caught_up["session"],
        "{caught_up}"
    );
    // One client stopped: it falls behind by what is logged meanwhile.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(c1.child.id() as i32),
        nix::sys::signal::Signal::SIGSTOP,
    )
    .unwrap();
    for i in 0..5 {
        std::fs::write(s.src.join(format!("g{i}")), b"y").unwrap();
    }
    converge(&s.src, &s.mirrored(&m2), 30, &|| d.log());
    let behind = eventually(30, "a client behind", || {
        let st = status(&state);
        let lags: Vec<u64> = st["clients"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|c| c["lag_records"].as_u64())
            .collect();
        if lags.iter().any(|l| *l > 0) && lags.contains(&0) {
            Ok(st)
        } else {
            Err(st.to_string())
        }
    });
    let text = ctl_ok(&state, &["status"]);
    assert!(text.contains("clients: 2"), "{text}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(c1.child.id() as i32),
        nix::sys::signal::Signal::SIGCONT,
    )
    .unwrap();
    converge(&s.src, &s.mirrored(&m1), 30, &|| d.log());
    let lagging = behind["clients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["lag_records"].as_u64() > Some(0))
        .unwrap();
    assert!(lagging["lag_seconds"].as_f64().is_some(), "{behind}");
    drop((c1, c2));
}

#[test]
fn the_control_socket_is_root_only() {
    let s = Setup::new();
    let state = s.path("state");
    let _d = s.mirrord(&[]);
    let sock = state.join("ctl.sock");
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // Even with the socket opened to everyone, the server checks who asks.
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o666)).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut dir = state.parent();
    while let Some(d) = dir {
        // The temp dir is 0700: let nobody through to the socket.
        if d.starts_with(s.tmp.path()) {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        dir = d.parent();
    }
    let out = Command::new(bin("mirrord"))
        .arg("--state-dir")
        .arg(&state)
        .args(["ctl", "status"])
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("root only"), "{err}");
}

#[test]
fn without_a_journal_messages_go_to_a_size_capped_file() {
    let s = Setup::new();
    let log = s.path("mirrord.log");
    let d = s.mirrord(&["--log-file", p(&log), "--log-max-size", "8k"]);
    // -v logs every record: enough writes pass the cap more than once.
    for i in 0..200 {
        std::fs::write(s.src.join(format!("file-with-a-long-name-{i:04}")), b"x").unwrap();
    }
    let old = s.path("mirrord.log.1");
    eventually(30, "a rotation", || {
        std::fs::read_to_string(&old).map_err(|e| format!("{e}"))
    });
    eventually(30, "the last record in the log", || {
        let now = std::fs::read_to_string(&log).unwrap_or_default();
        if now.contains("file-with-a-long-name-0199") {
            Ok(())
        } else {
            Err(now)
        }
    });
    for f in [&log, &old] {
        let text = std::fs::read_to_string(f).unwrap();
        assert!(
            text.len() <= 8192,
            "{} holds {} bytes",
            f.display(),
            text.len()
        );
        let first = text.lines().next().unwrap();
        // 2026-11-23T16:40:01Z mirrord: ...
        assert!(
            first.len() > 21 && first.as_bytes()[10] == b'T' && &first[19..21] == "Z ",
            "{first}"
        );
    }
    assert!(!s.path("mirrord.log.2").exists());
    assert!(d.log().is_empty(), "stderr went to the file: {}", d.log());
}

/// The units, with their ExecStart pointed at the built binaries, pass `systemd-analyze verify`.
#[test]
fn the_systemd_units_verify() {
    let Ok(v) = Command::new("systemd-analyze").arg("--version").output() else {
        eprintln!("SKIPPED: no systemd-analyze here");
        return;
    };
    assert!(v.status.success());
    let t = tempfile::tempdir().unwrap();
    let units = Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd");
    for (unit, instance) in [
        ("mirrord.service", "mirrord.service"),
        ("fs_mirror@.service", "fs_mirror@www2.service"),
    ] {
        let text = std::fs::read_to_string(units.join(unit)).unwrap();
        assert!(text.contains("ExecStart=/usr/local/bin/"), "{unit}");
        let text = text
            .replace("/usr/local/bin/mirrord", p(&bin("mirrord")))
            .replace("/usr/local/bin/fs_mirror", p(&bin("fs_mirror")));
        std::fs::write(t.path().join(unit), text).unwrap();
        let out = Command::new("systemd-analyze")
            .arg("verify")
            .arg(t.path().join(instance))
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && said.trim().is_empty(),
            "{unit}: {said}"
        );
    }
    // The instance is the host: fs_mirror@www2 mirrors www2 into /data/fs_mirror/www2.
    let text = std::fs::read_to_string(units.join("fs_mirror@.service")).unwrap();
    assert!(
        text.contains("--host %i --datadir /data/fs_mirror/%i"),
        "{text}"
    );
}
