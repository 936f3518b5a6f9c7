//! `upm profile show PKG|FILE [--json]`: a profile as written, or as JSON.

use std::process::ExitCode;

use upm::ctx::Ctx;
use upm::profile;

#[derive(clap::Args)]
pub struct Args {
    /// An installed package, or a profile file.
    profile: String,
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    let p = &ctx.printer;
    let (_, prof) = profile::load(ctx, &args.profile)?;
    if p.json_mode() {
        p.json(&prof);
    } else {
        p.raw(&profile::render(&prof));
    }
    Ok(ExitCode::SUCCESS)
}
