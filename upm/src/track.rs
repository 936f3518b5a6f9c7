//! The tracker: turns what the watcher saw during one install (and, after a lost-events rescan
//! or a killed upm, what the disk shows) into that install's manifest, and reports where the
//! signals disagree — a path changed during the install that belongs to someone else is
//! reported, never claimed.
//!
//! Three signals meet here: the watcher's events, the LD_PRELOAD shim's log (folded into the
//! same [`Touched`] by [`crate::shim::log`] and merged with [`Touched::union`]), and file
//! ownership (what a package user's install may claim is what its uid owns). [`signals`]
//! records, per path, which of them saw it, for `upm install --explain-tracking` and `upm info
//! PKG --tracking`.
//!
//! [`Collector`] runs the watcher on its own thread for the span of an install and folds each
//! event into the touched paths as it arrives ([`Touched::add`], pure and unit-tested on
//! made-up events); reading the disk is [`Touched::manifest`].

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::fsutil::{in_root, on_host};
use crate::manifest::Entry;
use crate::watch::{Event, Handler, Rules, Running, Watcher};

/// The paths an install touched, as seen inside the target root.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Touched {
    /// Created, written, changed or moved here.
    pub changed: BTreeSet<PathBuf>,
    /// Deleted or moved away (they may have come back since).
    pub deleted: BTreeSet<PathBuf>,
    /// Paths that appeared (created, linked or moved here), a subset of `changed`.
    pub appeared: BTreeSet<PathBuf>,
    /// Directories moved into place whose whole content counts as changed.
    pub trees: BTreeSet<PathBuf>,
    /// Events were lost: the disk must be scanned.
    pub rescan: bool,
}

/// Which touched paths an install may claim.
#[derive(Debug, Clone, Copy)]
pub enum Claim<'a> {
    /// A package user's install: the paths owned by these uids (it cannot change others').
    Owners(&'a [u32]),
    /// Root's commands: only paths that appeared; an existing file root changed stays its
    /// owner's (it is reported).
    Appeared,
}

/// The manifest of one install and what did not add up.
#[derive(Debug, Default)]
pub struct Tracked {
    pub entries: Vec<Entry>,
    /// Paths changed during the install that are owned by someone else: (path, uid).
    pub foreign: Vec<(PathBuf, u32)>,
    /// Paths that were there before and are gone now.
    pub deleted: Vec<PathBuf>,
}

impl Tracked {
    /// Merge what root's commands made into a package user's install. Root changing this
    /// package's own files (now, or in `earlier` attempts) is no news; changing anyone else's
    /// is reported; what appeared is the package's.
    pub fn merge_root<'a>(&mut self, root: Tracked, earlier: impl Iterator<Item = &'a Path>) {
        let own: BTreeSet<PathBuf> = self
            .entries
            .iter()
            .map(|e| e.path.clone())
            .chain(earlier.map(Path::to_path_buf))
            .collect();
        let foreign: Vec<(PathBuf, u32)> = root
            .foreign
            .into_iter()
            .filter(|(p, _)| !own.contains(p))
            .collect();
        self.foreign.extend(foreign);
        for e in root.entries {
            if !self.entries.iter().any(|m| m.path == e.path) {
                self.entries.push(e);
            }
        }
    }
}

impl Tracked {
    /// Claim the files the package user made during its install phase (`made`) that the
    /// recipe's root commands (`by_root`) then gave to someone else — sudo's `chown root:root
    /// /etc/sudoers` after its Makefile's `cp -p`: they are still the package's, not someone
    /// else's file it changed.
    pub fn claim_given(
        &mut self,
        root: &Path,
        made: &Touched,
        by_root: &Touched,
    ) -> std::io::Result<()> {
        let given: Vec<PathBuf> = self
            .foreign
            .iter()
            .filter(|(p, _)| made.appeared.contains(p) && by_root.changed.contains(p))
            .map(|(p, _)| p.clone())
            .collect();
        for p in given {
            if let Some(e) = Entry::read(root, &p)? {
                self.entries.push(e);
            }
            self.foreign.retain(|(q, _)| *q != p);
        }
        Ok(())
    }
}

/// How the tracker decided about one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// In the manifest; the owner it had when tracked.
    Claimed { uid: u32 },
    /// Someone else's: reported, never claimed.
    Foreign { uid: u32 },
    /// There before and removed by the install.
    Gone,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Claimed { .. } => "claimed",
            Verdict::Foreign { .. } => "foreign",
            Verdict::Gone => "gone",
        }
    }

    pub fn uid(self) -> Option<u32> {
        match self {
            Verdict::Claimed { uid } | Verdict::Foreign { uid } => Some(uid),
            Verdict::Gone => None,
        }
    }
}

