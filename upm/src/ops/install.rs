//! `upm install`: build a package from its recipe as its own package user and record exactly
//! what its install left on disk.
//!
//! Resolve the recipe → take the root lock → create the package user → find, verify and unpack
//! the source as that user → run the phases as that user (wrappers first in PATH) → watch the
//! install phase (and the recipe's root commands) → apply the recorded root steps the recipe
//! allows → store the manifest, phases, steps and reports in one transaction.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::config::Config;
use crate::ctree::{Key, Value};
use crate::ctx::Ctx;
use crate::db::{Db, Lock, NewInstall, Outcome, ReportRow, State, StepRow};
use crate::fsutil::FileKind;
use crate::fsutil::{in_root, on_host};
use crate::manifest::{Entry, vanished};
use crate::pkguser::{self, Names, PkgUser, installdir};
use crate::recipe::{self, Phase, Recipe};
use crate::runner::{self, Identity, Job, Progress, as_fs_user};
use crate::source;
use crate::track::{Claim, Collector, Touched};
use crate::watch::Watcher;
use crate::wrap::Step;

use super::{Error, guard, io, recover, rootsteps, setup};
use crate::pathtext::quoted;

pub struct Options {
    /// A recipe file, or the name of one in the recipe directories.
    pub recipe: String,
    /// Keys set on the command line (`--set vars.prefix=/usr/local`).
    pub overrides: Vec<(Key, Value)>,
    /// Extra directories to look for the source archive in (host paths).
    pub sources_dirs: Vec<PathBuf>,
    /// The source archive to use, whatever the recipe's file name says.
    pub source: Option<PathBuf>,
    pub jobs: Option<u32>,
    pub no_check: bool,
    pub keep_build: bool,
}

/// What an install did.
#[derive(Debug)]
pub struct Installed {
    pub name: String,
    pub version: String,
    pub user: PkgUser,
    pub user_created: bool,
    pub files: Vec<Entry>,
    pub steps: Vec<StepRow>,
    pub reports: Vec<ReportRow>,
    pub seconds: f64,
}

/// Find a recipe: a path to a file, or a name looked up in the configured recipe directories
/// (as `NAME.toml` or `NAME.ct`).
pub fn find_recipe(ctx: &Ctx, cfg: &Config, spec: &str) -> Result<PathBuf, Error> {
    let p = Path::new(spec);
    if p.is_file() {
        return Ok(p.to_path_buf());
    }
    let mut searched = Vec::new();
    if recipe::valid_name(spec) {
        for dir in &cfg.recipe_dirs {
            let d = on_host(&ctx.root, dir);
            for ext in ["toml", "ct"] {
                let f = d.join(format!("{spec}.{ext}"));
                if f.is_file() {
                    return Ok(f);
                }
            }
            searched.push(d);
        }
    }
    Err(Error::NoRecipe {
        name: spec.into(),
        searched,
    })
}

/// Paths in a log's last lines that exist and belong to someone other than `uid`: the file a
/// refused install tried to replace.
fn refused_paths(db: &Db, root: &Path, log: &Path, uid: u32) -> Vec<(PathBuf, u32)> {
    use std::os::unix::fs::MetadataExt;
    let mut out: Vec<(PathBuf, u32, bool)> = Vec::new();
    for line in runner::tail(log, 30).iter().rev() {
        let cleaned: String = line
            .chars()
            .map(|c| {
                if "'\"`‘’“”()".contains(c) {
                    ' '
                } else {
                    c
                }
            })
            .collect();
        for (i, word) in cleaned.split_whitespace().enumerate() {
            // "/bin/sh: 3: cannot create ...": the leading program name is not the victim.
            if i == 0 && word.ends_with(':') {
                continue;
            }
            let word = word.trim_end_matches([':', ',', ';', '.']);
            if !word.starts_with('/') || word.len() < 2 {
                continue;
            }
            let p = PathBuf::from(word);
            if let Ok(m) = std::fs::symlink_metadata(on_host(root, &p))
                && m.uid() != uid
                && !m.is_dir()
                && !out.iter().any(|(q, ..)| *q == p)
            {
                let known = db.owners(&p).is_ok_and(|o| !o.is_empty());
                out.push((p, m.uid(), known));
            }
        }
    }
    // A file some package installed is the likeliest victim.
    out.sort_by_key(|(_, _, known)| !known);
    out.into_iter().map(|(p, u, _)| (p, u)).collect()
}

/// Remove a directory tree as root (the old build tree), if it is there.
fn clear(p: &Path) -> Result<(), Error> {
    match std::fs::remove_dir_all(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io(p)(e).into()),
    }
}

