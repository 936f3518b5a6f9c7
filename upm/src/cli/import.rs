//! `upm import FILE|URL`: install a package from a signed binary archive.

use std::process::ExitCode;

use serde::Serialize;
use upm::ctx::Ctx;
use upm::ops::import;
use upm::pathtext::{JsonPath, quoted};

#[derive(clap::Args)]
pub struct Args {
    /// The archive (NAME-VERSION-HASH.upm.tar.zst, its signature beside it as .sig), or its
    /// http:// or https:// URL.
    archive: String,
}

#[derive(Serialize)]
struct Json<'a> {
    name: &'a str,
    version: &'a str,
    recipe_hash: &'a str,
    /// The id of the trusted key that signed it.
    key: &'a str,
    user: &'a str,
    uid: u32,
    gid: u32,
    files: usize,
    reports: Vec<super::JsonReport<'a>>,
    replaced: Vec<JsonPath>,
    seconds: f64,
    profile: Option<JsonPath>,
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    let p = &ctx.printer;
    let done = import::import(ctx, &args.archive)?;
    if p.json_mode() {
        p.json(&Json {
            name: &done.name,
            version: &done.version,
            recipe_hash: &done.recipe_hash,
            key: &done.key,
            user: &done.user.name,
            uid: done.user.uid,
            gid: done.user.gid,
            files: done.files.len(),
            reports: done.reports.iter().map(super::JsonReport::new).collect(),
            replaced: done.replaced.iter().map(|p| JsonPath::new(p)).collect(),
            seconds: done.seconds,
            profile: done
                .profile
                .as_deref()
                .map(|i| JsonPath::new(&upm::fsutil::on_host(&ctx.root, i))),
        });
        return Ok(ExitCode::SUCCESS);
    }
    p.line(&format!(
        "imported {} {} (signed by key {}) as package user {} (uid {}): {} paths, in {:.1} s",
        done.name,
        done.version,
        done.key,
        done.user.name,
        done.user.uid,
        done.files.len(),
        done.seconds
    ));
    if let Some(path) = &done.profile {
        p.note(&format!("profile: {}", quoted(path)));
    }
    Ok(ExitCode::SUCCESS)
}
