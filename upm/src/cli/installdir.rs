//! `upm installdir add|remove|list|fix`: the shared install directories (root:install 1775).

use std::path::PathBuf;
use std::process::ExitCode;

use serde::Serialize;
use upm::ctx::Ctx;
use upm::pathtext::{JsonPath, quoted};
use upm::pkguser::installdir::State;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    cmd: Sub,
}

#[derive(clap::Subcommand)]
enum Sub {
    /// Make directories install directories (and remember them in etc/upm/upm.toml).
    Add {
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
    },
    /// Turn install directories back into root:root 0755 ones and forget them.
    Remove {
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
    },
    /// List the install directories and whether each is as it should be.
    List,
    /// Make every install directory root:install 1775 again.
    Fix,
}

/// An install directory in `--json` output.
#[derive(Serialize)]
struct Dir {
    #[serde(flatten)]
    path: JsonPath,
    state: String,
}

fn print(ctx: &Ctx, rows: &[(PathBuf, State)], verb: bool) {
    let p = &ctx.printer;
    if p.json_mode() {
        p.json(
            &rows
                .iter()
                .map(|(d, s)| Dir {
                    path: JsonPath::new(d),
                    state: s.describe(),
                })
                .collect::<Vec<_>>(),
        );
        return;
    }
    for (d, s) in rows {
        if verb {
            let what = match s {
                State::Ok => "already an install directory".to_string(),
                State::NotDir => "not a directory; left alone".to_string(),
                other => format!("fixed (was {})", other.describe()),
            };
            p.line(&format!("{}: {what}", quoted(d)));
        } else {
            let what = match s {
                State::Wrong { .. } => format!("is {}: run `upm installdir fix`", s.describe()),
                other => other.describe(),
            };
            p.line(&format!("{:<40} {what}", quoted(d).to_string()));
        }
    }
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    match args.cmd {
        Sub::Add { dirs } => print(ctx, &upm::ops::init::add(ctx, &dirs)?, true),
        Sub::Remove { dirs } => {
            upm::ops::init::remove(ctx, &dirs)?;
            if !ctx.printer.json_mode() {
                for d in dirs {
                    ctx.printer
                        .line(&format!("{}: no longer an install directory", quoted(&d)));
                }
            }
        }
        Sub::List => print(ctx, &upm::ops::init::list(ctx)?, false),
        Sub::Fix => {
            let rows = upm::ops::init::fix(ctx)?;
            let changed: Vec<_> = rows.into_iter().filter(|(_, s)| *s != State::Ok).collect();
            if changed.is_empty() && !ctx.printer.json_mode() {
                ctx.printer
                    .line("every install directory is as it should be");
            }
            print(ctx, &changed, true);
        }
    }
    Ok(ExitCode::SUCCESS)
}
