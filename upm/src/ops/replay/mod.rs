//! `upm replay`: rebuild a set of packages — a directory of recipes or profiles, a host
//! profile, or recipe files — in dependency order, each through the one install pipeline
//! ([`super::install::install`]), resumable after a failure, a reboot or a `kill -9`.
//!
//! Plan: read the inputs, load every recipe, order them ([`order`]) and keep what `--from`
//! and `--only` select → start: store the steps in the database (`replay_steps`), all pending
//! (`--continue` reads them back instead) → run each step not yet done: a package installed
//! at the same version and recipe hash ([`profile::recipe_hash`]) is skipped; otherwise it is
//! marked running, installed (from the binary host when `binhost.url` has an archive of the
//! same recipe hash, as `upm install` does), and marked done with its time, the sum of its phases' times,
//! the disk use of its build tree and of its installed files → stop at the first failure,
//! recorded with its phase and message (with `--keep-going`, go on with the packages that do
//! not depend on it) → the report: one row per package, with its time in SBU (relative to
//! the first package built, as the LFS book measures).

pub mod order;
mod plan;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::ctree::{Key, Value};
use crate::ctx::Ctx;
use crate::db::{Db, ReplayStep, State};
use crate::fsutil::{FileKind, on_host};
use crate::{pkguser, profile, recipe};

use super::install::{self, Installed};
use super::{Error, io};

pub use order::{Cycle, Level};
pub use plan::Planned;

/// What `upm replay` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Directories (of recipes, profiles, or a `host.toml`), host profiles or recipe files.
    pub inputs: Vec<PathBuf>,
    /// Resume the replay stored in the database.
    pub resume: bool,
    /// Start at this package (of the build order).
    pub from: Option<String>,
    /// Only these packages (in build order).
    pub only: Vec<String>,
    /// After a failure, go on with the packages that do not depend on it.
    pub keep_going: bool,
    /// Print the order and what would be skipped; change nothing.
    pub dry_run: bool,
    /// Parallel make jobs of each build (`MAKEFLAGS=-jN`).
    pub jobs: Option<u32>,
    pub sources_dirs: Vec<PathBuf>,
    pub no_check: bool,
    /// Build even when the binary host has an archive of the same recipe hash.
    pub build: bool,
}

/// The options a replay keeps for `--continue`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Kept {
    sources_dirs: Vec<PathBuf>,
    no_check: bool,
    jobs: Option<u32>,
    keep_going: bool,
    #[serde(default)]
    build: bool,
}

/// One package of a replay, as the report shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub seq: i64,
    pub name: String,
    pub version: String,
    /// The recipe (or profile) file.
    pub recipe: String,
    /// `pending`, `running`, `done`, `skipped`, `failed` or `blocked` (a dependency failed);
    /// in a dry run, `build` or `skip`.
    pub state: String,
    pub phase: Option<String>,
    pub note: Option<String>,
    pub seconds: Option<f64>,
    /// Its time over the first built package's.
    pub sbu: Option<f64>,
    pub phase_ms: Option<i64>,
    pub build_bytes: Option<i64>,
    pub installed_bytes: Option<i64>,
}

/// What a replay did.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub steps: Vec<Step>,
    pub dry_run: bool,
    /// This run's wall time.
    pub wall_seconds: f64,
    /// The sum of the phase times of the packages this run built.
    pub phase_seconds: f64,
    /// The first failure of this run: package, phase and message (the log's last lines).
    pub failed: Option<Failure>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub name: String,
    pub phase: String,
    pub message: String,
}

