//! Bad input, a wrong secret and hostile records are refused without harm: the server goes on
//! serving, the mirror directory holds nothing it should not, nothing outside it is touched.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;

use crate::harness::*;

#[test]
fn bad_protocol_input_is_refused_and_the_server_goes_on() {
    let s = Setup::new();
    let d = s.mirrord(&[]);
    let mut t = Telnet::connect(d.port);
    t.send_raw(&[b'A'; 20_000]);
    assert_eq!(t.line().as_deref(), Some("LINE TOO LONG"));
    assert!(t.closed());
    for junk in [
        &b"\xff\xfe\x00\x01\r\n"[..],
        b"GET 1 /x\r\n",
        b"SN:abc,1\r\n",
        b"\r\n",
    ] {
        let mut t = Telnet::connect(d.port);
        t.send_raw(junk);
        assert_eq!(t.line().as_deref(), Some("INVALID COMMAND"), "{junk:?}");
        assert!(t.closed());
    }
    // Unharmed: a client still mirrors.
    std::fs::write(s.src.join("f"), b"still served").unwrap();
    let m = s.path("mirror");
    let c = FsMirror::start(d.port, &m, &[]);
    converge(&s.src, &s.mirrored(&m), 30, &|| {
        format!("{}\n{}", d.log(), c.log())
    });
}

#[test]
fn a_wrong_secret_is_refused_and_the_right_one_mirrors() {
    let s = Setup::new();
    let secret = s.path("secret");
    std::fs::write(&secret, "correct horse\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let wrong = s.path("wrong");
    std::fs::write(&wrong, "battery staple\n").unwrap();
    std::fs::set_permissions(&wrong, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(s.src.join("f"), b"secret stuff").unwrap();
    let d = s.mirrord(&["--secret-file", secret.to_str().unwrap()]);

    // By hand: START before AUTH, and a made-up response.
    let mut t = Telnet::connect(d.port);
    t.send("START");
    assert_eq!(t.line().as_deref(), Some("AUTH REQUIRED"));
    assert!(t.closed());
    let mut t = Telnet::connect(d.port);
    t.send("AUTH");
    assert!(t.line().unwrap().starts_with("CHALLENGE:"));
    t.send("RESPONSE:00112233");
    assert_eq!(t.line().as_deref(), Some("AUTH FAILED"));
    assert!(t.closed());

    // fs_mirror with the wrong secret stops, saying why, and mirrors nothing.
    let m = s.path("mirror-wrong");
    let mut c = FsMirror::start(d.port, &m, &["--secret-file", wrong.to_str().unwrap()]);
    let status = c.child.wait().unwrap();
    assert!(!status.success());
    assert!(c.log().contains("secret"), "{}", c.log());
    assert!(!s.mirrored(&m).exists());

    // A secret others may read is refused before anything starts.
    std::fs::set_permissions(&wrong, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = std::process::Command::new(bin("fs_mirror"))
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            &d.port.to_string(),
            "--datadir",
        ])
        .arg(s.path("m3"))
        .arg("--secret-file")
        .arg(&wrong)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("chmod 600"));

    let m = s.path("mirror");
    let c = FsMirror::start(d.port, &m, &["--secret-file", secret.to_str().unwrap()]);
    converge(&s.src, &s.mirrored(&m), 30, &|| {
        format!("{}\n{}", d.log(), c.log())
    });
}

/// A hostile server: answers INIT with records that try to leave the mirror directory.
#[test]
fn records_that_would_escape_the_mirror_are_refused_and_never_applied() {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let m = tmp.path().join("mirror");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let records = vec![
        "CREATE:/../../escape-upm-mirror-test/ mode=755 uid=0 gid=0".to_string(),
        "FWRITE:/a/../../../x-upm-mirror-test mode=644 uid=0 gid=0 size=1 mtime=0".into(),
        format!(
            "SYMLINK:/link mode=777 uid=0 gid=0 target={}",
            outside.display()
        ),
        "FWRITE:/link/pwned mode=644 uid=0 gid=0 size=5 mtime=0".into(),
        "CREATE:/link/sub/ mode=755 uid=0 gid=0".into(),
        "CREATE:/sn/ mode=755 uid=0 gid=0".into(),
        "DELETE:/..".into(),
        "CREATE:/ok/ mode=700 uid=0 gid=0".into(),
        "MOVE:/ok to=/../../moved-upm-mirror-test".into(),
        "FWRITE:/ok/%2E%2E/%2E%2E/y-upm-mirror-test mode=644 uid=0 gid=0 size=1 mtime=0".into(),
        "GARBAGE LINE".into(),
    ];
    let server = std::thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        let mut w = s.try_clone().unwrap();
        let mut r = BufReader::new(s);
        let mut line = String::new();
        let mut gets = 0;
        while r.read_line(&mut line).unwrap_or(0) > 0 {
            let reply = match line.trim_end() {
                "START" => "OK\r\n".to_string(),
                "INIT" => {
                    let mut s = "SESSION:hostile\r\nSERIAL:1\r\n".to_string();
                    for r in &records {
                        s.push_str(r);
                        s.push_str("\r\n");
                    }
                    s + "EOF\r\n"
                }
                l if l.starts_with("GET ") => {
                    gets += 1;
                    // Content for whatever it asks: "hello".
                    "SIZE:5\r\nhelloSHA256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824\r\n".into()
                }
                "NEXT" => return gets,
                _ => return gets,
            };
            w.write_all(reply.as_bytes()).unwrap();
            line.clear();
        }
        gets
    });
    let c = FsMirror::start(port, &m, &[]);
    eventually(30, "the hostile batch applied", || {
        std::fs::read_to_string(m.join("sn"))
            .ok()
            .filter(|s| s.starts_with("hostile,1"))
            .ok_or_else(|| c.log())
    });
    let gets = server.join().unwrap();
    assert_eq!(
        gets, 1,
        "only /link/pwned passes the syntax check; its answer is read and dropped"
    );
    assert_eq!(
        std::fs::read_dir(&outside).unwrap().count(),
        0,
        "written through the symlink"
    );
    // Where each would have landed: beside the mirror directory, or one level further up.
    let up = tmp.path().parent().unwrap();
    for p in ["escape", "x", "moved", "y"] {
        let name = format!("{p}-upm-mirror-test");
        assert!(
            !tmp.path().join(&name).exists() && !up.join(&name).exists(),
            "{p} escaped"
        );
    }
    assert!(m.join("ok").is_dir(), "the one good record was applied");
    assert!(
        m.join("sn").is_file(),
        "sn is the client's, not a directory"
    );
    let log = c.log();
    assert!(log.matches("refused").count() >= 8, "{log}");
}
