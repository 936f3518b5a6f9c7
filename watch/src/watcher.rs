//! The watcher's logic, over any [`Backend`]: from raw events of watched directories to
//! [`Event`]s of whole paths — watching new directories before listing them, pairing the two
//! halves of a rename, keeping the watch index right across renames, and turning lost events
//! into [`Event::Rescan`].

use std::mem;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use crate::backend::Lister;
use crate::index::Index;
use crate::{Backend, Error, Event, Inotify, Kind, Raw, Rules};

/// A half of a rename waiting for its partner.
struct PendingMove {
    cookie: u32,
    from: PathBuf,
    dir: bool,
}

pub struct Watcher<B: Backend = Inotify> {
    backend: B,
    rules: Rules,
    index: Index<B::Wd>,
    pending: Option<PendingMove>,
    /// How long a running watcher lets a rename half wait for its partner before it counts
    /// as moved out; none: until the next event or the end (see [`Watcher::partner_wait`]).
    partner_wait_ms: Option<u16>,
}

impl Watcher<Inotify> {
    /// Watch every directory under the rules' roots (symlinks are not followed) that the
    /// rules' writer may change — every one, without a writer.
    pub fn new(rules: Rules) -> Result<Watcher, Error> {
        let dirs = crate::writable_dirs(&rules);
        Watcher::with_dirs(rules, &dirs)
    }

    /// Watch every directory under the rules' roots, each before it is listed, and hand every
    /// path found (the roots included) to `on` as [`Event::Created`]: a consumer builds its
    /// picture of the trees from these, and a directory made while the walk runs is not missed.
    /// Events of changes made during the walk follow on the first [`Watcher::read`].
    pub fn walk(rules: Rules, on: &mut dyn FnMut(Event)) -> Result<Watcher, Error> {
        Watcher::walking(Inotify::new()?, rules, on)
    }

    /// Watch exactly `dirs` (found beforehand by [`crate::writable_dirs`], which may run while
    /// nothing is watched yet), and from then on every directory made under them.
    pub fn with_dirs(rules: Rules, dirs: &[PathBuf]) -> Result<Watcher, Error> {
        Watcher::with_backend(Inotify::new()?, rules, dirs)
    }
}

impl<B: Backend> Watcher<B> {
    /// Watch `dirs` through `backend`.
    pub fn with_backend(backend: B, rules: Rules, dirs: &[PathBuf]) -> Result<Self, Error> {
        let mut w = Watcher {
            backend,
            rules,
            index: Index::new(),
            pending: None,
            partner_wait_ms: None,
        };
        for d in dirs {
            w.watch(d)?;
        }
        Ok(w)
    }

    /// Watch the rules' roots through `backend` as [`Watcher::walk`] does.
    pub fn walking(backend: B, rules: Rules, on: &mut dyn FnMut(Event)) -> Result<Self, Error> {
        let mut w = Watcher::with_backend(backend, rules, &[])?;
        let roots: Vec<PathBuf> = w.rules.roots.clone();
        for root in roots {
            if w.rules.excluded(&root) || w.index.contains(&root) {
                continue;
            }
            if w.backend.add(&root)?.is_none() {
                continue;
            }
            on(Event::Created {
                path: root.clone(),
                dir: true,
            });
            match w.backend.lister() {
                Some(list) => w.add_tree_aside(&root, list, on)?,
                None => w.add_tree(&root, on)?,
            }
        }
        Ok(w)
    }

    /// Whether the first half of a rename waits for its partner (see [`Watcher::flush`]).
    pub fn has_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// Let a running watcher ([`Watcher::spawn`]) settle a rename half whose partner did not
    /// come within `ms` as moved out, instead of holding it until the next event. The kernel
    /// queues both halves within one rename, so the partner is normally right behind; a
    /// consumer that must hear of a move-out promptly (mirrord) sets this, one that must
    /// never see a slow rename split into a deletion and a creation (the install tracker)
    /// does not.
    pub fn partner_wait(mut self, ms: u16) -> Self {
        self.partner_wait_ms = Some(ms);
        self
    }

    pub(crate) fn partner_wait_ms(&self) -> Option<u16> {
        self.partner_wait_ms.filter(|_| self.pending.is_some())
    }

    /// How many directories are watched.
    pub fn watched(&self) -> usize {
        self.index.len()
    }

