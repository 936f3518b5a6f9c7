//! `upm profile export DIR`: this host as a host profile — every installed package's profile
//! and a `host.toml` listing them — for a git repository to share.

use std::path::PathBuf;
use std::process::ExitCode;

use serde::Serialize;
use upm::ctx::Ctx;
use upm::pathtext::{JsonPath, quoted};
use upm::profile::hostfile;

#[derive(clap::Args)]
pub struct Args {
    /// The directory to write into (made when missing).
    dir: PathBuf,
}

#[derive(Serialize)]
struct Exported {
    host: JsonPath,
    profiles: Vec<JsonPath>,
    removed: Vec<JsonPath>,
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    let p = &ctx.printer;
    let db = upm::ops::query::open(ctx)?;
    let e = hostfile::export(ctx, &db, &args.dir)?;
    if p.json_mode() {
        p.json(&Exported {
            host: JsonPath::new(&e.host),
            profiles: e.profiles.iter().map(|f| JsonPath::new(f)).collect(),
            removed: e.removed.iter().map(|f| JsonPath::new(f)).collect(),
        });
    } else {
        for f in &e.removed {
            p.line(&format!("removed {}", quoted(f)));
        }
        p.line(&format!(
            "wrote {} and {} profile(s) into {}",
            quoted(&e.host),
            e.profiles.len(),
            quoted(&args.dir)
        ));
    }
    Ok(ExitCode::SUCCESS)
}
