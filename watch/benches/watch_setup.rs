//! Watcher set-up benchmark: how long watching every directory under the given trees takes (the
//! walk plus one inotify watch per directory), and how many directories that is.
//!
//! cargo bench -p upm-watch --bench watch_setup -- [--writer UID] [--established]
//!     [--backend inotify|fanotify] [DIR...]
//!
//! Without DIR: upm's default tracked trees. `--writer UID` watches only what that user (groups
//! UID and 9999, upm's install group) can write, as for an install phase. `--established` sets
//! up once, says "Watches established." on stderr as `inotifywait -r` does, and waits to be
//! killed: `bench/watch.sh` times both programs the same way, side by side. `--backend
//! fanotify` sets up over fanotify (one mark per file system, a file handle per directory).

use std::path::PathBuf;
use std::time::Instant;

use upm_watch::{Backend, Fanotify, Rules, Watcher, Writer};

/// Set up a watcher over `backend` as `Watcher::new` does over inotify.
fn with<B: Backend>(backend: B, rules: Rules) -> Watcher<B> {
    let dirs = upm_watch::writable_dirs(&rules);
    Watcher::with_backend(backend, rules, &dirs).expect("watcher")
}

/// A watcher set up over the backend named, and how many directories it watches.
fn setup(backend: &str, rules: Rules) -> (Box<dyn std::any::Any>, usize) {
    match backend {
        "fanotify" => {
            let w = with(Fanotify::new().expect("fanotify"), rules);
            let n = w.watched();
            (Box::new(w), n)
        }
        _ => {
            let w = Watcher::new(rules).expect("watcher");
            let n = w.watched();
            (Box::new(w), n)
        }
    }
}

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let mut rules = Rules::default();
    let mut established = false;
    let mut backend = String::from("inotify");
    while let Some(a) = args.next() {
        match a.as_str() {
            "--established" => established = true,
            "--backend" => backend = args.next().expect("--backend inotify|fanotify"),
            "--writer" => {
                let uid = args
                    .next()
                    .and_then(|u| u.parse().ok())
                    .expect("--writer UID");
                rules.writer = Some(Writer {
                    uid,
                    gids: vec![uid, 9999],
                });
            }
            dir => rules.roots.push(PathBuf::from(dir)),
        }
    }
    if rules.roots.is_empty() {
        rules.roots = ["/usr", "/etc", "/opt", "/var", "/srv"]
            .map(PathBuf::from)
            .into();
        rules.exclude = [
            "/usr/src",
            "/var/lib/upm",
            "/var/tmp",
            "/var/cache",
            "/var/log",
        ]
        .map(PathBuf::from)
        .into();
    }
    if established {
        // The watcher lives on while parked: its memory is what the bench measures.
        let (keep, _) = setup(&backend, rules);
        eprintln!("Watches established.");
        loop {
            std::thread::park();
            std::hint::black_box(&keep);
        }
    }
    let mut times = Vec::new();
    let mut watched = 0;
    for _ in 0..5 {
        let t = Instant::now();
        let (w, n) = setup(&backend, rules.clone());
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        watched = n;
        drop(w);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "{{\"directories\": {watched}, \"setup_ms_median\": {:.1}, \"setup_ms_min\": {:.1}}}",
        times[times.len() / 2],
        times[0]
    );
}
