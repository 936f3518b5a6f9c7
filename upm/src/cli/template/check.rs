//! `upm template check [REPO]`: exit 1 when something is wrong.

use std::path::PathBuf;
use std::process::ExitCode;

use upm::ctx::Ctx;
use upm::template::Repo;
use upm::template::check::{self, Problem};

#[derive(clap::Args)]
pub struct Args {
    /// The configuration repository (the directory holding templates/ and hosts/).
    #[arg(default_value = ".")]
    repo: PathBuf,
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    let p = &ctx.printer;
    let repo = Repo::open(&args.repo)?;
    let problems = check::check(&repo)?;
    let lines: Vec<(String, String)> = problems
        .iter()
        .map(|pr| (pr.kind().into(), text(pr)))
        .collect();
    if p.json_mode() {
        let v: Vec<_> = lines
            .iter()
            .map(|(k, t)| serde_json::json!({"kind": k, "detail": t}))
            .collect();
        p.json(&v);
    } else {
        for (k, t) in &lines {
            p.line(&format!("{k}: {t}"));
        }
    }
    Ok(if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn text(pr: &Problem) -> String {
    let d = |p: &std::path::Path| p.display().to_string();
    match pr {
        Problem::Dangling { link, target } => format!("{} -> nothing at {}", d(link), d(target)),
        Problem::Escapes { link, target } => {
            format!("{} -> {} leads out of the repository", d(link), d(target))
        }
        Problem::Loop { link } => format!("{}: the links loop", d(link)),
        Problem::MissingParent { unit, parent } => {
            format!(
                "{}/.inherits names {}, which does not exist",
                d(unit),
                d(parent)
            )
        }
        Problem::Cycle { units } => {
            let mut u: Vec<_> = units.iter().map(|x| d(x)).collect();
            u.push(d(&units[0]));
            format!("{} (in .inherits)", u.join(" -> "))
        }
        Problem::Conflict {
            unit,
            path,
            used,
            others,
        } => {
            let o: Vec<_> = others.iter().map(|x| d(x)).collect();
            format!(
                "{}/{}: {} and {} differ ({}'s is used; settle it with upm template custom)",
                d(unit),
                d(path),
                d(used),
                o.join(", "),
                d(used)
            )
        }
    }
}
