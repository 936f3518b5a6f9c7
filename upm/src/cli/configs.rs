//! `upm configs [--diff]`: the configuration files an upgrade kept, whose new version waits
//! beside them as `FILE.upmnew`.

use std::process::ExitCode;

use serde::Serialize;
use upm::ctx::Ctx;
use upm::ops::{configs, query};
use upm::pathtext::{JsonPath, quoted};

#[derive(clap::Args)]
pub struct Args {
    /// Show each as `diff -u FILE FILE.upmnew`.
    #[arg(long)]
    diff: bool,
}

#[derive(Serialize)]
struct Pending {
    package: String,
    /// The file in use.
    #[serde(flatten)]
    path: JsonPath,
    /// The new version's, beside it.
    new: JsonPath,
    #[serde(skip_serializing_if = "Option::is_none")]
    diff: Option<String>,
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    let p = &ctx.printer;
    let db = query::open(ctx)?;
    let pending = configs::pending(ctx, &db)?;
    if p.json_mode() {
        let mut out = Vec::new();
        for c in &pending {
            out.push(Pending {
                package: c.package.clone(),
                path: JsonPath::new(&c.file),
                new: JsonPath::new(&c.new),
                diff: if args.diff {
                    Some(configs::diff(ctx, c)?)
                } else {
                    None
                },
            });
        }
        p.json(&out);
        return Ok(ExitCode::SUCCESS);
    }
    if pending.is_empty() {
        p.line("no configuration file waits for a merge");
    }
    for c in &pending {
        if args.diff {
            p.raw(&configs::diff(ctx, c)?);
        } else {
            p.line(&format!(
                "{}: {} (new version: {})",
                c.package,
                quoted(&c.file),
                quoted(&c.new)
            ));
        }
    }
    Ok(ExitCode::SUCCESS)
}
