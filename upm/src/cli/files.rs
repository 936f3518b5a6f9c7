//! `upm files PKG`: the manifest of a package.

use std::process::ExitCode;

use serde::Serialize;
use upm::ctx::Ctx;
use upm::manifest::Entry;
use upm::ops::query;
use upm::pathtext::{self, JsonPath, quoted};

#[derive(clap::Args)]
pub struct Args {
    /// The package whose files to list.
    name: String,
    /// Also show type, mode, owner and size.
    #[arg(short, long)]
    long: bool,
}

/// One manifest entry in `--json` output.
#[derive(Serialize)]
struct File<'a> {
    #[serde(flatten)]
    path: JsonPath,
    #[serde(rename = "type")]
    kind: &'static str,
    mode: u32,
    uid: u32,
    gid: u32,
    size: u64,
    mtime: i64,
    sha256: Option<&'a str>,
    target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target_bytes: Option<String>,
    shared: bool,
}

impl<'a> File<'a> {
    fn new(e: &'a Entry) -> File<'a> {
        File {
            path: JsonPath::new(&e.path),
            kind: e.kind.name(),
            mode: e.mode,
            uid: e.uid,
            gid: e.gid,
            size: e.size,
            mtime: e.mtime,
            sha256: e.sha256.as_deref(),
            target: e.target.as_deref().map(pathtext::text),
            target_bytes: e.target.as_deref().and_then(pathtext::bytes),
            shared: e.shared,
        }
    }
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    let p = &ctx.printer;
    let db = query::open(ctx)?;
    let k = query::package(ctx, &db, &args.name)?;
    let files = db.files(k.id)?;
    if p.json_mode() {
        p.json(&files.iter().map(File::new).collect::<Vec<_>>());
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = String::new();
    for e in &files {
        if args.long {
            out.push_str(&format!(
                "{:<7} {:04o} {:>5}:{:<5} {:>10}  {}{}\n",
                e.kind.name(),
                e.mode,
                e.uid,
                e.gid,
                e.size,
                quoted(&e.path),
                e.target
                    .as_ref()
                    .map(|t| format!(" -> {}", quoted(t)))
                    .unwrap_or_default()
            ));
        } else {
            out.push_str(&format!("{}\n", quoted(&e.path)));
        }
    }
    p.raw(&out);
    Ok(ExitCode::SUCCESS)
}