/// Replay: plan (or read back), then run the steps. See the module documentation.
pub fn replay(ctx: &Ctx, opts: &Options) -> Result<Report, Error> {
    let started = Instant::now();
    let (steps, kept) = if opts.resume {
        resume(ctx, opts)?
    } else {
        let planned = plan::plan(ctx, opts)?;
        let kept = Kept {
            sources_dirs: opts.sources_dirs.clone(),
            no_check: opts.no_check,
            jobs: opts.jobs,
            keep_going: opts.keep_going,
            build: opts.build,
        };
        if opts.dry_run {
            return dry_run(ctx, &planned, &kept, started);
        }
        let steps: Vec<ReplayStep> = planned.iter().enumerate().map(|(i, p)| p.step(i)).collect();
        let mut db = Db::open(&ctx.root, false)?;
        db.replay_start(
            &serde_json::to_string(&kept).expect("options serialize"),
            &steps,
        )?;
        (steps, kept)
    };
    let mut run = Run {
        ctx,
        kept,
        total: steps.len(),
        failed: BTreeSet::new(),
        phase_ms: 0,
        first_failure: None,
    };
    let mut out = Vec::new();
    let mut stop = false;
    for mut s in steps {
        if !stop && !matches!(s.state.as_str(), "done" | "skipped") {
            run.step(&mut s)?;
            stop = s.state == "failed" && !run.kept.keep_going;
        }
        out.push(s);
    }
    Ok(report(out, false, started, run.phase_ms, run.first_failure))
}

/// The steps kept in the database, with the options they were started with (sources and
/// checks given again replace them).
fn resume(ctx: &Ctx, opts: &Options) -> Result<(Vec<ReplayStep>, Kept), Error> {
    let db = Db::open(&ctx.root, false)?;
    let steps = db.replay_steps()?;
    let left = steps
        .iter()
        .filter(|s| !matches!(s.state.as_str(), "done" | "skipped"))
        .count();
    if steps.is_empty() || left == 0 {
        return Err(Error::ReplayNothing);
    }
    let mut kept: Kept = db
        .replay_options()?
        .and_then(|o| serde_json::from_str(&o).ok())
        .unwrap_or_default();
    if !opts.sources_dirs.is_empty() {
        kept.sources_dirs = opts.sources_dirs.clone();
    }
    kept.no_check |= opts.no_check;
    kept.keep_going |= opts.keep_going;
    kept.build |= opts.build;
    if opts.jobs.is_some() {
        kept.jobs = opts.jobs;
    }
    ctx.printer.note(&format!(
        "continuing the replay: {left} of {} package(s) left",
        steps.len()
    ));
    Ok((steps, kept))
}

