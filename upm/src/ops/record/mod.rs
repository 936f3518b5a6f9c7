//! `upm record`: the recording shell of the original design. Instead of a recipe, a person
//! builds the package by hand, as its package user, and upm records what was done: every
//! command line with its working directory, exit status and duration, and — through the same
//! watcher an install uses — the files each command touched in the tracked trees.
//!
//! Take the root lock → create the package user if new (a new package gets its row, state
//! `installing`, so a killed session is undone like a killed install) → start the watcher
//! over the directories the package user can write, and the LD_PRELOAD shim's log (the shim
//! is loaded into every command of the session, as into an install phase, unless it is off)
//! → run the shell ([`bash`]: an interactive bash, or a line-by-line loop upm drives when the
//! root has no bash), or the one command given after `--` → at each command's end, a barrier
//! on the watcher cuts the paths touched so far, with what the shim logged since, so each
//! command gets its own → `commit` (or leaving the shell) records them into the package
//! ([`session::Session::commit`]: manifest as an install records it, root steps per
//! `root.allow`, which signal saw each path) and stores the lines, which the profile folds
//! into its recipe's phases ([`phases`]), so the package rebuilds; `rollback` forgets the
//! commands since the last commit and names the files they made (`rollback --undo` removes
//! them).
//!
//! The commands are labelled with the phase they belong to by `phase NAME` (`install` by
//! default); the lines are stored in the database (`commands`, origin `record`).

mod bash;
pub mod phases;
mod protocol;
mod session;

use std::path::{Path, PathBuf};

use crate::ctree::Value;
use crate::ctx::Ctx;
use crate::db::{Db, Lock, NewInstall, State};
use crate::fsutil::on_host;
use crate::pathtext::quoted;
use crate::pkguser;
use crate::recipe::{Phase, RootStep};
use crate::runner::{self, Identity, Job, Progress, as_fs_user};
use crate::track::Collector;
use crate::watch::Watcher;

use super::{Error, io, recover, setup};
pub use session::{Committed, RolledBack};

/// The root steps a new recorded package may apply unless told otherwise (as the recipe
/// templates allow).
pub const DEFAULT_ALLOW: [RootStep; 2] = [RootStep::Ldconfig, RootStep::InstallInfo];

pub struct Options {
    pub package: String,
    /// The version of a package not installed yet (an installed one keeps its own).
    pub version: Option<String>,
    /// One command to record; empty: an interactive shell.
    pub command: Vec<String>,
    /// Root steps to allow besides the package's `root.allow` (or [`DEFAULT_ALLOW`]).
    pub allow: Vec<RootStep>,
    /// The shell: `None` for bash when the root has it, else the loop upm drives; `sh` forces
    /// the loop.
    pub shell: Option<String>,
    /// The terminal type to pass on to the shell (`TERM`).
    pub term: Option<String>,
    pub jobs: Option<u32>,
    /// The phase the commands are recorded under until a `phase NAME` (the one command's).
    pub phase: Phase,
}

/// What a recording session did.
#[derive(Debug, Default)]
pub struct Recorded {
    pub name: String,
    pub version: String,
    pub user_created: bool,
    /// The commits made, in order.
    pub commits: Vec<Committed>,
    /// The one command's exit status (`upm record PKG -- CMD`), or the shell's.
    pub status: i32,
    /// The profile last written (inside the root).
    pub profile: Option<PathBuf>,
}

