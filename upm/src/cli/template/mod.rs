//! `upm template inherit|custom|impact|unfold|check|show`: configuration templates for hosts
//! (the library's `template` module), one file per subcommand.

mod check;
mod custom;
mod impact;
mod inherit;
mod show;
mod unfold;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use upm::ctx::Ctx;
use upm::template::Repo;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    cmd: Sub,
}

#[derive(clap::Subcommand)]
enum Sub {
    /// Make a template or host inherit from parent templates by relative symlinks.
    Inherit(inherit::Args),
    /// Make an inherited file a template's own (or track it upwards), then edit it.
    Custom(custom::Args),
    /// List every template and host that would see a change to a path.
    Impact(impact::Args),
    /// Copy a host's (or template's) tree out as real files, with owners and modes.
    Unfold(unfold::Args),
    /// Report dangling, looping and escaping links, .inherits cycles and conflicts.
    Check(check::Args),
    /// Show which template a file really comes from (the chain of links).
    Show(show::Args),
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    match args.cmd {
        Sub::Inherit(a) => inherit::run(ctx, a),
        Sub::Custom(a) => custom::run(ctx, a),
        Sub::Impact(a) => impact::run(ctx, a),
        Sub::Unfold(a) => unfold::run(ctx, a),
        Sub::Check(a) => check::run(ctx, a),
        Sub::Show(a) => show::run(ctx, a),
    }
}

/// A unit named on the command line: a path to it, or `templates/NAME` relative to the
/// repository.
fn unit_arg(repo: &Repo, arg: &Path) -> anyhow::Result<PathBuf> {
    if let Ok((r, rel)) = Repo::locate(arg)
        && r.root == repo.root
    {
        return Ok(rel);
    }
    if upm::template::unit_of(arg).is_some() && repo.abs(arg).is_dir() {
        return Ok(arg.to_path_buf());
    }
    anyhow::bail!(
        "{}: not a template or host of the repository {} (give templates/NAME or hosts/NAME)",
        arg.display(),
        repo.root.display()
    )
}
