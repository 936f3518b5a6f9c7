//! `upm template unfold UNIT DEST`.

use std::path::PathBuf;
use std::process::ExitCode;

use upm::ctx::Ctx;
use upm::template::Repo;
use upm::template::unfold::{self, Change, Dest};

#[derive(clap::Args)]
pub struct Args {
    /// The host (or template) to unfold (REPO/hosts/NAME).
    unit: PathBuf,
    /// A directory (replaced atomically), or `[user@]host:/path` (rsync over ssh).
    dest: String,
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    let p = &ctx.printer;
    let (repo, unit) = Repo::locate(&args.unit)?;
    let changes = unfold::unfold(&repo, &unit, &Dest::parse(&args.dest))?;
    let rows: Vec<(&str, String)> = changes
        .iter()
        .map(|c| match c {
            Change::Added(p) => ("added", p.display().to_string()),
            Change::Removed(p) => ("removed", p.display().to_string()),
            Change::Changed(p, w) => ("changed", format!("{} ({w})", p.display())),
            Change::Remote(l) => ("rsync", l.clone()),
        })
        .collect();
    if p.json_mode() {
        let v: Vec<_> = rows
            .iter()
            .map(|(k, t)| serde_json::json!({"change": k, "detail": t}))
            .collect();
        p.json(&v);
    } else {
        for (k, t) in &rows {
            p.line(&format!("{k:8} {t}"));
        }
        if rows.is_empty() {
            p.note(&format!("{}: unchanged", args.dest));
        }
    }
    Ok(ExitCode::SUCCESS)
}