/// Record a session (or one command) for a package. See the module documentation.
pub fn record(ctx: &Ctx, opts: &Options) -> Result<Recorded, Error> {
    let root = &ctx.root;
    let cfg = &ctx.cfg;
    let name = opts.package.clone();
    if !crate::recipe::valid_name(&name) {
        return Err(Error::RecordName { name });
    }
    let _lock = Lock::take(root, &format!("upm record {name}"))?;
    let mut db = Db::open(root, false)?;
    recover::recover(ctx, &mut db)?;
    let existing = db.package(&name)?;
    let version = match (&existing, &opts.version) {
        (Some(row), _) if row.state != State::Installed => {
            return Err(Error::RecordNotInstalled {
                name,
                state: row.state.name().into(),
            });
        }
        (Some(row), Some(v)) if *v != row.version => {
            return Err(Error::RecordVersion {
                name,
                installed: row.version.clone(),
                given: v.clone(),
            });
        }
        (Some(row), _) => row.version.clone(),
        (None, Some(v)) => v.clone(),
        (None, None) => return Err(Error::RecordNeedsVersion { name }),
    };
    let (user, user_created) = pkguser::add(root, &name, &cfg.ids)?;
    if user_created {
        ctx.printer.note(&format!(
            "created package user {} (uid {}, gid {})",
            user.name, user.uid, user.gid
        ));
    }
    setup::end_processes(root, &user)?;
    let mut allow = match &existing {
        Some(row) => recipe_allow(row.recipe.as_deref().unwrap_or("")),
        None => DEFAULT_ALLOW.to_vec(),
    };
    for a in &opts.allow {
        if !allow.contains(a) {
            allow.push(*a);
        }
    }
    let id = match &existing {
        Some(row) => row.id,
        None => {
            let id = db.begin(&NewInstall {
                name: &name,
                version: &version,
                description: None,
                uid: user.uid,
                gid: user.gid,
                recipe_path: "",
                recipe: "",
            })?;
            // A killed session before the first commit is undone like a killed install.
            db.set_state(id, State::Installing, Some("record"), None)?;
            id
        }
    };
    let home = on_host(root, &user.home);
    let mut s = session::Session {
        ctx,
        db,
        user,
        id,
        name: name.clone(),
        version: version.clone(),
        home,
        allow,
        collector: None,
        pending: Vec::new(),
        loose: Default::default(),
        phase: opts.phase,
        since: crate::db::now(),
        commits: 0,
        shim: None,
        inotify_seen: Default::default(),
        shim_seen: None,
        profile: None,
        recorded_only: false,
    };
    let env = prepare(&mut s, opts)?;
    profile_inputs(&s, existing.as_ref(), &env, !opts.allow.is_empty())?;
    s.recorded_only = match &existing {
        None => true,
        Some(_) => {
            let cmds = s.db.commands(s.id)?;
            !cmds.is_empty() && cmds.iter().all(|c| c.origin == crate::db::Origin::Record)
        }
    };
    let mut out = Recorded {
        name,
        version,
        user_created,
        ..Recorded::default()
    };
    let ran = if opts.command.is_empty() {
        bash::interactive(&mut s, opts, &env, &mut out)
    } else {
        one_command(&mut s, &opts.command, &env, &mut out)
    };
    let finished = finish(&mut s, &mut out);
    setup::end_processes(root, &s.user)?;
    if s.commits == 0 && existing.is_none() {
        // Nothing was ever committed: the package was never made.
        s.db.delete(s.id)?;
        ctx.printer.note(&format!(
            "nothing committed: {} is not recorded as a package (its package user stays; \
             `upm user list` shows it)",
            out.name
        ));
    }
    ran?;
    finished?;
    out.profile = s.profile.clone();
    Ok(out)
}

