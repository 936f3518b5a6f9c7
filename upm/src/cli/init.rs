//! `upm init`: prepare a root for package users (idempotent).

use std::process::ExitCode;

use upm::ctx::Ctx;
use upm::pkguser::installdir::State;

#[derive(clap::Args)]
pub struct Args {
    /// Make the root directory (`--root DIR`) when it does not exist yet.
    #[arg(long)]
    pub create: bool,
}

pub fn run(ctx: &Ctx, _args: Args) -> anyhow::Result<ExitCode> {
    let p = &ctx.printer;
    let done = upm::ops::init::init(ctx)?;
    let changed: Vec<_> = done.dirs.iter().filter(|(_, s)| *s != State::Ok).collect();
    if p.json_mode() {
        p.json(&serde_json::json!({
            "root": ctx.root.display().to_string(),
            "install_gid": done.install_gid,
            "config_written": done.config_written,
            "database": done.db.display().to_string(),
            "install_dirs_fixed": changed.iter().map(|(d, s)| serde_json::json!({
                "path": d.display().to_string(), "was": s.describe(),
            })).collect::<Vec<_>>(),
        }));
        return Ok(ExitCode::SUCCESS);
    }
    p.line(&format!(
        "initialized {}: install group gid {}, {} install directories ({} fixed), database {}",
        ctx.root.display(),
        done.install_gid,
        done.dirs.len(),
        changed.len(),
        done.db.display()
    ));
    if done.config_written {
        p.line(&format!(
            "wrote the default settings to {}",
            ctx.root.join(upm::config::FILE).display()
        ));
    }
    Ok(ExitCode::SUCCESS)
}
