//! Directory-rename benchmark: with N directories watched, how long the watcher takes to take in
//! one directory rename (the rename itself, reading its two events, pairing them and updating
//! the watch index), averaged over many renames of a directory with 9 subdirectories.
//!
//! cargo bench -p upm-watch --bench watch_rename -- [N] [RENAMES]
//!
//! `bench/watch.sh` runs the same program against the watcher before the index by path (the
//! lines marked `API` are the only ones it changes).

use std::time::Instant;

use upm_watch::{Rules, Watcher}; // API

fn main() {
    let nums: Vec<usize> = std::env::args().filter_map(|a| a.parse().ok()).collect();
    let n = nums.first().copied().unwrap_or(10_000);
    let renames = nums.get(1).copied().unwrap_or(2_000);
    let d = tempfile::tempdir_in("/var/tmp").expect("temp dir");
    let top = d.path();
    // n/10 directories of 9 subdirectories each: n watches with the root.
    for t in 0..n / 10 {
        for s in 0..9 {
            std::fs::create_dir_all(top.join(format!("t{t}/s{s}"))).expect("mkdir");
        }
    }
    let rules = Rules {
        roots: vec![top.to_path_buf()],
        ..Rules::default()
    };
    let mut w = Watcher::new(rules).expect("watcher");
    let mut seen = 0usize;
    let (a, b) = (top.join("t0"), top.join("t0-renamed"));
    let t = Instant::now();
    for i in 0..renames {
        let (from, to) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
        std::fs::rename(from, to).expect("rename");
        w.read(&mut |_| seen += 1).expect("read"); // API
    }
    let per = t.elapsed().as_secs_f64() * 1e6 / renames as f64;
    assert_eq!(seen, renames, "one move event per rename");
    println!(
        "{{\"watched\": {}, \"renames\": {renames}, \"us_per_rename\": {per:.1}}}",
        w.watched()
    );
}
