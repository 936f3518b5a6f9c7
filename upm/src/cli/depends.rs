//! `upm depends PKG`: the installed packages whose libraries PKG's files need, and the needed
//! sonames no package provides (found unowned in the root, or missing).

use std::process::ExitCode;

use serde::Serialize;
use upm::ctx::Ctx;
use upm::ops::{libs, query};
use upm::pathtext::{JsonPath, quoted};

#[derive(clap::Args)]
pub struct Args {
    /// The installed package.
    name: String,
}

/// One needed soname in `--json` output.
#[derive(Serialize)]
struct Need<'a> {
    soname: &'a str,
    /// The packages providing it (empty: none does).
    packages: Vec<&'a str>,
    needed_by: Vec<JsonPath>,
    /// For a soname no package provides: where the loader finds it, or null (missing).
    found: Option<JsonPath>,
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    let p = &ctx.printer;
    let db = query::open(ctx)?;
    let needs = libs::depends(ctx, &db, &args.name)?;
    let missing = needs
        .iter()
        .any(|n| n.providers.is_empty() && n.found.is_none());
    if p.json_mode() {
        p.json(
            &needs
                .iter()
                .map(|n| Need {
                    soname: &n.soname,
                    packages: n.providers.iter().map(|(k, _)| k.as_str()).collect(),
                    needed_by: n.needed_by.iter().map(|x| JsonPath::new(x)).collect(),
                    found: n.found.as_deref().map(JsonPath::new),
                })
                .collect::<Vec<_>>(),
        );
    } else {
        let mut out = String::new();
        for n in &needs {
            let mut pkgs: Vec<&str> = n.providers.iter().map(|(k, _)| k.as_str()).collect();
            pkgs.dedup();
            let line = match (&pkgs[..], &n.found) {
                ([], Some(f)) => format!(
                    "{}: no package (found at {}, a file no package owns)",
                    n.soname,
                    quoted(f)
                ),
                ([], None) => format!(
                    "{}: no package, and missing (needed by {})",
                    n.soname,
                    n.needed_by
                        .iter()
                        .map(|x| quoted(x).to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                (pkgs, _) => format!("{}: {}", n.soname, pkgs.join(" ")),
            };
            out.push_str(&line);
            out.push('\n');
        }
        if needs.is_empty() {
            out.push_str(&format!("{} needs no shared library\n", args.name));
        }
        p.raw(&out);
    }
    Ok(if missing {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
