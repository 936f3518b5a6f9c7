//! `upm log PKG [PHASE]`: the phases that ran, or one phase's log.

use std::process::ExitCode;

use serde::Serialize;
use upm::ctx::Ctx;
use upm::ops::query;
use upm::pathtext::{JsonPath, quoted};

#[derive(clap::Args)]
pub struct Args {
    /// The package whose build to show.
    name: String,
    /// prepare, configure, compile, check, install, root or ldconfig.
    phase: Option<String>,
}

/// One phase's log in `--json` output.
#[derive(Serialize)]
struct Log<'a> {
    package: &'a str,
    phase: &'a str,
    #[serde(flatten)]
    path: JsonPath,
    log: std::borrow::Cow<'a, str>,
}

/// A phase that ran, in `--json` output.
#[derive(Serialize)]
struct Ran<'a> {
    phase: &'a str,
    user: &'a str,
    status: Option<i32>,
    duration_ms: Option<i64>,
    /// The log file, as this process opens it.
    log: String,
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
            let text = std::fs::read(&path).map_err(upm::fsutil::io(&path))?;
            if p.json_mode() {
                p.json(&Log {
                    package: &k.name,
                    phase: &phase,
                    path: JsonPath::new(&path),
                    log: String::from_utf8_lossy(&text),
                });
            } else {
                p.raw(&String::from_utf8_lossy(&text));
            }
        }
        None => {
            if p.json_mode() {
                p.json(
                    &phases
                        .iter()
                        .map(|ph| Ran {
                            phase: &ph.phase,
                            user: &ph.user,
                            status: ph.status,
                            duration_ms: ph.duration_ms,
                            log: query::log_path(ctx, &k.name, &ph.phase)
                                .to_string_lossy()
                                .into_owned(),
                        })
                        .collect::<Vec<_>>(),
                );
            } else {
                for ph in &phases {
                    p.line(&format!(
                        "{:<10} status {:<4} {:>7.1} s  {}",
                        ph.phase,
                        ph.status.map_or("-".into(), |s| s.to_string()),
                        ph.duration_ms.unwrap_or(0) as f64 / 1000.0,
                        quoted(&query::log_path(ctx, &k.name, &ph.phase))
                    ));
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
