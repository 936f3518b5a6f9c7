//! `upm files PKG`: the manifest of a package.

use std::process::ExitCode;

use upm::ctx::Ctx;
use upm::ops::query;

#[derive(clap::Args)]
pub struct Args {
    name: String,
    /// Also show type, mode, owner and size.
    #[arg(short, long)]
    long: bool,
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    let p = &ctx.printer;
    let db = query::open(ctx)?;
    let k = query::package(ctx, &db, &args.name)?;
    let files = db.files(k.id)?;
    if p.json_mode() {
        p.json(&serde_json::Value::from(
            files.iter().map(|e| e.to_json()).collect::<Vec<_>>(),
        ));
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = String::new();
    for e in &files {
        if args.long {
            out.push_str(&format!(
                "{:<7} {:04o} {:>5}:{:<5} {:>10}  {}{}\n",
                e.kind.name(),
                e.mode,
                e.uid,
                e.gid,
                e.size,
                e.path.display(),
                e.target
                    .as_ref()
                    .map(|t| format!(" -> {}", t.display()))
                    .unwrap_or_default()
            ));
        } else {
            out.push_str(&format!("{}\n", e.path.display()));
        }
    }
    p.raw(&out);
    Ok(ExitCode::SUCCESS)
}
