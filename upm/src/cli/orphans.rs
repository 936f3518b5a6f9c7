//! `upm orphans [DIR...]`: paths under the tracked trees (or DIR) that no package owns.

use std::path::PathBuf;
use std::process::ExitCode;

use upm::ctx::Ctx;
use upm::ops::query;
use upm::pathtext::{JsonPath, quoted};

#[derive(clap::Args)]
pub struct Args {
    /// Directories inside the root to look through (default: the tracked trees of
    /// etc/upm/upm.toml, `track.roots`, less `track.exclude`). Install directories themselves
    /// are never listed.
    #[arg(value_name = "DIR")]
    dirs: Vec<PathBuf>,
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    let p = &ctx.printer;
    let db = query::open(ctx)?;
    let paths = query::orphans(ctx, &db, &args.dirs)?;
    if p.json_mode() {
        p.json(&paths.iter().map(|x| JsonPath::new(x)).collect::<Vec<_>>());
    } else {
        let mut out = String::new();
        for x in &paths {
            out.push_str(&format!("{}\n", quoted(x)));
        }
        p.raw(&out);
    }
    Ok(ExitCode::SUCCESS)
}
