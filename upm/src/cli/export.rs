//! `upm export PKG [-o FILE|DIR]` and `upm export --all -o DIR`: signed binary archives.

use std::path::PathBuf;
use std::process::ExitCode;

use serde::Serialize;
use upm::ctx::Ctx;
use upm::ops::export::{self, Exported};
use upm::pathtext::{JsonPath, quoted};

#[derive(clap::Args)]
pub struct Args {
    /// The package to export.
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    name: Option<String>,
    /// Export every installed package into the directory -o names, with its index.json: a
    /// binary host's directory, to serve with any static web server.
    #[arg(long, requires = "out")]
    all: bool,
    /// Where to write: a file, or a directory for NAME-VERSION-HASH.upm.tar.zst (default: the
    /// working directory). The signature goes beside it (.sig).
    #[arg(short, long, value_name = "PATH")]
    out: Option<PathBuf>,
}

#[derive(Serialize)]
struct Json {
    name: String,
    version: String,
    recipe_hash: String,
    archive: JsonPath,
    signature: JsonPath,
    size: u64,
    sha256: String,
    files: usize,
}

fn json(e: &Exported) -> Json {
    Json {
        name: e.name.clone(),
        version: e.version.clone(),
        recipe_hash: e.recipe_hash.clone(),
        archive: JsonPath::new(&e.archive),
        signature: JsonPath::new(&e.signature),
        size: e.size,
        sha256: e.sha256.clone(),
        files: e.files,
    }
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    let p = &ctx.printer;
    let done = match &args.name {
        Some(name) => vec![export::export(ctx, name, args.out.as_deref())?],
        None => {
            let dir = args.out.clone().expect("clap requires -o with --all");
            export::export_all(ctx, &dir)?
        }
    };
    if p.json_mode() {
        if args.all {
            p.json(&done.iter().map(json).collect::<Vec<_>>());
        } else {
            p.json(&json(&done[0]));
        }
        return Ok(ExitCode::SUCCESS);
    }
    for e in &done {
        p.line(&format!(
            "exported {} {} ({} paths, {} bytes, recipe hash {}): {}",
            e.name,
            e.version,
            e.files,
            e.size,
            &e.recipe_hash[..16],
            quoted(&e.archive)
        ));
    }
    if args.all {
        let dir = args.out.as_deref().expect("-o");
        p.note(&format!(
            "index: {}",
            quoted(&dir.join(upm::profile::binhost::INDEX))
        ));
    }
    Ok(ExitCode::SUCCESS)
}
