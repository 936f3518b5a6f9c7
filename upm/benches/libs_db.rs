//! `upm rdepends` benchmark: fills ROOT's database with 500 packages (200 files each; every
//! package provides one library and its programs need the base library, libc and three
//! libraries of earlier packages, as a real system's fan-in) and times the rdepends query
//! in process, for the most needed library (the base) and a typical one. bench/libs.sh then
//! times the `upm rdepends` command on the same root.
//!
//! cargo bench --bench libs_db -- ROOT

use std::path::PathBuf;
use std::time::Instant;

use upm::db::{Db, NewInstall};
use upm::fsutil::FileKind;
use upm::libs::{Dynamic, ElfFile};
use upm::manifest::Entry;

const PACKAGES: usize = 500;
const FILES: usize = 200;
const PROGRAMS: usize = 20;

fn entry(path: String) -> Entry {
    Entry {
        path: PathBuf::from(path),
        kind: FileKind::File,
        mode: 0o755,
        uid: 0,
        gid: 0,
        size: 1000,
        mtime: 1,
        sha256: Some("ab".repeat(32)),
        target: None,
        shared: false,
    }
}

fn main() {
    let root = PathBuf::from(
        std::env::args()
            .skip(1)
            .find(|a| !a.starts_with('-'))
            .expect("usage: libs_db ROOT"),
    );
    let _ = std::fs::remove_file(root.join(upm::db::FILE));
    let mut db = Db::open(&root, true).unwrap();
    let t = Instant::now();
    let mut x: u64 = 0x9e3779b97f4a7c15;
    let mut next = |n: usize| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % n as u64) as usize
    };
    for i in 0..PACKAGES {
        let name = format!("p{i:04}");
        let files: Vec<Entry> = (0..FILES)
            .map(|f| entry(format!("/usr/share/{name}/f{f:03}")))
            .chain((0..PROGRAMS).map(|f| entry(format!("/usr/bin/{name}-{f:02}"))))
            .chain([entry(format!("/usr/lib/lib{name}.so.1.0"))])
            .collect();
        let id = db
            .insert_installed(
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
        let mut needed = vec!["libc.so.6".to_string()];
        if i > 0 {
            needed.push("libp0000.so.1".into());
            for _ in 0..3 {
                needed.push(format!("libp{:04}.so.1", next(i)));
            }
        }
        let elf: Vec<ElfFile> = (0..PROGRAMS)
            .map(|f| ElfFile {
                path: PathBuf::from(format!("/usr/bin/{name}-{f:02}")),
                dynamic: Dynamic {
                    soname: None,
                    needed: needed.clone(),
                    runpath: None,
                },
            })
            .chain([ElfFile {
                path: PathBuf::from(format!("/usr/lib/lib{name}.so.1.0")),
                dynamic: Dynamic {
                    soname: Some(format!("lib{name}.so.1")),
                    needed: vec!["libc.so.6".into()],
                    runpath: None,
                },
            }])
            .collect();
        db.record_libs(id, files.iter().map(|e| e.path.as_path()), &elf)
            .unwrap();
    }
    let fill = t.elapsed();
    let time = |name: &str| {
        let id = db.package(name).unwrap().unwrap().id;
        let mut times = Vec::new();
        let mut rows = 0;
        for _ in 0..50 {
            let t = Instant::now();
            rows = db.needers_of(id).unwrap().len();
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        (rows, times[times.len() / 2])
    };
    let (base_rows, base_ms) = time("p0000");
    let (mid_rows, mid_ms) = time("p0250");
    println!(
        "{{\"packages\": {PACKAGES}, \"files\": {}, \"fill_seconds\": {:.2}, \
         \"rdepends_base_rows\": {base_rows}, \"rdepends_base_ms_median\": {base_ms:.3}, \
         \"rdepends_p0250_rows\": {mid_rows}, \"rdepends_p0250_ms_median\": {mid_ms:.3}}}",
        PACKAGES * (FILES + PROGRAMS + 1),
        fill.as_secs_f64(),
    );
}
