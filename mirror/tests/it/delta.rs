//! Large files by delta: a 64 MiB file with 1 MiB changed in its middle reaches the mirror in
//! under 2 MiB on the wire (counted by a relay between fs_mirror and mirrord), and the copy
//! is exact.

use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};

use crate::harness::*;

/// A TCP relay to `port` that counts the bytes it carries, both ways.
struct Relay {
    port: u16,
    bytes: Arc<AtomicU64>,
}

impl Relay {
    fn start(to: u16) -> Relay {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let bytes = Arc::new(AtomicU64::new(0));
        let count = bytes.clone();
        std::thread::spawn(move || {
            for c in l.incoming() {
                let Ok(c) = c else { continue };
                let Ok(s) = TcpStream::connect(("127.0.0.1", to)) else {
                    continue;
                };
                for (mut from, mut into) in
                    [(c.try_clone().unwrap(), s.try_clone().unwrap()), (s, c)]
                {
                    let count = count.clone();
                    std::thread::spawn(move || {
                        let mut buf = vec![0u8; 64 * 1024];
                        loop {
                            match from.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => {
                                    count.fetch_add(n as u64, Ordering::SeqCst);
                                    if into.write_all(&buf[..n]).is_err() {
                                        break;
                                    }
                                }
                            }
                        }
                        let _ = into.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        Relay { port, bytes }
    }

    fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::SeqCst)
    }
}

fn sn_serial(datadir: &std::path::Path) -> Option<u64> {
    std::fs::read_to_string(datadir.join("sn"))
        .ok()
        .and_then(|s| s.trim().split_once(',')?.1.parse().ok())
}

#[test]
fn a_64_mib_file_with_1_mib_changed_travels_in_under_2_mib() {
    const MIB: usize = 1 << 20;
    let s = Setup::new();
    let mut rng = StdRng::seed_from_u64(64);
    let mut data = vec![0u8; 64 * MIB];
    rng.fill_bytes(&mut data);
    let big = s.src.join("big");
    std::fs::write(&big, &data).unwrap();
    let d = s.mirrord(&[]);
    let relay = Relay::start(d.port);
    let m = s.path("mirror");
    let c = FsMirror::start(relay.port, &m, &["--delta-min", "1048576"]);
    let copy = s.mirrored(&m).join("big");
    let logs = || format!("{}\n{}", d.log(), c.log());
    let first = eventually(60, "the first copy", || {
        match (sn_serial(&m), std::fs::metadata(&copy)) {
            (Some(n), Ok(md)) if md.len() == data.len() as u64 => Ok(n),
            _ => Err(logs()),
        }
    });
    assert!(
        std::fs::read(&copy).unwrap() == data,
        "the first copy differs"
    );
    let whole = relay.bytes();
    assert!(
        whole > 64 * MIB as u64,
        "the first copy came whole: {whole}"
    );

    // 1 MiB rewritten in place, in the middle.
    let mut patch = vec![0u8; MIB];
    rng.fill_bytes(&mut patch);
    data[20 * MIB + 12345..21 * MIB + 12345].copy_from_slice(&patch);
    let mut f = std::fs::OpenOptions::new().write(true).open(&big).unwrap();
    f.seek(SeekFrom::Start(20 * MIB as u64 + 12345)).unwrap();
    f.write_all(&patch).unwrap();
    drop(f);
    eventually(60, "the change applied", || match sn_serial(&m) {
        Some(n) if n > first => Ok(()),
        _ => Err(logs()),
    });
    assert!(
        std::fs::read(&copy).unwrap() == data,
        "the copy rebuilt by delta differs from the source"
    );
    let sent = relay.bytes() - whole;
    eprintln!("a 1 MiB change to a 64 MiB file: {sent} bytes on the wire");
    assert!(
        sent < 2 * MIB as u64,
        "{sent} bytes on the wire\n{}",
        logs()
    );
    assert!(
        sent > MIB as u64,
        "the change cannot travel in {sent} bytes"
    );
}
