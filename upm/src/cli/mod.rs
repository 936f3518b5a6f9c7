//! Command-line parsing and printing only: each subcommand lives in its own file, turns its
//! arguments into the library's options and calls the library.

mod book;
mod check;
mod completions;
mod configs;
mod depends;
mod export;
mod files;
mod import;
mod info;
mod init;
mod install;
mod installdir;
mod key;
mod list;
mod log;
mod orphans;
mod owner;
mod profile;
mod rdepends;
mod recipe;
mod record;
mod remove;
mod replay;
mod sandbox;
mod template;
mod tracking;
mod tree;
mod upgrade;
mod user;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use upm::ctx::Ctx;
use upm::printer::Printer;

/// upm: a source-build package manager for Linux From Scratch — every package built and
/// installed as its own user, every installed file recorded.
#[derive(Parser)]
#[command(name = "upm", version, propagate_version = true)]
pub struct Cli {
    /// Print results as JSON (for scripts).
    #[arg(long, global = true)]
    json: bool,

    /// The system to manage: a mounted LFS partition, a chroot, or `/` (the default). It must
    /// exist (`upm init --create` makes a new one).
    #[arg(long, global = true, value_name = "DIR")]
    root: Option<std::path::PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Prepare a root for package users: install group, install directories, database.
    Init(init::Args),
    /// Build and install a package as its own package user, recording every file.
    Install(install::Args),
    /// Build a newer version of an installed package and install it over the old one.
    Upgrade(upgrade::Args),
    /// List the configuration files an upgrade kept, whose new version waits as FILE.upmnew.
    Configs(configs::Args),
    /// Build a package by hand in a shell as its package user, recording the commands and files.
    #[command(disable_version_flag = true)]
    Record(record::Args),
    /// Remove what a package installed.
    Remove(remove::Args),
    /// Write an installed package as a signed binary archive (or all of them, for a binary host).
    Export(export::Args),
    /// Install a package from a signed binary archive (a file or URL), without building it.
    Import(import::Args),
    /// Make this root's signing key, show it, trust another's.
    Key(key::Args),
    /// Rebuild a set of packages (recipes, profiles, a host profile) in dependency order;
    /// resumable with --continue.
    Replay(replay::Args),
    /// List the installed packages.
    List(list::Args),
    /// Show one package: state, phases, root steps, reports.
    Info(info::Args),
    /// List the files a package installed.
    Files(files::Args),
    /// Show which package installed each path.
    Owner(owner::Args),
    /// Report files missing or changed since they were installed (`--libs`: libraries missing).
    Check(check::Args),
    /// List the packages whose libraries a package's programs and libraries need.
    Depends(depends::Args),
    /// List the packages whose files need a library a package provides.
    Rdepends(rdepends::Args),
    /// List paths no package owns.
    Orphans(orphans::Args),
    /// Show the phases of a package's build, or one phase's log.
    Log(log::Args),
    /// Show and compare profiles: what an install did, as a recipe that rebuilds it.
    Profile(profile::Args),
    /// Add, remove, list and fix the shared install directories.
    Installdir(installdir::Args),
    /// Print shell completions.
    Completions(completions::CompletionArgs),
    /// Print the man page (roff).
    Man(completions::ManArgs),
    /// Read, write and convert configuration trees (.ct and .toml files).
    Tree(tree::Args),
    /// Check and show recipes.
    Recipe(recipe::Args),
    /// Add and list package users.
    User(user::Args),
    /// Run a command against a throwaway overlay of this system and show what it changed.
    Sandbox(sandbox::Args),
    /// Import the LFS and BLFS books as recipes, list them, compare two versions.
    Book(book::Args),
    /// Configuration templates for hosts: inherit, customise, unfold into real files.
    Template(template::Args),
}

/// A ctree syntax chosen on the command line.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum SyntaxArg {
    Toml,
    Ct,
}