    /// Whether directory `dir` is watched (under that name).
    pub fn is_watched(&self, dir: &Path) -> bool {
        self.index.contains(dir)
    }

    pub fn backend(&self) -> &B {
        &self.backend
    }

    pub fn backend_mut(&mut self) -> &mut B {
        &mut self.backend
    }

    /// Hand every event queued now to `on`, without waiting. The first half of a rename
    /// waits for its partner, which comes next or never: the next event or [`Watcher::flush`]
    /// settles it.
    pub fn read(&mut self, on: &mut dyn FnMut(Event)) -> Result<(), Error> {
        let mut raw = Vec::new();
        loop {
            self.backend.read(&mut raw)?;
            if raw.is_empty() {
                return Ok(());
            }
            for r in raw.drain(..) {
                self.handle(r, on)?;
            }
        }
    }

    /// Settle what is held back (a rename half) at the end of a run.
    pub fn flush(&mut self, on: &mut dyn FnMut(Event)) {
        if let Some(m) = self.pending.take() {
            // Its partner never came: it left the watched trees.
            if m.dir {
                for (_, wd) in self.index.remove_under(&m.from) {
                    self.backend.remove(wd);
                }
            }
            on(Event::Deleted {
                path: m.from,
                dir: m.dir,
            });
        }
    }

    /// Watch by new rules from now on (`mirrord ctl include|exclude`): the watches they leave
    /// out go, and the trees they add are walked as at the start — each directory watched
    /// before it is listed, everything found handed to `on` as [`Event::Created`].
    pub fn set_rules(&mut self, rules: Rules, on: &mut dyn FnMut(Event)) -> Result<(), Error> {
        self.flush(on);
        let old = std::mem::replace(&mut self.rules, rules);
        let new = &self.rules;
        for (_, wd) in self.index.remove_if(|p| !new.covers(p)) {
            self.backend.remove(wd);
        }
        // What the old rules did not cover: new roots, and old exclusions now covered.
        let tops: Vec<PathBuf> = (new.roots.iter().filter(|r| !old.covers(r)))
            .chain(old.exclude.iter().filter(|x| new.covers(x)))
            .cloned()
            .collect();
        for top in tops {
            if self.index.contains(&top) || self.backend.add(&top)?.is_none() {
                continue;
            }
            on(Event::Created {
                path: top.clone(),
                dir: true,
            });
            self.add_tree(&top, on)?;
        }
        Ok(())
    }

    /// Add a watch on `d`; whether it is watched now.
    fn watch(&mut self, d: &Path) -> Result<bool, Error> {
        let Some(wd) = self.backend.add(d)? else {
            return Ok(false);
        };
        self.index.insert(d.to_path_buf(), wd);
        Ok(true)
    }

    /// A path appeared; a new directory is watched, then listed.
    fn created(
        &mut self,
        path: PathBuf,
        dir: bool,
        on: &mut dyn FnMut(Event),
    ) -> Result<(), Error> {
        on(Event::Created {
            path: path.clone(),
            dir,
        });
        if dir {
            self.add_tree(&path, on)?;
        }
        Ok(())
    }

