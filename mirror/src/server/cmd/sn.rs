//! `SN:<session>,<serial>`: resume where a client stopped. The same session and the head's
//! serial → `OK`; an earlier serial of this session → the records after it; another session →
//! `SESSION INVALID`; a serial before the session, before what `--log-keep` kept, or beyond
//! the head → `SERIAL OVERDUE OR INVALID`. After a refusal only `INIT` is accepted (fs_mirror's
//! INIT is differential: it fetches only the files that differ from its copy).

use crate::error::Result;
use crate::proto::{BATCH, Reply};
use crate::server::cmd::send_batch;
use crate::server::session::{Flow, Session, State};
use crate::store::wmlog;

pub fn apply(s: &mut Session<'_>, session: &str, serial: i64) -> Result<Flow> {
    if session != s.served.session {
        s.state = State::MustInit;
        return s.say(Reply::SESSION_INVALID);
    }
    let head = wmlog::head(&s.db)?;
    let Ok(serial) = u64::try_from(serial) else {
        s.state = State::MustInit;
        return s.say(Reply::SERIAL_INVALID);
    };
    // Before the session, or before what the retention kept: the records are gone.
    let from = crate::store::resumable_from(&s.db)?.max(s.served.session_start);
    if serial < from || serial > head {
        s.state = State::MustInit;
        return s.say(Reply::SERIAL_INVALID);
    }
    if serial == head {
        s.state = State::Realtime { cursor: serial };
        return s.say(Reply::OK);
    }
    let records = wmlog::after(&s.db, serial, BATCH)?;
    let last = records.last().map_or(serial, |(n, _)| *n);
    s.state = State::Realtime { cursor: last };
    send_batch(s, last, records.iter().map(|(_, r)| r))?;
    Ok(Flow::Go)
}
