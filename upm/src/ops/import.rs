//! `upm import FILE|URL`: install a package from a signed binary archive made by `upm export`
//! on another root, without building it.
//!
//! Fetch the archive and its signature (a file and `FILE.sig`, or the same over HTTP) → verify
//! the signature against `etc/upm/trusted-keys/` → open the archive whole in memory: every
//! path and checksum ([`crate::profile::archive::open`]) → take the root lock → plan, as an
//! install's trial run does ([`super::takeover::plan`]): another package's file is a conflict,
//! a file no package owns is taken over by the same policy (`install.replace`), a directory the
//! package needs becomes an install directory — all before anything is written → create the
//! package user (its ids are this root's: files get the local ones) → write each path through
//! its parent resolved inside the root (a symlink there never leads out), to a temporary name
//! renamed over the path → apply the root steps the profile recorded that its recipe allows
//! (`ldconfig`, `install-info` run again here) → record the package, its manifest and its
//! profile. A failure while writing undoes what was written and puts back what was taken over.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::{Error, guard, install, libs, rootsteps, setup, takeover};
use crate::ctree::{Key, Value};
use crate::ctx::Ctx;
use crate::db::{
    Db, Lock, NewCommand, NewInstall, Origin, Outcome, ProfileRow, ReplacedRow, ReportRow, State,
    StepRow,
};
use crate::fsutil::{FileKind, io, on_host, resolve_in_root};
use crate::manifest::{Entry, vanished};
use crate::pathtext::quoted;
use crate::pkguser::{self, Names, PkgUser, installdir};
use crate::profile::archive::{self, FileMeta, Unpacked};
use crate::profile::{self, Profile, binhost, keys};
use crate::recipe::RootStep;
use crate::runner::{self, Identity, Job, Progress};
use crate::trial::{Trial, Upper};
use crate::wrap::Step;

/// What an import did.
#[derive(Debug)]
pub struct Imported {
    pub name: String,
    pub version: String,
    pub recipe_hash: String,
    /// The id of the key that signed the archive.
    pub key: String,
    pub user: PkgUser,
    pub user_created: bool,
    pub files: Vec<Entry>,
    pub steps: Vec<StepRow>,
    pub reports: Vec<ReportRow>,
    /// Files no package owned that the import replaced (kept for `upm remove --restore`).
    pub replaced: Vec<PathBuf>,
    pub seconds: f64,
    /// The profile written (inside the root), `None` when writing it failed (warned).
    pub profile: Option<PathBuf>,
}

/// An archive and its signature, fetched.
pub struct Fetched {
    /// How errors name the archive (its path or URL).
    pub what: String,
    pub bytes: Vec<u8>,
    pub sig: Option<String>,
    /// Where the signature was looked for.
    pub sig_at: PathBuf,
}

/// Read an archive and its signature from a file (a host path) or a URL.
pub fn fetch(source: &str) -> Result<Fetched, Error> {
    let sig_name = format!("{source}.sig");
    if binhost::is_url(source) {
        let bytes = binhost::get(source)?.ok_or_else(|| binhost::Error::Http {
            url: source.to_string(),
            why: "no such file (HTTP 404)".into(),
        })?;
        let sig = binhost::get(&sig_name)?.map(|b| String::from_utf8_lossy(&b).into_owned());
        return Ok(Fetched {
            what: source.to_string(),
            bytes,
            sig,
            sig_at: PathBuf::from(sig_name),
        });
    }
    let path = Path::new(source);
    let bytes = std::fs::read(path).map_err(io(path))?;
    let sig_at = PathBuf::from(sig_name);
    let sig = match std::fs::read_to_string(&sig_at) {
        Ok(s) => Some(s),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io(&sig_at)(e).into()),
    };
    Ok(Fetched {
        what: path.display().to_string(),
        bytes,
        sig,
        sig_at,
    })
}

/// Import from a file or URL. See the module documentation for the stages.
pub fn import(ctx: &Ctx, source: &str) -> Result<Imported, Error> {
    let fetched = fetch(source)?;
    import_fetched(ctx, &fetched)
}

