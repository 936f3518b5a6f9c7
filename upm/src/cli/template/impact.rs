//! `upm template impact PATH`.

use std::path::PathBuf;
use std::process::ExitCode;

use upm::ctx::Ctx;
use upm::template::{Repo, impact};

#[derive(clap::Args)]
pub struct Args {
    /// A file or directory of a template (REPO/templates/NAME/...).
    path: PathBuf,
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    let p = &ctx.printer;
    let (repo, rel) = Repo::locate(&args.path)?;
    repo.unit(&rel)?;
    let seen = impact::impact(&repo, &rel)?;
    if p.json_mode() {
        let v: Vec<_> = seen
            .iter()
            .map(|i| serde_json::json!({"unit": i.unit, "path": i.path}))
            .collect();
        p.json(&v);
    } else {
        for i in &seen {
            p.line(&format!("{}\t{}", i.unit.display(), i.path.display()));
        }
    }
    Ok(ExitCode::SUCCESS)
}
