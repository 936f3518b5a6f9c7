//! `upm install`: build a package from its recipe as its own package user and record exactly
//! what its install left on disk.
//!
//! Resolve the recipe → take the root lock → create the package user → find, verify and unpack
//! the source as that user → build: run the phases before the install as that user (wrappers
//! first in PATH) → trial: run the install phase in a throwaway overlay to learn what it will
//! write, refusing a conflict with another package before anything is written → take over:
//! make the directories it needs writable and hand it the files no package owns that it
//! replaces → install: run the install phase (and the recipe's root commands) watched →
//! record: give back what it did not replace, apply the recorded root steps the recipe allows,
//! store the manifest, phases, steps and reports in one transaction. A failed install is
//! undone: what it wrote is removed and what it replaced put back (`--keep-failed` keeps it).
//! A package installed at another version is upgraded (`upgrade.rs`): built under a row of
//! its own, the old version's files kept aside before the install phase, then stale files,
//! configuration files and the swap of the records.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::config::Config;
use crate::ctree::{Key, Value};
use crate::ctx::Ctx;
use crate::db::{
    Db, Lock, NewCommand, NewInstall, Origin, Outcome, ReplacedRow, ReportRow, State, StepRow,
};
use crate::fsutil::FileKind;
use crate::fsutil::{in_root, on_host};
use crate::manifest::{Entry, vanished};
use crate::pkguser::{self, Names, PkgUser, installdir};
use crate::profile;
use crate::recipe::{self, Phase, Recipe};
use crate::runner::{self, Identity, Job, Progress, as_fs_user};
use crate::source;
use crate::track::{Claim, Collector, Touched};
use crate::trial;
use crate::watch::Watcher;
use crate::wrap::Step;

use super::upgrade::Upgrade;
use super::{Error, guard, io, libs, recover, rootsteps, setup, takeover};
use crate::pathtext::quoted;

pub struct Options {
    /// A recipe file, or the name of one in the recipe directories.
    pub recipe: String,
    /// Keys set on the command line (`--set vars.prefix=/usr/local`).
    pub overrides: Vec<(Key, Value)>,
    /// Extra directories to look for the source archive in (host paths).
    pub sources_dirs: Vec<PathBuf>,
    /// The source archive to use, whatever the recipe's file name says. When its name
    /// differs from the recipe's file, the recipe's checksums do not apply.
    pub source: Option<PathBuf>,
    /// The sha256 the source archive must have (`--sha256`).
    pub sha256: Option<String>,
    pub jobs: Option<u32>,
    pub no_check: bool,
    pub keep_build: bool,
    /// Leave a failed install's files in place (recorded as `failed`) instead of undoing it.
    pub keep_failed: bool,
    /// Build even when the binary host (`binhost.url`) has an archive of the same recipe hash.
    pub build: bool,
    /// An upgrade may take away a soname other packages need (the old library files are kept).
    pub force: bool,
    /// Build and install again a package installed at the same version (as an upgrade).
    pub reinstall: bool,
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
    /// Files no package owned that the install replaced (kept for `upm remove --restore`).
    pub replaced: Vec<PathBuf>,
    /// The source archive used and its checksums (after `--source`).
    pub source: Option<Chosen>,
    pub seconds: f64,
    pub timings: Timings,
    /// The profile written (inside the root); `None` when writing it failed (warned).
    pub profile: Option<PathBuf>,
    /// When the recipe was a profile: what differs between it and the new profile.
    pub rebuilt: Option<profile::Diff>,
    /// Per path, which signals saw it (`upm install --explain-tracking`).
    pub tracking: Vec<crate::track::Signals>,
    /// When it was imported from the binary host instead of built: the archive's URL.
    pub binhost: Option<String>,
    /// When it upgraded an installed version: what happened to the old version's files.
    pub upgraded: Option<super::upgrade::Done>,
}

/// Where an install's time went, in milliseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timings {
    /// Unpacking and the phases before the install phase.
    pub build_ms: u64,
    /// The trial run of the install phase.
    pub trial_ms: u64,
    /// Everything from the start of the trial to the last database write: the trial, the
    /// takeover, the watcher's set-up, the install phase, collecting its events, hashing the
    /// manifest, the root steps and recording.
    pub install_ms: u64,
    /// Reading the dynamic sections of the manifest's ELF files (part of `install_ms`).
    pub elf_us: u64,
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