fn dry_run(ctx: &Ctx, planned: &[Planned], kept: &Kept, started: Instant) -> Result<Report, Error> {
    // A root not set up yet has nothing installed.
    let db = match Db::open_read(&ctx.root) {
        Ok(db) => Some(db),
        Err(crate::db::Error::Missing { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let mut out = Vec::new();
    for (i, p) in planned.iter().enumerate() {
        let s = p.step(i);
        let same = match &db {
            Some(db) => installed_same(ctx, db, &s, kept)?,
            None => Same::No,
        };
        let (state, note) = match same {
            Same::Yes => ("skip", Some(same_note())),
            Same::Other(why) => ("build", Some(why)),
            Same::No => ("build", None),
        };
        out.push(ReplayStep {
            state: state.into(),
            note,
            ..s
        });
    }
    Ok(report(out, true, started, 0, None))
}

fn same_note() -> String {
    "already installed at the same version and recipe hash".into()
}

/// Whether a step's package is installed from the same recipe.
enum Same {
    Yes,
    No,
    /// Installed from another version or recipe: why, in words.
    Other(String),
}

fn installed_same(ctx: &Ctx, db: &Db, s: &ReplayStep, kept: &Kept) -> Result<Same, Error> {
    let Some(pkg) = db.package(&s.name)? else {
        return Ok(Same::No);
    };
    if pkg.state != State::Installed {
        return Ok(Same::No);
    }
    if pkg.version != s.version {
        return Ok(Same::Other(format!(
            "{} {} is installed; `upm remove {}` first to replay {}",
            s.name, pkg.version, s.name, s.version
        )));
    }
    let hash = hash_for(ctx, s, kept)?;
    let here = profile::hash_of(db, &s.name)?;
    Ok(if hash == here {
        Same::Yes
    } else {
        Same::Other(format!(
            "{} {} is installed from another recipe (recipe hash {} here, {} in the replay); \
             `upm remove {}` first to replay it",
            s.name,
            s.version,
            &here[..16],
            &hash[..16],
            s.name
        ))
    })
}

/// The recipe hash a step's install would record.
fn hash_for(ctx: &Ctx, s: &ReplayStep, kept: &Kept) -> Result<String, Error> {
    let overrides = plan::overrides_of(&s.overrides);
    let loaded = recipe::load_with(&s.recipe, &overrides)?;
    install::recipe_hash(
        ctx,
        &ctx.cfg,
        &loaded.recipe,
        &loaded.written,
        &kept.install(s, overrides),
    )
}

impl Kept {
    fn install(&self, s: &ReplayStep, overrides: Vec<(Key, Value)>) -> install::Options {
        install::Options {
            recipe: s.recipe.display().to_string(),
            overrides,
            sources_dirs: self.sources_dirs.clone(),
            source: None,
            sha256: None,
            jobs: self.jobs,
            no_check: self.no_check,
            keep_build: true,
            keep_failed: false,
            build: self.build,
            force: false,
            reinstall: false,
        }
    }
}

/// A replay under way: what its steps share.
struct Run<'a> {
    ctx: &'a Ctx,
    kept: Kept,
    total: usize,
    /// Packages that failed or were blocked in this run.
    failed: BTreeSet<String>,
    phase_ms: i64,
    first_failure: Option<Failure>,
}

impl Run<'_> {
    /// Run one step, recording where it stands before and after.
    fn step(&mut self, s: &mut ReplayStep) -> Result<(), Error> {
        self.progress(s);
        let mut db = Db::open(&self.ctx.root, false)?;
        s.phase = None;
        s.note = None;
        if let Some(dep) = self.blocked_by(s)? {
            s.state = "blocked".into();
            s.note = Some(format!("not built: {dep}, which it depends on, failed"));
            self.failed.insert(s.name.clone());
            return Ok(db.replay_update(s)?);
        }
        match installed_same(self.ctx, &db, s, &self.kept) {
            Ok(Same::Yes) => {
                s.state = "skipped".into();
                s.note = Some(same_note());
                self.ctx.printer.note(&format!(
                    "{} {}: {}, skipped",
                    s.name,
                    s.version,
                    same_note()
                ));
                return Ok(db.replay_update(s)?);
            }
            Ok(Same::Other(why)) => return self.failed(&mut db, s, "-", why),
            Ok(Same::No) => {}
            Err(e) => return self.failed(&mut db, s, "plan", e.to_string()),
        }
        s.state = "running".into();
        db.replay_update(s)?;
        drop(db);
        let overrides = plan::overrides_of(&s.overrides);
        let result = install::install(self.ctx, &self.kept.install(s, overrides));
        let mut db = Db::open(&self.ctx.root, false)?;
        match result {
            Ok(done) => self.done(&db, s, &done),
            Err(e) => {
                let phase = match &e {
                    Error::PhaseFailed { phase, .. } => phase.clone(),
                    _ => db
                        .package(&s.name)?
                        .and_then(|p| p.stage)
                        .unwrap_or_else(|| "-".into()),
                };
                self.failed(&mut db, s, &phase, e.to_string())
            }
        }
    }

    /// The package of this run a step depends on that failed, if any.
    fn blocked_by(&self, s: &ReplayStep) -> Result<Option<String>, Error> {
        if self.failed.is_empty() {
            return Ok(None);
        }
        let loaded = recipe::load_with(&s.recipe, &plan::overrides_of(&s.overrides))?;
        Ok(plan::depends(&loaded)
            .into_iter()
            .filter(|(_, l)| *l != Level::Runtime)
            .map(|(d, _)| d)
            .find(|d| self.failed.contains(d)))
    }

    fn failed(
        &mut self,
        db: &mut Db,
        s: &mut ReplayStep,
        phase: &str,
        why: String,
    ) -> Result<(), Error> {
        s.state = "failed".into();
        s.phase = Some(phase.into());
        s.note = Some(why.clone());
        db.replay_update(s)?;
        self.failed.insert(s.name.clone());
        self.ctx.printer.warn(&format!(
            "{} {} failed ({} phase): {why}",
            s.name, s.version, phase
        ));
        if self.first_failure.is_none() {
            self.first_failure = Some(Failure {
                name: s.name.clone(),
                phase: phase.into(),
                message: why,
            });
        }
        Ok(())
    }

    fn done(&mut self, db: &Db, s: &mut ReplayStep, done: &Installed) -> Result<(), Error> {
        let home = on_host(&self.ctx.root, &pkguser::home(&s.name));
        let build = home.join("build");
        let build_bytes = disk_use(&build);
        match std::fs::remove_dir_all(&build) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(&build)(e).into()),
        }
        let installed_bytes: u64 = done
            .files
            .iter()
            .filter(|f| f.kind == FileKind::File)
            .map(|f| f.size)
            .sum();
        let phase_ms = match db.package(&s.name)? {
            Some(p) => db.phases(p.id)?.iter().filter_map(|r| r.duration_ms).sum(),
            None => 0,
        };
        self.phase_ms += phase_ms;
        s.state = "done".into();
        s.seconds = Some(done.seconds);
        s.phase_ms = Some(phase_ms);
        s.build_bytes = Some(build_bytes as i64);
        s.installed_bytes = Some(installed_bytes as i64);
        Ok(db.replay_update(s)?)
    }

    /// The overall progress: a bar on a terminal, a plain line otherwise.
    fn progress(&self, s: &ReplayStep) {
        let p = &self.ctx.printer;
        if p.json_mode() {
            return;
        }
        let n = s.seq as usize;
        if p.stderr_is_tty() {
            let width = 30;
            let fill = (n - 1) * width / self.total.max(1);
            p.detail(&format!(
                "\x1b[1m[{}{}] {n}/{} {} {}\x1b[0m",
                "#".repeat(fill),
                "-".repeat(width - fill),
                self.total,
                s.name,
                s.version
            ));
        } else {
            p.note(&format!(
                "replay {n}/{}: {} {}",
                self.total, s.name, s.version
            ));
        }
    }
}

