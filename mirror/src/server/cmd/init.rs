//! `INIT` → `SESSION:<id>`, then the snapshot as ordinary records (CREATE, FWRITE, SYMLINK),
//! parents first, in batches of at most 1024, each `SERIAL:<n>` … `EOF`, the next sent on
//! `NEXT`. `n` is the serial the snapshot stands at: a read transaction holds the snapshot as
//! it was then while the monitor goes on (the original design's "lock the snapshot" trick,
//! without stopping anyone), so the client never holds anything the log has not told it, and
//! changes made meanwhile arrive as the records after `n`. A batch of fewer than 1024 records
//! (possibly none) ends the snapshot; the next `NEXT` waits for those records.

use crate::error::Result;
use crate::proto::BATCH;
use crate::record::Record;
use crate::server::cmd::send_batch;
use crate::server::session::{Flow, InitCursor, Session, State};
use crate::store::{snapshot, wmlog};

pub fn apply(s: &mut Session<'_>) -> Result<Flow> {
    let db = s.served.store.connect()?;
    db.execute_batch("BEGIN")?;
    let serial = wmlog::head(&db)?;
    if s.served.verbose {
        eprintln!("mirrord: {}: INIT at serial {serial}", s.conn.peer());
    }
    s.state = State::Init(InitCursor {
        db,
        serial,
        after: None,
    });
    let line = format!("SESSION:{}", s.served.session);
    s.say(&line)?;
    next(s)
}

/// The next batch of the snapshot.
pub fn next(s: &mut Session<'_>) -> Result<Flow> {
    let State::Init(cur) = &mut s.state else {
        return Ok(Flow::Go);
    };
    let page = snapshot::page(&cur.db, cur.after.as_deref(), BATCH)?;
    let serial = cur.serial;
    let last = page.len() < BATCH;
    cur.after = page.last().map(|(p, _)| p.clone());
    if last {
        cur.db.execute_batch("COMMIT")?;
        s.state = State::Realtime { cursor: serial };
    }
    let records: Vec<Record> = page
        .into_iter()
        .map(|(path, meta)| Record {
            op: meta.kind.created_by(),
            path,
            to: None,
            meta: Some(meta),
        })
        .collect();
    send_batch(s, serial, records.iter())?;
    Ok(Flow::Go)
}
