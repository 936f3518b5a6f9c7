//! `upm info PKG`: one package: version, state, user, when, phases, root steps and reports.

use std::process::ExitCode;

use upm::ctx::Ctx;
use upm::ops::query;

#[derive(clap::Args)]
pub struct Args {
    name: String,
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    let p = &ctx.printer;
    let db = query::open(ctx)?;
    let k = query::package(ctx, &db, &args.name)?;
    let files = db.files(k.id)?;
    let phases = db.phases(k.id)?;
    let steps = db.root_steps(k.id)?;
    let reports = db.reports(k.id)?;
    if p.json_mode() {
        p.json(&serde_json::json!({
            "name": k.name, "version": k.version, "description": k.description,
            "state": k.state.name(), "stage": k.stage, "error": k.error,
            "uid": k.uid, "gid": k.gid, "recipe_path": k.recipe_path,
            "started": k.started, "finished": k.finished, "files": files.len(),
            "phases": phases.iter().map(|ph| serde_json::json!({
                "phase": ph.phase, "user": ph.user, "status": ph.status,
                "duration_ms": ph.duration_ms, "script": ph.script,
            })).collect::<Vec<_>>(),
            "root_steps": steps.iter().map(|s| serde_json::json!({
                "step": s.step, "arg": s.arg, "path": s.path.display().to_string(),
                "applied": s.applied, "note": s.note,
            })).collect::<Vec<_>>(),
            "reports": reports.iter().map(|r| serde_json::json!({
                "kind": r.kind, "path": r.path.as_ref().map(|x| x.display().to_string()), "detail": r.detail,
            })).collect::<Vec<_>>(),
        }));
        return Ok(ExitCode::SUCCESS);
    }
    p.line(&format!("name:        {}", k.name));
    p.line(&format!("version:     {}", k.version));
    if let Some(d) = &k.description {
        p.line(&format!("description: {d}"));
    }
    p.line(&format!(
        "state:       {}{}",
        k.state.name(),
        k.stage
            .as_deref()
            .map(|s| format!(" (in {s})"))
            .unwrap_or_default()
    ));
    p.line(&format!(
        "user:        {} (uid {}, gid {})",
        k.name, k.uid, k.gid
    ));
    p.line(&format!("files:       {}", files.len()));
    if let Some(r) = &k.recipe_path {
        p.line(&format!("recipe:      {r}"));
    }
    if let Some(e) = &k.error {
        p.line(&format!("error:       {e}"));
    }
    for ph in &phases {
        p.line(&format!(
            "phase:       {:<10} as {:<12} status {:<4} {:.1} s",
            ph.phase,
            ph.user,
            ph.status.map_or("-".into(), |s| s.to_string()),
            ph.duration_ms.unwrap_or(0) as f64 / 1000.0
        ));
    }
    for s in &steps {
        p.line(&format!(
            "root step:   {} {} {} ({})",
            s.step,
            s.arg,
            s.path.display(),
            if s.applied {
                "applied".to_string()
            } else {
                format!("not applied: {}", s.note.as_deref().unwrap_or(""))
            }
        ));
    }
    for r in &reports {
        p.line(&format!(
            "report:      {}: {}{}",
            r.kind,
            r.path
                .as_ref()
                .map(|x| format!("{}: ", x.display()))
                .unwrap_or_default(),
            r.detail
        ));
    }
    Ok(ExitCode::SUCCESS)
}