/// The disk use of a tree (its blocks), not following symlinks; 0 when it is missing.
fn disk_use(p: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(m) = std::fs::symlink_metadata(p) else {
        return 0;
    };
    let mut total = m.blocks() * 512;
    if m.is_dir()
        && let Ok(rd) = std::fs::read_dir(p)
    {
        for e in rd.flatten() {
            total += disk_use(&e.path());
        }
    }
    total
}

fn report(
    steps: Vec<ReplayStep>,
    dry_run: bool,
    started: Instant,
    phase_ms: i64,
    failed: Option<Failure>,
) -> Report {
    let first = steps
        .iter()
        .find(|s| s.state == "done")
        .and_then(|s| s.seconds)
        .filter(|t| *t > 0.0);
    Report {
        steps: steps
            .into_iter()
            .map(|s| Step {
                sbu: match (s.seconds, first) {
                    (Some(t), Some(f)) if s.state == "done" => Some(t / f),
                    _ => None,
                },
                seq: s.seq,
                name: s.name,
                version: s.version,
                recipe: crate::pathtext::text(&s.recipe),
                state: s.state,
                phase: s.phase,
                note: s.note,
                seconds: s.seconds,
                phase_ms: s.phase_ms,
                build_bytes: s.build_bytes,
                installed_bytes: s.installed_bytes,
            })
            .collect(),
        dry_run,
        wall_seconds: started.elapsed().as_secs_f64(),
        phase_seconds: phase_ms as f64 / 1000.0,
        failed,
    }
}