/// Import an archive already fetched.
pub fn import_fetched(ctx: &Ctx, f: &Fetched) -> Result<Imported, Error> {
    let started = Instant::now();
    let key = keys::verify(&ctx.root, &f.what, &f.bytes, f.sig.as_deref(), &f.sig_at)?;
    let unpacked = archive::open(&f.what, &f.bytes)?;
    let prof = profile::parse(&unpacked.profile, Path::new(&f.what))?;
    if prof.name != unpacked.meta.name {
        return Err(Error::ProfileMismatch {
            what: f.what.clone(),
            name: unpacked.meta.name.clone(),
            found: prof.name.clone(),
        });
    }
    for file in &unpacked.meta.files {
        let p = file.path();
        if !ctx.cfg.tracked(&p) || ctx.cfg.system_file(&p) {
            return Err(Error::OutsideTracked {
                what: f.what.clone(),
                path: quoted(&p).to_string(),
                settings: ctx.cfg.path.display().to_string(),
            });
        }
    }
    check_parents(ctx, &f.what, &unpacked)?;
    let name = unpacked.meta.name.clone();
    let _lock = Lock::take(&ctx.root, &format!("upm import {name}"))?;
    let mut db = Db::open(&ctx.root, false)?;
    super::recover::recover(ctx, &mut db)?;
    let earlier = match db.package(&name)? {
        Some(row) if row.state == State::Installed => {
            return Err(Error::AlreadyInstalled {
                name,
                version: row.version,
            });
        }
        // A failed or interrupted install's files stay recorded until recorded over.
        Some(row) => db.files(row.id)?,
        None => Vec::new(),
    };
    let plan = plan(ctx, &db, &unpacked)?;
    let (user, user_created) = pkguser::add(&ctx.root, &name, &ctx.cfg.ids)?;
    if user_created {
        ctx.printer.note(&format!(
            "created package user {} (uid {}, gid {})",
            user.name, user.uid, user.gid
        ));
    }
    let id = db.begin(&NewInstall {
        name: &name,
        version: &unpacked.meta.version,
        description: match prof
            .recipe
            .get(&Key::parse("package.description").expect("key"))
        {
            Some(Value::Str(s)) => Some(s.as_str()),
            _ => None,
        },
        uid: user.uid,
        gid: user.gid,
        recipe_path: &f.what,
        recipe: &prof.recipe.to_ct(),
    })?;
    let mut job = Import {
        ctx,
        db,
        id,
        user: &user,
        prof: &prof,
        steps: Vec::new(),
        reports: Vec::new(),
        held: Vec::new(),
        written: Vec::new(),
        earlier,
    };
    if let Err(e) = job.write(&plan, &unpacked) {
        job.undo(user_created);
        return Err(e);
    }
    let files = job.root_steps_and_record(&unpacked)?;
    let replaced = job.settle()?;
    job.record_profile(&unpacked)?;
    let profile = match profile::write(ctx, &job.db, &name) {
        Ok(p) => Some(p),
        Err(e) => {
            ctx.printer
                .warn(&format!("{name}: the profile was not written: {e}"));
            None
        }
    };
    Ok(Imported {
        name,
        version: unpacked.meta.version.clone(),
        recipe_hash: unpacked.meta.recipe_hash.clone(),
        key,
        user: user.clone(),
        user_created,
        files,
        steps: job.steps,
        reports: job.reports,
        replaced,
        seconds: started.elapsed().as_secs_f64(),
        profile,
    })
}

/// Every path's existing ancestors must be real directories, no symlink among them: an
/// install records paths as they are on disk, so a path through a symlink of this root (one
/// leading elsewhere, `/usr/local/x -> /etc`) is not what was built, and is refused.
fn check_parents(ctx: &Ctx, what: &str, u: &Unpacked) -> Result<(), Error> {
    let mut seen = BTreeSet::new();
    for f in &u.meta.files {
        let path = f.path();
        for dir in path.ancestors().skip(1) {
            if !seen.insert(dir.to_path_buf()) {
                break;
            }
            let host = on_host(&ctx.root, dir);
            if let Ok(m) = std::fs::symlink_metadata(&host)
                && m.file_type().is_symlink()
            {
                return Err(Error::UnderSymlink {
                    what: what.to_string(),
                    path: quoted(&path).to_string(),
                    link: quoted(dir).to_string(),
                    target: std::fs::read_link(&host)
                        .map(|t| quoted(&t).to_string())
                        .unwrap_or_default(),
                });
            }
        }
    }
    Ok(())
}

