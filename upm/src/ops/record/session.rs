//! One recording session: the watcher running over the trees the package user can write, the
//! commands recorded since the last commit (each with the paths it touched, cut at its end),
//! and the two things done with them — [`Session::commit`], which makes them part of the
//! package exactly as an install would (only paths its package user owns are claimed, shared
//! trees' new directories become install directories, recorded root steps applied per
//! `root.allow`, no setuid/setgid file left a package user's, system files given back), and
//! [`Session::rollback`], which forgets them and names (or with `--undo` removes) what they
//! made.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::ctx::Ctx;
use crate::db::{Db, NewCommand, Origin, Outcome, ReportRow, State, StepRow};
use crate::fsutil::{FileKind, on_host};
use crate::manifest::Entry;
use crate::pathtext::quoted;
use crate::pkguser::{Names, PkgUser, installdir};
use crate::recipe::{Phase, RootStep};
use crate::track::{Claim, Collector, Touched};
use crate::wrap::Step;

use crate::ops::{Error, guard, io, libs, rootsteps, setup};

/// A command line entered in the session, and what it touched.
#[derive(Debug)]
pub struct Entered {
    pub phase: Phase,
    /// Where it started, inside the root.
    pub cwd: PathBuf,
    pub line: String,
    pub status: i32,
    /// When it started (seconds since the epoch).
    pub started: i64,
    pub duration: Duration,
    pub touched: Touched,
}

/// A committed command line, as the database and `--json` keep it.
#[derive(Debug, Clone)]
pub struct CommandLine {
    pub phase: Phase,
    pub cwd: PathBuf,
    pub line: String,
    pub status: i32,
    /// When it started (seconds since the epoch).
    pub started: i64,
    pub seconds: f64,
}

/// What a commit added.
#[derive(Debug, Default)]
pub struct Committed {
    pub commands: usize,
    /// The command lines, in the order they ran.
    pub lines: Vec<CommandLine>,
    /// Commands left out of the phases because they failed.
    pub failed: usize,
    /// Paths recorded in the manifest by this commit.
    pub files: Vec<Entry>,
    pub steps: Vec<StepRow>,
    pub reports: Vec<ReportRow>,
}

/// What a rollback forgot.
#[derive(Debug, Default)]
pub struct RolledBack {
    pub commands: usize,
    /// Paths the forgotten commands made (removed with `--undo`).
    pub made: Vec<PathBuf>,
    /// Files of the package they changed (never undone: the old content is gone).
    pub changed: Vec<PathBuf>,
}

pub struct Session<'a> {
    pub ctx: &'a Ctx,
    pub db: Db,
    pub user: PkgUser,
    pub id: i64,
    pub name: String,
    pub version: String,
    /// The package's home on the host.
    pub home: PathBuf,
    pub allow: Vec<RootStep>,
    pub collector: Option<Collector>,
    pub pending: Vec<Entered>,
    /// Paths touched outside any recorded command (between commands, by control lines).
    pub loose: Touched,
    /// The phase commands are recorded under now (`phase NAME`).
    pub phase: Phase,
    /// When the session (or the last commit) started, for a rescan after lost events.
    pub since: i64,
    /// Commits made in this session.
    pub commits: usize,
    /// The LD_PRELOAD shim's log, when the shim is loaded into the session's commands.
    pub shim: Option<crate::shim::Session>,
    /// What the watcher saw, and what the shim logged, since the last commit or rollback.
    pub inotify_seen: Touched,
    pub shim_seen: Option<Touched>,
    /// The profile last written (inside the root).
    pub profile: Option<PathBuf>,
    /// Whether the package was made by recording (not installed from a recipe): its
    /// profile's timings are then its recorded commands'.
    pub recorded_only: bool,
}

