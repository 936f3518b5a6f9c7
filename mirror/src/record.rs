//! One wmLog record — what happened to which path, with the path's state when it was logged —
//! and its line in the protocol: `OP:PATH key=value...`, the original design's `CREATE:/var/www/html/`
//! with the state the original lacked (mode, owner, size, mtime, link target) after it.
//!
//! Paths are bytes: anything that is not a printable, non-space character (and `%` itself) is
//! written `%XX`, so a record is always one line of space-separated words.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// A directory appeared.
    Create,
    /// A regular file's content is new.
    Fwrite,
    /// A symbolic link appeared (or points elsewhere).
    Symlink,
    /// A path and everything below it went away.
    Delete,
    /// A path (and everything below it) was renamed to `to`.
    Move,
    /// Mode or owner changed.
    Attrib,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::Create => "CREATE",
            Op::Fwrite => "FWRITE",
            Op::Symlink => "SYMLINK",
            Op::Delete => "DELETE",
            Op::Move => "MOVE",
            Op::Attrib => "ATTRIB",
        }
    }

    pub fn from_name(s: &str) -> Option<Op> {
        [
            Op::Create,
            Op::Fwrite,
            Op::Symlink,
            Op::Delete,
            Op::Move,
            Op::Attrib,
        ]
        .into_iter()
        .find(|o| o.name() == s)
    }
}

/// The type of a path, as the snapshot keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File = 0,
    Dir = 1,
    Symlink = 2,
}

impl Kind {
    /// The operation that makes a path of this kind appear.
    pub fn created_by(self) -> Op {
        match self {
            Kind::Dir => Op::Create,
            Kind::File => Op::Fwrite,
            Kind::Symlink => Op::Symlink,
        }
    }

    pub fn from_i64(n: i64) -> Option<Kind> {
        [Kind::File, Kind::Dir, Kind::Symlink]
            .into_iter()
            .find(|k| *k as i64 == n)
    }
}

/// A path's state: what the snapshot holds and a record carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    pub kind: Kind,
    /// Permission bits (07777).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: i64,
    /// A symbolic link's target.
    pub target: Option<PathBuf>,
}

impl Meta {
    /// The state of `path` on disk (not following a last symlink); `None` when it is gone or
    /// is neither a regular file, a directory nor a symlink.
    pub fn of(path: &Path) -> Option<Meta> {
        Meta::from_metadata(path, &std::fs::symlink_metadata(path).ok()?)
    }

    /// The state of `path` from its `lstat` result `m` (a symlink's target is read).
    pub fn from_metadata(path: &Path, m: &std::fs::Metadata) -> Option<Meta> {
        use std::os::unix::fs::MetadataExt;
        let t = m.file_type();
        let kind = if t.is_dir() {
            Kind::Dir
        } else if t.is_file() {
            Kind::File
        } else if t.is_symlink() {
            Kind::Symlink
        } else {
            return None;
        };
        let target = if kind == Kind::Symlink {
            Some(std::fs::read_link(path).ok()?)
        } else {
            None
        };
        Some(Meta {
            kind,
            mode: m.mode() & 0o7777,
            uid: m.uid(),
            gid: m.gid(),
            size: if kind == Kind::File { m.size() } else { 0 },
            mtime_ns: m.mtime() * 1_000_000_000 + m.mtime_nsec(),
            target,
        })
    }
}

/// One record of the wmLog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub op: Op,
    pub path: PathBuf,
    /// Where a MOVE went.
    pub to: Option<PathBuf>,
    /// The state logged with CREATE, FWRITE, SYMLINK and ATTRIB.
    pub meta: Option<Meta>,
}

/// A record line that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("bad record line {line:?}: {why}")]
pub struct BadRecord {
    pub line: String,
    pub why: &'static str,
}

