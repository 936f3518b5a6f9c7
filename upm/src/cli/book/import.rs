//! `upm book import BOOKDIR -o DIR`: one recipe per package page, and `import-report.txt`
//! (also on stderr) listing the pages that are not recipes and why.

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
    /// Only this package, by name or page id (repeatable).
    #[arg(long = "package", value_name = "NAME")]
    packages: Vec<String>,
    /// The architecture to read the book for (the books mark some text `arch="…"`).
    #[arg(long, default_value = "x86_64")]
    arch: String,
    #[command(flatten)]
    revision: super::RevisionArgs,
    /// The directory to write the recipes and the report into.
    #[arg(short, long, value_name = "DIR")]
    output: PathBuf,
}

#[derive(Serialize)]
struct Summary<'a> {
    recipes: usize,
    reported: &'a [String],
    failed: &'a [String],
    notes: &'a [String],
    report: String,
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    let p = &ctx.printer;
    let opts = lfs_book::Options {
        revision: args.revision.revision(),
        arch: args.arch,
        chapters: args.chapters,
        packages: args.packages,
    };
    let bar = (p.stderr_is_tty() && !p.json_mode()).then(|| {
        let b = indicatif::ProgressBar::new_spinner();
        b.set_message(format!("reading {}", args.book.display()));
        b.enable_steady_tick(std::time::Duration::from_millis(120));
        b
    });
    let book = lfs_book::Book::open(&args.book, &opts)
        .with_context(|| format!("cannot import the book in {}", quoted(&args.book)))?;
    if let Some(b) = &bar {
        b.set_message(format!("writing recipes into {}", args.output.display()));
    }
    let written = lfs_book::write::write(&book, &args.output, |done, total| {
        if let Some(b) = &bar {
            b.set_length(total as u64);
            b.set_position(done as u64);
        }
    })?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    for line in written.failed.iter() {
        p.warn(&format!("failed: {line}"));
    }
    for line in written.reported.iter() {
        p.warn(&format!("reported: {line}"));
    }
    if p.json_mode() {
        p.json(&Summary {
            recipes: written.recipes.len(),
            reported: &written.reported,
            failed: &written.failed,
            notes: &written.notes,
            report: written.report.display().to_string(),
        });
    } else {
        p.line(&format!(
            "imported {} {} recipe(s) into {}; {} page(s) reported, {} failed, {} note(s): see {}",
            written.recipes.len(),
            book.kind.name(),
            quoted(&args.output),
            written.reported.len(),
            written.failed.len(),
            written.notes.len(),
            quoted(&written.report)
        ));
    }
    Ok(if written.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
