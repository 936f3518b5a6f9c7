//! Owner-lookup benchmark: fills a root's database from a tree of package directories (one
//! package per directory under ROOT/data, as made by bench/install.sh, which logs the same files
//! with porg) and measures `owners()` lookups in process. The script then times the `upm owner`
//! and `porg -q` commands on the same set.
//!
//! cargo bench --bench owner_db -- ROOT

use std::path::{Path, PathBuf};
use std::time::Instant;

use upm::db::{Db, NewInstall};
use upm::manifest::Entry;

fn main() {
    let root = PathBuf::from(
        std::env::args()
            .skip(1)
            .find(|a| !a.starts_with('-'))
            .expect("usage: owner_db ROOT"),
    );
    let data = root.join("data");
    let mut pkgs: Vec<PathBuf> = std::fs::read_dir(&data)
        .expect("ROOT/data holds one directory per package")
        .flatten()
        .map(|e| e.path())
        .collect();
    pkgs.sort();
    let _ = std::fs::remove_file(root.join(upm::db::FILE));
    let mut db = Db::open(&root, true).unwrap();
    let t = Instant::now();
    let mut all = Vec::new();
    for (i, dir) in pkgs.iter().enumerate() {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let mut files = Vec::new();
        for f in std::fs::read_dir(dir).unwrap().flatten() {
            let inside = Path::new("/").join(f.path().strip_prefix(&root).unwrap());
            files.push(Entry::read(&root, &inside).unwrap().unwrap());
            all.push(inside);
        }
        db.insert_installed(
            &NewInstall {
                name: &name,
                version: "1",
                description: None,
                uid: 10000 + i as u32,
                gid: 10000 + i as u32,
                recipe_path: "",
                recipe: "",
            },
            &files,
        )
        .unwrap();
    }
    let fill = t.elapsed();
    // Lookups spread over the whole set, in a fixed pseudo-random order.
    let mut times = Vec::with_capacity(20_000);
    let mut x: u64 = 0x9e3779b97f4a7c15;
    for _ in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let p = &all[(x % all.len() as u64) as usize];
        let t = Instant::now();
        let owners = db.owners(p).unwrap();
        times.push(t.elapsed().as_nanos() as u64);
        assert_eq!(owners.len(), 1);
    }
    times.sort_unstable();
    let pct = |q: f64| times[((times.len() - 1) as f64 * q) as usize] as f64 / 1000.0;
    println!(
        "{{\"packages\": {}, \"files\": {}, \"fill_seconds\": {:.2}, \"lookup_us_median\": {:.2}, \"lookup_us_p99\": {:.2}}}",
        pkgs.len(),
        all.len(),
        fill.as_secs_f64(),
        pct(0.5),
        pct(0.99)
    );
}
