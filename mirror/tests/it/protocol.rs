//! Hand-typed sessions, as the original design wrote them, get the original design's answers.

use crate::harness::*;

fn session_of(t: &mut Telnet) -> String {
    t.send("START");
    assert_eq!(t.line().as_deref(), Some("OK"));
    t.send("INIT");
    let s = t.line().unwrap();
    let id = s
        .strip_prefix("SESSION:")
        .unwrap_or_else(|| panic!("{s}"))
        .to_string();
    assert_eq!(id.len(), 32, "{s}");
    id
}

#[test]
fn the_original_designs_sessions_get_its_answers() {
    let s = Setup::new();
    std::fs::create_dir_all(s.src.join("include")).unwrap();
    std::fs::write(s.src.join("index.php"), b"<?php").unwrap();
    let d = s.mirrord(&[]);

    // C: THIS  S: INVALID COMMAND (and the connection closes)
    let mut t = Telnet::connect(d.port);
    t.send("THIS");
    assert_eq!(t.line().as_deref(), Some("INVALID COMMAND"));
    assert!(t.closed());

    // C: START S: OK C: THIS S: INVALID INIT COMMAND
    let mut t = Telnet::connect(d.port);
    t.send("START");
    assert_eq!(t.line().as_deref(), Some("OK"));
    t.send("THIS");
    assert_eq!(t.line().as_deref(), Some("INVALID INIT COMMAND"));
    assert!(t.closed());

    // INIT: the snapshot as CREATE/FWRITE records, parents first, then NXT is refused.
    let mut t = Telnet::connect(d.port);
    let session = session_of(&mut t);
    let b = t.batch();
    let src = s.src.display().to_string();
    assert_eq!(b[0], "SERIAL:0", "{b:?}");
    assert!(b[1].starts_with(&format!("CREATE:{src}/ mode=")), "{b:?}");
    assert!(
        b.iter()
            .any(|l| l.starts_with(&format!("CREATE:{src}/include/ "))),
        "{b:?}"
    );
    assert!(
        b.iter().any(|l| l.starts_with(&format!(
            "FWRITE:{src}/index.php mode=644 uid=0 gid=0 size=5 "
        ))),
        "{b:?}"
    );
    assert!(!b.iter().any(|l| l.contains("/skip")), "excluded: {b:?}");
    assert_eq!(b.last().unwrap(), "EOF");
    t.send("NXT");
    assert_eq!(t.line().as_deref(), Some("INVALID REALTIME COMMAND"));
    assert!(t.closed());

    // SN: with another session: SESSION INVALID, then INIT works.
    let mut t = Telnet::connect(d.port);
    t.send("START");
    t.line();
    t.send("SN:60a50c8be3147f15fe57db3fb0216599, 3072");
    assert_eq!(t.line().as_deref(), Some("SESSION INVALID"));
    t.send("INIT");
    assert_eq!(t.line(), Some(format!("SESSION:{session}")));
    assert_eq!(t.batch()[0], "SERIAL:0");

    // SN: with serial -1: SERIAL OVERDUE OR INVALID; then NEXT: INVALID INIT COMMAND.
    let mut t = Telnet::connect(d.port);
    t.send("START");
    t.line();
    t.send(&format!("SN:{session}, -1"));
    assert_eq!(t.line().as_deref(), Some("SERIAL OVERDUE OR INVALID"));
    t.send("NEXT");
    assert_eq!(t.line().as_deref(), Some("INVALID INIT COMMAND"));
    assert!(t.closed());

    // SN: at the head: OK; NEXT blocks (keep-alives) until a change, then its records.
    let mut t = Telnet::connect(d.port);
    t.send("START");
    t.line();
    t.send(&format!("SN:{session}, 0"));
    assert_eq!(t.line().as_deref(), Some("OK"));
    t.send("NEXT");
    assert_eq!(
        t.line().as_deref(),
        Some("KEEPALIVE"),
        "nothing changed yet"
    );
    std::fs::create_dir(s.src.join("new")).unwrap();
    let b = t.batch();
    assert_eq!(b[0], "SERIAL:1", "{b:?}");
    assert!(
        b[1].starts_with(&format!("CREATE:{src}/new/ mode=")),
        "{b:?}"
    );

    // A file's content by GET, and CHANGED once it was written again.
    std::fs::write(s.src.join("new/f"), b"hello").unwrap();
    // The creation and the write may come in one batch or two: read until the write's record.
    let want = format!("FWRITE:{src}/new/f mode=644 uid=0 gid=0 size=5");
    let serial = loop {
        t.send("NEXT");
        let b = t.batch();
        if b.iter().any(|l| l.starts_with(&want)) {
            break b[0]
                .strip_prefix("SERIAL:")
                .unwrap()
                .parse::<u64>()
                .unwrap();
        }
    };
    t.send(&format!("GET {serial} {src}/new/f"));
    assert_eq!(t.line().as_deref(), Some("SIZE:5"));
    assert_eq!(t.bytes(5), b"hello");
    assert_eq!(
        t.line().as_deref(),
        Some("SHA256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")
    );
    std::fs::write(s.src.join("new/f"), b"hello again").unwrap();
    t.send("NEXT");
    t.batch();
    t.send(&format!("GET {serial} {src}/new/f"));
    assert_eq!(t.line().as_deref(), Some("CHANGED"));
    // Nothing outside the watched trees is ever served.
    t.send(&format!("GET {serial} /etc/passwd"));
    assert_eq!(t.line().as_deref(), Some("CHANGED"));
    t.send(&format!("GET {serial} {src}/skip/../../../etc/passwd"));
    assert_eq!(t.line().as_deref(), Some("INVALID REALTIME COMMAND"));
    assert!(t.closed());

    // SN: an earlier serial of the session: the records after it.
    let mut t = Telnet::connect(d.port);
    t.send("START");
    t.line();
    t.send(&format!("SN:{session},1"));
    let b = t.batch();
    assert!(b[0].starts_with("SERIAL:") && b[0] != "SERIAL:1", "{b:?}");
    assert!(b[1].starts_with(&format!("FWRITE:{src}/new/f ")), "{b:?}");
}

