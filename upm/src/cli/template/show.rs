//! `upm template show TARGET FILE`.

use std::path::PathBuf;
use std::process::ExitCode;

use upm::ctx::Ctx;
use upm::template::{Repo, show};

#[derive(clap::Args)]
pub struct Args {
    /// The template or host (REPO/templates/NAME or REPO/hosts/NAME).
    target: PathBuf,
    /// The file, relative to the template (`etc/httpd/conf/httpd.conf`).
    file: PathBuf,
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    let p = &ctx.printer;
    let (repo, unit) = Repo::locate(&args.target)?;
    let unit = repo.unit(&unit)?;
    let chain = show::chain(&repo, &unit.join(&args.file))?;
    if p.json_mode() {
        let v: Vec<_> = chain
            .iter()
            .map(|h| serde_json::json!({"path": h.path, "unit": h.unit}))
            .collect();
        p.json(&v);
    } else {
        for (i, h) in chain.iter().enumerate() {
            let unit = h
                .unit
                .as_ref()
                .map(|u| u.display().to_string())
                .unwrap_or_default();
            let mark = if i + 1 == chain.len() { "=" } else { "->" };
            p.line(&format!("{mark} {}\t({unit})", h.path.display()));
        }
    }
    Ok(ExitCode::SUCCESS)
}