impl Session<'_> {
    fn root(&self) -> &Path {
        &self.ctx.root
    }

    /// The steps file the wrappers append to (on the host).
    pub fn steps_file(&self) -> PathBuf {
        self.home.join(".upm/steps")
    }

    /// Everything touched since the last cut, now, once the watcher has seen it.
    fn cut(&mut self) -> Result<Touched, Error> {
        let seen = match self.collector.as_mut() {
            Some(c) => c.cut().map_err(Error::Watch)?,
            None => Touched::default(),
        };
        self.absorb(seen)
    }

    /// What the watcher saw, with what the shim logged since the last look: both kept apart
    /// too, for the per-path signals a commit stores.
    pub fn absorb(&mut self, inotify: Touched) -> Result<Touched, Error> {
        let mut all = inotify.clone();
        self.inotify_seen.merge(inotify);
        if let Some(shim) = self.shim.as_mut() {
            let logged = shim.take(&self.ctx.root, &self.ctx.cfg)?;
            all.union(&logged);
            self.shim_seen
                .get_or_insert_with(Touched::default)
                .merge(logged);
        }
        Ok(all)
    }

    /// A command line ended: its paths are what was touched since the last cut.
    pub fn ended(
        &mut self,
        line: &str,
        cwd: &Path,
        status: i32,
        started: i64,
        duration: Duration,
    ) -> Result<(), Error> {
        let touched = self.cut()?;
        self.pending.push(Entered {
            phase: self.phase,
            cwd: cwd.to_path_buf(),
            line: line.to_string(),
            status,
            started,
            duration,
            touched,
        });
        Ok(())
    }

    /// Put what was touched since the last cut among the paths of no command.
    pub fn cut_loose(&mut self) -> Result<(), Error> {
        let t = self.cut()?;
        self.loose.merge(t);
        Ok(())
    }

    /// Everything touched since the last commit, and the commands that did it.
    fn take_pending(&mut self) -> (Vec<Entered>, Touched) {
        let cmds = std::mem::take(&mut self.pending);
        let mut all = std::mem::take(&mut self.loose);
        for c in &cmds {
            all.merge(c.touched.clone());
        }
        (cmds, all)
    }

    /// The manifest recorded for the package so far.
    fn recorded_paths(&self) -> Result<BTreeSet<PathBuf>, Error> {
        Ok(self
            .db
            .files(self.id)?
            .into_iter()
            .map(|e| e.path)
            .collect())
    }

    /// Forget the commands since the last commit and say what they made; with `undo`, remove
    /// it (files and links, then the directories they made, deepest first, when empty). Files
    /// already in the package's manifest are never removed. Their recorded root steps go too.
    pub fn rollback(&mut self, undo: bool) -> Result<RolledBack, Error> {
        let (cmds, touched) = self.take_pending();
        self.forget_signals();
        let root = self.root().to_path_buf();
        let tracked = touched
            .manifest(&root, Claim::Owners(&[self.user.uid]))
            .map_err(io(&root))?;
        let known = self.recorded_paths()?;
        let mut out = RolledBack {
            commands: cmds.len(),
            ..RolledBack::default()
        };
        let mut made = Vec::new();
        for e in tracked.entries {
            if known.contains(&e.path) {
                out.changed.push(e.path);
            } else if touched.appeared.contains(&e.path) || under_tree(&touched, &e.path) {
                made.push(e);
            } else {
                out.changed.push(e.path);
            }
        }
        if undo {
            crate::ops::install::undo(&root, &made)?;
            // What the undo itself did is no one's.
            self.cut()?;
            self.forget_signals();
        }
        out.made = made.into_iter().map(|e| e.path).collect();
        let steps = self.steps_file();
        let (uid, gid) = (self.user.uid, self.user.gid);
        crate::runner::as_fs_user(uid, gid, || std::fs::write(&steps, b"")).map_err(io(&steps))?;
        self.since = crate::db::now();
        Ok(out)
    }

    /// Make the commands since the last commit part of the package: their files into its
    /// manifest (as an install records them), their lines into its recipe's phases. `None`
    /// when there was nothing to commit.
    pub fn commit(&mut self) -> Result<Option<Committed>, Error> {
        let (cmds, mut touched) = self.take_pending();
        if cmds.is_empty() && touched.changed.is_empty() && touched.deleted.is_empty() {
            return Ok(None);
        }
        let root = self.root().to_path_buf();
        if touched.rescan {
            self.ctx.printer.warn(
                "the watcher lost events (kernel queue overflow); rescanning the tracked trees",
            );
            touched.rescan(&root, &setup::inside_rules(&self.ctx.cfg), self.since);
        }
        let mut tracked = touched
            .manifest(&root, Claim::Owners(&[self.user.uid]))
            .map_err(io(&root))?;
        let mut reports = guard::system_files(self.ctx, &self.user, &mut tracked)?;
        reports.extend(self.foreign(&tracked.foreign)?);
        let mut steps = self.shared_dirs(&mut tracked.entries)?;
        let recorded = Step::parse_all(&std::fs::read(self.steps_file()).unwrap_or_default());
        let known = self.recorded_paths()?;
        let mut mine: BTreeSet<PathBuf> = tracked.entries.iter().map(|e| e.path.clone()).collect();
        let names = Names::read(&root)?;
        let all: BTreeSet<PathBuf> = mine.union(&known).cloned().collect();
        let applied = rootsteps::apply(&root, &self.allow, &recorded, &all, &names);
        for r in applied.rows.iter().filter(|r| !r.applied) {
            self.ctx.printer.warn(&format!(
                "root step `{}` not applied: {}",
                crate::wrap::command(&r.step, &r.arg, &r.path),
                r.note.as_deref().unwrap_or("")
            ));
        }
        steps.extend(applied.rows);
        self.root_tools(applied.ldconfig, &applied.install_info)?;
        mine.extend(applied.created);
        let shared: BTreeSet<PathBuf> = tracked
            .entries
            .iter()
            .filter(|e| e.shared)
            .map(|e| e.path.clone())
            .collect();
        let mut files = Vec::new();
        for p in &mine {
            if let Some(mut e) = Entry::read(&root, p).map_err(io(p))? {
                e.shared = shared.contains(p);
                files.push(e);
            }
        }
        reports.extend(guard::setid(self.ctx, &self.allow, &recorded, &mut files)?);
        let gone: Vec<PathBuf> = tracked
            .deleted
            .iter()
            .filter(|p| known.contains(*p))
            .cloned()
            .collect();
        self.store_signals(&files, &tracked.foreign, &gone)?;
        let mut all_steps = self.db.root_steps(self.id)?;
        all_steps.extend(steps.iter().cloned());
        let mut all_reports = self.db.reports(self.id)?;
        all_reports.extend(reports.iter().cloned());
        libs::store(&mut self.db, &root, self.id, &files, &gone)?;
        self.db.record(
            self.id,
            &Outcome {
                files: &files,
                gone: &gone,
                steps: &all_steps,
                reports: &all_reports,
                state: State::Installed,
                stage: None,
                error: None,
            },
        )?;
        self.warn_phases(&cmds, &mine);
        // What the commit itself did (root steps, install directories) is no command's.
        self.cut()?;
        self.forget_signals();
        let failed = cmds.iter().filter(|c| c.status != 0).count();
        self.store_commands(&cmds)?;
        let steps_file = self.steps_file();
        let (uid, gid) = (self.user.uid, self.user.gid);
        crate::runner::as_fs_user(uid, gid, || std::fs::write(&steps_file, b""))
            .map_err(io(&steps_file))?;
        self.commits += 1;
        self.since = crate::db::now();
        let lines = cmds
            .iter()
            .map(|c| CommandLine {
                phase: c.phase,
                cwd: c.cwd.clone(),
                line: c.line.clone(),
                status: c.status,
                started: c.started,
                seconds: c.duration.as_secs_f64(),
            })
            .collect();
        Ok(Some(Committed {
            commands: cmds.len(),
            lines,
            failed,
            files,
            steps,
            reports,
        }))
    }

    fn forget_signals(&mut self) {
        self.inotify_seen = Touched::default();
        if let Some(s) = self.shim_seen.as_mut() {
            *s = Touched::default();
        }
    }

    /// Which signals saw each path of this commit, stored with the package's earlier ones
    /// (`upm info PKG --tracking`).
    fn store_signals(
        &mut self,
        files: &[Entry],
        foreign: &[(PathBuf, u32)],
        gone: &[PathBuf],
    ) -> Result<(), Error> {
        let now = crate::track::Tracked {
            entries: files.to_vec(),
            foreign: foreign.to_vec(),
            deleted: gone.to_vec(),
        };
        let new = crate::track::signals(&self.inotify_seen, self.shim_seen.as_ref(), &now);
        self.forget_signals();
        let mut rows: Vec<crate::track::Signals> = self
            .db
            .tracking(self.id)?
            .into_iter()
            .filter(|r| !new.iter().any(|n| n.path == r.path))
            .collect();
        rows.extend(new);
        rows.sort_by(|a, b| a.path.cmp(&b.path));
        self.db.record_tracking(self.id, &rows)?;
        Ok(())
    }

    /// A rebuild records only what its install phase makes: say so for a command recorded
    /// under another phase that made files of the package.
    fn warn_phases(&self, cmds: &[Entered], mine: &BTreeSet<PathBuf>) {
        for c in cmds
            .iter()
            .filter(|c| c.phase != Phase::Install && c.status == 0)
        {
            if let Some(p) = c.touched.changed.iter().find(|p| mine.contains(*p)) {
                self.ctx.printer.warn(&format!(
                    "`{}` ({} phase) made files of {} ({} …); a rebuild from the profile \
                     records only the install phase's files: type `phase install` before such \
                     commands",
                    c.line,
                    c.phase,
                    self.name,
                    quoted(p)
                ));
            }
        }
    }

    /// Report the paths changed that belong to someone else (never claimed).
    fn foreign(&self, foreign: &[(PathBuf, u32)]) -> Result<Vec<ReportRow>, Error> {
        let names = Names::read(self.root())?;
        let mut out = Vec::new();
        for (path, uid) in foreign {
            let (owner, _) = setup::owner_of(&self.db, &names, path, *uid);
            let detail = format!("changed while recording, but belongs to {owner}; not claimed");
            self.ctx
                .printer
                .warn(&format!("{}: {detail}", quoted(path)));
            out.push(ReportRow {
                kind: "foreign".into(),
                path: Some(path.clone()),
                detail,
            });
        }
        Ok(out)
    }

    /// A directory the package made in a shared tree becomes an install directory (as in an
    /// install), so later packages can add to it.
    fn shared_dirs(&self, entries: &mut [Entry]) -> Result<Vec<StepRow>, Error> {
        let cfg = &self.ctx.cfg;
        let mut steps = Vec::new();
        for e in entries.iter_mut() {
            if e.kind == FileKind::Dir
                && e.uid == self.user.uid
                && cfg.shared_tree(&e.path)
                && e.mode & 0o755 == 0o755
            {
                installdir::make(&on_host(self.root(), &e.path), cfg.ids.install_gid)?;
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
        Ok(steps)
    }

    /// Run the root tools an applied step asked for (the linker cache, the info `dir`).
    fn root_tools(&self, ldconfig: bool, install_info: &[Vec<String>]) -> Result<(), Error> {
        let mut scripts = Vec::new();
        if ldconfig {
            scripts.push(("ldconfig", "ldconfig".to_string()));
        }
        for args in install_info {
            scripts.push((
                "install-info",
                format!("install-info {}", setup::sh_quote_all(args)),
            ));
        }
        for (name, script) in scripts {
            let log = self.home.join("logs").join(format!("{name}.log"));
            if !setup::run_root_command(self.root(), &script, &log)? {
                self.ctx
                    .printer
                    .warn(&format!("{name} failed; see {}", quoted(&log)));
            }
        }
        Ok(())
    }

    /// Store the committed command lines (origin `record`) and write the profile again: its
    /// recipe's phases end with the successful lines, so the package rebuilds from it. A
    /// profile that cannot be written is warned about; the commit stands.
    fn store_commands(&mut self, cmds: &[Entered]) -> Result<(), Error> {
        for c in cmds {
            self.db.command_recorded(
                self.id,
                &NewCommand {
                    phase: c.phase.name(),
                    origin: Origin::Record,
                    user: &self.user.name,
                    cwd: &c.cwd,
                    command: &c.line,
                },
                c.started,
                c.status,
                c.duration.as_millis() as i64,
            )?;
        }
        if self.recorded_only {
            self.timings()?;
        }
        match crate::profile::write(self.ctx, &self.db, &self.name) {
            Ok(path) => {
                self.db
                    .set_recipe_path(self.id, &path.display().to_string())?;
                self.profile = Some(path);
            }
            Err(e) => self
                .ctx
                .printer
                .warn(&format!("{}: the profile was not written: {e}", self.name)),
        }
        Ok(())
    }
}

impl Session<'_> {
    /// The profile timings of a recorded package: its commands' durations, the install
    /// phase's apart from the others'.
    fn timings(&self) -> Result<(), Error> {
        let mut t = crate::profile::Timings::default();
        for c in self.db.commands(self.id)? {
            let ms = c.duration_ms.unwrap_or(0).max(0) as u64;
            if c.phase == Phase::Install.name() {
                t.install_ms += ms;
            } else {
                t.build_ms += ms;
            }
            t.total_ms += ms;
        }
        crate::profile::record_timings(&self.db, self.id, &t)?;
        Ok(())
    }
}

/// Whether `p` lies in a directory that was moved into place (all of it is new).
fn under_tree(t: &Touched, p: &Path) -> bool {
    t.trees.iter().any(|d| p.starts_with(d))
}
