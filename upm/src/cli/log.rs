//! `upm log PKG [PHASE]`: the phases that ran, or one phase's log.

use std::process::ExitCode;

use anyhow::Context;
use upm::ctx::Ctx;
use upm::ops::query;

#[derive(clap::Args)]
pub struct Args {
    name: String,
    /// prepare, configure, compile, check, install, root or ldconfig.
    phase: Option<String>,
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    let p = &ctx.printer;
    let db = query::open(ctx)?;
    let k = query::package(ctx, &db, &args.name)?;
    let phases = db.phases(k.id)?;
    match args.phase {
        Some(phase) => {
            if !phases.iter().any(|ph| ph.phase == phase) {
                let ran: Vec<&str> = phases.iter().map(|ph| ph.phase.as_str()).collect();
                anyhow::bail!(
                    "{} has no log for phase {phase:?}; phases that ran: {}",
                    k.name,
                    ran.join(", ")
                );
            }
            let path = query::log_path(ctx, &k.name, &phase);
            let text =
                std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
            if p.json_mode() {
                p.json(&serde_json::json!({
                    "package": k.name, "phase": phase, "path": path.display().to_string(),
                    "log": String::from_utf8_lossy(&text),
                }));
            } else {
                p.raw(&String::from_utf8_lossy(&text));
            }
        }
        None => {
            if p.json_mode() {
                p.json(&serde_json::Value::from(
                    phases
                        .iter()
                        .map(|ph| {
                            serde_json::json!({
                                "phase": ph.phase, "user": ph.user, "status": ph.status,
                                "duration_ms": ph.duration_ms,
                                "log": query::log_path(ctx, &k.name, &ph.phase).display().to_string(),
                            })
                        })
                        .collect::<Vec<_>>(),
                ));
            } else {
                for ph in &phases {
                    p.line(&format!(
                        "{:<10} status {:<4} {:>7.1} s  {}",
                        ph.phase,
                        ph.status.map_or("-".into(), |s| s.to_string()),
                        ph.duration_ms.unwrap_or(0) as f64 / 1000.0,
                        query::log_path(ctx, &k.name, &ph.phase).display()
                    ));
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
