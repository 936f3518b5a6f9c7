//! The log behind the disk: a file renamed, or replaced, on disk before the monitor has logged
//! it. A `GET` of its record then finds nothing (or another file) where the log says it is;
//! it must wait for the record that tells what became of it, never answer `CHANGED` (a later
//! MOVE brings no content: the mirror would keep the old one for good) nor serve the newcomer.
//! The monitor is held back by holding its database's write lock ([`Mirrord::hold_log`]).

use std::time::{Duration, Instant};

use crate::harness::*;

/// Start a hand-typed session and read the INIT's batch; the serial it stands at.
fn init(t: &mut Telnet) -> (u64, Vec<String>) {
    t.send("START");
    assert_eq!(t.line().as_deref(), Some("OK"));
    t.send("INIT");
    let s = t.line().unwrap();
    assert!(s.starts_with("SESSION:"), "{s}");
    let b = t.batch();
    let serial = b[0]
        .strip_prefix("SERIAL:")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{b:?}"));
    (serial, b)
}

/// The first line but `KEEPALIVE` said within `wait`, if any.
fn answer_within(t: &mut Telnet, wait: Duration) -> Option<String> {
    let end = Instant::now() + wait;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        match t.line_within(left) {
            Some(l) if l == "KEEPALIVE" => continue,
            other => return other,
        }
    }
}

/// Ask `GET serial path` while the log is held behind the disk; the answer given once it is
/// released (or before, if the server did not wait): the first line and the content.
fn get_while_held(
    t: &mut Telnet,
    held: rusqlite::Connection,
    serial: u64,
    path: &std::path::Path,
) -> (String, Vec<u8>) {
    t.send(&format!("GET {serial} {}", path.display()));
    // Long enough for a server that does not wait to answer while the log is still behind
    // (the failure this guards against); a server that waits says nothing until released.
    let first = match answer_within(t, Duration::from_secs(2)) {
        Some(l) => l,
        None => {
            drop(held);
            answer_within(t, Duration::from_secs(60)).expect("an answer once the log caught up")
        }
    };
    let Some(n) = first.strip_prefix("SIZE:") else {
        return (first, Vec::new());
    };
    let content = t.bytes(n.parse().unwrap());
    let sha = t.line().unwrap();
    assert!(sha.starts_with("SHA256:"), "{sha}");
    (first, content)
}

#[test]
fn a_get_of_a_file_whose_directory_was_renamed_before_the_move_was_logged_serves_it() {
    let s = Setup::new();
    std::fs::create_dir(s.src.join("d")).unwrap();
    std::fs::write(s.src.join("d/f"), b"content").unwrap();
    let d = s.mirrord(&[]);
    let mut t = Telnet::connect(d.port);
    let (serial, b) = init(&mut t);
    let f = s.src.join("d/f");
    assert!(
        b.iter()
            .any(|l| l.starts_with(&format!("FWRITE:{} ", f.display()))),
        "{b:?}"
    );
    let held = d.hold_log();
    std::fs::rename(s.src.join("d"), s.src.join("e")).unwrap();
    let (first, content) = get_while_held(&mut t, held, serial, &f);
    assert_eq!(
        first,
        "SIZE:7",
        "a MOVE brings no content: CHANGED would leave the mirror without it\n{}",
        d.log()
    );
    assert_eq!(content, b"content");
    assert!(
        d.log().contains(&format!(
            "MOVE:{} to={}",
            s.src.join("d").display(),
            s.src.join("e").display()
        )),
        "{}",
        d.log()
    );
}

#[test]
fn a_get_never_serves_another_file_put_in_place_of_its_own_before_the_log_says_so() {
    let s = Setup::new();
    std::fs::write(s.src.join("f"), b"old").unwrap();
    let d = s.mirrord(&[]);
    let mut t = Telnet::connect(d.port);
    let (serial, _) = init(&mut t);
    let held = d.hold_log();
    // Renamed away, and a newcomer renamed into its place (as an editor saves).
    std::fs::rename(s.src.join("f"), s.src.join("g")).unwrap();
    std::fs::write(s.src.join("h"), b"newcomer").unwrap();
    std::fs::rename(s.src.join("h"), s.src.join("f")).unwrap();
    let (first, content) = get_while_held(&mut t, held, serial, &s.src.join("f"));
    // The record's file is g now: the client puts it at f, then the MOVE f -> g carries it
    // there, and f's own records bring the newcomer.
    assert_eq!(first, "SIZE:3", "{}", d.log());
    assert_eq!(content, b"old");
}

/// The CI failure, end to end: a file appended (its FWRITE logged), then its directory renamed
/// before the client asked for the content and before the monitor logged the rename. The
/// mirror must end with the whole file under the new name.
fn an_append_followed_by_a_rename_of_its_directory_reaches_the_mirror(backend: &str) {
    let s = Setup::new();
    std::fs::create_dir(s.src.join("d")).unwrap();
    std::fs::write(s.src.join("d/f"), vec![1u8; 100]).unwrap();
    let d = s.mirrord(&["--backend", backend]);
    let m = s.path("mirror");
    let c = FsMirror::start(d.port, &m, &[]);
    let logs = || format!("{}\n{}", d.log(), c.log());
    converge(&s.src, &s.mirrored(&m), 30, &logs);
    c.signal("STOP");
    {
        use std::io::Write;
        std::fs::OpenOptions::new()
            .append(true)
            .open(s.src.join("d/f"))
            .unwrap()
            .write_all(&[2u8; 70_000])
            .unwrap();
    }
    let logged = format!("FWRITE:{} ", s.src.join("d/f").display());
    eventually(30, "the append logged", || {
        let l = d.log();
        l.lines()
            .any(|l| l.contains(&logged) && l.contains("size=70100"))
            .then_some(())
            .ok_or(l)
    });
    let held = d.hold_log();
    std::fs::rename(s.src.join("d"), s.src.join("e")).unwrap();
    c.signal("CONT");
    // Time for the client to ask while the log is behind (a server that does not wait
    // answers CHANGED at once, and the client says so).
    let end = Instant::now() + Duration::from_secs(2);
    while Instant::now() < end && !c.log().contains("d/f changed since") {
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(held);
    converge(&s.src, &s.mirrored(&m), 30, &logs);
}

#[test]
fn an_append_followed_by_a_rename_of_its_directory_reaches_the_mirror_inotify() {
    an_append_followed_by_a_rename_of_its_directory_reaches_the_mirror("inotify");
}

#[test]
fn an_append_followed_by_a_rename_of_its_directory_reaches_the_mirror_fanotify() {
    if let Some(b) = fanotify() {
        an_append_followed_by_a_rename_of_its_directory_reaches_the_mirror(b);
    }
}
