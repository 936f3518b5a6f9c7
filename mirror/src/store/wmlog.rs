//! The wmLog ("watch modify log"): records keyed by a serial that only grows. The monitor
//! appends; each client session reads the records after the serial it stands at, as a MySQL
//! replica reads the binary log from its position.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::error::Result;
use crate::record::{Kind, Meta, Op, Record};

fn bytes(p: &Path) -> &[u8] {
    p.as_os_str().as_bytes()
}

fn path(b: Vec<u8>) -> PathBuf {
    PathBuf::from(OsStr::from_bytes(&b))
}

/// Append a record; its serial.
pub fn append(c: &Connection, r: &Record) -> Result<u64> {
    let mut s = c.prepare_cached(
        "INSERT INTO wmlog (op, path, path2, kind, mode, uid, gid, size, mtime_ns, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?;
    let m = r.meta.as_ref();
    let path2 = r.to.as_deref().or(m.and_then(|m| m.target.as_deref()));
    s.execute(params![
        r.op.name(),
        bytes(&r.path),
        path2.map(bytes),
        m.map(|m| m.kind as i64),
        m.map(|m| m.mode),
        m.map(|m| m.uid),
        m.map(|m| m.gid),
        m.map(|m| m.size as i64),
        m.map(|m| m.mtime_ns),
        now(),
    ])?;
    Ok(c.last_insert_rowid() as u64)
}

/// Give the FWRITE record at `serial` (not yet committed) the file's state now: the content
/// its GET will send is the file's latest, and so must the mode, owner and time be.
pub fn restate(c: &Connection, serial: u64, m: &Meta) -> Result<()> {
    let mut s = c.prepare_cached(
        "UPDATE wmlog SET mode = ?2, uid = ?3, gid = ?4, size = ?5, mtime_ns = ?6
         WHERE serial = ?1 AND op = 'FWRITE'",
    )?;
    s.execute(params![
        serial as i64,
        m.mode,
        m.uid,
        m.gid,
        m.size as i64,
        m.mtime_ns
    ])?;
    Ok(())
}

/// The last serial ever handed out (0 before the first).
pub fn head(c: &Connection) -> Result<u64> {
    let mut s = c.prepare_cached("SELECT seq FROM sqlite_sequence WHERE name = 'wmlog'")?;
    let mut rows = s.query([])?;
    Ok(match rows.next()? {
        Some(r) => r.get::<_, i64>(0)? as u64,
        None => 0,
    })
}

fn record(r: &Row<'_>) -> rusqlite::Result<(u64, Record)> {
    let serial: i64 = r.get(0)?;
    let op: String = r.get(1)?;
    let op = Op::from_name(&op).unwrap_or(Op::Attrib);
    let p = path(r.get(2)?);
    let path2: Option<Vec<u8>> = r.get(3)?;
    let kind: Option<i64> = r.get(4)?;
    let meta = match kind.and_then(Kind::from_i64) {
        Some(kind) => Some(Meta {
            kind,
            mode: r.get(5)?,
            uid: r.get(6)?,
            gid: r.get(7)?,
            size: r.get::<_, i64>(8)? as u64,
            mtime_ns: r.get(9)?,
            target: if kind == Kind::Symlink {
                path2.clone().map(path)
            } else {
                None
            },
        }),
        None => None,
    };
    let to = if op == Op::Move {
        path2.map(path)
    } else {
        None
    };
    Ok((
        serial as u64,
        Record {
            op,
            path: p,
            to,
            meta,
        },
    ))
}

/// Up to `limit` records after `serial`, in order.
pub fn after(c: &Connection, serial: u64, limit: usize) -> Result<Vec<(u64, Record)>> {
    let mut s = c.prepare_cached(
        "SELECT serial, op, path, path2, kind, mode, uid, gid, size, mtime_ns FROM wmlog
         WHERE serial > ?1 ORDER BY serial LIMIT ?2",
    )?;
    let rows = s.query_map(params![serial as i64, limit as i64], record)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// What became of the file `p` (as named at `serial`) after `serial`: its name now, or `None`
/// when its content was replaced or it went away (a later record will tell the client).
///
/// `moved`: no MOVE or DELETE after this serial (an upper bound is fine): without one, only a
/// later record of `p` itself can change what it names, which one index lookup tells. Asked
/// after the first query, so that it covers everything this read of the database can see.
pub fn follow(
    c: &Connection,
    serial: u64,
    p: &Path,
    moved: impl Fn() -> u64,
) -> Result<Option<PathBuf>> {
    if serial < trimmed(c)? {
        // Its history is partly gone: the client is sent back to INIT at its next NEXT.
        return Ok(None);
    }
    if moved() <= serial {
        let mut s = c.prepare_cached(
            "SELECT 1 FROM wmlog WHERE path = ?1 AND serial > ?2 AND op != 'ATTRIB' LIMIT 1",
        )?;
        let again = s.exists(params![bytes(p), serial as i64])?;
        return Ok((!again).then(|| p.to_path_buf()));
    }
    let mut cur = p.to_path_buf();
    let mut from = serial;
    while let Some((s, op, at, to)) = next_touching(c, from, &cur)? {
        from = s;
        if op == "MOVE" && to.as_deref().is_some_and(|t| cur.starts_with(t)) {
            // Something else was renamed onto it.
            return Ok(None);
        }
        if !cur.starts_with(&at) {
            continue;
        }
        if op == "MOVE" {
            let Some(to) = to else {
                return Ok(None);
            };
            let rest = cur.strip_prefix(&at).unwrap_or(Path::new("")).to_path_buf();
            cur = if rest.as_os_str().is_empty() {
                to
            } else {
                to.join(rest)
            };
        } else if at == cur || op == "DELETE" {
            // Written again, replaced, or deleted (with a directory above it).
            return Ok(None);
        }
    }
    Ok(Some(cur))
}

/// A record as [`follow`] needs it: serial, operation, path, and where a MOVE went.
type Touching = (u64, String, PathBuf, Option<PathBuf>);

/// The first record after `serial` (but ATTRIB) about `p` or a directory above it, or a
/// rename onto one of them: the only ones that can change what `p` names. Found by index,
/// so following a path costs its depth, not the log's length.
fn next_touching(c: &Connection, serial: u64, p: &Path) -> Result<Option<Touching>> {
    let above: Vec<&[u8]> = p.ancestors().map(bytes).filter(|b| !b.is_empty()).collect();
    // ?1 is the serial, ?2… the paths (used twice).
    let marks = (2..above.len() + 2)
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(",");
    let sql = format!(
        "SELECT serial, op, path, path2 FROM (
           SELECT serial, op, path, path2 FROM wmlog
            WHERE path IN ({marks}) AND serial > ?1 AND op != 'ATTRIB'
           UNION ALL
           SELECT serial, op, path, path2 FROM wmlog
            WHERE op = 'MOVE' AND path2 IN ({marks}) AND serial > ?1)
         ORDER BY serial LIMIT 1"
    );
    let mut s = c.prepare_cached(&sql)?;
    let mut args: Vec<&dyn rusqlite::ToSql> = Vec::with_capacity(1 + above.len());
    let serial = serial as i64;
    args.push(&serial);
    for b in &above {
        args.push(b);
    }
    let mut rows = s.query(rusqlite::params_from_iter(args))?;
    Ok(match rows.next()? {
        Some(r) => Some((
            r.get::<_, i64>(0)? as u64,
            r.get(1)?,
            path(r.get(2)?),
            r.get::<_, Option<Vec<u8>>>(3)?.map(path),
        )),
        None => None,
    })
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// How much of the log to keep (`mirrord --log-keep N` or `Nd`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// The last N records.
    Records(u64),
    /// Records logged within the last N days.
    Days(u64),
}

impl std::str::FromStr for Keep {
    type Err = String;

    fn from_str(s: &str) -> Result<Keep, String> {
        let bad = || format!("{s:?}: give a number of records (100000) or of days (30d)");
        let s = s.trim();
        match s.strip_suffix('d') {
            Some(d) => d.parse().map(Keep::Days).map_err(|_| bad()),
            None => s.parse().map(Keep::Records).map_err(|_| bad()),
        }
        .and_then(|k| match k {
            Keep::Records(0) | Keep::Days(0) => Err(bad()),
            k => Ok(k),
        })
    }
}

/// Drop the records `keep` no longer covers (at `now`, seconds since the epoch), remembering
/// in `meta` the last serial dropped: a client behind it can no longer resume with `SN:`.
/// How many records were dropped.
pub fn trim(c: &Connection, keep: Keep, now: i64) -> Result<u64> {
    let upto: Option<i64> = match keep {
        Keep::Records(n) => {
            let head = head(c)? as i64;
            (head - n as i64 > 0).then_some(head - n as i64)
        }
        Keep::Days(d) => {
            let cutoff = now - (d as i64) * 86_400;
            // Serials grow with time: walk from the oldest to the first record young enough.
            let first_young: Option<i64> = c
                .prepare_cached("SELECT serial FROM wmlog WHERE at >= ?1 ORDER BY serial LIMIT 1")?
                .query_row([cutoff], |r| r.get(0))
                .optional()?;
            match first_young {
                Some(y) => Some(y - 1),
                None => Some(head(c)? as i64),
            }
        }
    };
    let Some(upto) = upto else { return Ok(0) };
    let last: Option<i64> = c
        .prepare_cached("SELECT max(serial) FROM wmlog WHERE serial <= ?1")?
        .query_row([upto], |r| r.get(0))?;
    let Some(last) = last else { return Ok(0) };
    let n = c
        .prepare_cached("DELETE FROM wmlog WHERE serial <= ?1")?
        .execute([last])?;
    let before = crate::store::meta(c, "trimmed")?
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(0);
    crate::store::set_meta(c, "trimmed", &before.max(last).to_string())?;
    Ok(n as u64)
}

/// The last serial `--log-keep` dropped (0: none).
pub fn trimmed(c: &Connection) -> Result<u64> {
    Ok(crate::store::meta(c, "trimmed")?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0))
}

