//! `upm orphans [DIR...]`: paths under the tracked trees (or DIR) that no package owns.

use std::path::PathBuf;
use std::process::ExitCode;

use upm::ctx::Ctx;
use upm::ops::query;

#[derive(clap::Args)]
pub struct Args {
    dirs: Vec<PathBuf>,
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    let p = &ctx.printer;
    let db = query::open(ctx)?;
    let paths = query::orphans(ctx, &db, &args.dirs)?;
    if p.json_mode() {
        p.json(&serde_json::Value::from(
            paths
                .iter()
                .map(|x| x.display().to_string())
                .collect::<Vec<_>>(),
        ));
    } else {
        let mut out = String::new();
        for x in &paths {
            out.push_str(&format!("{}\n", x.display()));
        }
        p.raw(&out);
    }
    Ok(ExitCode::SUCCESS)
}
