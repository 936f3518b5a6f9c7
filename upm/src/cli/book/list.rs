//! `upm book list BOOKDIR`: the book's pages in order, with package names and versions, and
//! why a page is not a package.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use serde::Serialize;
use upm::ctx::Ctx;
use upm::pathtext::quoted;

#[derive(clap::Args)]
pub struct Args {
    /// The book's top directory (an LFS or BLFS checkout, with index.xml).
    book: PathBuf,
    /// Only this chapter (repeatable).
    #[arg(long = "chapter", value_name = "N")]
    chapters: Vec<u32>,
    #[command(flatten)]
    revision: super::RevisionArgs,
}

#[derive(Serialize)]
struct Row<'a> {
    section: String,
    chapter: u32,
    order: u32,
    page: &'a str,
    name: &'a str,
    version: Option<&'a str>,
    package: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    let p = &ctx.printer;
    let opts = lfs_book::Options {
        revision: args.revision.revision(),
        chapters: args.chapters,
        ..lfs_book::Options::default()
    };
    let book = lfs_book::Book::open(&args.book, &opts)
        .with_context(|| format!("cannot read the book in {}", quoted(&args.book)))?;
    let rows: Vec<Row> = book
        .pages
        .iter()
        .map(|pg| Row {
            section: pg.place.section(),
            chapter: pg.place.chapter,
            order: pg.place.order,
            page: &pg.place.id,
            name: pg.name(),
            version: pg.version(),
            package: pg.package().is_some(),
            reason: match &pg.outcome {
                lfs_book::Outcome::Reported { reason, .. } => Some(reason),
                lfs_book::Outcome::Package(_) => None,
            },
        })
        .collect();
    if p.json_mode() {
        p.json(&rows);
    } else {
        for r in &rows {
            let mut line = format!(
                "{:<7} {:<28} {}",
                r.section,
                r.name,
                r.version.unwrap_or("-")
            );
            if let Some(why) = r.reason {
                line.push_str(&format!("  (not a recipe: {why})"));
            }
            p.line(&line);
        }
    }
    Ok(ExitCode::SUCCESS)
}
