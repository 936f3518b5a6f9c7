//! `upm list`: the packages of the root, with version and state.

use std::process::ExitCode;

use serde::Serialize;
use upm::ctx::Ctx;
use upm::ops::query;

#[derive(clap::Args)]
pub struct Args {}

/// A package in `--json` output.
#[derive(Serialize)]
struct Listed<'a> {
    name: &'a str,
    version: &'a str,
    state: &'static str,
    uid: u32,
    description: Option<&'a str>,
}

pub fn run(ctx: &Ctx, _args: Args) -> anyhow::Result<ExitCode> {
    let p = &ctx.printer;
    let db = query::open(ctx)?;
    let pkgs = query::list(ctx, &db)?;
    if p.json_mode() {
        p.json(
            &pkgs
                .iter()
                .map(|k| Listed {
                    name: &k.name,
                    version: &k.version,
                    state: k.state.name(),
                    uid: k.uid,
                    description: k.description.as_deref(),
                })
                .collect::<Vec<_>>(),
        );
        return Ok(ExitCode::SUCCESS);
    }
    for k in &pkgs {
        p.line(&format!(
            "{:<24} {:<16} {}",
            k.name,
            k.version,
            k.state.name()
        ));
        if k.state == upm::db::State::Interrupted {
            p.warn(&format!(
                "the install of {} was interrupted: `upm install {0}` builds it again, `upm remove {0}` removes what it left",
                k.name
            ));
        }
    }
    Ok(ExitCode::SUCCESS)
}
