//! A seeded random workload against a running mirrord, and the mirrors that must end identical
//! to the source: one client, two clients at once, a client killed with -9 again and again.

use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

use crate::harness::*;

/// The source's directories and regular files (excluded `skip` left out), found again at each
/// step. Symlinks are neither: the workload writes, appends and chmods what it picks, and must
/// never do so through a link (a link may point anywhere, even outside the test's directory).
fn entries(root: &Path) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let (mut dirs, mut files) = (vec![root.to_path_buf()], Vec::new());
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.starts_with(root.join("skip")) {
                continue;
            }
            let t = e.file_type().unwrap();
            if t.is_dir() {
                dirs.push(p.clone());
                stack.push(p);
            } else if t.is_file() {
                files.push(p);
            }
        }
    }
    (dirs, files)
}

pub struct Workload {
    rng: StdRng,
    src: PathBuf,
    outside: PathBuf,
    n: u32,
}

impl Workload {
    pub fn new(seed: u64, src: &Path, outside: &Path) -> Workload {
        std::fs::create_dir_all(outside).unwrap();
        Workload {
            rng: StdRng::seed_from_u64(seed),
            src: src.into(),
            outside: outside.into(),
            n: 0,
        }
    }

    fn name(&mut self) -> String {
        self.n += 1;
        format!("n{}", self.n)
    }

    fn content(&mut self) -> Vec<u8> {
        let len = [0, 1, 100, 5000, 70_000][self.rng.random_range(0..5)];
        (0..len).map(|_| self.rng.random::<u8>()).collect()
    }

    /// One random change; what it was.
    pub fn step(&mut self) -> String {
        use std::fs;
        use std::os::unix::fs::PermissionsExt;
        let (dirs, files) = entries(&self.src);
        let dir = dirs.choose(&mut self.rng).unwrap().clone();
        let file = files.choose(&mut self.rng).cloned();
        let sub = dirs
            .iter()
            .filter(|d| **d != self.src)
            .cloned()
            .collect::<Vec<_>>();
        let subdir = sub.choose(&mut self.rng).cloned();
        let op = self.rng.random_range(0..15);
        let r: std::io::Result<String> = (|| match (op, file, subdir) {
            (0 | 1, _, _) => {
                let p = dir.join(self.name());
                let c = self.content();
                fs::write(&p, c)?;
                Ok(format!("create {}", p.display()))
            }
            (2, Some(f), _) => {
                let c = self.content();
                fs::write(&f, c)?;
                Ok(format!("write {}", f.display()))
            }
            (3, Some(f), _) => {
                use std::io::Write;
                let c = self.content();
                fs::OpenOptions::new()
                    .append(true)
                    .open(&f)?
                    .write_all(&c)?;
                Ok(format!("append {}", f.display()))
            }
            (4, Some(f), _) => {
                fs::remove_file(&f)?;
                Ok(format!("delete {}", f.display()))
            }
            (5, Some(f), _) => {
                let to = dir.join(self.name());
                fs::rename(&f, &to)?;
                Ok(format!("rename {} {}", f.display(), to.display()))
            }
            (6, _, _) => {
                let top = dir.join(self.name());
                let deep = top.join("a/b/c/d");
                fs::create_dir_all(&deep)?;
                let c = self.content();
                fs::write(deep.join("f"), c)?;
                fs::write(top.join("a/g"), b"at once")?;
                Ok(format!("mkdir -p {}", deep.display()))
            }
            (7, _, Some(d)) if !dir.starts_with(&d) => {
                let to = dir.join(self.name());
                fs::rename(&d, &to)?;
                Ok(format!("rename dir {} {}", d.display(), to.display()))
            }
            (8, _, Some(d)) => {
                fs::remove_dir_all(&d)?;
                Ok(format!("rm -rf {}", d.display()))
            }
            (9, Some(f), _) => {
                // A file becomes a directory with something in it.
                fs::remove_file(&f)?;
                fs::create_dir(&f)?;
                fs::write(f.join("inside"), b"flip")?;
                Ok(format!("file->dir {}", f.display()))
            }
            (10, _, Some(d)) => {
                fs::remove_dir_all(&d)?;
                fs::write(&d, b"was a directory")?;
                Ok(format!("dir->file {}", d.display()))
            }
            (11, f, d) => {
                let modes = [0o644, 0o600, 0o755, 0o700, 0o640];
                let mode = *modes.choose(&mut self.rng).unwrap();
                let p = if self.rng.random_bool(0.5) {
                    f.or(d)
                } else {
                    d.or(f)
                };
                let Some(p) = p else {
                    return Ok("nothing to chmod".into());
                };
                fs::set_permissions(&p, fs::Permissions::from_mode(mode))?;
                Ok(format!("chmod {mode:o} {}", p.display()))
            }
            (12, _, _) => {
                let p = dir.join(self.name());
                // Never a real file: the workload writes through whatever its picks are, links too.
                let t = ["../x", "/nonexistent-upm-mirror-test/passwd", "n1", "a b/c"]
                    [self.rng.random_range(0..4)];
                std::os::unix::fs::symlink(t, &p)?;
                Ok(format!("symlink {} -> {t}", p.display()))
            }
            (13, _, Some(d)) => {
                // Out of the tree, and (now or later) back in.
                let name = self.name();
                let out = self.outside.join(name);
                fs::rename(&d, &out)?;
                if self.rng.random_bool(0.5) {
                    fs::write(out.join("while-out"), b"x")?;
                    let back = dir.join(self.name());
                    if !back.starts_with(&d) {
                        fs::rename(&out, &back)?;
                        return Ok(format!(
                            "moved out and back {} -> {}",
                            d.display(),
                            back.display()
                        ));
                    }
                }
                Ok(format!("moved out {}", d.display()))
            }
            (14, _, _) => {
                // Something the mirror must never hold.
                fs::write(self.src.join("skip").join(self.name()), b"excluded")?;
                Ok("write into the excluded tree".into())
            }
            _ => Ok("nothing".into()),
        })();
        r.unwrap_or_else(|e| format!("(failed: {e})"))
    }