struct Build<'a> {
    ctx: &'a Ctx,
    cfg: &'a Config,
    recipe: &'a Recipe,
    user: &'a PkgUser,
    id: i64,
    home: PathBuf,
    progress: Progress,
}

impl Build<'_> {
    fn identity(&self) -> Identity {
        Identity {
            uid: self.user.uid,
            gid: self.user.gid,
            groups: [self.cfg.ids.install_gid],
        }
    }

    fn log(&self, name: &str) -> PathBuf {
        self.home.join("logs").join(format!("{name}.log"))
    }

    /// Make a directory in the home as the package user.
    fn user_dir(&self, p: &Path) -> Result<(), Error> {
        as_fs_user(self.user.uid, self.user.gid, || std::fs::create_dir_all(p))
            .map_err(|e| io(p)(e).into())
    }

    /// Run one phase script, recording it in the database.
    fn phase(
        &self,
        db: &Db,
        name: &str,
        script: &str,
        who: Identity,
        cwd: &Path,
        env: &[(String, String)],
    ) -> Result<runner::Ran, Error> {
        let user = if who.uid == 0 {
            "root"
        } else {
            &self.user.name
        };
        let seq = db.phase_started(self.id, name, script, user)?;
        let log = self.log(name);
        let ran = runner::run(
            &Job {
                label: format!("{} {name}", self.recipe.package.name),
                script,
                who,
                root: &self.ctx.root,
                cwd,
                env,
                log: &log,
                shell: self.recipe.options.shell.as_deref(),
            },
            &self.progress,
        )
        .inspect_err(|e| {
            // A phase that could not start is a failed install, not an interrupted one.
            let _ = db.set_state(self.id, State::Failed, Some(name), Some(&e.to_string()));
        })?;
        db.phase_finished(self.id, seq, ran.status, ran.duration.as_millis() as i64)?;
        Ok(ran)
    }

    /// Unpack (or copy) the source as the package user; returns the working directory
    /// (inside the root).
    fn unpack(&self, archive: Option<&Path>) -> Result<PathBuf, Error> {
        let build = self.home.join("build");
        clear(&build)?;
        self.user_dir(&build)?;
        let inside = |p: &Path| in_root(&self.ctx.root, p);
        if let Some(archive) = archive {
            let unpacked = as_fs_user(self.user.uid, self.user.gid, || {
                source::unpack(archive, &build, None)
            })?;
            return Ok(inside(&unpacked.dir));
        }
        if let Some(dir) = &self.recipe.source.dir {
            let from = self
                .recipe
                .path
                .parent()
                .unwrap_or(Path::new("."))
                .join(dir);
            let to = build.join(format!(
                "{}-{}",
                self.recipe.package.name, self.recipe.package.version
            ));
            as_fs_user(self.user.uid, self.user.gid, || {
                source::copy_dir(&from, &to)
            })?;
            return Ok(inside(&to));
        }
        Ok(inside(&build))
    }
}

/// Find the source archive and verify its checksums, before anything is changed.
fn locate(
    ctx: &Ctx,
    cfg: &Config,
    recipe: &Recipe,
    opts: &Options,
) -> Result<Option<PathBuf>, Error> {
    let src = &recipe.source;
    // Without `source.file`, the archive is named as the end of its URL.
    let from_url = src
        .url
        .as_deref()
        .and_then(|u| u.rsplit('/').next())
        .filter(|n| !n.is_empty())
        .map(String::from);
    let Some(file) = src.file.clone().or(from_url) else {
        return Ok(None);
    };
    let archive = match &opts.source {
        Some(s) => s.clone(),
        None => {
            let mut dirs = opts.sources_dirs.clone();
            dirs.extend(cfg.source_dirs.iter().map(|d| on_host(&ctx.root, d)));
            dirs.push(on_host(&ctx.root, &pkguser::home(&recipe.package.name)));
            source::find(&file, &dirs)?
        }
    };
    source::verify(&archive, src.md5.as_deref(), src.sha256.as_deref())?;
    Ok(Some(archive))
}

