//! `upm owner PATH...`: which package installed each path (by database; for a path the
//! database does not know, the package user owning it on disk).

use std::path::PathBuf;
use std::process::ExitCode;

use upm::ctx::Ctx;
use upm::ops::query;

#[derive(clap::Args)]
pub struct Args {
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    let p = &ctx.printer;
    let db = query::open(ctx)?;
    let owners = query::owners(ctx, &db, &args.paths)?;
    let all_known = owners.iter().all(|o| !o.packages.is_empty());
    if p.json_mode() {
        p.json(&serde_json::Value::from(
            owners
                .iter()
                .map(|o| {
                    serde_json::json!({
                        "path": o.path.display().to_string(),
                        "package": o.packages.first(),
                        "packages": o.packages,
                        "owner_by_uid": o.by_uid,
                    })
                })
                .collect::<Vec<_>>(),
        ));
    } else {
        let mut out = String::new();
        for o in &owners {
            let what = match (&o.packages[..], &o.by_uid, o.exists) {
                ([], Some(u), _) => {
                    format!("not in the database; owned on disk by {u}")
                }
                ([], None, true) => "no package".to_string(),
                ([], None, false) => "no package (and no such path)".to_string(),
                (pkgs, _, _) => pkgs.join(" "),
            };
            out.push_str(&format!("{}: {what}\n", o.path.display()));
        }
        p.raw(&out);
    }
    Ok(if all_known {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
