//! mirrord as a whole, in stages: load the identities' trees from fs_info, open the state
//! database, **boot**, then run the Monitor on the watcher's thread and serve clients.
//!
//! Boot walks the trees adding each watch before listing. Without a snapshot it starts a
//! session and the walk fills the snapshot (clients `INIT`). With one — after a stop, a crash
//! or `kill -9` — the session goes on: the walk is a scan that compares the disk with the
//! snapshot (metadata only) and logs the differences as ordinary records, so clients resume
//! with `SN:` and fetch only what changed while mirrord was down.

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use upm_watch::{Choice, Kernel, Rules, Running, Watcher};

use crate::error::{Error, Result};
use crate::fs_info::{FsInfo, Identity};
use crate::head::{Head, Shutdown};
use crate::monitor::Monitor;
use crate::proto::codec::hex;
use crate::server::{self, Served};
use crate::store::wmlog::Keep;
use crate::store::{Store, snapshot, wmlog};

/// mirrord's settings, validated.
pub struct Config {
    pub identities: Vec<String>,
    pub fs_info_dir: PathBuf,
    pub state_dir: PathBuf,
    pub listen: String,
    pub secret: Option<Vec<u8>>,
    pub keepalive: Duration,
    pub verbose: bool,
    /// The kernel backend of the watcher (`--backend`).
    pub backend: Choice,
    /// How much of the wmLog to keep (all of it without).
    pub log_keep: Option<Keep>,
    /// Refuse trees that need more directory watches than this.
    pub max_watches: Option<u64>,
}

/// A booted mirrord: watching, its snapshot built, ready to serve.
pub struct Booted {
    pub served: Arc<Served>,
    pub watching: Running<Monitor>,
    pub paths: u64,
    /// "inotify" or "fanotify".
    pub backend: &'static str,
    /// The session went on from the last run (else it is new: clients INIT).
    pub resumed: bool,
    /// Records the boot logged: the differences found since the last run.
    pub logged: u64,
}

/// The trees of the identities.
pub fn rules(cfg: &Config) -> Result<Rules> {
    let info = FsInfo::new(&cfg.fs_info_dir);
    let ids = cfg
        .identities
        .iter()
        .map(|n| info.load_existing(n))
        .collect::<Result<Vec<_>>>()?;
    Ok(Identity::rules(&ids))
}

fn new_session() -> Result<String> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b)
        .map_err(|e| Error::Internal(format!("no randomness for a session id: {e}")))?;
    Ok(hex(&b))
}

/// Paths the boot's walk hands to the snapshot's thread at a time.
const FOUND: usize = 1024;

