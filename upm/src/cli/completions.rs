//! `upm completions SHELL` and `upm man`: shell completions and the man page, both made from
//! the same clap definitions as the help text.

use std::process::ExitCode;

use clap::CommandFactory;
use upm::ctx::Ctx;

#[derive(clap::Args)]
pub struct CompletionArgs {
    /// bash, zsh, fish, elvish or powershell.
    shell: clap_complete::Shell,
}

#[derive(clap::Args)]
pub struct ManArgs {}

pub fn completions(_ctx: &Ctx, args: CompletionArgs) -> anyhow::Result<ExitCode> {
    let mut cmd = super::Cli::command();
    clap_complete::generate(args.shell, &mut cmd, "upm", &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}

pub fn man(_ctx: &Ctx, _args: ManArgs) -> anyhow::Result<ExitCode> {
    let mut out = Vec::new();
    clap_mangen::Man::new(super::Cli::command()).render(&mut out)?;
    let mut stdout = std::io::stdout().lock();
    // A closed pipe (`upm man | head`) is not an error.
    let _ = std::io::Write::write_all(&mut stdout, &out);
    Ok(ExitCode::SUCCESS)
}
