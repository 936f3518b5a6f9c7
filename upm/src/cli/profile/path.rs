//! `upm profile path PKG`: where an installed package's profile is (as this process opens it).

use std::process::ExitCode;

use serde::Serialize;
use upm::ctx::Ctx;
use upm::fsutil::on_host;
use upm::pathtext::{JsonPath, quoted};
use upm::profile;

#[derive(clap::Args)]
pub struct Args {
    /// An installed package.
    name: String,
}

#[derive(Serialize)]
struct Path<'a> {
    package: &'a str,
    #[serde(flatten)]
    path: JsonPath,
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    let p = &ctx.printer;
    let db = upm::ops::query::open(ctx)?;
    let (inside, _) = profile::text_of(&db, &args.name)?;
    let host = on_host(&ctx.root, &inside);
    if p.json_mode() {
        p.json(&Path {
            package: &args.name,
            path: JsonPath::new(&host),
        });
    } else {
        p.line(&quoted(&host).to_string());
    }
    Ok(ExitCode::SUCCESS)
}
