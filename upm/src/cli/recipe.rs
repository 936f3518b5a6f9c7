//! `upm recipe check|show`: validate recipes and print them fully resolved.

use std::path::PathBuf;
use std::process::ExitCode;

use super::SyntaxArg;
use upm::ctx::Ctx;
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

fn diag_json(d: &Diagnostic) -> serde_json::Value {
    serde_json::json!({
        "file": d.loc.file.display().to_string(),
        "line": d.loc.line,
        "column": d.loc.col,
        "message": d.message,
    })
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
                    reports.push(serde_json::json!({
                        "file": file.display().to_string(),
                        "ok": r.errors.is_empty(),
                        "errors": r.errors.iter().map(diag_json).collect::<Vec<_>>(),
                        "warnings": r.warnings.iter().map(diag_json).collect::<Vec<_>>(),
                    }));
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
                        file.display(),
                        rc.package.name,
                        rc.package.version,
                        r.warnings.len()
                    )),
                    None => p.line(&format!(
                        "{}: {} error(s), {} warning(s)",
                        file.display(),
                        r.errors.len(),
                        r.warnings.len()
                    )),
                }
            }
            if p.json_mode() {
                p.json(&serde_json::Value::from(reports));
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
                p.json(&loaded.recipe.to_json());
            } else {
                p.raw(&loaded.tree.render(format.into()));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