/// What the profile is written from besides the commands: for a new package, a recipe of its
/// name, version and `root.allow` (the phases come from the committed commands); for an
/// installed one, what its install stored (made from its stored recipe when it has none), with
/// `root.allow` widened by `--allow`.
fn profile_inputs(
    s: &session::Session<'_>,
    existing: Option<&crate::db::Package>,
    env: &[(String, String)],
    widen: bool,
) -> Result<(), Error> {
    let row = s.db.profile(s.id)?;
    if existing.is_some() && row.is_some() && !widen {
        return Ok(());
    }
    let file = Path::new("<recipe in the database>");
    let mut tree = match (&row, existing) {
        (Some(r), _) => crate::ctree::parse_str(&r.recipe, crate::ctree::Syntax::Toml, file)
            .map_err(crate::recipe::Error::Tree)?,
        (None, Some(pkg)) => {
            let text = pkg.recipe.as_deref().unwrap_or("");
            crate::ctree::parse_str(text, crate::ctree::Syntax::Ct, file)
                .map_err(crate::recipe::Error::Tree)?
        }
        (None, None) => {
            let mut t = crate::ctree::Tree::new();
            set(&mut t, "package.name", Value::Str(s.name.clone()));
            set(&mut t, "package.version", Value::Str(s.version.clone()));
            set(
                &mut t,
                "package.description",
                Value::Str(format!("{} as recorded by upm record", s.name)),
            );
            t
        }
    };
    let allow = s.allow.iter().map(|a| a.name().to_string()).collect();
    set(&mut tree, "root.allow", Value::List(allow));
    match row {
        Some(mut r) => {
            r.recipe = tree.to_toml();
            s.db.set_profile_inputs(s.id, &r)?;
        }
        None => crate::profile::record_inputs(s.ctx, &s.db, s.id, &tree, None, env)
            .map_err(Error::Profile)?,
    }
    Ok(())
}

/// Set one key of a recipe tree.
fn set(tree: &mut crate::ctree::Tree, key: &str, value: Value) {
    tree.insert(crate::ctree::Entry {
        key: crate::ctree::Key::parse(key).expect("a valid key"),
        value,
        loc: crate::ctree::Loc::none(),
        literal: false,
    });
}

/// The root steps a stored recipe allows (`root.allow`).
fn recipe_allow(text: &str) -> Vec<RootStep> {
    let tree = crate::ctree::parse_str(text, crate::ctree::Syntax::Ct, Path::new("recipe"))
        .unwrap_or_default();
    match tree.get_str("root.allow") {
        Some(crate::ctree::Value::List(l)) => {
            l.iter().filter_map(|s| RootStep::from_name(s)).collect()
        }
        _ => Vec::new(),
    }
}

/// The home's bookkeeping (logs, steps file, build directory), the wrappers, the phase
/// environment, and the watcher. Returns the environment.
fn prepare(s: &mut session::Session<'_>, opts: &Options) -> Result<Vec<(String, String)>, Error> {
    let root = s.ctx.root.clone();
    let (uid, gid) = (s.user.uid, s.user.gid);
    for d in [
        s.home.join("logs"),
        s.home.join(".upm"),
        s.home.join("build"),
    ] {
        as_fs_user(uid, gid, || std::fs::create_dir_all(&d)).map_err(io(&d))?;
    }
    let steps = s.steps_file();
    as_fs_user(uid, gid, || std::fs::write(&steps, b"")).map_err(io(&steps))?;
    setup::wrappers(&root)?;
    let jobs = opts
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get() as u32));
    let mut env = setup::environment(&s.user, jobs, &[]);
    if crate::shim::enabled(&s.ctx.cfg) {
        match crate::shim::unusable(&root) {
            None => {
                let log = s.user.home.join(".upm/shim-record.log");
                let shim = crate::shim::Session::start(&root, &log, Some((uid, gid)))?;
                env.extend(shim.env());
                s.shim = Some(shim);
                s.shim_seen = Some(Default::default());
            }
            Some(why) => s
                .ctx
                .printer
                .warn(&format!("{why}; recording with the watcher alone")),
        }
    }
    let mut rules = setup::watch_rules(&root, &s.ctx.cfg);
    rules.writer = Some(crate::watch::Writer {
        uid,
        gids: vec![gid, s.ctx.cfg.ids.install_gid],
    });
    let dirs = crate::watch::writable_dirs(&rules);
    let w = Watcher::with_dirs(rules, &dirs).map_err(Error::Watch)?;
    s.collector = Some(Collector::start_with(&root, w).map_err(Error::Watch)?);
    Ok(env)
}

