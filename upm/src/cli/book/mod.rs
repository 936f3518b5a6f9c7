//! `upm book import|list|diff`: the LFS and BLFS books as recipes, through the `lfs-book`
//! crate. One file per subcommand; this one holds what they share.

mod diff;
mod import;
mod list;

use std::process::ExitCode;

use upm::ctx::Ctx;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    cmd: Sub,
}

#[derive(clap::Subcommand)]
enum Sub {
    /// Write one recipe per package page of a book, and a report of the other pages.
    Import(import::Args),
    /// List a book's pages: package names, versions, in the book's order.
    List(list::Args),
    /// What changed between two versions of a book: versions, commands, dependencies.
    Diff(diff::Args),
}

/// Which of the books' init systems to read (the books say `revision="sysv|systemd"`).
#[derive(clap::Args, Clone, Copy)]
#[group(multiple = false)]
pub struct RevisionArgs {
    /// Read the systemd edition of the book.
    #[arg(long)]
    systemd: bool,
    /// Read the System V edition of the book (the default).
    #[arg(long)]
    sysv: bool,
}

impl RevisionArgs {
    fn revision(self) -> lfs_book::Revision {
        if self.systemd {
            lfs_book::Revision::Systemd
        } else {
            lfs_book::Revision::Sysv
        }
    }
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    match args.cmd {
        Sub::Import(a) => import::run(ctx, a),
        Sub::List(a) => list::run(ctx, a),
        Sub::Diff(a) => diff::run(ctx, a),
    }
}
