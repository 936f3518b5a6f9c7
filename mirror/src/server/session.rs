//! One client's session: reads its commands one line at a time and moves through the states of
//! the original design's protocol — fresh (`AUTH`, `START`), started (`INIT` or `SN:`), sending
//! the snapshot (`NEXT`, `GET`), realtime (`NEXT`, `GET`). A command out of place gets the
//! original's answer for that state and the connection closes.

use std::net::TcpStream;
use std::path::PathBuf;

use crate::ctl::clients::Seat;
use crate::error::{Error, Result};
use crate::head::Shutdown;
use crate::proto::{Connection, Reply, Request};
use crate::server::{Served, cmd};

/// Where a session stands.
pub enum State {
    /// Connected: `AUTH` (when a secret is set), then `START`.
    Fresh,
    /// After `START`: `INIT` or `SN:`.
    Started,
    /// The resume point was refused: only `INIT` may follow.
    MustInit,
    /// Sending the snapshot, batch by batch.
    Init(InitCursor),
    /// Sending the wmLog after `cursor`.
    Realtime { cursor: u64 },
}

/// The snapshot being sent: a read transaction of its own keeps it as it was at `serial`.
pub struct InitCursor {
    pub db: rusqlite::Connection,
    pub serial: u64,
    pub after: Option<PathBuf>,
}

/// Whether to go on after a command.
#[derive(Debug, PartialEq, Eq)]
pub enum Flow {
    Go,
    Close,
}

pub struct Session<'a> {
    pub conn: Connection,
    pub served: &'a Served,
    pub shutdown: &'a Shutdown,
    /// For the wmLog and `GET` (always the latest committed state).
    pub db: rusqlite::Connection,
    pub state: State,
    /// The challenge sent, and whether it was answered right.
    pub challenge: Option<String>,
    pub authed: bool,
    /// Whether a read transaction is open on `db` (see [`Session::reading`]).
    reading: bool,
    /// With `--verbose`: lines said when the answers go out, all in one write.
    said: String,
    /// Where this client stands, for `mirrord ctl status`.
    seat: Seat,
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        self.tell();
    }
}