/// Forget every record (a new session starts from the snapshot; serials go on growing).
pub fn clear(c: &Connection) -> Result<()> {
    c.execute("DELETE FROM wmlog", [])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Kind, Meta, Op, Record};

    fn rec(op: Op, p: &str, to: Option<&str>) -> Record {
        Record {
            op,
            path: p.into(),
            to: to.map(PathBuf::from),
            meta: (op == Op::Fwrite || op == Op::Attrib).then_some(Meta {
                kind: Kind::File,
                mode: 0o644,
                uid: 0,
                gid: 0,
                size: 1,
                mtime_ns: 1,
                target: None,
            }),
        }
    }

    #[test]
    fn a_file_is_followed_through_renames_of_itself_and_its_directories() {
        let d = tempfile::tempdir().unwrap();
        let c = crate::store::Store::open(d.path())
            .unwrap()
            .connect()
            .unwrap();
        let log = |r: Record| append(&c, &r).unwrap();
        let s0 = log(rec(Op::Fwrite, "/r/a/f", None));
        log(rec(Op::Fwrite, "/r/other", None));
        log(rec(Op::Attrib, "/r/a/f", None));
        let s1 = log(rec(Op::Move, "/r/a", Some("/r/b")));
        log(rec(Op::Move, "/r/b/f", Some("/r/b/g")));
        let f = |s, p: &str| follow(&c, s, Path::new(p), || u64::MAX).unwrap();
        assert_eq!(f(s0, "/r/a/f"), Some(PathBuf::from("/r/b/g")));
        assert_eq!(f(s1, "/r/b/f"), Some(PathBuf::from("/r/b/g")));
        // Written again: the later record brings it.
        log(rec(Op::Fwrite, "/r/b/g", None));
        assert_eq!(f(s0, "/r/a/f"), None);
        // Something renamed onto a directory above it; a deletion above it.
        let s2 = log(rec(Op::Fwrite, "/r/x/y", None));
        log(rec(Op::Move, "/r/z", Some("/r/x")));
        assert_eq!(f(s2, "/r/x/y"), None);
        let s3 = log(rec(Op::Fwrite, "/r/p/q", None));
        assert_eq!(f(s3, "/r/p/q"), Some(PathBuf::from("/r/p/q")));
        log(rec(Op::Delete, "/r/p", None));
        assert_eq!(f(s3, "/r/p/q"), None);
        // Without a MOVE or DELETE since, one lookup of the path itself answers the same.
        let fast = |s: u64, p: &str| follow(&c, s, Path::new(p), || s).unwrap();
        let s4 = log(rec(Op::Fwrite, "/r/k/l", None));
        log(rec(Op::Attrib, "/r/k/l", None));
        log(rec(Op::Fwrite, "/r/k/other", None));
        assert_eq!(fast(s4, "/r/k/l"), Some(PathBuf::from("/r/k/l")));
        assert_eq!(fast(s4, "/r/k/l"), f(s4, "/r/k/l"));
        log(rec(Op::Fwrite, "/r/k/l", None));
        assert_eq!(fast(s4, "/r/k/l"), None);
        assert_eq!(f(s4, "/r/k/l"), None);
    }
}
