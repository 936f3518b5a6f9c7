//! `upm check [PKG]`: files missing or changed since they were installed.

use std::process::ExitCode;

use serde::Serialize;
use upm::ctx::Ctx;
use upm::ops::query;
use upm::pathtext::{JsonPath, quoted};

#[derive(clap::Args)]
pub struct Args {
    /// The package to check (default: every package).
    name: Option<String>,
}

/// One changed file in `--json` output.
#[derive(Serialize)]
struct Problem<'a> {
    package: &'a str,
    #[serde(flatten)]
    path: JsonPath,
    problems: Vec<String>,
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
                json.push(Problem {
                    package: &k.name,
                    path: JsonPath::new(&e.path),
                    problems: what,
                });
            } else {
                p.line(&format!(
                    "{}: {}: {}",
                    k.name,
                    quoted(&e.path),
                    what.join(", ")
                ));
            }
        }
    }
    if p.json_mode() {
        p.json(&json);
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
