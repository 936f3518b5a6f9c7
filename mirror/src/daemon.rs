//! mirrord as a whole, in stages: load the identities' trees from fs_info, open the state
//! database, **boot** (start a session, walk the trees adding each watch before listing, the
//! walk filling the snapshot), then run the Monitor on the watcher's thread and serve clients.

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
}

/// A booted mirrord: watching, its snapshot built, ready to serve.
pub struct Booted {
    pub served: Arc<Served>,
    pub watching: Running<Monitor>,
    pub paths: u64,
    /// "inotify" or "fanotify".
    pub backend: &'static str,
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

/// Start a session and build the snapshot while adding the watches (watch before list).
pub fn boot(cfg: &Config, rules: Rules) -> Result<Booted> {
    let store = Store::open(&cfg.state_dir)?;
    let db = store.connect()?;
    let head0 = wmlog::head(&db)?;
    let session = new_session()?;
    let shared_head = Arc::new(Head::new(head0));
    let mut monitor = Monitor::new(db, rules.clone(), shared_head.clone(), cfg.verbose);
    // This version rebuilds the snapshot at every boot: a new session, and clients INIT.
    monitor.new_session(&session, head0)?;
    // The walk (watches, listings) and the snapshot's filling (lstat, sqlite) run side by side.
    let (found, seen) = std::sync::mpsc::sync_channel::<upm_watch::Event>(8192);
    let filler = std::thread::Builder::new()
        .name("mirrord-boot".into())
        .spawn(move || -> Result<Monitor> {
            for e in seen {
                monitor.boot_seen(e)?;
            }
            monitor.commit()?;
            Ok(monitor)
        })
        .map_err(|e| Error::Internal(format!("cannot start a thread: {e}")))?;
    let (kernel, why) = Kernel::open(cfg.backend, &rules.roots)?;
    if let Some(why) = why {
        eprintln!("mirrord: fanotify cannot watch these trees ({why}); using inotify");
    }
    let backend = kernel.name();
    eprintln!("mirrord: watching with {backend}");
    let walked = Watcher::walking(kernel, rules, &mut |e| {
        // A filler that stopped has its error, returned below.
        let _ = found.send(e);
    });
    drop(found);
    let monitor = filler
        .join()
        .map_err(|_| Error::Internal("the snapshot's thread panicked".into()))??;
    // A directory moved out must leave the mirror without waiting for the next change.
    let watcher = walked?.partner_wait(50);
    let paths = snapshot::len(&store.connect()?)?;
    let watching = watcher.spawn(monitor)?;
    Ok(Booted {
        served: Arc::new(Served {
            store,
            head: shared_head,
            session,
            session_start: head0,
            secret: cfg.secret.clone(),
            keepalive: cfg.keepalive,
            verbose: cfg.verbose,
            clients: crate::ctl::clients::Clients::new(),
        }),
        watching,
        paths,
        backend,
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
    if cfg.verbose {
        eprintln!(
            "mirrord: session {}, {} paths, {} directories watched",
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
