//! `upm owner PATH...`: which package installed each path (by database; for a path the
//! database does not know, the package user owning it on disk).

use std::path::PathBuf;
use std::process::ExitCode;

use serde::Serialize;
use upm::ctx::Ctx;
use upm::ops::query::{self, Owner};
use upm::pathtext::{JsonPath, quoted};

#[derive(clap::Args)]
pub struct Args {
    /// Paths inside the root (relative ones against the working directory); any bytes, as the
    /// shell passes them. Exit status 1 when some path belongs to no package.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
}

/// One path's owners in `--json` output.
#[derive(Serialize)]
struct Owned<'a> {
    #[serde(flatten)]
    path: JsonPath,
    /// The first owner, or null.
    package: Option<&'a str>,
    packages: &'a [String],
    owner_by_uid: Option<&'a str>,
}

impl<'a> Owned<'a> {
    fn new(o: &'a Owner) -> Owned<'a> {
        Owned {
            path: JsonPath::new(&o.path),
            package: o.packages.first().map(String::as_str),
            packages: &o.packages,
            owner_by_uid: o.by_uid.as_deref(),
        }
    }
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    let p = &ctx.printer;
    let db = query::open(ctx)?;
    let owners = query::owners(ctx, &db, &args.paths)?;
    let all_known = owners.iter().all(|o| !o.packages.is_empty());
    if p.json_mode() {
        p.json(&owners.iter().map(Owned::new).collect::<Vec<_>>());
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
            out.push_str(&format!("{}: {what}\n", quoted(&o.path)));
        }
        p.raw(&out);
    }
    Ok(if all_known {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
