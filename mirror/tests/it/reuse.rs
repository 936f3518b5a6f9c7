//! How fs_mirror puts files in place: a replaced file is swapped out and kept to be written
//! again for a later file — but never one a reader still has open (they keep reading what they
//! opened), and never with its former mode visible.

use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use crate::harness::*;

#[test]
fn a_reader_of_a_replaced_file_keeps_its_content_and_modes_are_never_wider() {
    let s = Setup::new();
    std::fs::write(s.src.join("a"), b"one").unwrap();
    std::fs::write(s.src.join("secret"), b"private").unwrap();
    std::fs::set_permissions(s.src.join("secret"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let d = s.mirrord(&[]);
    let m = s.path("mirror");
    let c = FsMirror::start(d.port, &m, &[]);
    let logs = || format!("{}\n{}", d.log(), c.log());
    converge(&s.src, &s.mirrored(&m), 30, &logs);

    // Someone reads the mirror's copy while it is replaced, and goes on reading after files
    // that could reuse the old one have landed.
    let mut reader = std::fs::File::open(s.mirrored(&m).join("a")).unwrap();
    std::fs::write(s.src.join("a"), b"two").unwrap();
    converge(&s.src, &s.mirrored(&m), 30, &logs);
    // The replaced "secret" (mode 600, longer than what follows) is kept, and written again
    // for a new file of mode 644: under 600 while written, then given its own mode, and cut
    // to its own length.
    let ino = |p: &str| {
        std::fs::symlink_metadata(s.mirrored(&m).join(p))
            .unwrap()
            .ino()
    };
    let old_secret = ino("secret");
    std::fs::write(s.src.join("secret"), b"still private").unwrap();
    converge(&s.src, &s.mirrored(&m), 30, &logs);
    for i in 0..20 {
        std::fs::write(s.src.join(format!("new{i}")), format!("n{i}")).unwrap();
    }
    converge(&s.src, &s.mirrored(&m), 30, &logs);
    let news: Vec<u64> = (0..20).map(|i| ino(&format!("new{i}"))).collect();
    assert!(
        news.contains(&old_secret),
        "the replaced file was not reused"
    );
    let read_ino = reader.metadata().unwrap().ino();
    assert!(!news.contains(&read_ino), "a file still open was reused");
    let mut seen = String::new();
    reader.read_to_string(&mut seen).unwrap();
    assert_eq!(seen, "one", "a reader's open file was written into");
    let mode = |p: &str| {
        std::fs::symlink_metadata(s.mirrored(&m).join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    };
    assert_eq!(mode("secret"), 0o600);
    assert_eq!(mode("new0"), 0o644);
    // Nothing the client keeps is readable by others meanwhile.
    let own = std::fs::metadata(m.join(".fs_mirror")).unwrap();
    assert_eq!(own.permissions().mode() & 0o777, 0o700);
}
