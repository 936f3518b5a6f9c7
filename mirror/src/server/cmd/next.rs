//! `NEXT` in realtime: the records after the session's serial, at most 1024, as one batch.
//! When there are none it blocks until the monitor commits some, sending `KEEPALIVE` now and
//! then so a dead peer is noticed (its write fails) and the session ends.

use std::time::{Duration, Instant};

use crate::error::Result;
use crate::proto::{BATCH, Reply};
use crate::server::cmd::send_batch;
use crate::server::session::{Flow, Session, State};
use crate::store::wmlog;

pub fn apply(s: &mut Session<'_>) -> Result<Flow> {
    let State::Realtime { cursor } = s.state else {
        return Ok(Flow::Go);
    };
    let mut quiet_since = Instant::now();
    loop {
        if cursor < wmlog::trimmed(&s.db)? {
            // The log was trimmed past this client (--log-keep): records would be skipped.
            // It reconnects, is refused its SN:, and does a differential INIT.
            return s.refuse(Reply::SERIAL_INVALID);
        }
        let records = wmlog::after(&s.db, cursor, BATCH)?;
        if let Some((last, _)) = records.last() {
            let last = *last;
            s.state = State::Realtime { cursor: last };
            send_batch(s, last, records.iter().map(|(_, r)| r))?;
            return Ok(Flow::Go);
        }
        if s.shutdown.is_set() {
            return Ok(Flow::Close);
        }
        s.conn.flush().map_err(s.net())?;
        let keepalive = s.served.keepalive;
        let left = keepalive.saturating_sub(quiet_since.elapsed());
        s.served
            .head
            .wait_beyond(cursor, left.min(Duration::from_secs(1)));
        if quiet_since.elapsed() >= keepalive {
            s.say(Reply::KEEPALIVE)?;
            s.conn.flush().map_err(s.net())?;
            quiet_since = Instant::now();
        }
    }
}