/// What the archive would replace and which directories it needs, decided as for an install
/// (its trial's upper layer is the archive's manifest), before the package user exists.
fn plan(ctx: &Ctx, db: &Db, u: &Unpacked) -> Result<takeover::Plan, Error> {
    let names = Names::read(&ctx.root)?;
    // Before the package user exists, nothing on disk is its own: ids no file has.
    let (uid, gid) = match pkguser::find(&ctx.root, &u.meta.name, &ctx.cfg.ids)? {
        Some(user) => (user.uid, user.gid),
        None => (u32::MAX - 1, u32::MAX - 1),
    };
    let me = takeover::Installer {
        name: &u.meta.name,
        uid,
        gid,
        install_gid: ctx.cfg.ids.install_gid,
    };
    let paths: BTreeMap<PathBuf, Upper> = u
        .meta
        .files
        .iter()
        .map(|f| {
            let kind = match f.kind.as_str() {
                "dir" => Upper::Dir,
                "symlink" => Upper::Symlink,
                _ => Upper::File,
            };
            (f.path(), kind)
        })
        .collect();
    let trial = Trial {
        status: 0,
        paths,
        duration: std::time::Duration::ZERO,
    };
    takeover::plan(&ctx.root, &ctx.cfg, db, &names, &me, &trial)
}

/// One import under way: what its stages share.
struct Import<'a> {
    ctx: &'a Ctx,
    db: Db,
    id: i64,
    user: &'a PkgUser,
    prof: &'a Profile,
    steps: Vec<StepRow>,
    reports: Vec<ReportRow>,
    held: Vec<ReplacedRow>,
    /// What was written so far (for undo).
    written: Vec<Entry>,
    /// The manifest an earlier, failed or interrupted install of the package recorded.
    earlier: Vec<Entry>,
}

