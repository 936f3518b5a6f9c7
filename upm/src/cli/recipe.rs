//! `upm recipe check|show`: validate recipes and print them fully resolved.

use std::path::PathBuf;
use std::process::ExitCode;

use serde::Serialize;

use super::SyntaxArg;
use upm::ctx::Ctx;
use upm::pathtext::{self, quoted};
use upm::recipe::{self, Diagnostic};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    cmd: Sub,
}

#[derive(clap::Subcommand)]
enum Sub {
    /// Report missing or ill-typed keys (errors) and unknown keys (warnings), with file:line.
    Check {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print the recipe with its templates applied and every reference resolved.
    Show {
        file: PathBuf,
        #[arg(long, value_enum, default_value = "toml")]
        format: SyntaxArg,
        /// Set a key before resolving, as `upm install --set`.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
    },
}

/// One recipe's check in `--json` output.
#[derive(Serialize)]
struct Checked {
    file: String,
    ok: bool,
    errors: Vec<Diag>,
    warnings: Vec<Diag>,
}

/// An error or warning at a place in a recipe.
#[derive(Serialize)]
struct Diag {
    file: String,
    line: usize,
    column: usize,
    message: String,
}

impl Diag {
    fn new(d: &Diagnostic) -> Diag {
        Diag {
            file: pathtext::text(&d.loc.file),
            line: d.loc.line,
            column: d.loc.col,
            message: d.message.clone(),
        }
    }
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    let p = &ctx.printer;
    match args.cmd {
        Sub::Check { files } => {
            let mut failed = false;
            let mut reports = Vec::new();
            for file in &files {
                let r = recipe::check(file);
                failed |= !r.errors.is_empty();
                if p.json_mode() {
                    reports.push(Checked {
                        file: pathtext::text(file),
                        ok: r.errors.is_empty(),
                        errors: r.errors.iter().map(Diag::new).collect(),
                        warnings: r.warnings.iter().map(Diag::new).collect(),
                    });
                    continue;
                }
                for e in &r.errors {
                    p.line(&format!("error: {e}"));
                }
                for w in &r.warnings {
                    p.line(&format!("warning: {w}"));
                }
                match &r.recipe {
                    Some(rc) => p.line(&format!(
                        "{}: ok ({} {}, {} warning(s))",
                        quoted(file),
                        rc.package.name,
                        rc.package.version,
                        r.warnings.len()
                    )),
                    None => p.line(&format!(
                        "{}: {} error(s), {} warning(s)",
                        quoted(file),
                        r.errors.len(),
                        r.warnings.len()
                    )),
                }
            }
            if p.json_mode() {
                p.json(&reports);
            }
            Ok(if failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        Sub::Show { file, format, sets } => {
            let loaded = recipe::load_with(&file, &super::overrides(&sets)?)?;
            for w in &loaded.warnings {
                p.warn(&w.to_string());
            }
            if p.json_mode() {
                p.json(&loaded.recipe);
            } else {
                p.raw(&loaded.tree.render(format.into()));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