/// The package user's identity.
fn identity(s: &session::Session<'_>) -> Identity {
    Identity {
        uid: s.user.uid,
        gid: s.user.gid,
        groups: [s.ctx.cfg.ids.install_gid],
    }
}

/// The build directory, inside the root: where the shell and the one command start.
fn build_dir(s: &session::Session<'_>) -> PathBuf {
    s.user.home.join("build")
}

/// `upm record PKG -- CMD...`: run one command as the package user in its build directory,
/// output in `logs/record.log`, and commit it; a failed command is rolled back and undone,
/// as a failed install is.
fn one_command(
    s: &mut session::Session<'_>,
    command: &[String],
    env: &[(String, String)],
    out: &mut Recorded,
) -> Result<(), Error> {
    let script = phases::line(command);
    let log = s.home.join("logs/record.log");
    let cwd = build_dir(s);
    let started = crate::db::now();
    let progress = Progress::new(s.ctx.printer.stderr_is_tty(), s.ctx.printer.json_mode());
    let ran = runner::run(
        &Job {
            label: format!("{} record", s.name),
            script: &script,
            who: identity(s),
            root: &s.ctx.root,
            cwd: &cwd,
            env,
            log: &log,
            shell: None,
        },
        &progress,
    )?;
    out.status = ran.status;
    s.ended(&script, &cwd, ran.status, started, ran.duration)?;
    if ran.success() {
        let committed = s.commit()?;
        out.commits.extend(committed);
        return Ok(());
    }
    let undone = s.rollback(true)?;
    let tail = runner::tail(&log, 12)
        .iter()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n");
    Err(Error::RecordFailed {
        name: s.name.clone(),
        status: ran.status,
        log: s.user.home.join("logs/record.log").display().to_string(),
        removed: undone.made.len(),
        tail,
    })
}

/// The end of a session: what the watcher saw last, committed when anything is pending.
fn finish(s: &mut session::Session<'_>, out: &mut Recorded) -> Result<(), Error> {
    if let Some(c) = s.collector.take() {
        let last = c.finish().map_err(Error::Watch)?;
        let last = s.absorb(last)?;
        s.loose.merge(last);
    }
    if let Some(c) = s.commit()? {
        report_commit(s, &c);
        out.commits.push(c);
    }
    Ok(())
}

/// Tell the user what a commit recorded.
pub(crate) fn report_commit(s: &session::Session<'_>, c: &Committed) {
    let applied = c.steps.iter().filter(|r| r.applied).count();
    let mut text = format!(
        "{}: committed {} command(s) and {} path(s) to {} {}'s manifest",
        s.name,
        c.commands,
        c.files.len(),
        s.name,
        s.version
    );
    if applied > 0 {
        text.push_str(&format!(", {applied} root step(s) applied"));
    }
    if c.failed > 0 {
        text.push_str(&format!(
            "; {} failed command(s) left out of the recipe's phases",
            c.failed
        ));
    }
    s.ctx.printer.note(&text);
}

/// Tell the user what a rollback forgot.
pub(crate) fn report_rollback(s: &session::Session<'_>, r: &RolledBack, undo: bool) {
    let p = &s.ctx.printer;
    p.note(&format!(
        "{}: forgot {} command(s) since the last commit; they made {} path(s){}",
        s.name,
        r.commands,
        r.made.len(),
        match (undo, r.made.is_empty()) {
            (_, true) => String::new(),
            (true, false) => ", removed".to_string(),
            (false, false) => " (still there: `rollback --undo` removes them)".to_string(),
        }
    ));
    for m in r.made.iter().take(50) {
        p.detail(&format!("  {}", quoted(m)));
    }
    if r.made.len() > 50 {
        p.detail(&format!("  … and {} more", r.made.len() - 50));
    }
    for c in &r.changed {
        p.detail(&format!("  changed, not undone: {}", quoted(c)));
    }
}