    /// Bring back what went outside, so those moves-in happen too.
    pub fn bring_back(&mut self) {
        for e in std::fs::read_dir(&self.outside).unwrap().flatten() {
            let name = self.name();
            let to = self.src.join(name);
            let _ = std::fs::rename(e.path(), to);
        }
    }
}

fn seed() -> u64 {
    std::env::var("MIRROR_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed)
}

/// Each workload test runs over both kernel backends of the watcher.
macro_rules! both_backends {
    ($name:ident) => {
        mod $name {
            #[test]
            fn inotify() {
                super::$name("inotify");
            }

            #[test]
            fn fanotify() {
                if let Some(b) = crate::harness::fanotify() {
                    super::$name(b);
                }
            }
        }
    };
}

both_backends!(a_random_workload_ends_with_identical_mirrors_for_two_clients);
both_backends!(a_client_killed_at_random_points_resumes_by_serial_without_init);
both_backends!(an_excluded_tree_stays_excluded_when_deleted_and_made_again);

fn a_random_workload_ends_with_identical_mirrors_for_two_clients(backend: &str) {
    let s = Setup::new();
    std::fs::write(s.src.join("before"), b"there at boot").unwrap();
    let d = s.mirrord(&["--backend", backend]);
    assert!(
        d.log().contains(&format!("watching with {backend}")),
        "{}",
        d.log()
    );
    let (m1, m2) = (s.path("mirror1"), s.path("mirror2"));
    let c1 = FsMirror::start(d.port, &m1, &[]);
    let mut w = Workload::new(seed(), &s.src, &s.path("outside"));
    let mut done = Vec::new();
    for _ in 0..400 {
        done.push(w.step());
    }
    // The second client starts later: its INIT runs while changes go on.
    let c2 = FsMirror::start(d.port, &m2, &[]);
    for _ in 0..200 {
        done.push(w.step());
    }
    w.bring_back();
    let logs = || format!("{}\n{}\n{}", d.log(), c1.log(), c2.log());
    converge(&s.src, &s.mirrored(&m1), 60, &logs);
    converge(&s.src, &s.mirrored(&m2), 60, &logs);
    assert!(
        !s.mirrored(&m1).join("skip").exists(),
        "the excluded tree was mirrored"
    );
    assert!(
        std::fs::read_dir(s.mirrored(&m1)).unwrap().count() > 3,
        "the workload left something to compare"
    );
}

fn a_client_killed_at_random_points_resumes_by_serial_without_init(backend: &str) {
    let s = Setup::new();
    let d = s.mirrord(&["--backend", backend]);
    let m = s.path("mirror");
    let mut c = FsMirror::start(d.port, &m, &[]);
    let mut w = Workload::new(seed() ^ 0xdead, &s.src, &s.path("outside"));
    let mut rng = StdRng::seed_from_u64(seed());
    // The first INIT must be done (an sn written) before kills count as resumable.
    eventually(30, "the first INIT", || {
        std::fs::read_to_string(m.join("sn"))
            .ok()
            .filter(|s| s.contains(','))
            .ok_or_else(|| c.log())
    });
    for _ in 0..8 {
        for _ in 0..rng.random_range(10..80) {
            w.step();
        }
        c.kill();
        for _ in 0..rng.random_range(0..30) {
            w.step();
        }
        c = FsMirror::start(d.port, &m, &[]);
    }
    w.bring_back();
    converge(&s.src, &s.mirrored(&m), 60, &|| {
        format!("{}\n{}", d.log(), c.log())
    });
    let inits = d.log().matches("INIT at serial").count();
    assert_eq!(
        inits,
        1,
        "a restarted client did INIT again:\n{}",
        tail(&c.log(), 40)
    );
    assert!(
        c.log().contains("replied \"OK\"") || c.log().contains("replied \"SERIAL:"),
        "{}",
        c.log()
    );
}

fn an_excluded_tree_stays_excluded_when_deleted_and_made_again(backend: &str) {
    let s = Setup::new();
    let d = s.mirrord(&["--backend", backend]);
    let m = s.path("mirror");
    let c = FsMirror::start(d.port, &m, &[]);
    let skip = s.src.join("skip");
    std::fs::remove_dir_all(&skip).unwrap();
    std::fs::create_dir_all(skip.join("deep")).unwrap();
    std::fs::write(skip.join("deep/f"), b"no").unwrap();
    std::fs::write(s.src.join("marker"), b"yes").unwrap();
    converge(&s.src, &s.mirrored(&m), 30, &|| {
        format!("{}\n{}", d.log(), c.log())
    });
    assert!(!s.mirrored(&m).join("skip").exists());
    assert!(!d.log().contains("/skip"), "{}", d.log());
}

#[test]
fn an_init_of_many_batches_over_a_stale_mirror_ends_identical() {
    let s = Setup::new();
    // More than two batches of 1024 records, so INIT asks for the next batch while it is
    // still writing the files of this one.
    for d in 0..25 {
        let dir = s.src.join(format!("d{d:02}"));
        std::fs::create_dir(&dir).unwrap();
        for f in 0..100 {
            std::fs::write(dir.join(format!("f{f}")), format!("{d} {f}").repeat(f + 1)).unwrap();
        }
    }
    std::fs::create_dir(s.src.join("was_file")).unwrap();
    std::fs::write(s.src.join("was_file/inside"), b"in a directory now").unwrap();
    std::fs::write(s.src.join("was_dir"), b"a file now").unwrap();
    std::fs::set_permissions(
        s.src.join("d03/f7"),
        std::os::unix::fs::PermissionsExt::from_mode(0o751),
    )
    .unwrap();
    // The mirror holds what the server does not: a file where it has a directory, a
    // directory (not empty) where it has a file, and files it never had.
    let m = s.path("mirror");
    let stale = s.mirrored(&m);
    std::fs::create_dir_all(stale.join("was_dir/deep")).unwrap();
    std::fs::write(stale.join("was_dir/deep/old"), b"old").unwrap();
    std::fs::write(stale.join("was_file"), b"old").unwrap();
    std::fs::create_dir_all(stale.join("d07")).unwrap();
    std::fs::write(stale.join("d07/f3"), b"stale content").unwrap();
    std::fs::write(stale.join("d07/gone"), b"not on the server").unwrap();
    let d = s.mirrord(&[]);
    let c = FsMirror::start(d.port, &m, &[]);
    converge(&s.src, &stale, 60, &|| format!("{}\n{}", d.log(), c.log()));
    assert!(
        c.log().contains("INIT done"),
        "the copy came through INIT: {}",
        c.log()
    );
    // And the realtime log follows on.
    std::fs::write(s.src.join("d24/after"), b"after INIT").unwrap();
    converge(&s.src, &stale, 30, &|| format!("{}\n{}", d.log(), c.log()));
}
