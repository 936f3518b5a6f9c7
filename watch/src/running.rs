//! A watcher on its own thread, handing each event to a [`Handler`] as it arrives: a channel
//! (`mpsc::Sender`), a `Vec`, or the consumer's own state (upm's install tracker folds events
//! into the set of touched paths here). [`Running::finish`] returns the handler once every
//! event that happened before the call was handled; [`Running::sync`] waits for the same
//! without stopping (a barrier: upm's recording shell cuts the touched paths at each command's
//! end with it).

use std::io::PipeWriter;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;

use crate::{Backend, Error, Event, Rules, Watcher};

/// What consumes a running watcher's events, on the watcher's thread.
pub trait Handler: Send + 'static {
    fn event(&mut self, e: Event);
    /// Every event queued so far was handed over: a consumer that batches (mirrord commits
    /// one transaction per burst of events) finishes its batch here.
    fn settled(&mut self) {}
    /// The watcher follows these rules from now on ([`Control::set_rules`]); told before the
    /// trees they add are walked.
    fn rules(&mut self, _rules: &Rules) {}
}

impl Handler for mpsc::Sender<Event> {
    fn event(&mut self, e: Event) {
        // A receiver gone means nobody listens any more; the watcher runs on until finished.
        let _ = self.send(e);
    }
}

impl Handler for Vec<Event> {
    fn event(&mut self, e: Event) {
        self.push(e);
    }
}

/// A watcher running on its own thread until [`Running::finish`] (or drop).
pub struct Running<H> {
    stop: Option<PipeWriter>,
    /// A byte written here asks the thread to handle what is queued and say so on `synced`.
    sync: PipeWriter,
    synced: mpsc::Receiver<()>,
    thread: Option<JoinHandle<Result<H, Error>>>,
    watched: usize,
    control: Control,
}

/// Asks a running watcher to change course from any thread (see [`Running::control`]).
#[derive(Clone)]
pub struct Control {
    /// The sync pipe: a `c` byte says an order waits.
    wake: Arc<PipeWriter>,
    orders: mpsc::Sender<Order>,
    watched: Arc<AtomicUsize>,
}

/// New rules, and where to say how applying them went.
type Order = (Rules, mpsc::Sender<Result<(), Error>>);

impl<B> Watcher<B>
where
    B: Backend + AsFd + Send + 'static,
    B::Wd: Send,
{
    /// Run on a thread of its own, handing every event to `handler` as it comes. Everything
    /// done after this returns is seen.
    pub fn spawn<H: Handler>(mut self, mut handler: H) -> Result<Running<H>, Error> {
        let watched = self.watched();
        let (stop_rx, stop) = std::io::pipe().map_err(Error::Start)?;
        let (mut sync_rx, sync) = std::io::pipe().map_err(Error::Start)?;
        let (synced_tx, synced) = mpsc::channel();
        let (orders, ordered) = mpsc::channel::<Order>();
        let watching = Arc::new(AtomicUsize::new(watched));
        let control = Control {
            wake: Arc::new(sync.try_clone().map_err(Error::Start)?),
            orders,
            watched: watching.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("upm-watch".into())
            .spawn(move || {
                loop {
                    // A rename half may wait a moment for its partner, then count as moved out.
                    let wait = self.partner_wait_ms();
                    let woke = wait_readable(
                        self.backend().as_fd(),
                        stop_rx.as_fd(),
                        sync_rx.as_fd(),
                        wait,
                    )
                    .map_err(Error::Read)?;
                    self.read(&mut |e| handler.event(e))?;
                    if woke.stop || woke.timeout {
                        // On stop: everything the watched processes did before it is read now.
                        self.flush(&mut |e| handler.event(e));
                    }
                    handler.settled();
                    if woke.stop {
                        return Ok(handler);
                    }
                    if woke.sync {
                        // The same for a barrier: the kernel queues an event before the call
                        // that caused it returns, so both halves of a rename are read by now.
                        self.flush(&mut |e| handler.event(e));
                        handler.settled();
                        let mut byte = [0u8; 1];
                        std::io::Read::read(&mut sync_rx, &mut byte).map_err(Error::Read)?;
                        if byte[0] != b'c' {
                            let _ = synced_tx.send(());
                        } else if let Ok((rules, done)) = ordered.try_recv() {
                            handler.rules(&rules);
                            let r = self.set_rules(rules, &mut |e| handler.event(e));
                            handler.settled();
                            watching.store(self.watched(), Ordering::Relaxed);
                            let _ = done.send(r);
                        }
                    }
                    watching.store(self.watched(), Ordering::Relaxed);
                }
            })
            .map_err(Error::Start)?;
        Ok(Running {
            stop: Some(stop),
            sync,
            synced,
            thread: Some(thread),
            watched,
            control,
        })
    }

    /// Run on a thread of its own, sending every event down a channel as it comes.
    pub fn channel(self) -> Result<(Running<mpsc::Sender<Event>>, mpsc::Receiver<Event>), Error> {
        let (send, events) = mpsc::channel();
        Ok((self.spawn(send)?, events))
    }
}

impl<H> Running<H> {
    /// How many directories were watched when it started.
    pub fn watched(&self) -> usize {
        self.watched
    }

    /// A handle to change the running watcher's rules from another thread.
    pub fn control(&self) -> Control {
        self.control.clone()
    }

    /// Return once every event queued before this call was handled, the watcher running on
    /// (a rename half still waiting for its partner counts as moved out, as in
    /// [`Running::finish`]). Call it after the watched processes did what is to be seen.
    pub fn sync(&mut self) -> Result<(), Error> {
        std::io::Write::write_all(&mut self.sync, b"s").map_err(|_| Error::Panicked)?;
        self.synced.recv().map_err(|_| Error::Panicked)
    }

    /// Stop once every event queued before this call was handled (a rename half still
    /// waiting for its partner counts as moved out), and hand the handler back.
    pub fn finish(mut self) -> Result<H, Error> {
        self.stop.take();
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(r)) => r,
            _ => Err(Error::Panicked),
        }
    }
}

