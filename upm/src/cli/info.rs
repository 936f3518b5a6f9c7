//! `upm info PKG`: one package: version, state, user, when, phases, root steps and reports.

use std::process::ExitCode;

use serde::Serialize;
use upm::ctx::Ctx;
use upm::ops::query;
use upm::pathtext::{self, JsonPath, quoted};

#[derive(clap::Args)]
pub struct Args {
    /// The package to show.
    name: String,
    /// Show, per path of its install, which signals saw it (the watcher, the LD_PRELOAD shim,
    /// ownership) and where they disagree.
    #[arg(long)]
    tracking: bool,
    /// Show its upgrades: old and new version, the profile of each, when, how it ended.
    #[arg(long)]
    history: bool,
}

/// A package in `--json` output.
#[derive(Serialize)]
struct Info<'a> {
    name: &'a str,
    version: &'a str,
    description: Option<&'a str>,
    state: &'static str,
    stage: Option<&'a str>,
    error: Option<&'a str>,
    uid: u32,
    gid: u32,
    recipe_path: Option<&'a str>,
    /// The recipe hash (the recipe as written and the source archive used), when the install
    /// recorded a profile.
    recipe_hash: Option<String>,
    started: i64,
    finished: Option<i64>,
    /// How many paths its manifest holds.
    files: usize,
    phases: Vec<Phase<'a>>,
    root_steps: Vec<Step<'a>>,
    reports: Vec<super::JsonReport<'a>>,
    /// Files no package owned that the install took over.
    replaced: Vec<Replaced>,
    /// With --tracking: per path, which signals saw it.
    #[serde(skip_serializing_if = "Option::is_none")]
    tracking: Option<Vec<super::tracking::JsonTracking>>,
    /// With --history: its upgrades, oldest first.
    #[serde(skip_serializing_if = "Option::is_none")]
    history: Option<Vec<upm::db::HistoryRow>>,
    /// Old library files an upgrade kept (--force) for other packages.
    kept_libs: Vec<KeptLib>,
}

#[derive(Serialize)]
struct KeptLib {
    #[serde(flatten)]
    path: JsonPath,
    soname: Option<String>,
    needed_by: String,
}

/// Seconds since the epoch as `YYYY-MM-DD HH:MM:SS UTC`.
fn utc(t: i64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(t.max(0).unsigned_abs());
    // `2026-11-23T16:40:01Z` read as a person would write it.
    let s = humantime::format_rfc3339_seconds(at).to_string();
    format!("{} UTC", s.trim_end_matches('Z').replacen('T', " ", 1))
}

#[derive(Serialize)]
struct Replaced {
    #[serde(flatten)]
    path: JsonPath,
    #[serde(rename = "type")]
    kind: &'static str,
    uid: u32,
    gid: u32,
    /// The original's mode, in octal.
    mode: String,
    /// Where the original is kept (inside the root), if it is.
    kept: Option<String>,
    /// `replaced`, or `held` while the install that took it over has not finished.
    state: &'static str,
}

#[derive(Serialize)]
struct Phase<'a> {
    phase: &'a str,
    user: &'a str,
    status: Option<i32>,
    duration_ms: Option<i64>,
    script: &'a str,
}