/// Walk the trees adding the watches (watch before list): start a session and fill the
/// snapshot, or, when there is one, go on with its session logging what changed meanwhile.
pub fn boot(cfg: &Config, rules: Rules) -> Result<Booted> {
    let store = Store::open(&cfg.state_dir)?;
    let db = store.connect()?;
    let head0 = wmlog::head(&db)?;
    let kept = crate::store::meta(&db, "session")?;
    if let Some(max) = cfg.max_watches
        && upm_watch::writable_dirs(&rules).len() as u64 > max
    {
        return Err(crate::overflow::watch_limit(&rules, Some(max)));
    }
    let shared_head = Arc::new(Head::new(head0));
    let mut monitor =
        Monitor::new(db, rules.clone(), shared_head.clone(), cfg.verbose).keep(cfg.log_keep);
    let resumed = kept.is_some();
    let (session, session_start) = match kept {
        Some(session) => {
            let start = crate::store::meta(&store.connect()?, "session_start")?
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            monitor.scan_begin()?;
            (session, start)
        }
        None => {
            let session = new_session()?;
            monitor.new_session(&session, head0)?;
            (session, head0)
        }
    };
    // The walk (watches, listings) and the snapshot's side (lstat, sqlite) run side by side,
    // the paths found handed over a thousand at a time (a wake-up per path costs more than
    // its lstat).
    let (found, seen) = std::sync::mpsc::sync_channel::<Vec<upm_watch::Event>>(8);
    // A failed walk must not end in a scan that takes everything unseen for deleted.
    let failed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let walk_failed = failed.clone();
    let filler = std::thread::Builder::new()
        .name("mirrord-boot".into())
        .spawn(move || -> Result<(Monitor, u64)> {
            let mut logged = 0;
            for e in seen.into_iter().flatten() {
                if resumed {
                    monitor.scan_seen(e)?;
                } else {
                    monitor.boot_seen(e)?;
                }
            }
            if walk_failed.load(std::sync::atomic::Ordering::SeqCst) {
                // Dropped uncommitted: the snapshot and log stay as they were.
                return Ok((monitor, 0));
            }
            if resumed {
                logged = monitor.scan_end()?;
            }
            monitor.commit()?;
            Ok((monitor, logged))
        })
        .map_err(|e| Error::Internal(format!("cannot start a thread: {e}")))?;
    let (kernel, why) = Kernel::open(cfg.backend, &rules.roots)?;
    if let Some(why) = why {
        eprintln!("mirrord: fanotify cannot watch these trees ({why}); using inotify");
    }
    let backend = kernel.name();
    eprintln!("mirrord: watching with {backend}");
    let mut bunch = Vec::with_capacity(FOUND);
    let walked = Watcher::walking(kernel, rules.clone(), &mut |e| {
        bunch.push(e);
        if bunch.len() == FOUND {
            // A filler that stopped has its error, returned below.
            let _ = found.send(std::mem::replace(&mut bunch, Vec::with_capacity(FOUND)));
        }
    });
    let _ = found.send(bunch);
    if walked.is_err() {
        failed.store(true, std::sync::atomic::Ordering::SeqCst);
    }
    drop(found);
    let joined = filler
        .join()
        .map_err(|_| Error::Internal("the snapshot's thread panicked".into()))?;
    let walked = match walked {
        Err(upm_watch::Error::Limit { .. }) => {
            return Err(crate::overflow::watch_limit(&rules, None));
        }
        w => w,
    };
    let (monitor, logged) = joined?;
    // A directory moved out must leave the mirror without waiting for the next change.
    let watcher = walked?.partner_wait(50);
    let paths = snapshot::len(&store.connect()?)?;
    let watching = watcher.spawn(monitor)?;
    Ok(Booted {
        served: Arc::new(Served {
            store,
            head: shared_head,
            session,
            session_start,
            secret: cfg.secret.clone(),
            keepalive: cfg.keepalive,
            verbose: cfg.verbose,
            clients: crate::ctl::clients::Clients::new(),
        }),
        watching,
        paths,
        backend,
        resumed,
        logged,
    })
}

/// Boot and serve until the process ends.
pub fn run(cfg: &Config) -> Result<()> {
    let rules = rules(cfg)?;
    let listener = TcpListener::bind(&cfg.listen).map_err(|source| Error::Net {
        peer: format!("listen address {}", cfg.listen),
        source,
    })?;
    let addr = listener.local_addr().map_err(|source| Error::Net {
        peer: cfg.listen.clone(),
        source,
    })?;
    println!("listening on {addr}");
    // Before the boot touches the state: a second mirrord on it is refused here.
    std::fs::create_dir_all(&cfg.state_dir).map_err(crate::error::io(&cfg.state_dir))?;
    let ctl_socket = crate::ctl::server::listen(&crate::ctl::socket(&cfg.state_dir))?;
    let booted = boot(cfg, rules.clone())?;
    crate::ctl::server::spawn(
        ctl_socket,
        Arc::new(crate::ctl::server::Ctl {
            served: booted.served.clone(),
            control: booted.watching.control(),
            fs_info_dir: cfg.fs_info_dir.clone(),
            identities: cfg.identities.clone(),
            backend: booted.backend,
            rules: std::sync::Mutex::new(rules),
        }),
    )?;
    if booted.resumed {
        eprintln!(
            "mirrord: session {} resumed: {} records logged for what changed while mirrord \
             was down ({} paths, {} directories watched)",
            booted.served.session,
            booted.logged,
            booted.paths,
            booted.watching.watched()
        );
    } else if cfg.verbose {
        eprintln!(
            "mirrord: new session {}, {} paths, {} directories watched",
            booted.served.session,
            booted.paths,
            booted.watching.watched()
        );
    }
    println!("boot init finished");
    server::run(listener, Shutdown::new(), booted.served.clone())?;
    booted.watching.finish()?;
    Ok(())
}
