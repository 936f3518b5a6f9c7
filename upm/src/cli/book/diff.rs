//! `upm book diff OLDDIR NEWDIR`: what changed between two versions of a book.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use upm::ctx::Ctx;
use upm::pathtext::quoted;

#[derive(clap::Args)]
pub struct Args {
    /// The older book's top directory.
    old: PathBuf,
    /// The newer book's top directory.
    new: PathBuf,
    #[command(flatten)]
    revision: super::RevisionArgs,
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    let p = &ctx.printer;
    let opts = lfs_book::Options {
        revision: args.revision.revision(),
        ..lfs_book::Options::default()
    };
    let open = |dir: &PathBuf| {
        lfs_book::Book::open(dir, &opts)
            .with_context(|| format!("cannot read the book in {}", quoted(dir)))
    };
    let (old, new) = (open(&args.old)?, open(&args.new)?);
    let changes = lfs_book::diff::diff(&old, &new);
    if p.json_mode() {
        p.json(&changes);
    } else if changes.is_empty() {
        p.line("no changes in versions, commands or dependencies");
    } else {
        for c in &changes {
            p.line(&format!("{} ({}): {} {}", c.name, c.page, c.what, c.detail));
        }
    }
    Ok(ExitCode::SUCCESS)
}
