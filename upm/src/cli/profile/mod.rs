//! `upm profile show|diff|path|export`: read the profiles upm writes after every install, and
//! export this host's as a host profile.

mod diff;
mod export;
mod path;
mod show;

use std::process::ExitCode;

use upm::ctx::Ctx;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    cmd: Sub,
}

#[derive(clap::Subcommand)]
enum Sub {
    /// Print an installed package's profile (or a profile file); `--json` gives it as data.
    Show(show::Args),
    /// Compare two profiles (installed package names or profile files): recipe keys, commands
    /// and manifest, each added, removed or changed; or, given one host profile (a directory
    /// holding host.toml, or the file), this host against it: packages missing, extra, or of
    /// other versions or recipe hashes. Exit 1 when they differ (beyond file contents).
    Diff(diff::Args),
    /// Print where an installed package's profile is.
    Path(path::Args),
    /// Write every installed package's profile and a host profile (host.toml) into DIR:
    /// stable, diff-friendly, for a git repository; `upm replay DIR` rebuilds the same system.
    Export(export::Args),
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    match args.cmd {
        Sub::Show(a) => show::run(ctx, a),
        Sub::Diff(a) => diff::run(ctx, a),
        Sub::Path(a) => path::run(ctx, a),
        Sub::Export(a) => export::run(ctx, a),
    }
}
