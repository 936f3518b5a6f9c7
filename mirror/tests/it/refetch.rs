//! A MOVE whose source never reached the mirror: fs_mirror fetches the file under its new name
//! (`GET … META`), and it lands with the mode and owner the server's file has — never more open
//! than the source, never someone else's.

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use crate::harness::*;

/// A private file owned by someone else than root (when root can give it away).
fn private_file(p: &std::path::Path, content: &[u8]) {
    std::fs::write(p, content).unwrap();
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600)).unwrap();
    if nix::unistd::geteuid().is_root() {
        std::os::unix::fs::chown(p, Some(4242), Some(4343)).unwrap();
    }
}

#[test]
fn a_private_file_whose_move_source_the_mirror_never_had_stays_private_and_its_owners() {
    let s = Setup::new();
    private_file(&s.src.join("f"), b"secret");
    let d = s.mirrord(&[]);
    let m = s.path("mirror");
    let mut c = FsMirror::start(d.port, &m, &[]);
    converge(&s.src, &s.mirrored(&m), 30, &|| {
        format!("{}\n{}", d.log(), c.log())
    });
    // Its INIT done (an sn written), so the restart below resumes by serial.
    eventually(30, "the INIT done", || {
        std::fs::read_to_string(m.join("sn"))
            .ok()
            .filter(|s| s.contains(','))
            .ok_or_else(|| c.log())
    });
    // The mirror never got it (as when its content was overtaken), and it moves.
    c.kill();
    std::fs::remove_file(s.mirrored(&m).join("f")).unwrap();
    std::fs::rename(s.src.join("f"), s.src.join("g")).unwrap();
    let moved = format!(
        "MOVE:{} to={}",
        s.src.join("f").display(),
        s.src.join("g").display()
    );
    eventually(30, "the MOVE logged", || {
        let l = d.log();
        l.contains(&moved).then_some(()).ok_or(l)
    });
    let c = FsMirror::start(d.port, &m, &[]);
    let g = s.mirrored(&m).join("g");
    eventually(30, "g on the mirror", || {
        std::fs::read(&g)
            .ok()
            .filter(|b| b == b"secret")
            .ok_or_else(|| c.log())
    });
    let meta = std::fs::metadata(&g).unwrap();
    assert_eq!(
        meta.mode() & 0o7777,
        0o600,
        "widened on the mirror\n{}",
        c.log()
    );
    if nix::unistd::geteuid().is_root() {
        assert_eq!((meta.uid(), meta.gid()), (4242, 4343), "{}", c.log());
    }
    assert!(
        c.log().contains("replied \"SERIAL:"),
        "resumed by serial: {}",
        c.log()
    );
    converge(&s.src, &s.mirrored(&m), 30, &|| {
        format!("{}\n{}", d.log(), c.log())
    });
}

#[test]
fn get_with_meta_opens_the_answer_with_the_files_state_and_plain_get_is_as_before() {
    let s = Setup::new();
    let f = s.src.join("f");
    private_file(&f, b"secret");
    let stat = std::fs::metadata(&f).unwrap();
    let d = s.mirrord(&[]);
    let mut t = Telnet::connect(d.port);
    t.send("START");
    assert_eq!(t.line().as_deref(), Some("OK"));
    t.send("INIT");
    t.line();
    let b = t.batch();
    let serial: u64 = b[0].strip_prefix("SERIAL:").unwrap().parse().unwrap();

    t.send(&format!("GET {serial} {} META", f.display()));
    let owner = if nix::unistd::geteuid().is_root() {
        "uid=4242 gid=4343".to_string()
    } else {
        format!("uid={} gid={}", stat.uid(), stat.gid())
    };
    assert_eq!(
        t.line(),
        Some(format!(
            "META:mode=600 {owner} mtime={}",
            stat.mtime() * 1_000_000_000 + stat.mtime_nsec()
        ))
    );
    assert_eq!(t.line().as_deref(), Some("SIZE:6"));
    assert_eq!(t.bytes(6), b"secret");
    assert!(t.line().unwrap().starts_with("SHA256:"));

    // The original answer, for clients that do not ask.
    t.send(&format!("GET {serial} {}", f.display()));
    assert_eq!(t.line().as_deref(), Some("SIZE:6"));
    assert_eq!(t.bytes(6), b"secret");
    assert!(t.line().unwrap().starts_with("SHA256:"));

    // A file that is not there: CHANGED, with or without META.
    t.send(&format!(
        "GET {serial} {} META",
        s.src.join("nothing").display()
    ));
    assert_eq!(t.line().as_deref(), Some("CHANGED"));
}
