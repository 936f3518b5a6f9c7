//! Server-side faults: mirrord killed with -9 and restarted, its event queue overflowed while
//! it was stopped, and a client left behind a trimmed log. Each must end with identical
//! mirrors, without a new INIT where the log still serves, and with only the changed files'
//! bytes sent (mirrord's -v log says how many bytes each GET sent).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::harness::*;

/// `n` files of `size` bytes under `dir`, each its own content.
fn files(dir: &Path, n: usize, size: usize, tag: &str) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..n {
        let body: Vec<u8> = format!("{tag}{i}:").bytes().cycle().take(size).collect();
        std::fs::write(dir.join(format!("f{i}")), body).unwrap();
    }
}

/// Every line of the server's log since `from` bytes.
fn since(d: &Mirrord, from: usize) -> String {
    d.log().get(from..).unwrap_or_default().to_string()
}

/// Wait until each mirror equals the source.
fn both_converge(s: &Setup, mirrors: &[&Path], logs: &dyn Fn() -> String) {
    for m in mirrors {
        converge(&s.src, &s.mirrored(m), 90, logs);
    }
}

#[test]
fn a_server_killed_with_9_resumes_its_session_and_sends_only_what_changed_while_down() {
    let s = Setup::new();
    files(&s.src.join("a"), 20, 3000, "a");
    files(&s.src.join("b/deep"), 10, 70_000, "b");
    std::fs::write(s.src.join("top"), b"top file").unwrap();
    let mut d = s.mirrord(&[]);
    let port = d.port;
    let (m1, m2) = (s.path("mirror1"), s.path("mirror2"));
    let c1 = FsMirror::start(port, &m1, &[]);
    let c2 = FsMirror::start(port, &m2, &[]);
    let logs = || format!("{}\n{}\n{}", d_log(&s), c1.log(), c2.log());
    both_converge(&s, &[&m1, &m2], &logs);
    assert_eq!(d.log().matches("INIT at serial").count(), 2, "{}", d.log());

    d.kill();
    // While mirrord is down: creates, deletes, renames (a file, a directory), content
    // changes (other size; same size), chmod, a new directory, a file that became a directory.
    let mut changed = 0u64;
    files(&s.src.join("new"), 5, 1234, "new");
    changed += 5 * 1234;
    std::fs::write(s.src.join("a/f0"), vec![b'x'; 5000]).unwrap();
    changed += 5000;
    std::fs::write(s.src.join("a/f1"), vec![b'y'; 3000]).unwrap();
    changed += 3000;
    std::fs::remove_file(s.src.join("a/f2")).unwrap();
    std::fs::rename(s.src.join("a/f3"), s.src.join("a/renamed")).unwrap();
    std::fs::rename(s.src.join("b/deep"), s.src.join("b/moved")).unwrap();
    std::fs::set_permissions(s.src.join("a/f4"), std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(s.src.join("b"), std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::remove_file(s.src.join("top")).unwrap();
    std::fs::create_dir(s.src.join("top")).unwrap();
    std::fs::write(s.src.join("top/inside"), b"12345").unwrap();
    changed += 5;
    std::os::unix::fs::symlink("a/f5", s.src.join("link")).unwrap();

    let before = d.log().len();
    let d2 = Mirrord::start_on(&s.info, &s.path("state"), &format!("127.0.0.1:{port}"), &[]);
    let logs = || format!("{}\n{}\n{}", d2.log(), c1.log(), c2.log());
    both_converge(&s, &[&m1, &m2], &logs);
    let after = since(&d2, before);
    assert!(
        after.contains("resumed:"),
        "the restart started a new session:\n{after}"
    );
    assert!(
        !after.contains("INIT at serial"),
        "a client did INIT after the restart:\n{after}"
    );
    for c in [&c1, &c2] {
        assert!(
            c.log().contains("replied \"SERIAL:") || c.log().contains("replied \"OK\""),
            "{}",
            c.log()
        );
    }
    // Renames while down are renames, not new content.
    assert!(after.contains("MOVE:"), "{after}");
    assert_eq!(
        sent_bytes(&after),
        2 * changed,
        "the bytes sent after the restart are not the changed files' (two clients):\n{after}"
    );
}

/// The server's log of a setup (for messages, when the handle moved).
fn d_log(s: &Setup) -> String {
    std::fs::read_to_string(s.path("state").with_extension("log")).unwrap_or_default()
}

#[test]
fn an_overflow_while_stopped_is_rescanned_and_only_the_changed_files_are_sent() {
    let s = Setup::new();
    files(&s.src.join("keep"), 50, 4000, "k");
    let d = s.mirrord(&[]);
    let m = s.path("mirror");
    let c = FsMirror::start(d.port, &m, &[]);
    let logs = || format!("{}\n{}", d.log(), c.log());
    converge(&s.src, &s.mirrored(&m), 60, &logs);

    // The burst goes into a directory mirrord watches already (a new one would be unwatched
    // while mirrord is stopped, and lose no events).
    std::fs::create_dir(s.src.join("burst")).unwrap();
    std::fs::write(s.src.join("burst/seed"), b"seed").unwrap();
    converge(&s.src, &s.mirrored(&m), 60, &logs);
    let before = d.log().len();
    d.signal("STOP");
    // More files than the queue holds events (two events a file at least: create, close).
    let queue = std::fs::read_to_string("/proc/sys/fs/inotify/max_queued_events")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(16_384);
    let n = queue / 2 + 500;
    files(&s.src.join("burst"), n, 7, "z");
    std::fs::write(s.src.join("keep/f0"), vec![b'q'; 100]).unwrap();
    std::fs::remove_file(s.src.join("keep/f1")).unwrap();
    std::fs::rename(s.src.join("keep/f2"), s.src.join("keep/renamed")).unwrap();
    d.signal("CONT");

    converge(&s.src, &s.mirrored(&m), 300, &logs);
    let after = since(&d, before);
    assert!(
        after.contains("fs.inotify.max_queued_events"),
        "no overflow was seen ({n} files made while stopped):\n{}",
        tail(&after, 20)
    );
    assert!(after.contains("rescan done"), "{}", tail(&after, 20));
    assert_eq!(
        sent_bytes(&after),
        (n * 7 + 100) as u64,
        "more than the changed files was sent:\n{}",
        tail(&after, 20)
    );
}

#[test]
fn a_client_behind_the_trimmed_log_converges_by_a_differential_init() {
    let s = Setup::new();
    files(&s.src.join("d"), 40, 2000, "d");
    let d = s.mirrord(&["--log-keep", "10"]);
    let m = s.path("mirror");
    let mut c = FsMirror::start(d.port, &m, &[]);
    converge(&s.src, &s.mirrored(&m), 60, &|| {
        format!("{}\n{}", d.log(), c.log())
    });
    // Its resume point is written (after the INIT is synced) before it goes.
    eventually(30, "the client's sn", || {
        std::fs::read_to_string(m.join("sn"))
            .ok()
            .filter(|s| s.contains(','))
            .ok_or_else(|| c.log())
    });
    c.kill();
    let before = d.log().len();
    // More changes than the log keeps, while the client is away.
    let mut changed = 0u64;
    for i in 0..15 {
        std::fs::write(s.src.join(format!("d/f{i}")), vec![b'0' + i as u8; 2500]).unwrap();
        changed += 2500;
    }
    // Same size, other content: SUM differs, so it is fetched.
    std::fs::write(s.src.join("d/f20"), vec![b'S'; 2000]).unwrap();
    changed += 2000;
    // Only touched: SUM agrees, nothing fetched.
    for i in 21..25 {
        let f = std::fs::File::options()
            .write(true)
            .open(s.src.join(format!("d/f{i}")))
            .unwrap();
        f.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(3600))
            .unwrap();
    }
    std::fs::remove_file(s.src.join("d/f30")).unwrap();
    std::fs::write(s.src.join("d/new"), b"fresh").unwrap();
    changed += 5;
    // The log is trimmed past the client's serial.
    eventually(30, "the log trimmed", || {
        let l = d.log();
        l.contains("trimmed").then_some(()).ok_or(l)
    });

    c = FsMirror::start(d.port, &m, &[]);
    converge(&s.src, &s.mirrored(&m), 60, &|| {
        format!("{}\n{}", d.log(), c.log())
    });
    let after = since(&d, before);
    assert!(
        c.log().contains("SERIAL OVERDUE OR INVALID"),
        "the client was not refused:\n{}",
        c.log()
    );
    assert_eq!(after.matches("INIT at serial").count(), 1, "{after}");
    assert!(
        after.contains("SUM "),
        "no file was checked by SUM:\n{after}"
    );
    assert_eq!(
        sent_bytes(&after),
        changed,
        "the differential INIT sent more than what differs:\n{after}"
    );
}

#[test]
fn trees_that_need_more_watches_than_allowed_are_refused_with_how_many() {
    let s = Setup::new();
    for d in ["a/b", "c/d", "e"] {
        std::fs::create_dir_all(s.src.join(d)).unwrap();
    }
    let out = std::process::Command::new(bin("mirrord"))
        .arg("--fs-info-dir")
        .arg(&s.info)
        .arg("--state-dir")
        .arg(s.path("state"))
        .args(["--listen", "127.0.0.1:0", "--max-watches", "3"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    // src, a, a/b, c, c/d, e (skip is excluded): six.
    assert!(
        err.contains("hold 6 directories")
            && err.contains("--max-watches is 3")
            && err.contains("fs.inotify.max_user_watches="),
        "{err}"
    );
}
