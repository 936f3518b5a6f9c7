//! Watcher set-up benchmark: how long watching every directory under the given trees takes (the
//! walk plus one inotify watch per directory), and how many directories that is.
//!
//! cargo bench -p upm-watch --bench watch_setup -- [--writer UID] [--established] [DIR...]
//!
//! Without DIR: upm's default tracked trees. `--writer UID` watches only what that user (groups
//! UID and 9999, upm's install group) can write, as for an install phase. `--established` sets
//! up once, says "Watches established." on stderr as `inotifywait -r` does, and waits to be
//! killed: `bench/watch.sh` times both programs the same way, side by side.

use std::path::PathBuf;
use std::time::Instant;

use upm_watch::{Rules, Watcher, Writer};

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let mut rules = Rules::default();
    let mut established = false;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--established" => established = true,
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
        let w = Watcher::new(rules).expect("watcher");
        eprintln!("Watches established.");
        loop {
            std::thread::park();
            let _ = w.watched();
        }
    }
    let mut times = Vec::new();
    let mut watched = 0;
    for _ in 0..5 {
        let t = Instant::now();
        let w = Watcher::new(rules.clone()).expect("watcher");
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        watched = w.watched();
    }
    times.sort_by(f64::total_cmp);
    println!(
        "{{\"directories\": {watched}, \"setup_ms_median\": {:.1}, \"setup_ms_min\": {:.1}}}",
        times[times.len() / 2],
        times[0]
    );
}