impl Record {
    /// The record as one protocol line (without CRLF).
    pub fn line(&self) -> String {
        let mut s = format!("{}:{}", self.op.name(), escape(self.path.as_os_str()));
        let dir = self.meta.as_ref().is_some_and(|m| m.kind == Kind::Dir);
        if dir && !s.ends_with('/') {
            s.push('/');
        }
        if let Some(to) = &self.to {
            s.push_str(" to=");
            s.push_str(&escape(to.as_os_str()));
        }
        if let Some(m) = &self.meta {
            s.push_str(&format!(" mode={:o} uid={} gid={}", m.mode, m.uid, m.gid));
            if m.kind == Kind::File {
                s.push_str(&format!(" size={} mtime={}", m.size, m.mtime_ns));
            }
            if let Some(t) = &m.target {
                s.push_str(" target=");
                s.push_str(&escape(t.as_os_str()));
            }
        }
        s
    }

    /// Read a record line (without CRLF).
    pub fn parse(line: &str) -> Result<Record, BadRecord> {
        let bad = |why| BadRecord {
            line: line.chars().take(200).collect(),
            why,
        };
        let (op, rest) = line.split_once(':').ok_or_else(|| bad("no OP: prefix"))?;
        let op = Op::from_name(op).ok_or_else(|| bad("unknown operation"))?;
        let mut words = rest.split(' ');
        let raw = words.next().unwrap_or("");
        let dir_slash = raw.len() > 1 && raw.ends_with('/');
        let path = PathBuf::from(
            unescape(raw.trim_end_matches('/')).ok_or_else(|| bad("bad %-escape in path"))?,
        );
        if path.as_os_str().is_empty() && raw != "/" {
            return Err(bad("empty path"));
        }
        let path = if raw == "/" { PathBuf::from("/") } else { path };
        let (mut to, mut mode, mut uid, mut gid, mut size, mut mtime, mut target) =
            (None, None, None, None, None, None, None);
        for w in words {
            let (k, v) = w
                .split_once('=')
                .ok_or_else(|| bad("a field is not key=value"))?;
            let num = |radix| {
                u64::from_str_radix(v, radix).map_err(|_| bad("a number field is not a number"))
            };
            match k {
                "to" => {
                    to = Some(PathBuf::from(
                        unescape(v).ok_or_else(|| bad("bad %-escape"))?,
                    ))
                }
                "target" => {
                    target = Some(PathBuf::from(
                        unescape(v).ok_or_else(|| bad("bad %-escape"))?,
                    ))
                }
                "mode" => mode = Some(num(8)? as u32 & 0o7777),
                "uid" => uid = Some(num(10)? as u32),
                "gid" => gid = Some(num(10)? as u32),
                "size" => size = Some(num(10)?),
                "mtime" => {
                    mtime = Some(v.parse::<i64>().map_err(|_| bad("mtime is not a number"))?)
                }
                // Fields of later versions are skipped.
                _ => {}
            }
        }
        let kind = match op {
            Op::Create => Some(Kind::Dir),
            Op::Fwrite => Some(Kind::File),
            Op::Symlink => Some(Kind::Symlink),
            Op::Attrib if dir_slash => Some(Kind::Dir),
            Op::Attrib => Some(Kind::File),
            Op::Delete | Op::Move => None,
        };
        let meta = match kind {
            Some(kind) => Some(Meta {
                kind,
                mode: mode.ok_or_else(|| bad("no mode="))?,
                uid: uid.ok_or_else(|| bad("no uid="))?,
                gid: gid.ok_or_else(|| bad("no gid="))?,
                size: size.unwrap_or(0),
                mtime_ns: mtime.unwrap_or(0),
                target: if kind == Kind::Symlink {
                    Some(target.ok_or_else(|| bad("SYMLINK without target="))?)
                } else {
                    None
                },
            }),
            None => None,
        };
        if op == Op::Move && to.is_none() {
            return Err(bad("MOVE without to="));
        }
        Ok(Record {
            op,
            path,
            to: if op == Op::Move { to } else { None },
            meta,
        })
    }
}

/// Whether `p` is absolute and plain, byte for byte: no empty, `.` or `..` components, no NUL,
/// not `/` alone. (`Path::components` would hide `a/./b` and `a//b`.)
pub fn plain_absolute(p: &Path) -> bool {
    let b = p.as_os_str().as_bytes();
    let Some(rest) = b.strip_prefix(b"/") else {
        return false;
    };
    !rest.is_empty()
        && !b.contains(&0)
        && rest
            .split(|c| *c == b'/')
            .all(|seg| !seg.is_empty() && seg != b"." && seg != b"..")
}