    /// A directory appeared: watch it and every directory below it — each watch first, then
    /// the listing — and report everything found as created (it appeared while we were not
    /// yet looking).
    fn add_tree(&mut self, dir: &Path, on: &mut dyn FnMut(Event)) -> Result<(), Error> {
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            if !self.watch(&d)? {
                continue;
            }
            let entries = self.backend.list(&d);
            hand_on(&self.rules, entries, on, &mut stack);
        }
        Ok(())
    }

    /// [`Watcher::add_tree`] with the listings made on a thread of their own while this one
    /// adds the watches (for the first walk, where there are many): a directory goes to the
    /// lister only once it is watched, so watch before list still holds; directories go over
    /// in bunches and listings come back in bunches (a wake-up per directory costs more than
    /// listing it).
    fn add_tree_aside(
        &mut self,
        dir: &Path,
        list: Lister,
        on: &mut dyn FnMut(Event),
    ) -> Result<(), Error> {
        /// Directories handed to the lister at a time, and entries handed back at most.
        const DIRS: usize = 256;
        const ENTRIES: usize = 4096;
        let (to_list, todo) = mpsc::channel::<Vec<PathBuf>>();
        // Entries found, and whether a bunch of directories is all listed with them.
        let (found, listed) = mpsc::channel::<(Vec<(PathBuf, bool)>, bool)>();
        let lister = std::thread::Builder::new()
            .name("upm-watch-list".into())
            .spawn(move || {
                for dirs in todo {
                    let mut out = Vec::new();
                    for d in &dirs {
                        out.extend(list(d));
                        if out.len() >= ENTRIES && found.send((mem::take(&mut out), false)).is_err()
                        {
                            return;
                        }
                    }
                    if found.send((out, true)).is_err() {
                        return;
                    }
                }
            })
            .map_err(Error::Start)?;
        let mut walk = || -> Result<(), Error> {
            let mut stack = vec![dir.to_path_buf()];
            // Bunches handed over and not all listed yet.
            let mut out = 0usize;
            loop {
                let mut bunch = Vec::new();
                while let Some(d) = stack.pop() {
                    if self.watch(&d)? {
                        bunch.push(d);
                    }
                    if bunch.len() == DIRS || (stack.is_empty() && !bunch.is_empty()) {
                        to_list
                            .send(mem::take(&mut bunch))
                            .map_err(|_| Error::Panicked)?;
                        out += 1;
                    }
                }
                if out == 0 {
                    return Ok(());
                }
                let (entries, done) = listed.recv().map_err(|_| Error::Panicked)?;
                if done {
                    out -= 1;
                }
                hand_on(&self.rules, entries, on, &mut stack);
            }
        };
        let walked = walk();
        drop(to_list);
        drop(listed);
        lister.join().map_err(|_| Error::Panicked)?;
        walked
    }

    fn handle(&mut self, raw: Raw<B::Wd>, on: &mut dyn FnMut(Event)) -> Result<(), Error> {
        let (wd, name, kind, is_dir, cookie) = match raw {
            Raw::Overflow => {
                self.flush(on);
                // Directories made while events were lost are not watched yet: watch them
                // before the consumer lists the trees again (watch before list).
                for d in self.backend.dirs(&self.rules) {
                    self.watch(&d)?;
                }
                on(Event::Rescan);
                return Ok(());
            }
            Raw::Ignored(wd) => {
                self.index.remove(&wd);
                return Ok(());
            }
            Raw::DirAttrib(wd) => {
                if let Some(path) = self.index.path(&wd).map(Path::to_path_buf) {
                    self.flush(on);
                    on(Event::Attrib { path, dir: true });
                }
                return Ok(());
            }
            Raw::Entry {
                wd,
                name,
                kind,
                dir,
                cookie,
            } => (wd, name, kind, dir, cookie),
        };
        let Some(parent) = self.index.path(&wd) else {
            // Outside the watched trees (fanotify sees the whole file system): a rename half
            // waiting for its partner is settled — the partner went out, or is not coming.
            self.flush(on);
            return Ok(());
        };
        let path = parent.join(name);
        // The partner of a pending MovedFrom comes right after it, or never.
        if let Some(p) = &self.pending
            && !(kind == Kind::MovedTo && cookie == p.cookie)
        {
            self.flush(on);
        }
        if self.rules.excluded(&path) {
            if kind == Kind::MovedTo {
                // Moved into an excluded subtree: gone from the watched trees.
                self.flush(on);
            }
            return Ok(());
        }
        match kind {
            Kind::MovedFrom => {
                self.pending = Some(PendingMove {
                    cookie,
                    from: path,
                    dir: is_dir,
                })
            }
            Kind::MovedTo => match self.pending.take() {
                Some(m) => {
                    if is_dir {
                        self.index.rename(&m.from, &path);
                    }
                    on(Event::Moved {
                        from: m.from,
                        to: path.clone(),
                        dir: is_dir,
                    });
                    // A directory that moved before we got to watch it is new to us; one that
                    // moved while we were still listing it (a subdirectory not yet watched)
                    // is listed again under its new name. Watching is idempotent, and what
                    // the listing finds is reported as created.
                    if is_dir {
                        self.add_tree(&path, on)?;
                    }
                }
                None => self.created(path, is_dir, on)?,
            },
            Kind::Create => self.created(path, is_dir, on)?,
            Kind::Write => on(Event::Written { path }),
            Kind::Attrib => on(Event::Attrib { path, dir: is_dir }),
            Kind::Delete => on(Event::Deleted { path, dir: is_dir }),
        }
        Ok(())
    }
}

