//! fs_info: record what to mirror (included and excluded trees per identity).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use upm_mirror::fs_info::{Entry, FsInfo};

/// Record what to mirror: included (t:) and excluded (x:) trees of an identity.
#[derive(Parser)]
#[command(name = "fs_info", version)]
struct Args {
    /// Where identities are kept.
    #[arg(short = 'd', long = "datadir", default_value = "/var/lib/fs_info")]
    datadir: PathBuf,
    /// Add t:PATH (include), x:PATH (exclude), tL:FILE or xL:FILE (paths listed in FILE).
    #[arg(short = 'a', long = "add", value_name = "TAG:PATH")]
    add: Vec<String>,
    /// Remove an entry (t:PATH or x:PATH).
    #[arg(short = 'r', long = "remove", value_name = "TAG:PATH")]
    remove: Vec<String>,
    /// List the identity's entries.
    #[arg(short = 'l', long = "list")]
    list: bool,
    /// Print every path the identity selects.
    #[arg(short = 'f', long = "find")]
    find: bool,
    /// Include inside an excluded tree, or exclude outside every included one.
    #[arg(long)]
    force: bool,
    /// The identity.
    #[arg(default_value = "system")]
    identity: String,
}

fn run(a: Args) -> anyhow::Result<()> {
    let info = FsInfo::new(&a.datadir);
    let parse = |v: &[String]| {
        v.iter()
            .map(|s| Entry::parse(s))
            .collect::<Result<Vec<_>, _>>()
    };
    if !a.add.is_empty() {
        info.add(&a.identity, &parse(&a.add)?, a.force)?;
    }
    if !a.remove.is_empty() {
        info.remove(&a.identity, &parse(&a.remove)?)?;
    }
    if a.list {
        let id = info.load(&a.identity)?;
        for p in &id.include {
            println!("t:{}", p.display());
        }
        for p in &id.exclude {
            println!("x:{}", p.display());
        }
    }
    if a.find {
        use std::io::Write;
        use std::os::unix::ffi::OsStrExt;
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        info.find(&a.identity, &mut |p| {
            let _ = out.write_all(p.as_os_str().as_bytes());
            let _ = out.write_all(b"\n");
        })?;
    }
    if a.add.is_empty() && a.remove.is_empty() && !a.list && !a.find {
        anyhow::bail!("nothing to do: give -a, -r, -l or -f (see fs_info --help)");
    }
    Ok(())
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fs_info: {e:#}");
            ExitCode::FAILURE
        }
    }
}