impl Import<'_> {
    fn root(&self) -> &Path {
        &self.ctx.root
    }

    /// The recipe's `root.allow`, as the profile records it.
    fn allow(&self) -> Vec<RootStep> {
        match self
            .prof
            .recipe
            .get(&Key::parse("root.allow").expect("key"))
        {
            Some(Value::List(l)) => l.iter().filter_map(|s| RootStep::from_name(s)).collect(),
            _ => Vec::new(),
        }
    }

    /// Open the directories, take over what is replaced, and write every path.
    fn write(&mut self, plan: &takeover::Plan, u: &Unpacked) -> Result<(), Error> {
        let root = self.ctx.root.clone();
        let install_gid = self.ctx.cfg.ids.install_gid;
        for (dir, in_manifest) in &plan.open_dirs {
            installdir::make(&on_host(&root, dir), install_gid)?;
            if *in_manifest {
                self.db.mark_shared(dir)?;
            }
            self.ctx.printer.note(&format!(
                "{}: made an install directory ({} writes into it)",
                dir.display(),
                self.user.name
            ));
        }
        if !plan.take.is_empty() {
            self.db.hold(self.id, &plan.take)?;
            takeover::take(&root, &plan.take, self.user.uid, self.user.gid)?;
            self.held = plan.take.clone();
        }
        let allow = self.allow();
        for (i, f) in u.meta.files.iter().enumerate() {
            let path = f.path();
            let (mode, dropped) = self.mode_for(f, &allow);
            if dropped != 0 {
                let detail = format!(
                    "{} removed (mode {:04o} -> {mode:04o}): the recipe's root.allow does not allow it here",
                    if dropped == 0o4000 {
                        "setuid bit"
                    } else if dropped == 0o2000 {
                        "setgid bit"
                    } else {
                        "setuid and setgid bits"
                    },
                    f.mode
                );
                self.ctx
                    .printer
                    .warn(&format!("{}: {detail}", quoted(&path)));
                self.reports.push(ReportRow {
                    kind: "setid-removed".into(),
                    path: Some(path.clone()),
                    detail,
                });
            }
            let made = place(&root, f, mode, u.data[i].as_deref(), self.ids(f))?;
            if made {
                self.written.push(Entry {
                    path,
                    kind: FileKind::from_name(&f.kind).unwrap_or(FileKind::File),
                    mode,
                    uid: 0,
                    gid: 0,
                    size: 0,
                    mtime: 0,
                    sha256: None,
                    target: None,
                    shared: false,
                });
            }
        }
        Ok(())
    }

    /// The local owner and group of a path.
    fn ids(&self, f: &FileMeta) -> (u32, u32) {
        let uid = if f.owner == "package" {
            self.user.uid
        } else {
            0
        };
        let gid = match f.group.as_str() {
            "package" => self.user.gid,
            "install" => self.ctx.cfg.ids.install_gid,
            _ => 0,
        };
        (uid, gid)
    }

    /// The mode a path gets: the archive's, without a setuid bit on a file not root's or one
    /// the recipe does not allow (setgid likewise); and which bits were dropped.
    fn mode_for(&self, f: &FileMeta, allow: &[RootStep]) -> (u32, u32) {
        if f.kind != "file" {
            return (f.mode & 0o7777, 0);
        }
        let mut drop = 0;
        if f.mode & 0o4000 != 0 && !(f.owner == "root" && allow.contains(&RootStep::Setuid)) {
            drop |= 0o4000;
        }
        if f.mode & 0o2000 != 0 && !(f.group == "root" && allow.contains(&RootStep::Setgid)) {
            drop |= 0o2000;
        }
        (f.mode & 0o7777 & !drop, drop)
    }

    /// A write failed: remove what was written, put back what was taken over, forget the row
    /// and (when this import made it) the package user.
    fn undo(&mut self, user_created: bool) {
        let root = self.ctx.root.clone();
        let _ = install::undo(&root, &self.written);
        let _ = takeover::restore(&root, &self.held);
        let _ = self.db.forget_replaced(self.id);
        let _ = self.db.delete(self.id);
        if user_created {
            let _ = pkguser::remove(&root, &self.user.name, &self.ctx.cfg.ids);
        }
    }

    /// Apply the root steps the profile recorded as applied that the recipe allows (the
    /// owners and modes are already the archive's; `ldconfig` and `install-info` run again
    /// here), then read every path's final state and record the package.
    fn root_steps_and_record(&mut self, u: &Unpacked) -> Result<Vec<Entry>, Error> {
        let root = self.ctx.root.clone();
        let allow = self.allow();
        let recorded: Vec<Step> = self
            .prof
            .root_steps
            .iter()
            .filter(|s| s.applied && RootStep::from_name(&s.step).is_some())
            .map(|s| Step {
                step: s.step.clone(),
                arg: s.arg.clone(),
                path: PathBuf::from(&s.path),
            })
            .collect();
        let mine: BTreeSet<PathBuf> = u.meta.files.iter().map(|f| f.path()).collect();
        let names = Names::read(&root)?;
        let applied = rootsteps::apply(&root, &allow, &recorded, &mine, &names);
        for r in applied.rows.iter().filter(|r| !r.applied) {
            self.ctx.printer.warn(&format!(
                "root step `{}` not applied: {}",
                crate::wrap::command(&r.step, &r.arg, &r.path),
                r.note.as_deref().unwrap_or("")
            ));
        }
        if applied.ldconfig {
            self.as_root("ldconfig", "ldconfig")?;
        }
        for args in &applied.install_info {
            let script = format!("install-info {}", setup::sh_quote_all(args));
            self.as_root("install-info", &script)?;
        }
        // What the build recorded, as its profile says (the owners and modes it left are
        // the archive's).
        self.steps = self
            .prof
            .root_steps
            .iter()
            .map(|s| StepRow {
                step: s.step.clone(),
                arg: s.arg.clone(),
                path: PathBuf::from(&s.path),
                applied: s.applied,
                note: s.note.clone(),
            })
            .collect();
        let shared: BTreeSet<PathBuf> = u
            .meta
            .files
            .iter()
            .filter(|f| f.shared)
            .map(|f| f.path())
            .collect();
        let mut files = Vec::new();
        for p in mine.iter().chain(&applied.created) {
            if let Some(mut e) = Entry::read(&root, p).map_err(io(p))? {
                e.shared = shared.contains(p);
                files.push(e);
            }
        }
        let setid = guard::setid(self.ctx, &allow, &recorded, &mut files)?;
        self.reports.extend(setid);
        let gone = vanished(&root, self.earlier.iter().map(|e| e.path.as_path()), &files);
        libs::store(&mut self.db, &root, self.id, &files, &gone)?;
        self.db.record(
            self.id,
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
        Ok(files)
    }

    /// Run a root step's command as root in the root (its log in the package's `logs/`).
    fn as_root(&self, name: &str, script: &str) -> Result<(), Error> {
        let home = on_host(self.root(), &self.user.home);
        let logs = home.join("logs");
        std::fs::create_dir_all(&logs).map_err(io(&logs))?;
        let log = logs.join(format!("{name}.log"));
        let env = setup::environment(self.user, 1, &[]);
        let ran = runner::run(
            &Job {
                label: format!("{} {name}", self.user.name),
                script,
                who: Identity {
                    uid: 0,
                    gid: 0,
                    groups: [0],
                },
                root: self.root(),
                cwd: Path::new("/"),
                env: &env,
                log: &log,
                shell: None,
            },
            &Progress::new(false, true),
        )?;
        if !ran.success() {
            self.ctx.printer.warn(&format!(
                "{name} failed with status {}; see {}",
                ran.status,
                log.display()
            ));
        }
        Ok(())
    }

    /// Everything taken over was replaced by the archive's files: settle them as replaced.
    fn settle(&mut self) -> Result<Vec<PathBuf>, Error> {
        if self.held.is_empty() {
            return Ok(Vec::new());
        }
        let keep = self.ctx.cfg.keep_replaced;
        self.db.settle(self.id, &[], keep)?;
        if !keep {
            takeover::drop_kept(self.root(), &self.held);
        }
        let replaced: Vec<PathBuf> = self.held.iter().map(|r| r.path.clone()).collect();
        self.ctx.printer.note(&format!(
            "{}: replaced {} file(s) no package owned (`upm info {}` lists them)",
            self.user.name,
            replaced.len(),
            self.user.name
        ));
        Ok(replaced)
    }

    /// Store what the package's profile is regenerated from: the recipe, archive, host facts,
    /// timings, environment and commands of the build the archive was made from.
    fn record_profile(&mut self, u: &Unpacked) -> Result<(), Error> {
        let p = self.prof;
        self.db.set_profile_inputs(
            self.id,
            &ProfileRow {
                recipe: p.recipe.to_toml(),
                source_file: p.source.as_ref().map(|s| s.file.clone()),
                source_sha256: p.source.as_ref().map(|s| s.sha256.clone()),
                env: serde_json::to_string(&p.env).expect("pairs serialize"),
                host: serde_json::to_string(&p.host).expect("host serializes"),
                timings: serde_json::to_string(&p.timings).expect("timings serialize"),
                path: None,
                text: None,
                recipe_hash: Some(u.meta.recipe_hash.clone()),
            },
        )?;
        for c in &p.commands {
            let user = if c.user == "root" {
                "root"
            } else {
                self.user.name.as_str()
            };
            let seq = self.db.command_started(
                self.id,
                &NewCommand {
                    phase: &c.phase,
                    // The profile's recipe already holds what `upm record` added: taken as the
                    // recipe's, so it is not added to it twice.
                    origin: Origin::Recipe,
                    user,
                    cwd: Path::new(&c.cwd),
                    command: &c.command,
                },
            )?;
            if let Some(status) = c.status {
                self.db
                    .command_finished(self.id, seq, status, c.duration_ms.unwrap_or(0))?;
            }
        }
        Ok(())
    }
}

