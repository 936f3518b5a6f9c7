//! The snapshot: every watched path with its state, keyed by the path's bytes. Byte order puts
//! a directory right before everything below it, so a subtree is one key range — what the
//! original design wanted of its BTree ("retentivity of vision": a directory moved out drops
//! its whole subtree) — and a full dump lists parents before children.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::error::Result;
use crate::record::{Kind, Meta};

fn bytes(p: &Path) -> &[u8] {
    p.as_os_str().as_bytes()
}

/// The key range strictly below directory `p`: `[p/, p0)` ('0' follows '/').
fn below(p: &Path) -> (Vec<u8>, Vec<u8>) {
    let mut lo = bytes(p).to_vec();
    if lo.last() != Some(&b'/') {
        lo.push(b'/');
    }
    let mut hi = lo.clone();
    *hi.last_mut().expect("not empty") = b'0';
    (lo, hi)
}

fn meta_of(r: &Row<'_>, at: usize) -> rusqlite::Result<Meta> {
    let kind: i64 = r.get(at)?;
    let target: Option<Vec<u8>> = r.get(at + 6)?;
    Ok(Meta {
        kind: Kind::from_i64(kind).unwrap_or(Kind::File),
        mode: r.get(at + 1)?,
        uid: r.get(at + 2)?,
        gid: r.get(at + 3)?,
        size: r.get::<_, i64>(at + 4)? as u64,
        mtime_ns: r.get(at + 5)?,
        target: target.map(|t| PathBuf::from(OsStr::from_bytes(&t))),
    })
}

pub fn get(c: &Connection, p: &Path) -> Result<Option<Meta>> {
    let mut s = c.prepare_cached(
        "SELECT kind, mode, uid, gid, size, mtime_ns, target FROM snapshot WHERE path = ?1",
    )?;
    Ok(s.query_row([bytes(p)], |r| meta_of(r, 0)).optional()?)
}

/// A path's identity on its file system: device and inode. A file renamed keeps it; a file
/// replaced (written to a temporary name and renamed over) gets another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Id {
    pub dev: u64,
    pub ino: u64,
}

impl Id {
    pub fn of(m: &std::fs::Metadata) -> Id {
        use std::os::unix::fs::MetadataExt;
        Id {
            dev: m.dev(),
            ino: m.ino(),
        }
    }
}

/// `p`'s state and, when known, its identity.
pub fn get_id(c: &Connection, p: &Path) -> Result<Option<(Meta, Option<Id>)>> {
    let mut s = c.prepare_cached(
        "SELECT kind, mode, uid, gid, size, mtime_ns, target, dev, ino FROM snapshot
         WHERE path = ?1",
    )?;
    Ok(
        s.query_row([bytes(p)], |r| Ok((meta_of(r, 0)?, id_of(r, 7)?)))
            .optional()?,
    )
}

fn id_of(r: &Row<'_>, at: usize) -> rusqlite::Result<Option<Id>> {
    let (dev, ino): (Option<i64>, Option<i64>) = (r.get(at)?, r.get(at + 1)?);
    Ok(dev.zip(ino).map(|(dev, ino)| Id {
        dev: dev as u64,
        ino: ino as u64,
    }))
}