/// A listed directory's entries, as a walk hands them on: each one the rules do not exclude
/// as created, and the directories among them onto `stack`, to be walked in turn.
fn hand_on(
    rules: &Rules,
    entries: impl IntoIterator<Item = (PathBuf, bool)>,
    on: &mut dyn FnMut(Event),
    stack: &mut Vec<PathBuf>,
) {
    for (path, is_dir) in entries {
        if rules.excluded(&path) {
            continue;
        }
        on(Event::Created {
            path: path.clone(),
            dir: is_dir,
        });
        if is_dir {
            stack.push(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Fake;

    fn p(s: &str) -> PathBuf {
        PathBuf::from(s)
    }

    /// A watcher over the fake tree `dirs`, watching every directory under /r but /r/skip.
    fn watcher(dirs: &[&str]) -> Watcher<Fake> {
        let fake = Fake::with_dirs(dirs);
        let rules = Rules {
            roots: vec![p("/r")],
            exclude: vec![p("/r/skip")],
            writer: None,
        };
        let all = fake.dirs(&rules);
        Watcher::with_backend(fake, rules, &all).unwrap()
    }

    fn read(w: &mut Watcher<Fake>) -> Vec<Event> {
        let mut v = Vec::new();
        w.read(&mut |e| v.push(e)).unwrap();
        v
    }

    fn created(s: &str, dir: bool) -> Event {
        Event::Created { path: p(s), dir }
    }

    #[test]
    fn a_walk_watches_before_listing_and_reports_everything_as_created() {
        let mut fake = Fake::with_dirs(&["/r/a/b", "/r/skip/x", "/other"]);
        fake.write("/r/a/f");
        let rules = Rules {
            roots: vec![p("/r")],
            exclude: vec![p("/r/skip")],
            writer: None,
        };
        let mut ev = Vec::new();
        let mut w = Watcher::walking(fake, rules, &mut |e| ev.push(e)).unwrap();
        ev.sort_by_key(|e| format!("{e:?}"));
        assert_eq!(
            ev,
            [
                created("/r", true),
                created("/r/a", true),
                created("/r/a/b", true),
                created("/r/a/f", false)
            ]
        );
        assert_eq!(w.watched(), 3, "/r, /r/a, /r/a/b");
        assert!(!w.is_watched(Path::new("/r/skip")));
        w.backend_mut().write("/r/a/b/g");
        assert!(read(&mut w).contains(&created("/r/a/b/g", false)));
    }

    #[test]
    fn a_rename_inside_the_trees_is_one_move() {
        let mut w = watcher(&["/r/a", "/r/b"]);
        w.backend_mut().write("/r/a/f");
        w.backend_mut().rename("/r/a/f", "/r/b/g");
        let ev = read(&mut w);
        assert_eq!(
            ev,
            [
                created("/r/a/f", false),
                Event::Written { path: p("/r/a/f") },
                Event::Moved {
                    from: p("/r/a/f"),
                    to: p("/r/b/g"),
                    dir: false
                },
            ]
        );
    }

    #[test]
    fn halves_without_a_partner_are_a_deletion_and_a_creation() {
        let mut w = watcher(&["/r/a/sub", "/elsewhere/in/deep"]);
        // Moved out: its watches go, and the departure is told once the next event shows
        // no partner is coming.
        w.backend_mut().rename("/r/a", "/elsewhere/a");
        w.backend_mut().mkdir("/r/c");
        let ev = read(&mut w);
        assert_eq!(
            ev,
            [
                Event::Deleted {
                    path: p("/r/a"),
                    dir: true
                },
                created("/r/c", true)
            ]
        );
        assert!(!w.is_watched(Path::new("/r/a")) && !w.is_watched(Path::new("/r/a/sub")));
        // Moved in: a creation, its content listed and watched.
        w.backend_mut().rename("/elsewhere/in", "/r/in");
        let ev = read(&mut w);
        assert_eq!(ev, [created("/r/in", true), created("/r/in/deep", true)]);
        assert!(w.is_watched(Path::new("/r/in/deep")));
        // A half still waiting at the end of a run is settled by flush.
        w.backend_mut().rename("/r/in", "/elsewhere/in");
        assert!(read(&mut w).is_empty());
        let mut ev = Vec::new();
        w.flush(&mut |e| ev.push(e));
        assert_eq!(
            ev,
            [Event::Deleted {
                path: p("/r/in"),
                dir: true
            }]
        );
        assert_eq!(w.watched(), 2, "/r and /r/c are left");
    }

    #[test]
    fn a_new_directory_is_watched_before_it_is_listed() {
        let mut w = watcher(&["/r"]);
        // Made before the watcher got to /r/a: no event of the kernel tells about /r/a/b.
        w.backend_mut().mkdir("/r/a");
        w.backend_mut().mkdir("/r/a/b");
        w.backend_mut().write("/r/a/b/f");
        let ev = read(&mut w);
        assert_eq!(
            ev,
            [
                created("/r/a", true),
                created("/r/a/b", true),
                created("/r/a/b/f", false)
            ]
        );
        // And what happens in it from now on is seen.
        w.backend_mut().write("/r/a/b/g");
        assert!(read(&mut w).contains(&Event::Written {
            path: p("/r/a/b/g")
        }));
    }

    #[test]
    fn lost_events_become_a_rescan_and_new_directories_get_watched() {
        let mut w = watcher(&["/r"]);
        w.backend_mut().mkdir("/r/new");
        w.backend_mut().mkdir("/r/skip");
        w.backend_mut().lose_events();
        assert_eq!(read(&mut w), [Event::Rescan]);
        assert!(w.is_watched(Path::new("/r/new")));
        assert!(!w.is_watched(Path::new("/r/skip")), "excluded");
        w.backend_mut().write("/r/new/f");
        assert!(read(&mut w).contains(&Event::Written {
            path: p("/r/new/f")
        }));
    }

    #[test]
    fn a_renamed_directory_keeps_its_watches_under_the_new_name() {
        let mut w = watcher(&["/r/a/b/c", "/r/a-b"]);
        w.backend_mut().rename("/r/a", "/r/z");
        w.backend_mut().write("/r/z/b/c/f");
        w.backend_mut().write("/r/a-b/f");
        let ev = read(&mut w);
        assert_eq!(
            ev[0],
            Event::Moved {
                from: p("/r/a"),
                to: p("/r/z"),
                dir: true
            }
        );
        assert!(ev.contains(&Event::Written {
            path: p("/r/z/b/c/f")
        }));
        assert!(ev.contains(&Event::Written {
            path: p("/r/a-b/f")
        }));
        assert!(w.is_watched(Path::new("/r/z/b/c")));
        assert!(!w.is_watched(Path::new("/r/a/b")));
        assert_eq!(w.watched(), 5);
    }

    #[test]
    fn new_rules_drop_the_watches_left_out_and_walk_the_trees_added() {
        let mut w = watcher(&["/r/a/b", "/r/skip/x", "/o/d"]);
        w.backend_mut().write("/o/d/f");
        let rules = Rules {
            roots: vec![p("/r"), p("/o")],
            exclude: vec![p("/r/a")],
            writer: None,
        };
        let mut ev = Vec::new();
        w.set_rules(rules, &mut |e| ev.push(e)).unwrap();
        ev.sort_by_key(|e| format!("{e:?}"));
        assert_eq!(
            ev,
            [
                created("/o", true),
                created("/o/d", true),
                created("/o/d/f", false),
                created("/r/skip", true),
                created("/r/skip/x", true),
            ]
        );
        assert!(!w.is_watched(Path::new("/r/a")) && !w.is_watched(Path::new("/r/a/b")));
        assert!(w.is_watched(Path::new("/o/d")) && w.is_watched(Path::new("/r/skip/x")));
        w.backend_mut().write("/r/a/g");
        w.backend_mut().write("/o/d/h");
        assert_eq!(
            read(&mut w),
            [
                created("/o/d/h", false),
                Event::Written { path: p("/o/d/h") }
            ]
        );
    }

    #[test]
    fn excluded_subtrees_are_not_reported() {
        let mut w = watcher(&["/r/a"]);
        w.backend_mut().write("/r/a/f");
        w.backend_mut().mkdir("/r/skip");
        // Moving a file to an excluded place is its departure.
        w.backend_mut().rename("/r/a/f", "/r/skip");
        let ev = read(&mut w);
        assert_eq!(
            ev,
            [
                created("/r/a/f", false),
                Event::Written { path: p("/r/a/f") },
                Event::Deleted {
                    path: p("/r/a/f"),
                    dir: false
                }
            ]
        );
    }
}