/// Write one path of the archive into the root with the given mode and (uid, gid): through
/// its parent resolved inside the root (missing parents made root's, 0755), to a temporary
/// name renamed over the path. An existing directory is left as it is. Returns whether
/// something was made.
fn place(
    root: &Path,
    f: &FileMeta,
    mode: u32,
    data: Option<&[u8]>,
    (uid, gid): (u32, u32),
) -> Result<bool, Error> {
    let path = f.path();
    let parent = parent_dir(root, path.parent().unwrap_or(Path::new("/")))?;
    let name = path.file_name().expect("archive paths have a name");
    let host = parent.join(name);
    let mut tmp_name = std::ffi::OsString::from(".upm-import.");
    tmp_name.push(std::process::id().to_string());
    tmp_name.push(".");
    tmp_name.push(name);
    let tmp = parent.join(tmp_name);
    let _ = std::fs::remove_file(&tmp);
    match (f.kind.as_str(), f.link()) {
        ("dir", _) => {
            if std::fs::symlink_metadata(&host).is_ok_and(|m| m.is_dir()) {
                return Ok(false);
            }
            std::fs::create_dir(&host).map_err(io(&host))?;
            own(&host, uid, gid, Some(mode), f.mtime)?;
            return Ok(true);
        }
        ("symlink", _) => {
            let target = f.target().unwrap_or_default();
            std::os::unix::fs::symlink(&target, &tmp).map_err(io(&tmp))?;
            own(&tmp, uid, gid, None, f.mtime)?;
        }
        (_, Some(first)) => {
            let first_host = parent_dir(root, first.parent().unwrap_or(Path::new("/")))?
                .join(first.file_name().expect("a name"));
            std::fs::hard_link(&first_host, &tmp).map_err(io(&tmp))?;
        }
        _ => {
            use std::io::Write;
            let mut out = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode_0600()
                .open(&tmp)
                .map_err(io(&tmp))?;
            out.write_all(data.unwrap_or_default()).map_err(io(&tmp))?;
            out.sync_all().map_err(io(&tmp))?;
            own(&tmp, uid, gid, Some(mode), f.mtime)?;
        }
    }
    std::fs::rename(&tmp, &host).map_err(io(&host))?;
    Ok(true)
}

