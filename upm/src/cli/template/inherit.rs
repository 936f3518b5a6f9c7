//! `upm template inherit -t PARENT... TARGET`.

use std::path::PathBuf;
use std::process::ExitCode;

use upm::ctx::Ctx;
use upm::template::{Repo, inherit};

#[derive(clap::Args)]
pub struct Args {
    /// A parent template, in order: the first that has an entry wins. Repeat for several.
    #[arg(short = 't', long = "template", value_name = "PARENT", required = true)]
    parents: Vec<PathBuf>,
    /// The template or host to make (REPO/templates/NAME or REPO/hosts/NAME).
    target: PathBuf,
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    let p = &ctx.printer;
    let (repo, target) = Repo::locate(&args.target)?;
    let parents = args
        .parents
        .iter()
        .map(|a| super::unit_arg(&repo, a))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let report = inherit::inherit(&repo, &target, &parents)?;
    if p.json_mode() {
        let links: Vec<_> = report
            .links
            .iter()
            .map(|(l, t)| serde_json::json!({"link": l, "to": t}))
            .collect();
        let overlaps: Vec<_> = report
            .overlaps
            .iter()
            .map(|o| {
                serde_json::json!({"path": o.path, "used": o.used, "others": o.others,
                                   "conflict": !o.same})
            })
            .collect();
        p.json(&serde_json::json!({"target": target, "links": links, "overlaps": overlaps}));
    } else {
        for (l, t) in &report.links {
            p.line(&format!("{} -> {}", l.display(), t.display()));
        }
    }
    let conflicts: Vec<_> = report.conflicts().collect();
    if !conflicts.is_empty() {
        p.warn(&format!(
            "{} conflict(s): parents provide these with different contents; {}'s is used. \
             Settle each with `upm template custom`:",
            conflicts.len(),
            conflicts[0].used.display()
        ));
        for o in conflicts {
            let others: Vec<_> = o.others.iter().map(|u| u.display().to_string()).collect();
            p.detail(&format!(
                "  {}/{} (from {}; also in {})",
                target.display(),
                o.path.display(),
                o.used.display(),
                others.join(", ")
            ));
        }
    }
    Ok(ExitCode::SUCCESS)
}