/// A path as one word: `%XX` for `%`, spaces, control characters and bytes that are not UTF-8.
pub fn escape(p: &OsStr) -> String {
    let mut out = String::new();
    for chunk in p.as_bytes().utf8_chunks() {
        for c in chunk.valid().chars() {
            if c == '%' || c.is_whitespace() || c.is_control() {
                let mut b = [0u8; 4];
                for byte in c.encode_utf8(&mut b).bytes() {
                    out.push_str(&format!("%{byte:02X}"));
                }
            } else {
                out.push(c);
            }
        }
        for byte in chunk.invalid() {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The path a word stands for; `None` when an escape is malformed.
pub fn unescape(s: &str) -> Option<OsString> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(OsString::from_vec(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(kind: Kind) -> Meta {
        Meta {
            kind,
            mode: 0o4755,
            uid: 10,
            gid: 20,
            size: if kind == Kind::File { 5 } else { 0 },
            mtime_ns: if kind == Kind::File {
                1_700_000_000_123_456_789
            } else {
                0
            },
            target: (kind == Kind::Symlink).then(|| PathBuf::from("../a b")),
        }
    }

    #[test]
    fn every_record_reads_back_as_itself() {
        let odd = PathBuf::from(OsStr::from_bytes(b"/r/a b%c\n\xff\xfe/\xc3\xa9t\xc3\xa9"));
        let records = [
            Record {
                op: Op::Create,
                path: "/var/www/html".into(),
                to: None,
                meta: Some(meta(Kind::Dir)),
            },
            Record {
                op: Op::Fwrite,
                path: odd.clone(),
                to: None,
                meta: Some(meta(Kind::File)),
            },
            Record {
                op: Op::Symlink,
                path: "/r/l".into(),
                to: None,
                meta: Some(meta(Kind::Symlink)),
            },
            Record {
                op: Op::Delete,
                path: odd.clone(),
                to: None,
                meta: None,
            },
            Record {
                op: Op::Move,
                path: "/r/x".into(),
                to: Some(odd),
                meta: None,
            },
            Record {
                op: Op::Attrib,
                path: "/r/d".into(),
                to: None,
                meta: Some(meta(Kind::Dir)),
            },
            Record {
                op: Op::Attrib,
                path: "/r/f".into(),
                to: None,
                meta: Some(Meta {
                    size: 0,
                    mtime_ns: 0,
                    ..meta(Kind::File)
                }),
            },
        ];
        for r in records {
            let line = r.line();
            assert!(!line.contains('\n') && !line.contains('\r'), "{line}");
            assert_eq!(Record::parse(&line).unwrap(), r, "{line}");
        }
    }

    #[test]
    fn the_original_designs_lines_keep_their_shape() {
        let r = Record {
            op: Op::Create,
            path: "/var/www/html".into(),
            to: None,
            meta: Some(meta(Kind::Dir)),
        };
        assert!(
            r.line().starts_with("CREATE:/var/www/html/ "),
            "{}",
            r.line()
        );
        let d = Record {
            op: Op::Delete,
            path: "/var/www/html/tmp/s2124.html".into(),
            to: None,
            meta: None,
        };
        assert_eq!(d.line(), "DELETE:/var/www/html/tmp/s2124.html");
    }

    #[test]
    fn bad_lines_are_errors_not_panics() {
        for l in [
            "",
            "CREATE",
            "NOPE:/a",
            "CREATE:/a mode=9z uid=0 gid=0",
            "FWRITE:/a%zz mode=644 uid=0 gid=0",
            "MOVE:/a",
            "SYMLINK:/a mode=777 uid=0 gid=0",
            "CREATE:/a x",
            "FWRITE:/a%",
            "CREATE:",
        ] {
            assert!(Record::parse(l).is_err(), "{l:?} was accepted");
        }
    }
}
