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
    /// Instead: every installed ELF file a needed library of which the dynamic loader would
    /// not find in the root (its run path, etc/ld.so.conf, /lib, /usr/lib).
    #[arg(long)]
    libs: bool,
}

/// One missing library in `--json` output.
#[derive(Serialize)]
struct Missing<'a> {
    package: &'a str,
    #[serde(flatten)]
    path: JsonPath,
    soname: &'a str,
}

fn run_libs(ctx: &Ctx, args: &Args) -> anyhow::Result<ExitCode> {
    let p = &ctx.printer;
    let db = query::open(ctx)?;
    if let Some(n) = &args.name {
        query::package(ctx, &db, n)?;
    }
    let missing = upm::ops::libs::missing(ctx, &db, args.name.as_deref())?;
    if p.json_mode() {
        p.json(
            &missing
                .iter()
                .map(|u| Missing {
                    package: &u.package,
                    path: JsonPath::new(&u.path),
                    soname: &u.soname,
                })
                .collect::<Vec<_>>(),
        );
    } else if missing.is_empty() {
        p.line("every installed ELF file finds the libraries it needs");
    } else {
        for u in &missing {
            p.line(&format!(
                "{}: {}: needs {}, which is missing",
                u.package,
                quoted(&u.path),
                u.soname
            ));
        }
    }
    Ok(if missing.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
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
    if args.libs {
        return run_libs(ctx, &args);
    }
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
