//! A small harness: fs_info, a running mirrord (its port read from its first line), fs_mirror
//! clients, a full comparison of two trees, and polling with a deadline.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn bin(name: &str) -> PathBuf {
    match name {
        "mirrord" => env!("CARGO_BIN_EXE_mirrord").into(),
        "fs_mirror" => env!("CARGO_BIN_EXE_fs_mirror").into(),
        "fs_info" => env!("CARGO_BIN_EXE_fs_info").into(),
        _ => unreachable!(),
    }
}

/// Run fs_info; its stdout, or panic with its stderr.
pub fn fs_info(info: &Path, args: &[&str]) -> String {
    let out = Command::new(bin("fs_info"))
        .arg("-d")
        .arg(info)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "fs_info {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Poll `f` until it gives `Some`, or panic after `secs` with `what` and the last state.
pub fn eventually<T>(secs: u64, what: &str, mut f: impl FnMut() -> Result<T, String>) -> T {
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        match f() {
            Ok(v) => return v,
            Err(e) if Instant::now() > end => panic!("{what} did not happen within {secs}s: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// "fanotify" where this machine lets mirrord use it (root, Linux 5.17 or later); otherwise
/// `None`, said loudly, and the fanotify arm of a test is skipped.
pub fn fanotify() -> Option<&'static str> {
    match upm_watch::Fanotify::new() {
        Ok(_) => Some("fanotify"),
        Err(e) => {
            eprintln!("SKIPPED: fanotify is not available here: {e}");
            None
        }
    }
}

pub struct Mirrord {
    pub child: Child,
    pub port: u16,
    pub log: PathBuf,
}

impl Mirrord {
    /// Start mirrord on identity `system` of `info`, state in `state`, with extra arguments.
    pub fn start(info: &Path, state: &Path, extra: &[&str]) -> Mirrord {
        Mirrord::start_on(info, state, "127.0.0.1:0", extra)
    }

    /// The same on `listen` (a restarted mirrord takes its port again). Its log (`state.log`)
    /// is appended to: a restart's log follows the first run's.
    pub fn start_on(info: &Path, state: &Path, listen: &str, extra: &[&str]) -> Mirrord {
        let log = state.with_extension("log");
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let mut child = Command::new(bin("mirrord"))
            .arg("--fs-info-dir")
            .arg(info)
            .arg("--state-dir")
            .arg(state)
            .args(["--listen", listen, "-v", "--keepalive", "1"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        let port = line
            .trim()
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "mirrord said {line:?}; log: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                )
            });
        line.clear();
        out.read_line(&mut line).unwrap();
        assert_eq!(
            line.trim(),
            "boot init finished",
            "{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        Mirrord { child, port, log }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// kill -9.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Send a signal (`STOP`, `CONT`) with kill(1).
    pub fn signal(&self, sig: &str) {
        signal(&self.child, sig);
    }

    /// Hold the write lock of mirrord's database: its monitor cannot log what the watcher
    /// sees (it waits for the lock) while its sessions go on answering from what is logged —
    /// the log behind the disk, on demand. Released when the connection drops.
    pub fn hold_log(&self) -> rusqlite::Connection {
        let db = self.log.with_extension("").join("mirrord.db");
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute_batch("BEGIN IMMEDIATE").unwrap();
        c
    }
}

/// Send a signal (`STOP`, `CONT`) to `child` with kill(1).
pub fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string())
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig} {}", child.id());
}

/// The content bytes mirrord's `GET`s sent, by its -v log.
pub fn sent_bytes(log: &str) -> u64 {
    log.lines()
        .filter_map(|l| {
            l.split(" sent ")
                .nth(1)?
                .strip_suffix(" bytes")?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

impl Drop for Mirrord {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct FsMirror {
    pub child: Child,
    pub log: PathBuf,
}

impl FsMirror {
    pub fn start(port: u16, datadir: &Path, extra: &[&str]) -> FsMirror {
        let log = datadir.with_extension(format!("{}.log", std::process::id()));
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let child = Command::new(bin("fs_mirror"))
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "-v",
                "--idle",
                "5",
            ])
            .arg("--datadir")
            .arg(datadir)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .unwrap();
        FsMirror { child, log }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// kill -9.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Send a signal (`STOP`, `CONT`) with kill(1).
    pub fn signal(&self, sig: &str) {
        signal(&self.child, sig);
    }
}

impl Drop for FsMirror {
    fn drop(&mut self) {
        self.kill();
    }
}

/// What the comparison looks at for one path.
#[derive(Debug, PartialEq, Eq)]
pub enum Node {
    Dir { mode: u32 },
    File { mode: u32, content: Vec<u8> },
    Link { target: PathBuf },
}

/// Every path under `root` (relative), but those under `skip`.
pub fn tree(root: &Path, skip: &[&str]) -> BTreeMap<PathBuf, Node> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            if skip.iter().any(|s| rel.starts_with(s)) {
                continue;
            }
            let Ok(m) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            let mode = m.permissions().mode() & 0o7777;
            let node = if m.file_type().is_symlink() {
                Node::Link {
                    target: std::fs::read_link(&p).unwrap_or_default(),
                }
            } else if m.is_dir() {
                stack.push(p.clone());
                Node::Dir { mode }
            } else {
                Node::File {
                    mode,
                    content: std::fs::read(&p).unwrap_or_default(),
                }
            };
            let _ = m.uid();
            out.insert(rel, node);
        }
    }
    out
}

/// The differences between two trees, for a message; empty when identical.
pub fn differences(src: &Path, mirror: &Path, skip: &[&str]) -> Vec<String> {
    let (a, b) = (tree(src, skip), tree(mirror, skip));
    let mut d = Vec::new();
    for (p, n) in &a {
        match b.get(p) {
            None => d.push(format!("missing in mirror: {}", p.display())),
            Some(m) if m != n => d.push(format!(
                "differs: {} {:?} vs {:?}",
                p.display(),
                short(n),
                short(m)
            )),
            _ => {}
        }
    }
    for p in b.keys() {
        if !a.contains_key(p) {
            d.push(format!("extra in mirror: {}", p.display()));
        }
    }
    d
}

fn short(n: &Node) -> String {
    match n {
        Node::File { mode, content } => format!("file {mode:o} {} bytes", content.len()),
        other => format!("{other:?}"),
    }
}

/// Wait until the mirror equals the source, comparing everything.
pub fn converge(src: &Path, mirror: &Path, secs: u64, logs: &dyn Fn() -> String) {
    eventually(secs, "convergence", || {
        let d = differences(src, mirror, &["skip"]);
        if d.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{} differences, first: {:?}\n{}",
                d.len(),
                &d[..d.len().min(10)],
                tail(&logs(), 30)
            ))
        }
    });
}

pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A hand-typed session: send each line, read what the server says until it is quiet for a
/// moment or closes. Returns everything it said.
pub struct Telnet {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Telnet {
    pub fn connect(port: u16) -> Telnet {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Telnet { s, buf: Vec::new() }
    }

    pub fn send(&mut self, line: &str) {
        self.s.write_all(format!("{line}\r\n").as_bytes()).unwrap();
    }

    pub fn send_raw(&mut self, b: &[u8]) {
        let _ = self.s.write_all(b);
    }

    /// The next line the server says (without CRLF); `None` when it closed.
    pub fn line(&mut self) -> Option<String> {
        loop {
            if let Some(i) = self.buf.iter().position(|b| *b == b'\n') {
                let l: Vec<u8> = self.buf.drain(..=i).collect();
                let l = String::from_utf8_lossy(&l)
                    .trim_end_matches(['\r', '\n'])
                    .to_string();
                return Some(l);
            }
            let mut chunk = [0u8; 65536];
            match self.s.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Lines up to and including `EOF`.
    pub fn batch(&mut self) -> Vec<String> {
        let mut v = Vec::new();
        while let Some(l) = self.line() {
            if l == "KEEPALIVE" {
                continue;
            }
            let end = l == "EOF";
            v.push(l);
            if end {
                break;
            }
        }
        v
    }

    /// Raw bytes (a GET's content).
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            let mut chunk = [0u8; 65536];
            let k = self.s.read(&mut chunk).unwrap();
            assert!(k > 0, "closed in the middle of content");
            self.buf.extend_from_slice(&chunk[..k]);
        }
        self.buf.drain(..n).collect()
    }

    /// The next line if one comes within `wait` (`None`: none yet, or closed).
    pub fn line_within(&mut self, wait: Duration) -> Option<String> {
        self.s.set_read_timeout(Some(wait)).unwrap();
        let l = self.line();
        self.s
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        l
    }

    /// Whether the server closed the connection.
    pub fn closed(&mut self) -> bool {
        self.line().is_none()
    }
}

/// A source tree registered as identity `system`, and a place for everything else.
pub struct Setup {
    pub tmp: tempfile::TempDir,
    pub src: PathBuf,
    pub info: PathBuf,
}

impl Setup {
    pub fn new() -> Setup {
        let mut tmp = tempfile::tempdir().unwrap();
        if std::env::var_os("MIRROR_KEEP").is_some() {
            // To read the whole mirrord and fs_mirror logs of a failed run afterwards.
            tmp.disable_cleanup(true);
            eprintln!(
                "MIRROR_KEEP: this test's directory is {}",
                tmp.path().display()
            );
        }
        let src = tmp.path().join("src");
        std::fs::create_dir_all(src.join("skip")).unwrap();
        let info = tmp.path().join("info");
        fs_info(
            &info,
            &[
                "-a",
                &format!("t:{}", src.display()),
                "-a",
                &format!("x:{}/skip", src.display()),
                "system",
            ],
        );
        Setup { tmp, src, info }
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.tmp.path().join(p)
    }

    /// Where a client's copy of the source lands inside its data directory.
    pub fn mirrored(&self, datadir: &Path) -> PathBuf {
        datadir.join(self.src.strip_prefix("/").unwrap())
    }

    pub fn mirrord(&self, extra: &[&str]) -> Mirrord {
        Mirrord::start(&self.info, &self.path("state"), extra)
    }
}