/// The paths a log's error lines say the kernel refused ("Permission denied", "Operation not
/// permitted") that exist and belong to someone other than `uid`: the files a refused install
/// tried to replace. A quoted path in such a line is taken before a bare one; the program
/// name that starts a line, and upm's own wrappers, never are.
fn refused_paths(db: &Db, cfg: &Config, root: &Path, log: &Path, uid: u32) -> Vec<(PathBuf, u32)> {
    let mut out: Vec<(PathBuf, u32, bool)> = Vec::new();
    for line in runner::tail(log, 200).iter().rev() {
        if !(line.contains("Permission denied") || line.contains("Operation not permitted")) {
            continue;
        }
        for p in error_paths(line) {
            // upm's wrappers, and the system's own files (a Makefile's ldconfig failing on the
            // linker cache), are never the refused file of a package.
            if p.starts_with(setup::WRAP_DIR)
                || cfg.system_file(&p)
                || out.iter().any(|(q, ..)| *q == p)
            {
                continue;
            }
            if let Ok(m) = std::fs::symlink_metadata(on_host(root, &p))
                && m.uid() != uid
                && !m.is_dir()
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

/// Absolute paths in an error line: quoted ones first, then bare words (not the first word
/// when it names the program, as in `/bin/sh: 3: cannot create /x: Permission denied`).
fn error_paths(line: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let quotes = [('\'', '\''), ('‘', '’'), ('"', '"'), ('`', '\'')];
    for (open, close) in quotes {
        let mut rest = line;
        while let Some(i) = rest.find(open) {
            let after = &rest[i + open.len_utf8()..];
            let Some(j) = after.find(close) else { break };
            if after[..j].starts_with('/') {
                out.push(PathBuf::from(&after[..j]));
            }
            rest = &after[j + close.len_utf8()..];
        }
    }
    if out.is_empty() {
        for (i, word) in line.split_whitespace().enumerate() {
            if i == 0 && word.ends_with(':') {
                continue;
            }
            let word = word.trim_end_matches([':', ',', ';', '.']);
            if word.starts_with('/') && word.len() > 1 {
                out.push(PathBuf::from(word));
            }
        }
    }
    out
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
        let cmd = db.command_started(
            self.id,
            &NewCommand {
                phase: name,
                origin: Origin::Recipe,
                user,
                cwd,
                command: script,
            },
        )?;
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
        let ms = ran.duration.as_millis() as i64;
        db.phase_finished(self.id, seq, ran.status, ms)?;
        db.command_finished(self.id, cmd, ran.status, ms)?;
        Ok(ran)
    }

    /// Unpack (or copy) the source as the package user; returns the working directory
    /// (inside the root).
    fn unpack(&self, archive: Option<&Path>, beside: &[PathBuf]) -> Result<PathBuf, Error> {
        let work = self.unpack_source(archive)?;
        // Patches and other archives go beside the unpacked tree, where `../x.patch` finds them.
        let build = self.home.join("build");
        for f in beside {
            let to = build.join(f.file_name().unwrap_or_default());
            as_fs_user(self.user.uid, self.user.gid, || std::fs::copy(f, &to)).map_err(io(&to))?;
        }
        Ok(work)
    }

    fn unpack_source(&self, archive: Option<&Path>) -> Result<PathBuf, Error> {
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

/// The source archive an install uses.
#[derive(Debug, Clone)]
pub struct Chosen {
    pub path: PathBuf,
    pub md5: String,
    pub sha256: String,
    /// The recipe names another file (`--source FILE` with another name): its checksums did
    /// not apply, and the recipe the install records names this file and its sums instead.
    pub other_file: bool,
}

/// Find the source archive and verify its checksums, before anything is changed. With
/// `--source FILE` of another name than the recipe's, the recipe's checksums do not apply:
/// the file's sha256 is printed and checked against `--sha256` when given.
pub(crate) fn locate(
    ctx: &Ctx,
    cfg: &Config,
    recipe: &Recipe,
    opts: &Options,
) -> Result<Option<Chosen>, Error> {
    let src = &recipe.source;
    // Without `source.file`, the archive is named as the end of its URL.
    let from_url = src
        .url
        .as_deref()
        .and_then(|u| u.rsplit('/').next())
        .filter(|n| !n.is_empty())
        .map(String::from);
    let named = src.file.clone().or(from_url);
    let (archive, other_file) = match (&opts.source, &named) {
        (Some(s), _) => {
            let same = named
                .as_deref()
                .is_some_and(|n| s.file_name().and_then(|f| f.to_str()) == Some(n));
            (s.clone(), !same)
        }
        (None, Some(file)) => {
            let mut dirs = opts.sources_dirs.clone();
            dirs.extend(cfg.source_dirs.iter().map(|d| on_host(&ctx.root, d)));
            dirs.push(on_host(&ctx.root, &pkguser::home(&recipe.package.name)));
            (source::find(file, &dirs)?, false)
        }
        (None, None) => return Ok(None),
    };
    let (md5, sha256) = source::digests(&archive)?;
    if !other_file {
        source::verify_digests(
            &archive,
            (&md5, &sha256),
            src.md5.as_deref(),
            src.sha256.as_deref(),
        )?;
    } else {
        ctx.printer.note(&format!(
            "{} is not the recipe's source ({}): the recipe's checksums do not apply; its sha256 is {sha256}",
            quoted(&archive),
            named.as_deref().unwrap_or("none")
        ));
    }
    if let Some(want) = &opts.sha256 {
        source::verify_digests(&archive, (&md5, &sha256), None, Some(want))?;
    }
    Ok(Some(Chosen {
        path: archive,
        md5,
        sha256,
        other_file,
    }))
}

/// The patches and other archives the recipe's commands take from beside the source
/// (`patch -Np1 -i ../x.patch`), found where the archive is looked for (and beside a
/// `--source` file) and checked against `source.md5sums`, before anything is changed.
fn beside(ctx: &Ctx, cfg: &Config, recipe: &Recipe, opts: &Options) -> Result<Vec<PathBuf>, Error> {
    let src = &recipe.source;
    if src.patches.is_empty() && src.extra.is_empty() {
        return Ok(Vec::new());
    }
    let mut dirs = opts.sources_dirs.clone();
    if let Some(d) = opts.source.as_deref().and_then(Path::parent) {
        dirs.push(d.to_path_buf());
    }
    dirs.extend(cfg.source_dirs.iter().map(|d| on_host(&ctx.root, d)));
    dirs.push(on_host(&ctx.root, &pkguser::home(&recipe.package.name)));
    let mut found = Vec::new();
    for file in src.patches.iter().chain(&src.extra) {
        if file.contains('/') || file == ".." || file.is_empty() {
            return Err(source::Error::NotFound {
                file: format!("{file} (a patch or extra archive must be a plain file name)"),
                searched: Vec::new(),
            }
            .into());
        }
        let path = source::find(file, &dirs)?;
        let md5 = src.md5sums.iter().find(|(f, _)| f == file).map(|(_, m)| m);
        source::verify(&path, md5.map(String::as_str), None)?;
        found.push(path);
    }
    Ok(found)
}

/// Make the recipe (and the tree an install records) name the archive actually used.
fn use_chosen(recipe: &mut Recipe, tree: &mut crate::ctree::Tree, path: &Path, c: &Chosen) {
    let name = c
        .path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    recipe.source.file = Some(name.clone());
    recipe.source.md5 = Some(c.md5.clone());
    recipe.source.sha256 = Some(c.sha256.clone());
    for (key, v) in [
        ("source.file", name),
        ("source.md5", c.md5.clone()),
        ("source.sha256", c.sha256.clone()),
    ] {
        let key = Key::parse(key).expect("a valid key");
        let loc = tree
            .entry(&key)
            .map(|e| e.loc.clone())
            .unwrap_or_else(|| crate::ctree::Loc::file(path));
        tree.insert(crate::ctree::Entry {
            key,
            value: Value::Str(v),
            loc,
            literal: true,
        });
    }
}

/// The recipe hash an install of `recipe` would record (what the binary host is searched by
/// and what `upm replay` compares with an installed package's). A host served by a binary
/// host may not have the sources: then the checksum the recipe declares stands for the
/// archive's, which the build host verified.
pub(crate) fn recipe_hash(
    ctx: &Ctx,
    cfg: &Config,
    recipe: &Recipe,
    written: &crate::ctree::Tree,
    opts: &Options,
) -> Result<String, Error> {
    let sha = match locate(ctx, cfg, recipe, opts) {
        Ok(Some(a)) => Some(a.sha256),
        Ok(None) => None,
        Err(e) => match &recipe.source.sha256 {
            Some(declared) => Some(declared.to_ascii_lowercase()),
            None => return Err(e),
        },
    };
    Ok(profile::recipe_hash(written, sha.as_deref()))
}

/// Install a package. See the module documentation for the stages.
pub fn install(ctx: &Ctx, opts: &Options) -> Result<Installed, Error> {
    let started = Instant::now();
    let p = &ctx.printer;
    let root = &ctx.root;
    let cfg = ctx.cfg.clone();
    let path = find_recipe(ctx, &cfg, &opts.recipe)?;
    let recipe::Loaded {
        mut recipe,
        mut tree,
        written,
        warnings,
    } = recipe::load_with(&path, &opts.overrides)?;
    for w in &warnings {
        p.warn(&w.to_string());
    }
    let name = recipe.package.name.clone();
    if !opts.build
        && let Some(url) = &cfg.binhost_url
        && !installed(root, &name)
    {
        let hash = recipe_hash(ctx, &cfg, &recipe, &written, opts)?;
        if let Some(done) = from_binhost(ctx, url, &name, &hash, started)? {
            return Ok(done);
        }
    }
    let _lock = Lock::take(root, &format!("upm install {name}"))?;
    let mut db = Db::open(root, false)?;
    recover::recover(ctx, &mut db)?;
    let existing = db.package(&name)?;
    let mut upgrading = None;
    if let Some(row) = &existing
        && row.state == State::Installed
    {
        if row.version == recipe.package.version && !opts.reinstall {
            return Err(Error::AlreadyInstalled {
                name,
                version: row.version.clone(),
            });
        }
        upgrading = Some(row.clone());
    }
    let earlier: Vec<Entry> = match (&existing, &upgrading) {
        (Some(row), None) => db.files(row.id)?,
        _ => Vec::new(),
    };
    let chosen = locate(ctx, &cfg, &recipe, opts)?;
    if let Some(c) = &chosen {
        use_chosen(&mut recipe, &mut tree, &path, c);
    }
    let archive = chosen.as_ref().map(|c| c.path.clone());
    let beside = beside(ctx, &cfg, &recipe, opts)?;

    let (user, user_created) = pkguser::add(root, &name, &cfg.ids)?;
    if user_created {
        p.note(&format!(
            "created package user {} (uid {}, gid {})",
            user.name, user.uid, user.gid
        ));
    }
    setup::end_processes(root, &user)?;
    let row_name = match &upgrading {
        Some(_) => super::upgrade::row_name(&name, &recipe.package.version),
        None => name.clone(),
    };
    let id = db.begin(&NewInstall {
        name: &row_name,
        version: &recipe.package.version,
        description: recipe.package.description.as_deref(),
        uid: user.uid,
        gid: user.gid,
        recipe_path: &path.display().to_string(),
        recipe: &tree.to_ct(),
    })?;
    let upgrade = match upgrading {
        Some(old) => {
            let version = &recipe.package.version;
            p.note(&format!("upgrading {name} {} to {version}", old.version));
            let config = &recipe.package.config;
            Some(Upgrade::start(&db, old, id, version, opts.force, config)?)
        }
        None => None,
    };
    let home = on_host(root, &user.home);
    let mut job = Install {
        b: Build {
            ctx,
            cfg: &cfg,
            recipe: &recipe,
            user: &user,
            id,
            home: home.clone(),
            progress: Progress::new(p.stderr_is_tty(), p.json_mode()),
        },
        db,
        opts,
        earlier,
        env: Vec::new(),
        workdir: PathBuf::new(),
        steps_file: home.join(".upm/steps"),
        reports: Vec::new(),
        steps: Vec::new(),
        held: Vec::new(),
        prints: BTreeMap::new(),
        timings: Timings::default(),
        shim: crate::shim::enabled(&cfg) && shim_usable(ctx),
        tracking: Vec::new(),
        upgrade,
        upgraded: None,
    };
    if let Err(e) = job.prepare_home() {
        return Err(job.abandon(e));
    }
    if let Err(e) = profile::record_inputs(ctx, &job.db, id, &written, archive.as_deref(), &job.env)
    {
        return Err(job.abandon(e.into()));
    }
    job.workdir = match job.b.unpack(archive.as_deref(), &beside) {
        Ok(w) => w,
        Err(e) if existing.is_none() => {
            // A refused archive on a first install leaves the root as it was.
            job.db.delete(id)?;
            if user_created {
                pkguser::remove(root, &name, &cfg.ids)?;
                clear(&home)?;
            }
            return Err(e);
        }
        Err(e) => {
            let e = job.fail("unpack", e);
            return Err(job.abandon(e));
        }
    };
    let (files, replaced) = match job.run() {
        Ok(done) => done,
        Err(e) => return Err(job.abandon(e)),
    };
    if !opts.keep_build {
        clear(&home.join("build"))?;
    }
    let profile = job.write_profile(started);
    if job.upgraded.is_some()
        && let Some(path) = &profile
    {
        let inside = in_root(root, path);
        let _ = job
            .db
            .set_history_profile(id, &inside.display().to_string());
    }
    let rebuilt = profile
        .as_ref()
        .and_then(|_| rebuilt(ctx, &job.db, &path, &name));
    let (steps, reports, timings, tracking) = (job.steps, job.reports, job.timings, job.tracking);
    let upgraded = job.upgraded;
    Ok(Installed {
        name,
        version: recipe.package.version.clone(),
        user,
        user_created,
        files,
        steps,
        reports,
        replaced,
        source: chosen,
        seconds: started.elapsed().as_secs_f64(),
        timings,
        profile,
        rebuilt,
        tracking,
        binhost: None,
        upgraded,
    })
}

/// Whether `name` is installed in `root` (then an install is an upgrade, built from source).
fn installed(root: &Path, name: &str) -> bool {
    Db::open_read(root)
        .and_then(|db| db.package(name))
        .is_ok_and(|p| p.is_some_and(|p| p.state == State::Installed))
}

/// Look in the binary host for an archive of `name` with this recipe hash and import it.
/// `None` (said why) when the host has none or cannot be reached, or its archive does not
/// verify: then the package is built.
fn from_binhost(
    ctx: &Ctx,
    url: &str,
    name: &str,
    hash: &str,
    started: Instant,
) -> Result<Option<Installed>, Error> {
    use crate::profile::binhost;
    let p = &ctx.printer;
    let index = match binhost::fetch_index(url) {
        Ok(i) => i,
        Err(e) => {
            p.warn(&format!("binary host: {e}; building {name}"));
            return Ok(None);
        }
    };
    let Some(entry) = index.find(name, hash) else {
        p.note(&format!(
            "binary host {url} has no {name} built from this recipe (recipe hash {}); building it",
            &hash[..16]
        ));
        return Ok(None);
    };
    let archive = binhost::join(url, &entry.archive);
    let fetched = binhost::get(&archive).and_then(|bytes| {
        let sig = binhost::get(&binhost::join(url, &entry.signature))?;
        Ok((bytes, sig))
    });
    let fetched = match fetched {
        Ok((Some(bytes), sig)) => super::import::Fetched {
            what: archive.clone(),
            bytes,
            sig: sig.map(|s| String::from_utf8_lossy(&s).into_owned()),
            sig_at: PathBuf::from(binhost::join(url, &entry.signature)),
        },
        Ok((None, _)) => {
            p.warn(&format!(
                "binary host: {archive}: not found (HTTP 404); building {name}"
            ));
            return Ok(None);
        }
        Err(e) => {
            p.warn(&format!("binary host: {e}; building {name}"));
            return Ok(None);
        }
    };
    match super::import::import_fetched(ctx, &fetched) {
        Ok(i) => Ok(Some(Installed {
            name: i.name,
            version: i.version,
            user: i.user,
            user_created: i.user_created,
            files: i.files,
            steps: i.steps,
            reports: i.reports,
            replaced: i.replaced,
            seconds: started.elapsed().as_secs_f64(),
            timings: Timings::default(),
            profile: i.profile,
            rebuilt: None,
            tracking: Vec::new(),
            binhost: Some(archive),
            source: None,
            upgraded: None,
        })),
        Err(e @ (Error::Keys(_) | Error::Archive(_) | Error::Binhost(_) | Error::Profile(_))) => {
            p.warn(&format!("binary host: {e}; building {name}"));
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// When the recipe was a profile: how the new install's profile differs from it (the manifest
/// should be the same but for contents where builds embed timestamps).
fn rebuilt(ctx: &Ctx, db: &Db, recipe: &Path, name: &str) -> Option<profile::Diff> {
    let before = profile::read_file(recipe).ok()?;
    match profile::from_db(db, name, ctx.cfg.ids.install_gid) {
        Ok(now) => Some(profile::diff(&before, &now)),
        Err(e) => {
            ctx.printer.warn(&format!(
                "{name}: cannot compare with {}: {e}",
                quoted(recipe)
            ));
            None
        }
    }
}

/// One install under way: what its stages share.
struct Install<'a> {
    b: Build<'a>,
    db: Db,
    opts: &'a Options,
    /// The manifest an earlier, failed or interrupted attempt recorded.
    earlier: Vec<Entry>,
    env: Vec<(String, String)>,
    /// The unpacked source, inside the root.
    workdir: PathBuf,
    /// Where the wrappers record root steps (on the host).
    steps_file: PathBuf,
    reports: Vec<ReportRow>,
    steps: Vec<StepRow>,
    /// Paths taken over from no package, and their identity right after the takeover.
    held: Vec<ReplacedRow>,
    prints: BTreeMap<PathBuf, (u64, i128)>,
    timings: Timings,
    /// Whether the LD_PRELOAD shim is loaded into the install phase and root commands.
    shim: bool,
    /// Per path, which signals saw it.
    tracking: Vec<crate::track::Signals>,
    /// The upgrade under way, when the package is installed at another version.
    upgrade: Option<Upgrade>,
    upgraded: Option<super::upgrade::Done>,
}

/// How the watched install phase and the root commands ended.
struct Ran {
    tracked: crate::track::Tracked,
    failed: Option<(&'static str, runner::Ran)>,
}

impl Install<'_> {
    fn root(&self) -> &Path {
        &self.b.ctx.root
    }

    fn name(&self) -> &str {
        &self.b.recipe.package.name
    }

    /// An upgrade that failed: the old version's files back as they were, its record
    /// untouched, the attempt in its history. Hands the error on.
    fn abandon(&mut self, e: Error) -> Error {
        if let Some(u) = self.upgrade.take() {
            let written = self.db.files(self.b.id).unwrap_or_default();
            let root = self.b.ctx.root.clone();
            let back = takeover::restore(&root, &self.held)
                .and_then(|_| u.roll_back(self.b.ctx, &written));
            if let Err(r) = back {
                self.b
                    .ctx
                    .printer
                    .warn(&format!("could not put all of the old version back: {r}"));
            }
            u.abandon(&mut self.db, "failed", &e.to_string());
            self.b.ctx.printer.note(&format!(
                "{} {} is installed as it was",
                u.old.name, u.old.version
            ));
        }
        e
    }

    /// Record the install as failed at `stage` and hand the error on.
    fn fail(&self, stage: &str, e: Error) -> Error {
        let _ = self
            .db
            .set_state(self.b.id, State::Failed, Some(stage), Some(&e.to_string()));
        e
    }

    /// Write the profile of the finished install (its timings with it). A profile that cannot
    /// be written does not undo the install: upm warns, and `upm profile` commands say it is
    /// missing.
    fn write_profile(&self, started: Instant) -> Option<PathBuf> {
        let t = &self.timings;
        let timings = profile::Timings {
            build_ms: t.build_ms,
            trial_ms: t.trial_ms,
            install_ms: t.install_ms,
            total_ms: started.elapsed().as_millis() as u64,
        };
        let written = profile::record_timings(&self.db, self.b.id, &timings)
            .and_then(|()| profile::write(self.b.ctx, &self.db, self.name()));
        match written {
            Ok(path) => Some(path),
            Err(e) => {
                self.b.ctx.printer.warn(&format!(
                    "{}: the profile was not written: {e}",
                    self.name()
                ));
                None
            }
        }
    }

    /// The home's bookkeeping: fresh logs and steps file, the wrappers, the environment.
    fn prepare_home(&mut self) -> Result<(), Error> {
        for d in [self.b.home.join("logs"), self.b.home.join(".upm")] {
            clear(&d)?;
            self.b.user_dir(&d)?;
        }
        let (uid, gid) = (self.b.user.uid, self.b.user.gid);
        let f = &self.steps_file;
        as_fs_user(uid, gid, || std::fs::write(f, b"")).map_err(io(f))?;
        // The trial's shim reopens its log by path (inside the throwaway overlay).
        let f = &self.b.home.join(SHIM_TRIAL_LOG);
        as_fs_user(uid, gid, || std::fs::write(f, b"")).map_err(io(f))?;
        setup::wrappers(self.root())?;
        let jobs = self
            .opts
            .jobs
            .or(self.b.recipe.options.jobs)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get() as u32));
        self.env = setup::environment(self.b.user, jobs, &self.b.recipe.env);
        Ok(())
    }

    /// The stages after unpacking: build, trial, take over, install, then record. Returns the
    /// final manifest and the paths replaced.
    fn run(&mut self) -> Result<(Vec<Entry>, Vec<PathBuf>), Error> {
        // Finding the directories the package user can write walks the trees: done while the
        // package builds.
        let user_rules = self.user_rules();
        let scan_rules = user_rules.clone();
        let scan = std::thread::spawn(move || crate::watch::writable_dirs(&scan_rules));
        let built = Instant::now();
        let script = self.build()?;
        self.timings.build_ms = built.elapsed().as_millis() as u64;
        let installing = Instant::now();
        let plan = match self.trial(&script) {
            Ok(plan) => plan,
            Err(e) => return Err(self.fail("trial", e)),
        };
        let opened = self
            .take_over(&plan)
            .map_err(|e| self.fail("take over", e))?;
        if let Some(u) = &mut self.upgrade {
            let root = self.b.ctx.root.clone();
            u.keep_aside(&root, &self.db, &plan.writes, plan.blind)?;
        }
        let mut dirs = scan
            .join()
            .unwrap_or_else(|_| crate::watch::writable_dirs(&user_rules));
        dirs.extend(opened);
        let ran = self.install_phase(&script, user_rules, &dirs)?;
        let mut tracked = ran.tracked;
        // System files (the linker cache, the info dir file) are never a package's.
        let system = guard::system_files(self.b.ctx, self.b.user, &mut tracked)?;
        self.reports.extend(system);
        self.report_foreign(&tracked)?;
        let failed = match ran.failed {
            Some((stage, ran)) => Some(self.failure(stage, &ran)),
            None => self.refused(&plan, &tracked).err().map(|e| ("install", e)),
        };
        if let Some((stage, err)) = failed {
            return Err(self.give_up(stage, err, &tracked));
        }
        self.record_tracked(&tracked)?;
        let replaced = self.settle_takeovers()?;
        let files = self.root_steps_and_record(tracked.entries)?;
        let mut files = files;
        if let Some(u) = self.upgrade.take() {
            let done = u.finish(self.b.ctx, &mut self.db, &files)?;
            self.upgraded = Some(done);
            // The manifest with what the upgrade kept (changed files, .upmnew, libraries).
            files = self.db.files(self.b.id)?;
        }
        self.timings.install_ms = installing.elapsed().as_millis() as u64;
        Ok((files, replaced))
    }

    /// The watch rules of the install phase: the directories the package user can write.
    fn user_rules(&self) -> crate::watch::Rules {
        let mut rules = setup::watch_rules(self.root(), self.b.cfg);
        rules.writer = Some(crate::watch::Writer {
            uid: self.b.user.uid,
            gids: vec![self.b.user.gid, self.b.cfg.ids.install_gid],
        });
        rules
    }

    /// Run the phases before the install phase; returns the install phase's script.
    fn build(&mut self) -> Result<String, Error> {
        let p = &self.b.ctx.printer;
        let name = self.name().to_string();
        let mut install = String::new();
        for (phase, script) in &self.b.recipe.phases {
            if script.trim().is_empty() {
                continue;
            }
            if *phase == Phase::Install {
                install = script.clone();
                continue;
            }
            if *phase == Phase::Check && self.opts.no_check {
                p.note(&format!("{name}: check skipped (--no-check)"));
                continue;
            }
            let ran = self.b.phase(
                &self.db,
                phase.name(),
                script,
                self.b.identity(),
                &self.workdir,
                &self.env,
            )?;
            if ran.success() {
                continue;
            }
            if *phase == Phase::Check && !self.b.recipe.options.check_fatal {
                p.warn(&format!(
                    "{name}: the check phase failed (status {}); going on, as options.check_fatal is false",
                    ran.status
                ));
                continue;
            }
            return Err(self.fail(phase.name(), phase_failed(&self.b, phase.name(), &ran)));
        }
        Ok(install)
    }

    /// Run the install phase once in a throwaway overlay and decide from what it wrote what
    /// the real install may replace, before anything is written.
    fn trial(&mut self, script: &str) -> Result<takeover::Plan, Error> {
        let root = self.b.ctx.root.clone();
        let b = &self.b;
        self.db
            .set_state(b.id, State::Building, Some("trial"), None)?;
        let seq = self.db.phase_started(b.id, TRIAL, script, &b.user.name)?;
        let cmd = self.db.command_started(
            b.id,
            &NewCommand {
                phase: TRIAL,
                origin: Origin::Recipe,
                user: &b.user.name,
                cwd: &self.workdir,
                command: script,
            },
        )?;
        let stage = on_host(&root, Path::new(TRIAL_DIR)).join(&b.recipe.package.name);
        let log = b.log(TRIAL);
        let mut env = self.env.clone();
        if self.shim {
            env.extend(crate::shim::trial_env(
                &root,
                &b.user.home.join(SHIM_TRIAL_LOG),
            )?);
        }
        let t = match trial::run(&trial::Spec {
            root: &root,
            stage: &stage,
            cwd: &self.workdir,
            who: trial::Identity {
                uid: b.user.uid,
                gid: b.user.gid,
                group: b.cfg.ids.install_gid,
            },
            shell: &runner::shell(&root, b.recipe.options.shell.as_deref()),
            script,
            env: &env,
            log: &log,
        }) {
            Ok(t) => t,
            Err(e @ trial::Error::Unavailable(_)) => {
                // Without a trial the install still runs, undone if it fails; what it cannot
                // take over the kernel refuses, and that fails the install.
                self.b.ctx.printer.warn(&format!(
                    "{e}; installing without one: files no package owns cannot be taken over"
                ));
                self.db.phase_finished(b.id, seq, 0, 0)?;
                self.db.command_finished(b.id, cmd, 0, 0)?;
                return Ok(takeover::Plan {
                    blind: true,
                    ..Default::default()
                });
            }
            Err(e) => return Err(e.into()),
        };
        self.b.progress.done(
            &format!("{} {TRIAL}", b.recipe.package.name),
            &runner::Ran {
                status: t.status,
                duration: t.duration,
            },
        );
        let ms = t.duration.as_millis() as i64;
        self.db.phase_finished(b.id, seq, t.status, ms)?;
        self.db.command_finished(b.id, cmd, t.status, ms)?;
        self.timings.trial_ms = t.duration.as_millis() as u64;
        if t.status != 0 {
            let ran = runner::Ran {
                status: t.status,
                duration: t.duration,
            };
            return Err(phase_failed(b, TRIAL, &ran));
        }
        let names = Names::read(&root)?;
        let me = takeover::Installer {
            name: &b.recipe.package.name,
            uid: b.user.uid,
            gid: b.user.gid,
            install_gid: b.cfg.ids.install_gid,
        };
        takeover::plan(&root, b.cfg, &self.db, &names, &me, &t)
    }

    /// Open the directories the install needs and take over the files it replaces. Returns the
    /// directories opened (host paths), which the watcher must add.
    fn take_over(&mut self, plan: &takeover::Plan) -> Result<Vec<PathBuf>, Error> {
        let root = self.b.ctx.root.clone();
        let cfg = self.b.cfg;
        let mut opened = Vec::new();
        for (dir, in_manifest) in &plan.open_dirs {
            let host = on_host(&root, dir);
            let before = std::fs::symlink_metadata(&host).map_err(io(&host))?;
            installdir::make(&host, cfg.ids.install_gid)?;
            if *in_manifest {
                self.db.mark_shared(dir)?;
            }
            self.b.ctx.printer.note(&format!(
                "{}: made an install directory ({} writes into it)",
                dir.display(),
                self.name()
            ));
            self.steps.push(StepRow {
                step: "installdir".into(),
                arg: format!("root:{} {:o}", cfg.ids.install_group, installdir::MODE),
                path: dir.clone(),
                applied: true,
                note: Some(format!(
                    "was uid {} gid {} mode {:04o}",
                    before.uid(),
                    before.gid(),
                    before.mode() & 0o7777
                )),
            });
            opened.push(host);
        }
        if !plan.take.is_empty() {
            self.db.hold(self.b.id, &plan.take)?;
            takeover::take(&root, &plan.take, self.b.user.uid, self.b.user.gid)?;
            self.prints = takeover::fingerprints(&root, &plan.take);
            self.held = plan.take.clone();
        }
        Ok(opened)
    }

    /// The install phase as the package user, watched, then the recipe's root commands
    /// watched over the whole trees.
    fn install_phase(
        &mut self,
        script: &str,
        user_rules: crate::watch::Rules,
        dirs: &[PathBuf],
    ) -> Result<Ran, Error> {
        let root = self.b.ctx.root.clone();
        let id = self.b.id;
        let mut touched = Touched::default();
        let mut root_touched = Touched::default();
        let (mut shim_touched, mut shim_root) = (None, None);
        let mut failed = None;
        let since = crate::db::now();
        if !script.trim().is_empty() {
            self.db
                .set_state(id, State::Installing, Some("install"), None)?;
            let w = Watcher::with_dirs(user_rules, dirs).map_err(Error::Watch)?;
            let owner = (self.b.user.uid, self.b.user.gid);
            let (session, env) = self.shim_session(SHIM_LOG, Some(owner))?;
            let c = Collector::start_with(&root, w).map_err(Error::Watch)?;
            let ran = self.b.phase(
                &self.db,
                "install",
                script,
                self.b.identity(),
                &self.workdir,
                &env,
            );
            touched = c.finish().map_err(Error::Watch)?;
            shim_touched = self.shim_finish(session)?;
            let ran = ran?;
            if !ran.success() {
                failed = Some(("install", ran));
            }
        }
        if failed.is_none()
            && let Some(cmds) = self
                .b
                .recipe
                .root
                .commands
                .as_deref()
                .filter(|c| !c.trim().is_empty())
        {
            self.db
                .set_state(id, State::Installing, Some("root"), None)?;
            let rules = setup::watch_rules(&root, self.b.cfg);
            let (session, env) = self.shim_session(SHIM_ROOT_LOG, None)?;
            let c = Collector::start(&root, rules).map_err(Error::Watch)?;
            let ran = self
                .b
                .phase(&self.db, "root", cmds, ROOT_ID, &self.workdir, &env);
            root_touched = c.finish().map_err(Error::Watch)?;
            shim_root = self.shim_finish(session)?;
            let ran = ran?;
            if !ran.success() {
                failed = Some(("root", ran));
            }
        }
        let tracked = self.merge(touched, root_touched, shim_touched, shim_root, since)?;
        Ok(Ran { tracked, failed })
    }

    /// Start a shim log at `log` (in the package's home) when the shim is on; the phase
    /// environment with it loaded.
    fn shim_session(
        &self,
        log: &str,
        owner: Option<(u32, u32)>,
    ) -> Result<(Option<crate::shim::Session>, Env), Error> {
        let mut env = self.env.clone();
        if !self.shim {
            return Ok((None, env));
        }
        let s = crate::shim::Session::start(self.root(), &self.b.user.home.join(log), owner)?;
        env.extend(s.env());
        Ok((Some(s), env))
    }

    /// What a shim session's log says the phase touched.
    fn shim_finish(&self, s: Option<crate::shim::Session>) -> Result<Option<Touched>, Error> {
        Ok(match s {
            Some(s) => Some(s.finish(self.root(), self.b.cfg)?),
            None => None,
        })
    }

    /// One manifest from the package user's and root's tracked paths; after lost events, with
    /// what a rescan by change time finds.
    fn merge(
        &mut self,
        mut touched: Touched,
        mut root_touched: Touched,
        shim_touched: Option<Touched>,
        shim_root: Option<Touched>,
        since: i64,
    ) -> Result<crate::track::Tracked, Error> {
        let root = self.b.ctx.root.clone();
        let root = root.as_path();
        // The watcher's view alone, and the shim's, for the per-path signals.
        let mut inotify = touched.clone();
        inotify.union(&root_touched);
        let shim = match (&shim_touched, &shim_root) {
            (None, None) => None,
            (a, b) => {
                let mut s = a.clone().unwrap_or_default();
                s.union(&b.clone().unwrap_or_default());
                Some(s)
            }
        };
        if let Some(s) = &shim_touched {
            touched.union(s);
        }
        if let Some(s) = &shim_root {
            root_touched.union(s);
        }
        if touched.rescan || root_touched.rescan {
            self.b.ctx.printer.warn(
                "the watcher lost events (kernel queue overflow); rescanning the tracked trees",
            );
            touched.rescan(root, &setup::inside_rules(self.b.cfg), since);
        }
        let mut tracked = touched
            .manifest(root, Claim::Owners(&[self.b.user.uid]))
            .map_err(io(root))?;
        tracked
            .claim_given(root, &touched, &root_touched)
            .map_err(io(root))?;
        let root_tracked = root_touched
            .manifest(root, Claim::Appeared)
            .map_err(io(root))?;
        tracked.merge_root(root_tracked, self.earlier.iter().map(|e| e.path.as_path()));
        self.tracking = crate::track::signals(&inotify, shim.as_ref(), &tracked);
        Ok(tracked)
    }

    /// Report the paths changed during the install that are someone else's (never claimed).
    fn report_foreign(&mut self, tracked: &crate::track::Tracked) -> Result<(), Error> {
        let names = Names::read(self.root())?;
        for (path, uid) in &tracked.foreign {
            let (owner, _) = setup::owner_of(&self.db, &names, path, *uid);
            let detail = format!("changed during the install, but belongs to {owner}; not claimed");
            self.b
                .ctx
                .printer
                .warn(&format!("{}: {detail}", quoted(path)));
            self.reports.push(ReportRow {
                kind: "foreign".into(),
                path: Some(path.clone()),
                detail,
            });
        }
        Ok(())
    }

    /// The error for a failed install phase or root commands: the refused file when a log
    /// names one, else the phase's log.
    fn failure(&mut self, stage: &'static str, ran: &runner::Ran) -> (&'static str, Error) {
        let root = self.b.ctx.root.clone();
        let log = self.b.log(stage);
        let names = Names::read(&root).unwrap_or_default();
        let err = match refused_paths(&self.db, self.b.cfg, &root, &log, self.b.user.uid)
            .into_iter()
            .next()
        {
            Some((path, uid)) => self.conflict(&names, path, uid),
            None => phase_failed(&self.b, stage, ran),
        };
        (stage, err)
    }

    fn conflict(&mut self, names: &Names, path: PathBuf, uid: u32) -> Error {
        let (owner, _) = setup::owner_of(&self.db, names, &path, uid);
        // Advice only when sure: another package's file.
        let advice = match self
            .db
            .owners(&path)
            .ok()
            .and_then(|o| o.into_iter().next())
        {
            Some(pkg) => format!(
                ". Remove {pkg} first (`upm remove {pkg}`), or change {}'s recipe not to install that file",
                self.name()
            ),
            None => String::new(),
        };
        self.reports.push(ReportRow {
            kind: "conflict".into(),
            path: Some(path.clone()),
            detail: format!("the install tried to replace it; it belongs to {owner}"),
        });
        Error::Conflict {
            name: self.name().to_string(),
            path: path.display().to_string(),
            owner,
            advice,
        }
    }

    /// A write the kernel refused fails the install even when the script hid it: a file the
    /// trial wrote must now be the package user's.
    fn refused(
        &mut self,
        plan: &takeover::Plan,
        tracked: &crate::track::Tracked,
    ) -> Result<(), Error> {
        let root = self.b.ctx.root.clone();
        let mine: BTreeSet<&Path> = tracked.entries.iter().map(|e| e.path.as_path()).collect();
        for p in &plan.writes {
            if mine.contains(p.as_path()) || self.b.cfg.system_file(p) {
                continue;
            }
            let Ok(m) = std::fs::symlink_metadata(on_host(&root, p)) else {
                continue;
            };
            if m.uid() != self.b.user.uid {
                let names = Names::read(&root)?;
                return Err(self.conflict(&names, p.clone(), m.uid()));
            }
        }
        // What the trial could not see (a write only the real run made) the tools' own error
        // lines name.
        let log = self.b.log("install");
        if let Some((path, uid)) = refused_paths(&self.db, self.b.cfg, &root, &log, self.b.user.uid)
            .into_iter()
            .next()
        {
            let names = Names::read(&root)?;
            return Err(self.conflict(&names, path, uid));
        }
        Ok(())
    }

    /// The install failed: unless `--keep-failed`, remove what it wrote and put back what it
    /// replaced, so the root is as it was; record the failure either way.
    fn give_up(&mut self, stage: &str, err: Error, tracked: &crate::track::Tracked) -> Error {
        let root = self.b.ctx.root.clone();
        let msg = err.to_string();
        let written: Vec<PathBuf> = tracked.entries.iter().map(|e| e.path.clone()).collect();
        let result = if self.opts.keep_failed {
            // What it took over but left alone goes back; the rest stays held, so `upm
            // remove` puts it back.
            if let Err(e) = self.give_back_untouched() {
                self.b.ctx.printer.warn(&format!("{e}"));
            }
            // No setuid/setgid file stays a package user's, even from a failed install.
            let mut files = tracked.entries.clone();
            let recorded = Step::parse_all(&std::fs::read(&self.steps_file).unwrap_or_default());
            match guard::setid(self.b.ctx, &self.b.recipe.root.allow, &recorded, &mut files) {
                Ok(reports) => self.reports.extend(reports),
                Err(e) => self.b.ctx.printer.warn(&format!("{e}")),
            }
            let allow = &self.b.recipe.root.allow;
            let kept_off = guard::stripped(self.b.ctx, allow, &recorded, &[], &files);
            self.reports.extend(kept_off);
            let gone = vanished(&root, self.earlier.iter().map(|e| e.path.as_path()), &files);
            self.db.record(
                self.b.id,
                &Outcome {
                    files: &files,
                    gone: &gone,
                    steps: &[],
                    reports: &self.reports,
                    state: State::Failed,
                    stage: Some(stage),
                    error: Some(&msg),
                },
            )
        } else {
            let undone = match &self.upgrade {
                Some(u) => u.roll_back(self.b.ctx, &tracked.entries).map(|_| ()),
                None => undo(&root, &tracked.entries),
            }
            .and_then(|()| takeover::restore(&root, &self.held).map(|_| ()));
            if let Err(e) = undone {
                self.b
                    .ctx
                    .printer
                    .warn(&format!("could not undo all of the failed install: {e}"));
            } else {
                self.b.ctx.printer.note(&format!(
                    "{}: the failed install was undone ({} paths removed, {} originals put back; \
                     --keep-failed keeps a failed install's files)",
                    self.name(),
                    written.len(),
                    self.held.len()
                ));
                let _ = self.db.forget_replaced(self.b.id);
            }
            self.db.record(
                self.b.id,
                &Outcome {
                    files: &[],
                    gone: &written,
                    steps: &[],
                    reports: &self.reports,
                    state: State::Failed,
                    stage: Some(stage),
                    error: Some(&msg),
                },
            )
        };
        if let Err(e) = result {
            self.b
                .ctx
                .printer
                .warn(&format!("could not record the failed install: {e}"));
        }
        err
    }

    /// What was tracked is stored before root steps change owners, so a upm killed from here
    /// on leaves the whole manifest behind (recovery finds the rest by owner).
    fn record_tracked(&mut self, tracked: &crate::track::Tracked) -> Result<(), Error> {
        self.db.record(
            self.b.id,
            &Outcome {
                files: &tracked.entries,
                gone: &[],
                steps: &[],
                reports: &self.reports,
                state: State::Installing,
                stage: Some("root steps"),
                error: None,
            },
        )?;
        Ok(())
    }

    /// Put back the originals of taken-over files the install never wrote.
    fn give_back_untouched(&mut self) -> Result<Vec<PathBuf>, Error> {
        let root = self.b.ctx.root.clone();
        let prints = &self.prints;
        let untouched = |p: &Path| {
            std::fs::symlink_metadata(on_host(&root, p))
                .is_ok_and(|m| prints.get(p) == Some(&takeover::fingerprint(&m)))
        };
        let given_back = takeover::settle(&root, &self.held, untouched)?;
        self.db.give_back(self.b.id, &given_back)?;
        Ok(given_back)
    }

    /// Give back the taken-over files the install did not replace; returns those it did.
    fn settle_takeovers(&mut self) -> Result<Vec<PathBuf>, Error> {
        if self.held.is_empty() {
            return Ok(Vec::new());
        }
        let keep = self.b.cfg.keep_replaced;
        let given_back = self.give_back_untouched()?;
        self.db.settle(self.b.id, &given_back, keep)?;
        if !keep {
            let rest: Vec<ReplacedRow> = self
                .held
                .iter()
                .filter(|r| !given_back.contains(&r.path))
                .cloned()
                .collect();
            takeover::drop_kept(self.b.ctx.root.as_path(), &rest);
        }
        let replaced: Vec<PathBuf> = self
            .held
            .iter()
            .map(|r| r.path.clone())
            .filter(|p| !given_back.contains(p))
            .collect();
        if !replaced.is_empty() {
            self.b.ctx.printer.note(&format!(
                "{}: replaced {} file(s) no package owned{} (`upm info {}` lists them)",
                self.name(),
                replaced.len(),
                if keep {
                    format!(", originals kept under {}", takeover::KEEP_DIR)
                } else {
                    String::new()
                },
                self.name()
            ));
        }
        Ok(replaced)
    }

    /// Make shared directories the package created install directories, apply the recorded
    /// root steps, read every path's final state and record it all.
    fn root_steps_and_record(&mut self, mut entries: Vec<Entry>) -> Result<Vec<Entry>, Error> {
        let root = self.b.ctx.root.clone();
        let cfg = self.b.cfg;
        let uid = self.b.user.uid;
        // A directory the package made in a shared tree (a new
        // /usr/share/locale/xx/LC_MESSAGES) becomes an install directory, so later packages
        // can add to it; any other keeps the mode the package gave it.
        for e in entries.iter_mut() {
            if e.kind == FileKind::Dir
                && e.uid == uid
                && cfg.shared_tree(&e.path)
                && e.mode & 0o755 == 0o755
            {
                installdir::make(&on_host(&root, &e.path), cfg.ids.install_gid)?;
                e.shared = true;
                self.steps.push(StepRow {
                    step: "installdir".into(),
                    arg: format!("root:{} {:o}", cfg.ids.install_group, installdir::MODE),
                    path: e.path.clone(),
                    applied: true,
                    note: None,
                });
            }
        }
        let names = Names::read(&root)?;
        let recorded = Step::parse_all(&std::fs::read(&self.steps_file).unwrap_or_default());
        let mine: BTreeSet<PathBuf> = entries
            .iter()
            .chain(&self.earlier)
            .map(|e| e.path.clone())
            .collect();
        let applied = rootsteps::apply(&root, &self.b.recipe.root.allow, &recorded, &mine, &names);
        for r in applied.rows.iter().filter(|r| !r.applied) {
            self.b.ctx.printer.warn(&format!(
                "root step `{}` not applied: {}",
                crate::wrap::command(&r.step, &r.arg, &r.path),
                r.note.as_deref().unwrap_or("")
            ));
        }
        self.steps.extend(applied.rows);
        if applied.ldconfig {
            run_as_root(&self.b, &self.db, &self.env, "ldconfig", "ldconfig")?;
        }
        for args in &applied.install_info {
            let script = format!("install-info {}", setup::sh_quote_all(args));
            run_as_root(&self.b, &self.db, &self.env, "install-info", &script)?;
        }
        let mut final_paths = mine;
        final_paths.extend(applied.created);
        let mut files = self.final_manifest(&final_paths, &entries)?;
        // No setuid/setgid file stays a package user's: what no allowed root step made root's.
        let allow = &self.b.recipe.root.allow;
        let setid = guard::setid(self.b.ctx, allow, &recorded, &mut files)?;
        self.reports.extend(setid);
        let kept_off = guard::stripped(self.b.ctx, allow, &recorded, &self.steps, &files);
        self.reports.extend(kept_off);
        let gone: Vec<PathBuf> = final_paths
            .iter()
            .filter(|p| !files.iter().any(|e| &e.path == *p))
            .cloned()
            .collect();
        self.report_setid(&files);
        let scan = libs::store(&mut self.db, &root, self.b.id, &files, &gone)?;
        self.timings.elf_us = scan.as_micros() as u64;
        self.db.record(
            self.b.id,
            &Outcome {
                files: &files,
                gone: &gone,
                steps: &self.steps,
                reports: &self.reports,
                state: State::Installed,
                stage: None,
                error: None,
            },
        )?;
        self.db.record_tracking(self.b.id, &self.tracking)?;
        Ok(files)
    }

    /// The final state of every path, after the root steps, merged with an earlier attempt's.
    fn final_manifest(
        &self,
        paths: &BTreeSet<PathBuf>,
        entries: &[Entry],
    ) -> Result<Vec<Entry>, Error> {
        let root = self.root();
        let shared: BTreeSet<&Path> = entries
            .iter()
            .chain(&self.earlier)
            .filter(|e| e.shared)
            .map(|e| e.path.as_path())
            .collect();
        let mut files = Vec::new();
        for path in paths {
            if let Some(mut e) = Entry::read(root, path).map_err(io(path))? {
                e.shared = shared.contains(path.as_path());
                files.push(e);
            }
        }
        Ok(files)
    }

    fn report_setid(&mut self, files: &[Entry]) {
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
            self.b
                .ctx
                .printer
                .warn(&format!("{}: {detail}", quoted(&e.path)));
            self.reports.push(ReportRow {
                kind: "setuid".into(),
                path: Some(e.path.clone()),
                detail,
            });
        }
    }
}

/// Whether the shim can be loaded in the root; says why not.
fn shim_usable(ctx: &Ctx) -> bool {
    match crate::shim::unusable(&ctx.root) {
        None => true,
        Some(why) => {
            ctx.printer
                .warn(&format!("{why}; installing with the watcher alone"));
            false
        }
    }
}

/// A phase's complete environment.
type Env = Vec<(String, String)>;

/// The shim's logs, in the package's home: the install phase's, the root commands', the
/// trial's (which lands in the throwaway overlay).
const SHIM_LOG: &str = ".upm/shim.log";
const SHIM_ROOT_LOG: &str = ".upm/shim-root.log";
const SHIM_TRIAL_LOG: &str = ".upm/shim-trial.log";

/// The trial run's phase name (its log is `logs/install-trial.log`).
const TRIAL: &str = "install-trial";
/// Where trial runs mount their scratch space, inside the root (excluded from tracking).
const TRIAL_DIR: &str = "/var/lib/upm/trial";

const ROOT_ID: Identity = Identity {
    uid: 0,
    gid: 0,
    groups: [0],
};

/// Remove what a failed install wrote: files and links, then the directories it made, deepest
/// first (only when empty).
pub(super) fn undo(root: &Path, written: &[Entry]) -> Result<(), Error> {
    for e in written.iter().filter(|e| e.kind != FileKind::Dir) {
        let host = on_host(root, &e.path);
        match std::fs::remove_file(&host) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(io(&host)(err).into()),
        }
    }
    let mut dirs: Vec<&Entry> = written.iter().filter(|e| e.kind == FileKind::Dir).collect();
    dirs.sort_by_key(|e| std::cmp::Reverse(e.path.components().count()));
    for e in dirs {
        let _ = std::fs::remove_dir(on_host(root, &e.path));
    }
    Ok(())
}

fn phase_failed(b: &Build<'_>, phase: &str, ran: &runner::Ran) -> Error {
    let mut e = phase_failed_in(b, phase, ran);
    if let Error::PhaseFailed { phase: p, .. } = &mut e
        && p == TRIAL
    {
        // Say it the way a user knows it: their install phase failed (in its trial run, the
        // log says, so before anything was installed).
        *p = "install".into();
    }
    e
}

fn phase_failed_in(b: &Build<'_>, phase: &str, ran: &runner::Ran) -> Error {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_lines_name_the_refused_file_not_the_program() {
        assert_eq!(
            error_paths("/bin/sh: 3: cannot create /usr/bin/tree: Permission denied"),
            vec![PathBuf::from("/usr/bin/tree")]
        );
        assert_eq!(
            error_paths("install: cannot remove '/usr/bin/tree': Operation not permitted"),
            vec![PathBuf::from("/usr/bin/tree")]
        );
        assert_eq!(
            error_paths(
                "/bin/bash ./libtool --mode=install /var/lib/upm/wrap/install -c ‘/usr/lib/x.so’: Permission denied"
            ),
            vec![PathBuf::from("/usr/lib/x.so")]
        );
    }
}
