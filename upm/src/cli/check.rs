//! `upm check [PKG]`: files missing or changed since they were installed.

use std::process::ExitCode;

use upm::ctx::Ctx;
use upm::ops::query;

#[derive(clap::Args)]
pub struct Args {
    /// The package to check (default: every package).
    name: Option<String>,
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    let p = &ctx.printer;
    let db = query::open(ctx)?;
    let pkgs = match &args.name {
        Some(n) => vec![query::package(ctx, &db, n)?],
        None => query::list(ctx, &db)?,
    };
    let mut json = Vec::new();
    let mut problems = 0;
    for k in &pkgs {
        for (e, diffs) in query::check(ctx, &db, k)? {
            problems += 1;
            let what: Vec<String> = diffs.iter().map(ToString::to_string).collect();
            if p.json_mode() {
                json.push(serde_json::json!({
                    "package": k.name, "path": e.path.display().to_string(), "problems": what,
                }));
            } else {
                p.line(&format!(
                    "{}: {}: {}",
                    k.name,
                    e.path.display(),
                    what.join(", ")
                ));
            }
        }
    }
    if p.json_mode() {
        p.json(&serde_json::Value::from(json));
    } else if problems == 0 {
        p.line(&format!(
            "{} package(s) checked: every file is as installed",
            pkgs.len()
        ));
    }
    Ok(if problems == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