#[test]
fn the_snapshot_comes_in_batches_of_at_most_1024() {
    let s = Setup::new();
    for i in 0..2500 {
        std::fs::write(s.src.join(format!("f{i:04}")), b"x").unwrap();
    }
    let d = s.mirrord(&[]);
    let mut t = Telnet::connect(d.port);
    session_of(&mut t);
    let mut sizes = Vec::new();
    loop {
        let b = t.batch();
        assert_eq!(b[0], "SERIAL:0");
        sizes.push(b.len() - 2);
        if b.len() - 2 < 1024 {
            break;
        }
        t.send("NEXT");
    }
    // 2500 files, the root: 2501 records.
    assert_eq!(sizes, [1024, 1024, 453]);
}

#[test]
fn report_mode_prints_each_change_as_json_and_touches_nothing() {
    let s = Setup::new();
    let d = s.mirrord(&[]);
    let m = s.path("report");
    let out = s.path("report.out");
    let c = std::process::Command::new(bin("fs_mirror"))
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            &d.port.to_string(),
            "--sync",
            "report",
            "--json",
        ])
        .arg("--datadir")
        .arg(&m)
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Killed however the test ends.
    let mut c = FsMirror {
        child: c,
        log: s.path("report.log"),
    };
    // Once its INIT is done (sn written), a change arrives as a record.
    eventually(30, "the INIT", || {
        std::fs::read_to_string(m.join("sn"))
            .ok()
            .filter(|s| s.contains(','))
            .ok_or_else(String::new)
    });
    std::fs::write(s.src.join("intruder.php"), b"<?php system($_GET['c']);").unwrap();
    let line = eventually(30, "the report of the write", || {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        text.lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .find(|v| {
                v["op"] == "FWRITE"
                    && v["size"] == 25
                    && v["path"]
                        .as_str()
                        .is_some_and(|p| p.ends_with("/intruder.php"))
            })
            .ok_or(text)
    });
    assert_eq!(line["mode"], "644");
    assert!(line["serial"].as_u64().unwrap() >= 1);
    c.kill();
    assert!(
        !s.mirrored(&m).exists(),
        "report mode wrote into the mirror directory"
    );
}

#[test]
fn fs_info_lists_finds_and_removes() {
    let s = Setup::new();
    std::fs::write(s.src.join("a"), b"x").unwrap();
    std::fs::write(s.src.join("skip/hidden"), b"x").unwrap();
    let src = s.src.display().to_string();
    assert_eq!(
        fs_info(&s.info, &["-l"]),
        format!("t:{src}\nx:{src}/skip\n")
    );
    assert_eq!(fs_info(&s.info, &["-f"]), format!("{src}\n{src}/a\n"));
    fs_info(&s.info, &["-r", &format!("x:{src}/skip")]);
    assert!(fs_info(&s.info, &["-f"]).contains("/skip/hidden"));
    let out = std::process::Command::new(bin("fs_info"))
        .arg("-d")
        .arg(&s.info)
        .args(["-a", "t:/no/such/place"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such/place"));
}