/// The paths the snapshot holds with identity `id` (more than one: hard links).
pub fn with_id(c: &Connection, id: Id) -> Result<Vec<(PathBuf, Meta)>> {
    let mut s = c.prepare_cached(
        "SELECT path, kind, mode, uid, gid, size, mtime_ns, target FROM snapshot
         WHERE ino = ?1 AND dev = ?2",
    )?;
    let rows = s.query_map(params![id.ino as i64, id.dev as i64], |r| {
        let p: Vec<u8> = r.get(0)?;
        Ok((PathBuf::from(OsStr::from_bytes(&p)), meta_of(r, 1)?))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Put `p` with state `m` (its identity unknown).
pub fn put(c: &Connection, p: &Path, m: &Meta) -> Result<()> {
    put_id(c, p, m, None)
}

/// Put `p` with state `m` and identity `id`.
pub fn put_id(c: &Connection, p: &Path, m: &Meta, id: Option<Id>) -> Result<()> {
    let mut s = c.prepare_cached(
        "INSERT OR REPLACE INTO snapshot
            (path, kind, mode, uid, gid, size, mtime_ns, target, dev, ino)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?;
    s.execute(params![
        bytes(p),
        m.kind as i64,
        m.mode,
        m.uid,
        m.gid,
        m.size as i64,
        m.mtime_ns,
        m.target.as_deref().map(bytes),
        id.map(|i| i.dev as i64),
        id.map(|i| i.ino as i64),
    ])?;
    Ok(())
}

/// Forget `p` and everything below it; how many paths were forgotten.
pub fn remove_tree(c: &Connection, p: &Path) -> Result<usize> {
    let (lo, hi) = below(p);
    let mut s =
        c.prepare_cached("DELETE FROM snapshot WHERE path = ?1 OR (path >= ?2 AND path < ?3)")?;
    Ok(s.execute(params![bytes(p), lo, hi])?)
}

/// `from` and everything below it are now under `to` (what was at `to` is gone).
pub fn move_tree(c: &Connection, from: &Path, to: &Path) -> Result<()> {
    remove_tree(c, to)?;
    let (lo, hi) = below(from);
    let n = bytes(from).len() as i64;
    let mut s = c.prepare_cached(
        "UPDATE snapshot SET path = CAST(?4 || substr(path, ?5 + 1) AS BLOB)
         WHERE path = ?1 OR (path >= ?2 AND path < ?3)",
    )?;
    s.execute(params![bytes(from), lo, hi, bytes(to), n])?;
    Ok(())
}

/// Up to `limit` paths after `after` (from the start without it), in key order.
pub fn page(c: &Connection, after: Option<&Path>, limit: usize) -> Result<Vec<(PathBuf, Meta)>> {
    let mut s = c.prepare_cached(
        "SELECT path, kind, mode, uid, gid, size, mtime_ns, target FROM snapshot
         WHERE ?1 IS NULL OR path > ?1 ORDER BY path LIMIT ?2",
    )?;
    let rows = s.query_map(params![after.map(bytes), limit as i64], |r| {
        let p: Vec<u8> = r.get(0)?;
        Ok((PathBuf::from(OsStr::from_bytes(&p)), meta_of(r, 1)?))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// A path's bytes, its state and its identity.
pub type Entry = (Vec<u8>, Meta, Option<Id>);

/// Every path with its state and identity, for a scan to compare against in memory.
pub fn all_with_ids(c: &Connection) -> Result<Vec<Entry>> {
    let mut s = c.prepare_cached(
        "SELECT path, kind, mode, uid, gid, size, mtime_ns, target, dev, ino FROM snapshot",
    )?;
    let rows = s.query_map([], |r| Ok((r.get(0)?, meta_of(r, 1)?, id_of(r, 8)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn clear(c: &Connection) -> Result<()> {
    c.execute("DELETE FROM snapshot", [])?;
    Ok(())
}

pub fn len(c: &Connection) -> Result<u64> {
    Ok(c.query_row("SELECT count(*) FROM snapshot", [], |r| r.get::<_, i64>(0))? as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(kind: Kind) -> Meta {
        Meta {
            kind,
            mode: 0o755,
            uid: 0,
            gid: 0,
            size: 0,
            mtime_ns: 0,
            target: None,
        }
    }

    fn paths(c: &Connection) -> Vec<String> {
        page(c, None, 100)
            .unwrap()
            .into_iter()
            .map(|(p, _)| p.display().to_string())
            .collect()
    }

    fn db() -> (tempfile::TempDir, Connection) {
        let d = tempfile::tempdir().unwrap();
        let s = crate::store::Store::open(d.path()).unwrap();
        let c = s.connect().unwrap();
        (d, c)
    }

    #[test]
    fn subtrees_are_one_range_and_nothing_beside_them() {
        let (_d, c) = db();
        for p in [
            "/r", "/r/a", "/r/a/b", "/r/a/b/f", "/r/a-b", "/r/ab", "/r/a0",
        ] {
            put(&c, Path::new(p), &m(Kind::Dir)).unwrap();
        }
        // Byte order: a parent before its children ('-' sorts before '/', which does not matter).
        assert_eq!(
            paths(&c),
            [
                "/r", "/r/a", "/r/a-b", "/r/a/b", "/r/a/b/f", "/r/a0", "/r/ab"
            ]
        );
        move_tree(&c, Path::new("/r/a"), Path::new("/r/z")).unwrap();
        assert_eq!(
            paths(&c),
            [
                "/r", "/r/a-b", "/r/a0", "/r/ab", "/r/z", "/r/z/b", "/r/z/b/f"
            ]
        );
        assert_eq!(remove_tree(&c, Path::new("/r/z")).unwrap(), 3);
        assert_eq!(paths(&c), ["/r", "/r/a-b", "/r/a0", "/r/ab"]);
        // A move onto an existing path replaces it.
        move_tree(&c, Path::new("/r/ab"), Path::new("/r/a0")).unwrap();
        assert_eq!(paths(&c), ["/r", "/r/a-b", "/r/a0"]);
    }
}