/// Which signals saw one path of an install.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signals {
    pub path: PathBuf,
    /// The watcher saw it.
    pub inotify: bool,
    /// The shim logged it; `None` when the shim was off.
    pub shim: Option<bool>,
    /// What ownership made of it.
    pub verdict: Verdict,
}

impl Signals {
    /// Where the signals disagree, in words; `None` when they agree.
    pub fn disagreement(&self) -> Option<String> {
        let mut why = Vec::new();
        match (self.inotify, self.shim) {
            (true, Some(false)) => why.push(
                "the shim did not log it (a static or setuid program, or a call it does not hook)"
                    .to_string(),
            ),
            (false, Some(true)) => why.push("the watcher did not see it".to_string()),
            (false, None) => why.push("found by a rescan, not by an event".to_string()),
            _ => {}
        }
        if let Verdict::Foreign { uid } = self.verdict {
            why.push(format!("it belongs to uid {uid}: reported, not claimed"));
        }
        (!why.is_empty()).then(|| why.join("; "))
    }
}

/// Per path of `tracked` (claimed, foreign, gone), which signals saw it: `inotify` holds what
/// the watcher saw, `shim` what the shim logged (`None`: the shim was off).
pub fn signals(inotify: &Touched, shim: Option<&Touched>, tracked: &Tracked) -> Vec<Signals> {
    let mut out: Vec<Signals> = Vec::new();
    let mut add = |path: &Path, verdict: Verdict| {
        out.push(Signals {
            path: path.to_path_buf(),
            inotify: inotify.saw(path),
            shim: shim.map(|s| s.saw(path)),
            verdict,
        })
    };
    for e in &tracked.entries {
        add(&e.path, Verdict::Claimed { uid: e.uid });
    }
    for (p, uid) in &tracked.foreign {
        add(p, Verdict::Foreign { uid: *uid });
    }
    for p in &tracked.deleted {
        add(p, Verdict::Gone);
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out.dedup_by(|a, b| a.path == b.path);
    out
}

impl Touched {
    /// Add what a later span of the same watch touched (the commands of a recording session,
    /// each cut on its own, made into one install).
    pub fn merge(&mut self, later: Touched) {
        self.changed.extend(later.changed);
        self.deleted.extend(later.deleted);
        self.appeared.extend(later.appeared);
        self.trees.extend(later.trees);
        self.rescan |= later.rescan;
    }

    /// Add what another signal saw (the shim's log; root's commands).
    pub fn union(&mut self, other: &Touched) {
        self.merge(other.clone());
    }

    /// Whether this signal saw `p`: changed, deleted, or inside a tree moved into place.
    pub fn saw(&self, p: &Path) -> bool {
        self.changed.contains(p)
            || self.deleted.contains(p)
            || self.trees.iter().any(|t| p.starts_with(t))
    }

    /// Fold one watcher event (host paths under `root`) into the set.
    pub fn add(&mut self, root: &Path, event: &Event) {
        let inside = |p: &Path| in_root(root, p);
        match event {
            Event::Created { path, .. } => {
                self.changed.insert(inside(path));
                self.appeared.insert(inside(path));
            }
            Event::Written { path } | Event::Attrib { path, .. } => {
                self.changed.insert(inside(path));
            }
            Event::Deleted { path, .. } => {
                self.deleted.insert(inside(path));
            }
            Event::Moved { from, to, dir } => {
                let (from, to) = (inside(from), inside(to));
                if *dir {
                    // What was touched inside the directory now lives under its new name.
                    move_under(&mut self.changed, &from, &to);
                    move_under(&mut self.appeared, &from, &to);
                    self.trees.insert(to.clone());
                }
                self.deleted.insert(from);
                self.appeared.insert(to.clone());
                self.changed.insert(to);
            }
            Event::Rescan => self.rescan = true,
        }
    }

    /// Add everything under `rules` changed since `since` (seconds, by ctime, which every
    /// create, write, chmod, chown and rename sets): the answer to lost events.
    pub fn rescan(&mut self, root: &Path, rules: &Rules, since: i64) {
        walk(root, rules, &mut |p, m| {
            if m.ctime() >= since {
                self.changed.insert(p.to_path_buf());
            }
        });
    }

    /// Read the touched paths from disk. What the install may claim depends on who ran it
    /// ([`Claim`]); the other paths it touched are reported.
    pub fn manifest(&self, root: &Path, claim: Claim<'_>) -> std::io::Result<Tracked> {
        let mut paths = self.changed.clone();
        let mut appeared = self.appeared.clone();
        for t in &self.trees {
            let rules = Rules {
                roots: vec![t.clone()],
                ..Rules::default()
            };
            walk(root, &rules, &mut |p, _| {
                paths.insert(p.to_path_buf());
                appeared.insert(p.to_path_buf());
            });
        }
        let mut out = Tracked::default();
        for p in &paths {
            match Entry::read(root, p)? {
                Some(e)
                    if match claim {
                        Claim::Owners(uids) => uids.contains(&e.uid),
                        Claim::Appeared => appeared.contains(p),
                    } =>
                {
                    out.entries.push(e)
                }
                Some(e) => out.foreign.push((e.path, e.uid)),
                None => {}
            }
        }
        for p in &self.deleted {
            if !paths.contains(p) || Entry::read(root, p)?.is_none() {
                out.deleted.push(p.clone());
            }
        }
        Ok(out)
    }
}

/// The watcher of one install, running on its own thread and folding each event into the
/// touched paths as it comes.
pub struct Collector {
    running: Running<Fold>,
    touched: Arc<Mutex<Touched>>,
}

/// The collector's handler: the touched paths so far (shared with [`Collector::cut`]), and
/// the root they are inside.
struct Fold {
    root: PathBuf,
    touched: Arc<Mutex<Touched>>,
}

impl Handler for Fold {
    fn event(&mut self, e: Event) {
        // A poisoned lock only means a reader panicked; the set itself is whole.
        let mut t = self.touched.lock().unwrap_or_else(|p| p.into_inner());
        t.add(&self.root, &e);
    }
}

impl Collector {
    /// Watch `rules` (host paths under `root`). Returns once every directory is watched, so
    /// anything done after this returns is seen.
    pub fn start(root: &Path, rules: Rules) -> Result<Collector, crate::watch::Error> {
        Collector::start_with(root, Watcher::new(rules)?)
    }

    /// Run a watcher already set up (see [`Watcher::with_dirs`]).
    pub fn start_with(root: &Path, w: Watcher) -> Result<Collector, crate::watch::Error> {
        let touched = Arc::new(Mutex::new(Touched::default()));
        let fold = Fold {
            root: root.to_path_buf(),
            touched: touched.clone(),
        };
        Ok(Collector {
            running: w.spawn(fold)?,
            touched,
        })
    }

    /// The paths touched since the start or the last cut, once everything done before the
    /// call is seen; the watcher runs on. A recording shell cuts at each command's end, so
    /// each command gets its own paths.
    pub fn cut(&mut self) -> Result<Touched, crate::watch::Error> {
        self.running.sync()?;
        let mut t = self.touched.lock().unwrap_or_else(|p| p.into_inner());
        Ok(std::mem::take(&mut *t))
    }

    /// Stop watching once everything done before the call is seen; the paths touched (since
    /// the last cut).
    pub fn finish(self) -> Result<Touched, crate::watch::Error> {
        drop(self.running.finish()?);
        let mut t = self.touched.lock().unwrap_or_else(|p| p.into_inner());
        Ok(std::mem::take(&mut *t))
    }
}

/// Rename the members of `set` under `from` to the same place under `to`.
fn move_under(set: &mut BTreeSet<PathBuf>, from: &Path, to: &Path) {
    let moved: Vec<PathBuf> = set
        .iter()
        .filter(|p| p.starts_with(from))
        .cloned()
        .collect();
    for p in moved {
        set.remove(&p);
        if let Ok(rest) = p.strip_prefix(from) {
            set.insert(to.join(rest));
        }
    }
}

/// Walk the trees of `rules` (paths inside `root`), calling `f` with each path (inside the
/// root) and its metadata. Symlinks are not followed; unreadable directories are skipped.
pub fn walk(root: &Path, rules: &Rules, f: &mut dyn FnMut(&Path, &std::fs::Metadata)) {
    walk_host(&rules.map_paths(|p| on_host(root, p)), &mut |p, m| {
        f(&in_root(root, p), m)
    });
}

fn walk_host(rules: &Rules, f: &mut dyn FnMut(&Path, &std::fs::Metadata)) {
    let mut stack: Vec<PathBuf> = rules
        .roots
        .iter()
        .filter(|r| !rules.excluded(r))
        .cloned()
        .collect();
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let p = entry.path();
            if rules.excluded(&p) {
                continue;
            }
            let Ok(m) = entry.metadata() else { continue };
            f(&p, &m);
            if m.is_dir() {
                stack.push(p);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PathBuf {
        PathBuf::from(s)
    }

    fn entry(path: &str) -> Entry {
        Entry {
            path: p(path),
            kind: crate::fsutil::FileKind::File,
            mode: 0o644,
            uid: 0,
            gid: 0,
            size: 0,
            mtime: 0,
            sha256: None,
            target: None,
            shared: false,
        }
    }

    #[test]
    fn signals_say_who_saw_what_and_where_they_disagree() {
        let mut inotify = Touched::default();
        inotify.changed.insert(p("/usr/bin/a"));
        inotify.changed.insert(p("/usr/bin/static"));
        inotify.trees.insert(p("/usr/lib/x"));
        let mut shim = Touched::default();
        shim.changed.insert(p("/usr/bin/a"));
        shim.changed.insert(p("/usr/lib/x/y.so"));
        shim.deleted.insert(p("/usr/lib/libz.a"));
        shim.changed.insert(p("/etc/passwd"));
        let tracked = Tracked {
            entries: vec![
                entry("/usr/bin/static"),
                entry("/usr/bin/a"),
                entry("/usr/lib/x/y.so"),
            ],
            foreign: vec![(p("/etc/passwd"), 0)],
            deleted: vec![p("/usr/lib/libz.a")],
        };
        let s = signals(&inotify, Some(&shim), &tracked);
        let by = |x: &str| s.iter().find(|r| r.path == p(x)).unwrap();
        assert_eq!(s.len(), 5);
        assert_eq!(by("/usr/bin/a").disagreement(), None);
        assert_eq!(by("/usr/lib/x/y.so").disagreement(), None);
        assert!(
            by("/usr/bin/static")
                .disagreement()
                .unwrap()
                .contains("shim did not")
        );
        assert!(
            by("/usr/lib/libz.a")
                .disagreement()
                .unwrap()
                .contains("watcher did not")
        );
        assert_eq!(by("/usr/lib/libz.a").verdict, Verdict::Gone);
        let passwd = by("/etc/passwd");
        assert_eq!(passwd.verdict, Verdict::Foreign { uid: 0 });
        assert!(passwd.disagreement().unwrap().contains("not claimed"));
        // Without the shim, only the watcher's view counts.
        assert_eq!(signals(&inotify, None, &tracked)[0].shim, None);
    }

    #[test]
    fn root_changes_merge_into_the_package_users() {
        let mut mine = Tracked {
            entries: vec![entry("/usr/bin/a")],
            ..Tracked::default()
        };
        let root = Tracked {
            entries: vec![entry("/usr/bin/a"), entry("/etc/new.conf")],
            foreign: vec![
                (p("/usr/bin/a"), 0),
                (p("/usr/bin/old"), 0),
                (p("/etc/x"), 0),
            ],
            deleted: vec![],
        };
        mine.merge_root(root, [Path::new("/usr/bin/old")].into_iter());
        let paths: Vec<&Path> = mine.entries.iter().map(|e| e.path.as_path()).collect();
        assert_eq!(paths, [Path::new("/usr/bin/a"), Path::new("/etc/new.conf")]);
        // Its own files (now or from an earlier attempt) are no news; another's is.
        assert_eq!(mine.foreign, vec![(p("/etc/x"), 0)]);
    }

    #[test]
    fn fold_follows_moves_and_strips_the_root() {
        let root = Path::new("/mnt/lfs");
        let mut t = Touched::default();
        for e in [
            Event::Created {
                path: p("/mnt/lfs/usr/lib/tmp.d"),
                dir: true,
            },
            Event::Written {
                path: p("/mnt/lfs/usr/lib/tmp.d/libx.so"),
            },
            Event::Moved {
                from: p("/mnt/lfs/usr/lib/tmp.d"),
                to: p("/mnt/lfs/usr/lib/x"),
                dir: true,
            },
            Event::Deleted {
                path: p("/mnt/lfs/usr/bin/old"),
                dir: false,
            },
            Event::Rescan,
        ] {
            t.add(root, &e);
        }
        assert!(t.changed.contains(&p("/usr/lib/x/libx.so")));
        assert!(t.changed.contains(&p("/usr/lib/x")));
        assert!(!t.changed.iter().any(|c| c.starts_with("/usr/lib/tmp.d")));
        assert!(t.deleted.contains(&p("/usr/bin/old")));
        assert!(t.trees.contains(&p("/usr/lib/x")));
        assert!(t.rescan);
    }

    #[test]
    fn the_collector_folds_events_as_they_come_into_paths_inside_the_root() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::create_dir_all(root.join("usr/lib")).unwrap();
        let rules = Rules {
            roots: vec![root.join("usr")],
            ..Rules::default()
        };
        let c = Collector::start(root, rules).unwrap();
        std::fs::create_dir(root.join("usr/lib/tmp.d")).unwrap();
        std::fs::write(root.join("usr/lib/tmp.d/libx.so"), "x").unwrap();
        std::fs::rename(root.join("usr/lib/tmp.d"), root.join("usr/lib/x")).unwrap();
        let t = c.finish().unwrap();
        assert!(t.appeared.contains(&p("/usr/lib/x")), "{t:?}");
        assert!(t.trees.contains(&p("/usr/lib/x")), "{t:?}");
        assert!(
            !t.changed.iter().any(|c| c.starts_with("/usr/lib/tmp.d")),
            "{t:?}"
        );
    }

    #[test]
    fn each_cut_has_what_was_done_since_the_last() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::create_dir_all(root.join("usr/bin")).unwrap();
        let rules = Rules {
            roots: vec![root.join("usr")],
            ..Rules::default()
        };
        let mut c = Collector::start(root, rules).unwrap();
        std::fs::write(root.join("usr/bin/a"), "a").unwrap();
        let first = c.cut().unwrap();
        std::fs::create_dir(root.join("usr/share")).unwrap();
        std::fs::write(root.join("usr/share/b"), "b").unwrap();
        let second = c.cut().unwrap();
        std::fs::remove_file(root.join("usr/bin/a")).unwrap();
        let last = c.finish().unwrap();
        assert_eq!(first.appeared, BTreeSet::from([p("/usr/bin/a")]));
        assert_eq!(
            second.appeared,
            BTreeSet::from([p("/usr/share"), p("/usr/share/b")])
        );
        assert_eq!(last.deleted, BTreeSet::from([p("/usr/bin/a")]));
        let mut all = first;
        all.merge(second);
        all.merge(last);
        assert_eq!(all.appeared.len(), 3);
        assert!(all.deleted.contains(&p("/usr/bin/a")));
    }

    #[test]
    fn manifest_claims_only_mine() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("usr/bin")).unwrap();
        std::fs::write(d.path().join("usr/bin/a"), "a").unwrap();
        let me = nix::unistd::geteuid().as_raw();
        let mut t = Touched::default();
        t.changed.insert(p("/usr/bin/a"));
        t.changed.insert(p("/usr/bin/gone"));
        t.deleted.insert(p("/usr/bin/gone"));
        let m = t.manifest(d.path(), Claim::Owners(&[me])).unwrap();
        assert_eq!(m.entries.len(), 1);
        assert_eq!(m.deleted, vec![p("/usr/bin/gone")]);
        let m = t.manifest(d.path(), Claim::Owners(&[me + 1])).unwrap();
        assert!(m.entries.is_empty());
        // Root's commands claim what appeared, not what they changed.
        let m = t.manifest(d.path(), Claim::Appeared).unwrap();
        assert!(m.entries.is_empty());
        assert_eq!(m.foreign, vec![(p("/usr/bin/a"), me)]);
        t.appeared.insert(p("/usr/bin/a"));
        let m = t.manifest(d.path(), Claim::Appeared).unwrap();
        assert_eq!(m.entries.len(), 1);
    }

    #[test]
    fn a_file_made_then_given_away_by_the_root_commands_stays_the_packages() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("etc")).unwrap();
        std::fs::write(d.path().join("etc/sudoers"), "x").unwrap();
        std::fs::write(d.path().join("etc/other"), "x").unwrap();
        let owner = nix::unistd::geteuid().as_raw();
        // The package user (another uid) made both; root's commands changed only one.
        let mut made = Touched::default();
        for f in ["/etc/sudoers", "/etc/other"] {
            made.changed.insert(p(f));
            made.appeared.insert(p(f));
        }
        let mut by_root = Touched::default();
        by_root.changed.insert(p("/etc/sudoers"));
        let mut m = made
            .manifest(d.path(), Claim::Owners(&[owner + 1]))
            .unwrap();
        assert_eq!(m.foreign.len(), 2);
        m.claim_given(d.path(), &made, &by_root).unwrap();
        assert_eq!(m.entries.len(), 1);
        assert_eq!(m.entries[0].path, p("/etc/sudoers"));
        assert_eq!(m.foreign, vec![(p("/etc/other"), owner)]);
    }
}
