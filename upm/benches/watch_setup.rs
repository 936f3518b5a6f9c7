//! Watcher set-up benchmark: how long it takes to watch every directory under the default
//! tracked trees of this machine (what `upm install` does in the background while the package
//! builds), and how many directories that is.
//!
//! With `--writer`, only the directories package user 10000 (groups 10000 and install) can
//! write are watched, as for an install phase.
//!
//! cargo bench --bench watch_setup [-- --writer]

use std::time::Instant;

use upm::watch::{Rules, Watcher};

fn main() {
    let c = upm::config::Config::defaults("/etc/upm/upm.toml".into());
    let rules = Rules {
        roots: c.track_roots.clone(),
        exclude: c.track_exclude.clone(),
        writer: None,
    };
    let writer = std::env::args().any(|a| a == "--writer");
    let rules = Rules {
        writer: writer.then(|| upm::watch::Writer {
            uid: 10000,
            gids: vec![10000, 9999],
        }),
        ..rules
    };
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
