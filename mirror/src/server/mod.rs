//! mirrord's server: [`run`] accepts clients on a listener (tests bind port 0) until its
//! [`Shutdown`] is triggered, and serves each on a thread of its own as a [`session::Session`]:
//! the protocol's state machine, with one file per command in [`cmd`].

pub mod cmd;
pub mod session;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::head::{Head, Shutdown};
use crate::store::Store;

/// What every session shares.
pub struct Served {
    pub store: Store,
    pub head: Arc<Head>,
    /// This boot's session: a client resumes with `SN:` only within it.
    pub session: String,
    /// The serial the session started at: resuming before it is impossible.
    pub session_start: u64,
    /// The shared secret clients must prove (`AUTH`), when set.
    pub secret: Option<Vec<u8>>,
    /// How often a blocked `NEXT` sends `KEEPALIVE`, so dead peers are noticed.
    pub keepalive: Duration,
    pub verbose: bool,
    /// Who is connected and where each stands (`mirrord ctl status`).
    pub clients: Arc<crate::ctl::clients::Clients>,
}

/// Serve clients until `shutdown` is triggered.
pub fn run(listener: TcpListener, shutdown: Shutdown, served: Arc<Served>) -> Result<()> {
    let addr = listener.local_addr().map_err(|source| Error::Net {
        peer: "listener".into(),
        source,
    })?;
    shutdown.listening_on(addr);
    for stream in listener.incoming() {
        if shutdown.is_set() {
            break;
        }
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                eprintln!("mirrord: accept on {addr}: {e}");
                continue;
            }
        };
        let (served, shutdown) = (served.clone(), shutdown.clone());
        let spawned = std::thread::Builder::new()
            .name("mirrord-session".into())
            .spawn(move || {
                let peer = stream
                    .peer_addr()
                    .map_or_else(|_| "?".into(), |a| a.to_string());
                if served.verbose {
                    eprintln!("mirrord: {peer} connected");
                }
                match session::Session::new(stream, &served, &shutdown).and_then(|mut s| s.run()) {
                    Ok(()) if served.verbose => eprintln!("mirrord: {peer} closed"),
                    Ok(()) => {}
                    Err(e) => eprintln!("mirrord: {e}"),
                }
            });
        if let Err(e) = spawned {
            eprintln!("mirrord: cannot start a session thread: {e}");
        }
    }
    Ok(())
}