#[derive(Serialize)]
struct Step<'a> {
    step: &'a str,
    arg: &'a str,
    #[serde(flatten)]
    path: JsonPath,
    /// The step as the command it stands for, quoted as a shell reads it.
    command: String,
    applied: bool,
    note: Option<&'a str>,
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    let p = &ctx.printer;
    let db = query::open(ctx)?;
    let k = query::package(ctx, &db, &args.name)?;
    let files = db.files(k.id)?;
    let phases = db.phases(k.id)?;
    let steps = db.root_steps(k.id)?;
    let reports = db.reports(k.id)?;
    let replaced = db.replaced(k.id)?;
    let tracking = if args.tracking {
        Some(db.tracking(k.id)?)
    } else {
        None
    };
    let recipe_hash = upm::profile::hash_of(&db, &k.name).ok();
    let history = if args.history {
        Some(db.history(k.id)?)
    } else {
        None
    };
    let kept_libs = db.kept_libs(k.id)?;
    if p.json_mode() {
        p.json(&Info {
            name: &k.name,
            version: &k.version,
            description: k.description.as_deref(),
            state: k.state.name(),
            stage: k.stage.as_deref(),
            error: k.error.as_deref(),
            uid: k.uid,
            gid: k.gid,
            recipe_path: k.recipe_path.as_deref(),
            recipe_hash,
            started: k.started,
            finished: k.finished,
            files: files.len(),
            phases: phases
                .iter()
                .map(|ph| Phase {
                    phase: &ph.phase,
                    user: &ph.user,
                    status: ph.status,
                    duration_ms: ph.duration_ms,
                    script: &ph.script,
                })
                .collect(),
            root_steps: steps
                .iter()
                .map(|s| Step {
                    step: &s.step,
                    arg: &s.arg,
                    path: JsonPath::new(&s.path),
                    command: upm::wrap::command(&s.step, &s.arg, &s.path),
                    applied: s.applied,
                    note: s.note.as_deref(),
                })
                .collect(),
            reports: reports.iter().map(super::JsonReport::new).collect(),
            replaced: replaced
                .iter()
                .map(|r| Replaced {
                    path: JsonPath::new(&r.path),
                    kind: r.kind.name(),
                    uid: r.uid,
                    gid: r.gid,
                    mode: format!("{:04o}", r.mode),
                    kept: r.kept.as_deref().map(pathtext::text),
                    state: if r.replaced { "replaced" } else { "held" },
                })
                .collect(),
            tracking: tracking
                .as_ref()
                .map(|t| t.iter().map(super::tracking::JsonTracking::new).collect()),
            history,
            kept_libs: kept_libs
                .iter()
                .map(|l| KeptLib {
                    path: JsonPath::new(&l.path),
                    soname: l.soname.clone(),
                    needed_by: l.needed_by.clone(),
                })
                .collect(),
        });
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
    // The database keeps the ids; the name is the root's (`pkg-sudo` for sudo).
    let user = upm::pkguser::Names::read(&ctx.root)
        .ok()
        .and_then(|n| n.user_name(k.uid).map(String::from))
        .unwrap_or_else(|| k.name.clone());
    p.line(&format!(
        "user:        {user} (uid {}, gid {})",
        k.uid, k.gid
    ));
    p.line(&format!("files:       {}", files.len()));
    if let Some(r) = &k.recipe_path {
        p.line(&format!("recipe:      {r}"));
    }
    if let Some(h) = &recipe_hash {
        p.line(&format!("recipe hash: {h}"));
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
            "root step:   {} ({})",
            upm::wrap::command(&s.step, &s.arg, &s.path),
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
                .map(|x| format!("{}: ", quoted(x)))
                .unwrap_or_default(),
            r.detail
        ));
    }
    for r in &replaced {
        p.line(&format!(
            "replaced:    {} (was uid {} gid {} mode {:04o}{}{})",
            quoted(&r.path),
            r.uid,
            r.gid,
            r.mode,
            r.kept
                .as_ref()
                .map(|k| format!("; original kept as {}", quoted(k)))
                .unwrap_or_default(),
            if r.replaced {
                ""
            } else {
                "; held by an unfinished install"
            }
        ));
    }
    for l in &kept_libs {
        p.line(&format!(
            "kept lib:    {} (an older version's, kept for {}; `upm remove --stale-libs {}`)",
            quoted(&l.path),
            if l.needed_by.is_empty() {
                "the library above"
            } else {
                &l.needed_by
            },
            k.name
        ));
    }
    if let Some(h) = &history {
        if h.is_empty() {
            p.line("history:     no upgrades");
        }
        for u in h {
            p.line(&format!(
                "upgrade:     {} {} -> {} {}{}",
                utc(u.finished.unwrap_or(u.started)),
                u.old_version,
                u.new_version,
                u.state,
                u.detail
                    .as_deref()
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default()
            ));
            for (which, prof, hash) in [
                ("old", &u.old_profile, &u.old_recipe_hash),
                ("new", &u.new_profile, &u.new_recipe_hash),
            ] {
                if prof.is_some() || hash.is_some() {
                    p.line(&format!(
                        "             {which} profile {}{}",
                        prof.as_deref().unwrap_or("-"),
                        hash.as_deref()
                            .map(|h| format!(" (recipe hash {})", &h[..16.min(h.len())]))
                            .unwrap_or_default()
                    ));
                }
            }
        }
    }
    if let Some(t) = &tracking {
        if t.is_empty() {
            p.line("tracking:    none recorded (installed before upm recorded signals)");
        } else {
            super::tracking::show(p, t);
        }
    }
    Ok(ExitCode::SUCCESS)
}