impl From<SyntaxArg> for upm::ctree::Syntax {
    fn from(s: SyntaxArg) -> Self {
        match s {
            SyntaxArg::Toml => upm::ctree::Syntax::Toml,
            SyntaxArg::Ct => upm::ctree::Syntax::Ct,
        }
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let ctx = match context(&cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("upm: error: {}", message(&e));
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Init(a) => init::run(&ctx, a),
        Command::Install(a) => install::run(&ctx, a),
        Command::Upgrade(a) => upgrade::run(&ctx, a),
        Command::Configs(a) => configs::run(&ctx, a),
        Command::Record(a) => record::run(&ctx, a),
        Command::Remove(a) => remove::run(&ctx, a),
        Command::Export(a) => export::run(&ctx, a),
        Command::Import(a) => import::run(&ctx, a),
        Command::Key(a) => key::run(&ctx, a),
        Command::Replay(a) => replay::run(&ctx, a),
        Command::List(a) => list::run(&ctx, a),
        Command::Info(a) => info::run(&ctx, a),
        Command::Files(a) => files::run(&ctx, a),
        Command::Owner(a) => owner::run(&ctx, a),
        Command::Check(a) => check::run(&ctx, a),
        Command::Depends(a) => depends::run(&ctx, a),
        Command::Rdepends(a) => rdepends::run(&ctx, a),
        Command::Orphans(a) => orphans::run(&ctx, a),
        Command::Log(a) => log::run(&ctx, a),
        Command::Profile(a) => profile::run(&ctx, a),
        Command::Installdir(a) => installdir::run(&ctx, a),
        Command::Completions(a) => completions::completions(&ctx, a),
        Command::Man(a) => completions::man(&ctx, a),
        Command::Tree(a) => tree::run(&ctx, a),
        Command::Recipe(a) => recipe::run(&ctx, a),
        Command::Sandbox(a) => sandbox::run(&ctx, a),
        Command::User(a) => user::run(&ctx, a),
        Command::Book(a) => book::run(&ctx, a),
        Command::Template(a) => template::run(&ctx, a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("upm: error: {}", message(&e));
            ExitCode::FAILURE
        }
    }
}

/// The context of a command: the root checked and its settings loaded, for the commands that
/// act on a root.
fn context(cli: &Cli) -> anyhow::Result<Ctx> {
    let printer = Printer::new(cli.json);
    let root = cli.root.clone().unwrap_or_else(|| "/".into());
    let no_root = match &cli.command {
        Command::Sandbox(_) if cli.root.is_some() => anyhow::bail!(
            "upm sandbox overlays this system's `/`; --root does not apply to it. Drop --root, or \
             run `upm --root DIR ...` as the command inside the sandbox"
        ),
        Command::Sandbox(_)
        | Command::Tree(_)
        | Command::Template(_)
        | Command::Recipe(_)
        | Command::Book(_)
        | Command::Completions(_)
        | Command::Man(_) => true,
        _ => false,
    };
    if no_root {
        if cli.root.is_some() {
            upm::ctx::check_root(&root)?;
        }
        let cfg = upm::config::Config::defaults(root.join(upm::config::FILE));
        return Ok(Ctx::new(printer, root, cfg));
    }
    let create = matches!(&cli.command, Command::Init(a) if a.create);
    Ok(Ctx::open(printer, root, create)?)
}

/// `--set KEY=VALUE` arguments as recipe overrides.
pub fn overrides(sets: &[String]) -> anyhow::Result<Vec<(upm::ctree::Key, upm::ctree::Value)>> {
    sets.iter()
        .map(|s| {
            let (k, v) = s
                .split_once('=')
                .ok_or_else(|| anyhow::anyhow!("--set {s:?}: expected KEY=VALUE"))?;
            let key = upm::ctree::Key::parse(k).map_err(|e| anyhow::anyhow!("--set {s:?}: {e}"))?;
            Ok((key, upm::ctree::Value::from_cli(v)))
        })
        .collect()
}

/// An error and its causes on one line. Library errors already name their cause in their own
/// message, so a cause is added only when the text so far does not end with it.
fn message(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.is_empty() {
            out = text;
        } else if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
    }
    out
}

/// Something an install noticed (a conflict, a setuid file, …) in `--json` output.
#[derive(serde::Serialize)]
pub struct JsonReport<'a> {
    kind: &'a str,
    path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path_bytes: Option<String>,
    detail: &'a str,
}

impl<'a> JsonReport<'a> {
    pub fn new(r: &'a upm::db::ReportRow) -> JsonReport<'a> {
        JsonReport {
            kind: &r.kind,
            path: r.path.as_deref().map(upm::pathtext::text),
            path_bytes: r.path.as_deref().and_then(upm::pathtext::bytes),
            detail: &r.detail,
        }
    }
}
