//! `upm init`: prepare a root for package users (idempotent).

use std::process::ExitCode;

use serde::Serialize;
use upm::ctx::Ctx;
use upm::pathtext::{self, JsonPath, quoted};
use upm::pkguser::installdir::State;

#[derive(clap::Args)]
pub struct Args {
    /// Make the root directory (`--root DIR`) when it does not exist yet.
    #[arg(long)]
    pub create: bool,
}

/// What `upm init` did, in `--json` output.
#[derive(Serialize)]
struct Done {
    root: String,
    install_gid: u32,
    config_written: bool,
    database: String,
    install_dirs_fixed: Vec<Fixed>,
}

#[derive(Serialize)]
struct Fixed {
    #[serde(flatten)]
    path: JsonPath,
    was: String,
}

pub fn run(ctx: &Ctx, _args: Args) -> anyhow::Result<ExitCode> {
    let p = &ctx.printer;
    let done = upm::ops::init::init(ctx)?;
    let changed: Vec<_> = done.dirs.iter().filter(|(_, s)| *s != State::Ok).collect();
    if p.json_mode() {
        p.json(&Done {
            root: pathtext::text(&ctx.root),
            install_gid: done.install_gid,
            config_written: done.config_written,
            database: pathtext::text(&done.db),
            install_dirs_fixed: changed
                .iter()
                .map(|(d, s)| Fixed {
                    path: JsonPath::new(d),
                    was: s.describe(),
                })
                .collect(),
        });
        return Ok(ExitCode::SUCCESS);
    }
    p.line(&format!(
        "initialized {}: install group gid {}, {} install directories ({} fixed), database {}",
        quoted(&ctx.root),
        done.install_gid,
        done.dirs.len(),
        changed.len(),
        quoted(&done.db)
    ));
    if done.config_written {
        p.line(&format!(
            "wrote the default settings to {}",
            quoted(&ctx.root.join(upm::config::FILE))
        ));
    }
    Ok(ExitCode::SUCCESS)
}