impl<H> Drop for Running<H> {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Control {
    /// Follow `rules` from now on, and return once they are applied: the handler is told
    /// ([`Handler::rules`]), the watches they leave out are gone, and the trees they add were
    /// walked, everything in them handed to the handler as created.
    pub fn set_rules(&self, rules: Rules) -> Result<(), Error> {
        let (done, result) = mpsc::channel();
        self.orders
            .send((rules, done))
            .map_err(|_| Error::Panicked)?;
        std::io::Write::write_all(&mut &*self.wake, b"c").map_err(|_| Error::Panicked)?;
        result.recv().map_err(|_| Error::Panicked)?
    }

    /// How many directories are watched now.
    pub fn watched(&self) -> usize {
        self.watched.load(Ordering::Relaxed)
    }
}

/// What woke the watcher's thread: the control pipes, or the end of a wait for a partner.
struct Woke {
    stop: bool,
    sync: bool,
    timeout: bool,
}

/// Wait until `fd` has something to read, `stop` is readable or closed, `sync` is readable,
/// or `timeout_ms` passed (none: as long as it takes). An interrupted wait is retried.
fn wait_readable(
    fd: BorrowedFd<'_>,
    stop: BorrowedFd<'_>,
    sync: BorrowedFd<'_>,
    timeout_ms: Option<u16>,
) -> std::io::Result<Woke> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let timeout = timeout_ms.map_or(PollTimeout::NONE, PollTimeout::from);
    loop {
        let mut fds = [
            PollFd::new(fd, PollFlags::POLLIN),
            PollFd::new(stop, PollFlags::POLLIN),
            PollFd::new(sync, PollFlags::POLLIN),
        ];
        match poll(&mut fds, timeout) {
            Ok(n) => {
                let fired = |i: usize| fds[i].revents().is_some_and(|r| !r.is_empty());
                return Ok(Woke {
                    stop: fired(1),
                    sync: fired(2),
                    timeout: n == 0,
                });
            }
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::Rules;

    fn rules(d: &Path) -> Rules {
        Rules {
            roots: vec![d.to_path_buf()],
            exclude: vec![d.join("skip")],
            writer: None,
        }
    }

    #[test]
    fn sees_files_in_new_directories_moves_and_deletes() {
        let d = tempfile::tempdir().unwrap();
        let d = d.path();
        std::fs::create_dir(d.join("skip")).unwrap();
        std::fs::write(d.join("old"), "x").unwrap();
        let running = Watcher::new(rules(d)).unwrap().spawn(Vec::new()).unwrap();
        // A deep tree made at once: the watcher must see its files through watch-before-list.
        std::fs::create_dir_all(d.join("a/b/c")).unwrap();
        std::fs::write(d.join("a/b/c/f"), "x").unwrap();
        std::fs::rename(d.join("old"), d.join("new")).unwrap();
        std::fs::write(d.join("skip/ignored"), "x").unwrap();
        std::fs::rename(d.join("a/b"), d.join("moved")).unwrap();
        std::fs::write(d.join("moved/c/g"), "x").unwrap();
        std::fs::remove_file(d.join("moved/c/f")).unwrap();
        let ev = running.finish().unwrap();
        // The rename in a directory watched from the start pairs deterministically.
        assert!(ev.contains(&Event::Moved {
            from: d.join("old"),
            to: d.join("new"),
            dir: false
        }));
        // However the watcher's thread and the writes interleave, the file written in the
        // moved directory is seen under its final name.
        let mentions = |p: &Path| {
            ev.iter()
                .any(|e| format!("{e:?}").contains(&*p.to_string_lossy()))
        };
        assert!(mentions(&d.join("moved/c/g")), "{ev:?}");
        assert!(
            ev.iter().all(|e| !format!("{e:?}").contains("skip")),
            "excluded subtree reported: {ev:?}"
        );
    }

    #[test]
    fn a_walk_lists_aside_and_still_finds_every_path_but_the_excluded() {
        let d = tempfile::tempdir().unwrap();
        let d = d.path();
        let mut want = vec![d.to_path_buf()];
        // Wide and deep enough that directories go to the lister in several bunches.
        for a in 0..30 {
            for b in 0..20 {
                let dir = d.join(format!("a{a}/b{b}"));
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(dir.join("f"), "x").unwrap();
                want.extend([dir.clone(), dir.join("f")]);
            }
            want.push(d.join(format!("a{a}")));
        }
        std::fs::create_dir_all(d.join("skip/deep")).unwrap();
        std::os::unix::fs::symlink("/", d.join("a0/link")).unwrap();
        want.push(d.join("a0/link"));
        let mut found = Vec::new();
        let w = Watcher::walk(rules(d), &mut |e| match e {
            Event::Created { path, .. } => found.push(path),
            other => panic!("a walk reports creations only: {other:?}"),
        })
        .unwrap();
        found.sort();
        want.sort();
        assert_eq!(found, want);
        // Every directory but the excluded ones, and no symlink followed.
        assert_eq!(w.watched(), 1 + 30 + 30 * 20);
        assert!(!w.is_watched(&d.join("skip")) && !w.is_watched(&d.join("a0/link")));
    }

    #[test]
    fn events_stream_while_the_watcher_runs() {
        let d = tempfile::tempdir().unwrap();
        let (running, events) = Watcher::new(rules(d.path())).unwrap().channel().unwrap();
        std::fs::write(d.path().join("f"), "x").unwrap();
        // Received before the watcher is finished: one at a time, as they happen.
        assert_eq!(
            events.recv().unwrap(),
            Event::Created {
                path: d.path().join("f"),
                dir: false
            }
        );
        assert_eq!(
            events.recv().unwrap(),
            Event::Written {
                path: d.path().join("f")
            }
        );
        drop(running.finish().unwrap());
        assert!(
            events.recv().is_err(),
            "the channel closes with the watcher"
        );
    }

    #[test]
    fn sync_returns_once_everything_done_before_it_was_handled() {
        let d = tempfile::tempdir().unwrap();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        struct Shared(std::sync::Arc<std::sync::Mutex<Vec<Event>>>);
        impl Handler for Shared {
            fn event(&mut self, e: Event) {
                self.0.lock().unwrap().push(e);
            }
        }
        let mut running = Watcher::new(rules(d.path()))
            .unwrap()
            .spawn(Shared(seen.clone()))
            .unwrap();
        for round in 0..3 {
            let f = d.path().join(format!("f{round}"));
            std::fs::write(&f, "x").unwrap();
            std::fs::rename(&f, d.path().join(format!("g{round}"))).unwrap();
            running.sync().unwrap();
            let ev = std::mem::take(&mut *seen.lock().unwrap());
            // Each round's events, and only those, are there when sync returns.
            assert!(
                ev.contains(&Event::Moved {
                    from: f.clone(),
                    to: d.path().join(format!("g{round}")),
                    dir: false
                }),
                "round {round}: {ev:?}"
            );
            assert!(
                ev.iter()
                    .all(|e| format!("{e:?}").contains(&format!("{round}"))),
                "round {round}: {ev:?}"
            );
        }
        running.finish().unwrap();
    }

    #[test]
    fn new_rules_take_effect_while_running() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (d.path().join("a"), d.path().join("b"));
        std::fs::create_dir_all(a.join("gone")).unwrap();
        std::fs::create_dir_all(b.join("x")).unwrap();
        std::fs::write(b.join("x/f"), "x").unwrap();
        let running = Watcher::new(rules(&a)).unwrap().spawn(Vec::new()).unwrap();
        let control = running.control();
        assert_eq!(control.watched(), 2);
        control
            .set_rules(Rules {
                roots: vec![a.clone(), b.clone()],
                exclude: vec![a.join("gone")],
                writer: None,
            })
            .unwrap();
        assert_eq!(control.watched(), 3, "a, b and b/x");
        std::fs::write(b.join("x/g"), "x").unwrap();
        std::fs::write(a.join("gone/h"), "x").unwrap();
        let ev = running.finish().unwrap();
        for want in [
            Event::Created {
                path: b.join("x/f"),
                dir: false,
            },
            Event::Written {
                path: b.join("x/g"),
            },
        ] {
            assert!(ev.contains(&want), "{want:?} not in {ev:?}");
        }
        assert!(
            ev.iter().all(|e| !format!("{e:?}").contains("gone")),
            "{ev:?}"
        );
    }

    #[test]
    fn queue_overflow_becomes_a_rescan_event() {
        let d = tempfile::tempdir().unwrap();
        let max: usize = std::fs::read_to_string("/proc/sys/fs/inotify/max_queued_events")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(16384);
        let mut w = Watcher::new(rules(d.path())).unwrap();
        // Nobody reads while more events are made than the kernel queue holds.
        for i in 0..max + 10 {
            std::fs::File::create(d.path().join(format!("f{i}"))).unwrap();
        }
        let mut ev = Vec::new();
        w.read(&mut |e| ev.push(e)).unwrap();
        assert!(
            ev.contains(&Event::Rescan),
            "no rescan among {} events",
            ev.len()
        );
    }
}