impl<'a> Session<'a> {
    pub fn new(
        stream: TcpStream,
        served: &'a Served,
        shutdown: &'a Shutdown,
    ) -> Result<Session<'a>> {
        let conn = Connection::new(stream).map_err(|source| Error::Net {
            peer: "client".into(),
            source,
        })?;
        let seat = served.clients.join(conn.peer().to_string());
        Ok(Session {
            seat,
            conn,
            served,
            shutdown,
            db: served.store.connect()?,
            state: State::Fresh,
            challenge: None,
            authed: served.secret.is_none(),
            reading: false,
            said: String::new(),
        })
    }

    pub fn net(&self) -> impl FnOnce(std::io::Error) -> Error + use<> {
        let peer = self.conn.peer().to_string();
        move |source| Error::Net { peer, source }
    }

    /// Answer one line and tell to go on.
    pub fn say(&mut self, line: &str) -> Result<Flow> {
        self.conn.write_line(line).map_err(self.net())?;
        Ok(Flow::Go)
    }

    /// Answer one line and close.
    pub fn refuse(&mut self, line: &str) -> Result<Flow> {
        if self.served.verbose {
            eprintln!("mirrord: {}: {line}, closing", self.conn.peer());
        }
        self.say(line)?;
        Ok(Flow::Close)
    }

    pub fn run(&mut self) -> Result<()> {
        loop {
            if !self.conn.has_buffered() {
                // Nothing more asked: what was read is let go before the answers go out
                // (and before a NEXT waits for new records).
                self.reading(false)?;
                self.tell();
                self.conn.flush().map_err(self.net())?;
            }
            let line = match self.conn.read_line() {
                Ok(Some(l)) => l,
                Ok(None) => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                    self.refuse(Reply::LINE_TOO_LONG)?;
                    return self.conn.flush().map_err(self.net());
                }
                Err(e) => return Err(self.net()(e)),
            };
            // A command says the client has carried out what it was sent before.
            self.publish();
            let req = Request::parse(&line).ok();
            // The GETs a client asked for at once share one read of the database.
            let reads = matches!(
                req,
                Some(
                    Request::Get { .. }
                        | Request::GetMeta { .. }
                        | Request::Sum { .. }
                        | Request::Delta { .. }
                )
            );
            self.reading(reads)?;
            if self.dispatch(req)? == Flow::Close {
                return self.conn.flush().map_err(self.net());
            }
        }
    }

    /// Say `line` in the log (with `--verbose`), when the answers go out.
    pub fn note(&mut self, line: std::fmt::Arguments) {
        use std::fmt::Write;
        let _ = writeln!(self.said, "mirrord: {}: {line}", self.conn.peer());
    }

    fn tell(&mut self) {
        if !self.said.is_empty() {
            eprint!("{}", self.said);
            self.said.clear();
        }
    }

    /// Open or close the read transaction of a run of GETs: one look at the log and the
    /// snapshot for all of them, not one per statement.
    pub(crate) fn reading(&mut self, on: bool) -> Result<()> {
        if on != self.reading {
            self.db
                .execute_batch(if on { "BEGIN DEFERRED" } else { "COMMIT" })?;
            self.reading = on;
        }
        Ok(())
    }

    /// Tell the registry where this client stands: the serial it was sent up to, taken when
    /// it asks for more (so a client still busy with a batch, or stopped, shows its lag).
    fn publish(&self) {
        let session = Some(self.served.session.as_str());
        match &self.state {
            State::Fresh => self.seat.publish("connected", None, None),
            State::Started | State::MustInit => self.seat.publish("starting", None, None),
            State::Init(c) => self.seat.publish("init", session, Some(c.serial)),
            State::Realtime { cursor } => self.seat.publish("realtime", session, Some(*cursor)),
        }
    }

    fn dispatch(&mut self, req: Option<Request>) -> Result<Flow> {
        use Request as R;
        if req == Some(R::Quit) {
            return self.refuse(Reply::BYE);
        }
        match (&self.state, req) {
            (State::Fresh, Some(R::Auth(nonce))) => cmd::auth::challenge(self, nonce),
            (State::Fresh, Some(R::Response(r))) => cmd::auth::response(self, &r),
            (State::Fresh, Some(R::Start)) => cmd::start::apply(self),
            (State::Fresh, _) => self.refuse(Reply::INVALID_COMMAND),
            (State::Started | State::MustInit, Some(R::Init)) => cmd::init::apply(self),
            (State::Started, Some(R::Sn { session, serial })) => {
                cmd::sn::apply(self, &session, serial)
            }
            (State::Started | State::MustInit, _) => self.refuse(Reply::INVALID_INIT_COMMAND),
            (State::Init(_), Some(R::Next)) => cmd::init::next(self),
            (State::Realtime { .. }, Some(R::Next)) => cmd::next::apply(self),
            (State::Init(_) | State::Realtime { .. }, Some(R::Get { serial, path })) => {
                cmd::get::apply(self, serial, &path)
            }
            (State::Init(_) | State::Realtime { .. }, Some(R::GetMeta { serial, path })) => {
                cmd::get::with_meta(self, serial, &path)
            }
            (State::Init(_) | State::Realtime { .. }, Some(R::Sum { serial, path })) => {
                cmd::sum::apply(self, serial, &path)
            }
            (State::Init(_) | State::Realtime { .. }, Some(R::Delta { serial, path })) => {
                cmd::delta::apply(self, serial, &path)
            }
            (State::Init(_) | State::Realtime { .. }, _) => {
                self.refuse(Reply::INVALID_REALTIME_COMMAND)
            }
        }
    }
}