/// Install a package. See the module documentation for the steps.
pub fn install(ctx: &Ctx, opts: &Options) -> Result<Installed, Error> {
    let started = Instant::now();
    let p = &ctx.printer;
    let root = &ctx.root;
    let cfg = ctx.cfg.clone();
    let path = find_recipe(ctx, &cfg, &opts.recipe)?;
    let recipe::Loaded {
        recipe,
        tree,
        warnings,
    } = recipe::load_with(&path, &opts.overrides)?;
    for w in &warnings {
        p.warn(&w.to_string());
    }
    let name = recipe.package.name.clone();
    let _lock = Lock::take(root, &format!("upm install {name}"))?;
    let mut db = Db::open(root, false)?;
    recover::recover(ctx, &mut db)?;
    let existing = db.package(&name)?;
    if let Some(row) = &existing
        && row.state == State::Installed
    {
        return Err(Error::AlreadyInstalled {
            name,
            version: row.version.clone(),
        });
    }
    let earlier: Vec<Entry> = match &existing {
        Some(row) => db.files(row.id)?,
        None => Vec::new(),
    };
    let archive = locate(ctx, &cfg, &recipe, opts)?;

    let (user, user_created) = pkguser::add(root, &name, &cfg.ids)?;
    if user_created {
        p.note(&format!(
            "created package user {} (uid {}, gid {})",
            user.name, user.uid, user.gid
        ));
    }
    setup::end_processes(root, &user)?;
    let home = on_host(root, &user.home);
    let id = db.begin(&NewInstall {
        name: &name,
        version: &recipe.package.version,
        description: recipe.package.description.as_deref(),
        uid: user.uid,
        gid: user.gid,
        recipe_path: &path.display().to_string(),
        recipe: &tree.to_ct(),
    })?;
    let b = Build {
        ctx,
        cfg: &cfg,
        recipe: &recipe,
        user: &user,
        id,
        home: home.clone(),
        progress: Progress::new(p.stderr_is_tty(), p.json_mode()),
    };
    let fail = |db: &Db, stage: &str, e: Error| -> Error {
        let _ = db.set_state(id, State::Failed, Some(stage), Some(&e.to_string()));
        e
    };

    // The home's bookkeeping: logs, the steps file; a fresh build tree.
    for d in [home.join("logs"), home.join(".upm")] {
        clear(&d)?;
        b.user_dir(&d)?;
    }
    let steps_file = home.join(".upm/steps");
    as_fs_user(user.uid, user.gid, || std::fs::write(&steps_file, b"")).map_err(io(&steps_file))?;
    setup::wrappers(root)?;
    let workdir = match b.unpack(archive.as_deref()) {
        Ok(w) => w,
        Err(e) if existing.is_none() => {
            // A refused archive on a first install leaves the root as it was.
            db.delete(id)?;
            if user_created {
                pkguser::remove(root, &name, &cfg.ids)?;
                clear(&home)?;
            }
            return Err(e);
        }
        Err(e) => return Err(fail(&db, "unpack", e)),
    };

    let jobs = opts
        .jobs
        .or(recipe.options.jobs)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get() as u32));
    let env = setup::environment(&user, jobs, &recipe.env);
    let rules = setup::watch_rules(root, &cfg);
    let mut touched = Touched::default();
    let mut root_touched = Touched::default();
    // The package user can only change directories it may write: the install phase watches
    // those (install directories, its own) — a few hundred watches set up in a blink, and no
    // watch at all while it compiles, so the kernel's per-access cost of watches stays out of
    // the build. The root commands, which may write anywhere, get the whole trees watched.
    let mut user_rules = rules.clone();
    user_rules.writer = Some(crate::watch::Writer {
        uid: user.uid,
        gids: vec![user.gid, cfg.ids.install_gid],
    });
    let since = crate::db::now();
    // Finding those directories walks the trees: done while the package builds.
    let scan_rules = user_rules.clone();
    let mut scan = Some(std::thread::spawn(move || {
        crate::watch::writable_dirs(&scan_rules)
    }));
    let mut install_failed: Option<(&str, runner::Ran)> = None;

    for (phase, script) in &recipe.phases {
        if script.trim().is_empty() {
            continue;
        }
        if *phase == Phase::Check && opts.no_check {
            p.note(&format!("{name}: check skipped (--no-check)"));
            continue;
        }
        if *phase != Phase::Install {
            let ran = b.phase(&db, phase.name(), script, b.identity(), &workdir, &env)?;
            if ran.success() {
                continue;
            }
            if *phase == Phase::Check && !recipe.options.check_fatal {
                p.warn(&format!(
                    "{name}: the check phase failed (status {}); going on, as options.check_fatal is false",
                    ran.status
                ));
                continue;
            }
            return Err(fail(
                &db,
                phase.name(),
                phase_failed(&b, phase.name(), &ran),
            ));
        }
        db.set_state(id, State::Installing, Some("install"), None)?;
        let dirs = match scan.take().map(|t| t.join()) {
            Some(Ok(dirs)) => dirs,
            _ => crate::watch::writable_dirs(&user_rules),
        };
        let w = Watcher::with_dirs(user_rules.clone(), &dirs).map_err(Error::Watch)?;
        let c = Collector::start_with(root, w).map_err(Error::Watch)?;
        let ran = b.phase(&db, "install", script, b.identity(), &workdir, &env);
        touched = c.finish().map_err(Error::Watch)?;
        let ran = ran?;
        if !ran.success() {
            install_failed = Some(("install", ran));
        }
    }
    if install_failed.is_none()
        && let Some(cmds) = recipe
            .root
            .commands
            .as_deref()
            .filter(|c| !c.trim().is_empty())
    {
        db.set_state(id, State::Installing, Some("root"), None)?;
        let c = Collector::start(root, rules.clone()).map_err(Error::Watch)?;
        let root_id = Identity {
            uid: 0,
            gid: 0,
            groups: [0],
        };
        let ran = b.phase(&db, "root", cmds, root_id, &workdir, &env);
        root_touched = c.finish().map_err(Error::Watch)?;
        let ran = ran?;
        if !ran.success() {
            install_failed = Some(("root", ran));
        }
    }
    let inside = setup::inside_rules(&cfg);
    if touched.rescan || root_touched.rescan {
        p.warn("the watcher lost events (kernel queue overflow); rescanning the tracked trees");
        touched.rescan(root, &inside, since);
    }

    let names = Names::read(root)?;
    let mut tracked = touched
        .manifest(root, Claim::Owners(&[user.uid]))
        .map_err(io(root))?;
    let root_tracked = root_touched
        .manifest(root, Claim::Appeared)
        .map_err(io(root))?;
    // Root changing this package's own files is no news; changing anyone else's is.
    let own: BTreeSet<PathBuf> = tracked
        .entries
        .iter()
        .map(|e| e.path.clone())
        .chain(earlier.iter().map(|e| e.path.clone()))
        .collect();
    tracked.foreign.extend(
        root_tracked
            .foreign
            .into_iter()
            .filter(|(p, _)| !own.contains(p)),
    );
    for e in root_tracked.entries {
        if !tracked.entries.iter().any(|m| m.path == e.path) {
            tracked.entries.push(e);
        }
    }
    let mut reports = Vec::new();
    // System files (the linker cache, the info dir file) are never a package's.
    reports.extend(guard::system_files(ctx, &user, &mut tracked)?);
    for (path, uid) in &tracked.foreign {
        let (owner, _) = setup::owner_of(&db, &names, path, *uid);
        let detail = format!("changed during the install, but belongs to {owner}; not claimed");
        p.warn(&format!("{}: {detail}", quoted(&path)));
        reports.push(ReportRow {
            kind: "foreign".into(),
            path: Some(path.clone()),
            detail,
        });
    }
    let earlier_paths: BTreeSet<PathBuf> = earlier.iter().map(|e| e.path.clone()).collect();

    if let Some((stage, ran)) = install_failed {
        let log = b.log(stage);
        let err = match refused_paths(&db, root, &log, user.uid).into_iter().next() {
            Some((path, uid)) => {
                let (owner, owner_short) = setup::owner_of(&db, &names, &path, uid);
                reports.push(ReportRow {
                    kind: "conflict".into(),
                    path: Some(path.clone()),
                    detail: format!("the install tried to replace it; it belongs to {owner}"),
                });
                Error::Conflict {
                    name: name.clone(),
                    path: path.display().to_string(),
                    owner,
                    owner_short,
                }
            }
            None => phase_failed(&b, stage, &ran),
        };
        // No setuid/setgid file stays a package user's, even from a failed install.
        let recorded = Step::parse_all(&std::fs::read(&steps_file).unwrap_or_default());
        let allow = &recipe.root.allow;
        reports.extend(guard::setid(ctx, allow, &recorded, &mut tracked.entries)?);
        let msg = err.to_string();
        let gone = vanished(
            root,
            earlier_paths.iter().map(PathBuf::as_path),
            &tracked.entries,
        );
        db.record(
            id,
            &Outcome {
                files: &tracked.entries,
                gone: &gone,
                steps: &[],
                reports: &reports,
                state: State::Failed,
                stage: Some(stage),
                error: Some(&msg),
            },
        )?;
        return Err(err);
    }

    // What was tracked is stored before root steps change owners, so a upm killed from here
    // on leaves the whole manifest behind (recovery finds the rest by owner).
    db.record(
        id,
        &Outcome {
            files: &tracked.entries,
            gone: &[],
            steps: &[],
            reports: &reports,
            state: State::Installing,
            stage: Some("root steps"),
            error: None,
        },
    )?;

    // Directories the package made become install directories, so later packages can add to
    // a new /usr/share/locale/xx/LC_MESSAGES or /usr/lib/pkgconfig.
    let mut steps = Vec::new();
    for e in tracked.entries.iter_mut() {
        if e.kind == FileKind::Dir && e.uid == user.uid {
            let host = on_host(root, &e.path);
            installdir::make(&host, cfg.ids.install_gid)?;
            e.shared = true;
            steps.push(StepRow {
                step: "installdir".into(),
                arg: format!("root:{} {:o}", cfg.ids.install_group, installdir::MODE),
                path: e.path.clone(),
                applied: true,
                note: None,
            });
        }
    }
    let recorded = Step::parse_all(&std::fs::read(&steps_file).unwrap_or_default());
    let mine: BTreeSet<PathBuf> = tracked
        .entries
        .iter()
        .map(|e| e.path.clone())
        .chain(earlier_paths.iter().cloned())
        .collect();
    let applied = rootsteps::apply(root, &recipe.root.allow, &recorded, &mine, &names);
    for r in &applied.rows {
        if !r.applied {
            p.warn(&format!(
                "root step `{}` not applied: {}",
                crate::wrap::command(&r.step, &r.arg, &r.path),
                r.note.as_deref().unwrap_or("")
            ));
        }
    }
    steps.extend(applied.rows);
    if applied.ldconfig {
        run_as_root(&b, &db, &env, "ldconfig", "ldconfig")?;
    }
    for args in &applied.install_info {
        let script = format!("install-info {}", setup::sh_quote_all(args));
        run_as_root(&b, &db, &env, "install-info", &script)?;
    }

    // The final state of every path, after the root steps, merged with an earlier attempt's.
    let mut final_paths = mine;
    final_paths.extend(applied.created);
    let shared: BTreeSet<PathBuf> = tracked
        .entries
        .iter()
        .chain(&earlier)
        .filter(|e| e.shared)
        .map(|e| e.path.clone())
        .collect();
    let mut files = Vec::new();
    let mut gone = Vec::new();
    for path in &final_paths {
        match Entry::read(root, path).map_err(io(path))? {
            Some(mut e) => {
                e.shared = shared.contains(path);
                files.push(e);
            }
            None => gone.push(path.clone()),
        }
    }
    // No setuid/setgid file stays a package user's: what no allowed root step made root's.
    let allow = &recipe.root.allow;
    reports.extend(guard::setid(ctx, allow, &recorded, &mut files)?);
    for e in files.iter().filter(|e| e.is_setid()) {
        let detail = format!(
            "installed {} (mode {:04o}, owner uid {})",
            if e.mode & 0o4000 != 0 {
                "setuid"
            } else {
                "setgid"
            },
            e.mode,
            e.uid
        );
        p.warn(&format!("{}: {detail}", quoted(&e.path)));
        reports.push(ReportRow {
            kind: "setuid".into(),
            path: Some(e.path.clone()),
            detail,
        });
    }
    db.record(
        id,
        &Outcome {
            files: &files,
            gone: &gone,
            steps: &steps,
            reports: &reports,
            state: State::Installed,
            stage: None,
            error: None,
        },
    )?;
    if !opts.keep_build {
        clear(&home.join("build"))?;
    }
    Ok(Installed {
        name,
        version: recipe.package.version.clone(),
        user,
        user_created,
        files,
        steps,
        reports,
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn phase_failed(b: &Build<'_>, phase: &str, ran: &runner::Ran) -> Error {
    let log = b.log(phase);
    let tail = runner::tail(&log, 12)
        .iter()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n");
    let inside = b.user.home.join("logs").join(format!("{phase}.log"));
    Error::PhaseFailed {
        name: b.recipe.package.name.clone(),
        phase: phase.into(),
        status: ran.status,
        log: inside.display().to_string(),
        tail,
    }
}

/// Run a root step's real command as root, after the install (not tracked: the linker cache
/// and the info `dir` file belong to the system, not to a package).
fn run_as_root(
    b: &Build<'_>,
    db: &Db,
    env: &[(String, String)],
    name: &str,
    script: &str,
) -> Result<(), Error> {
    let root_id = Identity {
        uid: 0,
        gid: 0,
        groups: [0],
    };
    let ran = b.phase(db, name, script, root_id, Path::new("/"), env)?;
    if !ran.success() {
        b.ctx.printer.warn(&format!(
            "{name} failed with status {}; see {}",
            ran.status,
            b.log(name).display()
        ));
    }
    Ok(())
}
