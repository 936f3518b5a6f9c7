fn main() {
    let p = std::env::args().nth(1).unwrap();
    let t = std::time::Instant::now();
    let b = lfs_book::Book::open(p.as_ref(), &lfs_book::Options::default()).unwrap();
    println!("{} pages in {:?}", b.pages.len(), t.elapsed());
    for pg in &b.pages {
        match &pg.outcome {
            lfs_book::Outcome::Package(k) => println!(
                "{} {} {} {} md5={:?} phases={:?} root={} deps={:?} notes={:?}",
                pg.place.section(),
                k.name,
                k.version,
                k.file,
                k.md5,
                k.phases.iter().map(|p| p.0.name()).collect::<Vec<_>>(),
                k.root_commands.is_some(),
                k.deps.build(),
                k.notes
            ),
            lfs_book::Outcome::Reported { name, reason, .. } => {
                println!("{} REPORT {} {}", pg.place.section(), name, reason)
            }
        }
    }
}