trait Mode0600 {
    fn mode_0600(&mut self) -> &mut Self;
}

impl Mode0600 for std::fs::OpenOptions {
    fn mode_0600(&mut self) -> &mut Self {
        std::os::unix::fs::OpenOptionsExt::mode(self, 0o600)
    }
}

/// The host directory a directory inside the root resolves to, following symlinks inside the
/// root only; missing parts are made (root's, 0755).
fn parent_dir(root: &Path, dir: &Path) -> Result<PathBuf, Error> {
    if let Some(host) = resolve_in_root(root, dir) {
        if !std::fs::metadata(&host).is_ok_and(|m| m.is_dir()) {
            return Err(io(&host)(std::io::Error::other("not a directory")).into());
        }
        return Ok(host);
    }
    let up = parent_dir(root, dir.parent().unwrap_or(Path::new("/")))?;
    let host = up.join(dir.file_name().expect("a name"));
    std::fs::create_dir(&host).map_err(io(&host))?;
    std::fs::set_permissions(&host, std::fs::Permissions::from_mode(0o755)).map_err(io(&host))?;
    Ok(host)
}

/// Owner first (a chown clears setuid/setgid bits), then the mode, then the mtime.
fn own(p: &Path, uid: u32, gid: u32, mode: Option<u32>, mtime: i64) -> Result<(), Error> {
    nix::unistd::fchownat(
        nix::fcntl::AT_FDCWD,
        p,
        Some(uid.into()),
        Some(gid.into()),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(|e| io(p)(e.into()))?;
    if let Some(m) = mode {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).map_err(io(p))?;
    }
    let t = nix::sys::time::TimeSpec::new(mtime, 0);
    nix::sys::stat::utimensat(
        nix::fcntl::AT_FDCWD,
        p,
        &t,
        &t,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
    .map_err(|e| io(p)(e.into()))?;
    Ok(())
}
