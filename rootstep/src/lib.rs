//! The one record format of upm's install logs, shared by the three programs that meet in them:
//! the PATH wrappers and the LD_PRELOAD shim write records, and upm reads them back (to apply
//! root steps, and to merge the shim's file changes into the manifest).
//!
//! A record is one line `KIND<TAB>ARG<TAB>PATH<LF>`. `KIND` is a word (`chown`, `setuid`,
//! `rename`, …), `ARG` and `PATH` are any bytes: a backslash, tab, newline or carriage return
//! in them is written as `\\`, `\t`, `\n`, `\r`, so any file name fits on one line. Lines that
//! are not records (a truncated last line, garbage) are skipped when reading.
//!
//! Writing needs no allocation ([`encode`] fills a caller's buffer), so the shim can write a
//! record from a hook running in a `vfork` child or a signal handler. This crate has no
//! dependencies, so the shim can link it without linking upm.

/// The environment variables the shim reads (upm's `envvars` names them from here, so the two
/// can never disagree).
pub mod env {
    /// The shim's log, as a path the logging process opens (inside the target root). The shim
    /// is inert when this is absent.
    pub const SHIM_LOG: &str = "UPM_SHIM_LOG";
    /// The log's descriptor handed down by upm, as `FD:DEV:INO`: the shim writes to `FD` when it
    /// is still that file (a build system may have closed it and reused the number), else it
    /// opens [`SHIM_LOG`].
    pub const SHIM_FD: &str = "UPM_SHIM_FD";
    /// The file root steps are appended to (the wrappers' too).
    pub const STEPS: &str = "UPM_STEPS";
}

/// One record: what happened (`KIND`), its argument, and the path it happened to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    pub kind: Vec<u8>,
    pub arg: Vec<u8>,
    pub path: Vec<u8>,
}

/// The bytes that must be escaped in `ARG` and `PATH`.
fn escape(b: u8) -> Option<u8> {
    match b {
        b'\\' => Some(b'\\'),
        b'\t' => Some(b't'),
        b'\n' => Some(b'n'),
        b'\r' => Some(b'r'),
        _ => None,
    }
}

/// A writer into a fixed buffer; remembers whether everything fitted.
struct Out<'a> {
    buf: &'a mut [u8],
    len: usize,
    fits: bool,
}

impl Out<'_> {
    fn byte(&mut self, b: u8) {
        if self.len < self.buf.len() {
            self.buf[self.len] = b;
            self.len += 1;
        } else {
            self.fits = false;
        }
    }

    fn escaped(&mut self, parts: &[&[u8]]) {
        for part in parts {
            for &b in *part {
                match escape(b) {
                    Some(e) => {
                        self.byte(b'\\');
                        self.byte(e);
                    }
                    None => self.byte(b),
                }
            }
        }
    }
}

/// Write the record `kind`, `arg`, `path` into `buf` as one line; `arg` and `path` are each
/// given as parts written one after the other (a directory, `/`, a name), so a caller need not
/// join them first. Returns the line's length, or `None` when it does not fit or `kind` is not
/// a word (empty, or holding a tab, newline or backslash).
pub fn encode(kind: &[u8], arg: &[&[u8]], path: &[&[u8]], buf: &mut [u8]) -> Option<usize> {
    if kind.is_empty() || kind.iter().any(|b| escape(*b).is_some()) {
        return None;
    }
    let mut out = Out {
        buf,
        len: 0,
        fits: true,
    };
    for &b in kind {
        out.byte(b);
    }
    out.byte(b'\t');
    out.escaped(arg);
    out.byte(b'\t');
    out.escaped(path);
    out.byte(b'\n');
    out.fits.then_some(out.len)
}

impl Record {
    pub fn new(kind: &str, arg: &[u8], path: &[u8]) -> Record {
        Record {
            kind: kind.as_bytes().to_vec(),
            arg: arg.to_vec(),
            path: path.to_vec(),
        }
    }

    /// The record as one line (see [`encode`]); `None` when its kind is not a word.
    pub fn line(&self) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; self.kind.len() + 2 * (self.arg.len() + self.path.len()) + 3];
        let n = encode(&self.kind, &[&self.arg], &[&self.path], &mut buf)?;
        buf.truncate(n);
        Some(buf)
    }

    /// Parse one line (without its newline).
    pub fn parse(line: &[u8]) -> Option<Record> {
        let mut fields = line.splitn(3, |b| *b == b'\t');
        let kind = fields.next()?;
        let arg = unescape(fields.next()?)?;
        let path = unescape(fields.next()?)?;
        if kind.is_empty() || kind.contains(&b'\\') {
            return None;
        }
        Some(Record {
            kind: kind.to_vec(),
            arg,
            path,
        })
    }

    /// Parse a whole log: every complete line that is a record.
    pub fn parse_all(data: &[u8]) -> Vec<Record> {
        let complete = match data.iter().rposition(|b| *b == b'\n') {
            Some(i) => &data[..i],
            None => return Vec::new(),
        };
        complete
            .split(|b| *b == b'\n')
            .filter_map(Record::parse)
            .collect()
    }
}

/// Undo [`encode`]'s escapes; `None` for a field no encoder wrote (an unknown escape, a lone
/// backslash at the end, a raw tab).
fn unescape(field: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(field.len());
    let mut it = field.iter();
    while let Some(&b) = it.next() {
        match b {
            b'\\' => out.push(match it.next()? {
                b'\\' => b'\\',
                b't' => b'\t',
                b'n' => b'\n',
                b'r' => b'\r',
                _ => return None,
            }),
            b'\t' => return None,
            _ => out.push(b),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_one_line_with_its_specials_escaped() {
        let r = Record::new("rename", b"/tmp/a\tb", b"/usr/bin/x\ny\\z");
        let line = r.line().unwrap();
        assert_eq!(line, b"rename\t/tmp/a\\tb\t/usr/bin/x\\ny\\\\z\n".to_vec());
        assert_eq!(Record::parse_all(&line), vec![r]);
    }

    #[test]
    fn encode_joins_parts_and_refuses_what_does_not_fit() {
        let mut buf = [0u8; 32];
        let n = encode(b"mkdir", &[b"755"], &[b"/usr", b"/", b"lib"], &mut buf).unwrap();
        assert_eq!(&buf[..n], b"mkdir\t755\t/usr/lib\n");
        assert_eq!(encode(b"mkdir", &[], &[&[b'x'; 40]], &mut buf), None);
        assert_eq!(encode(b"", &[], &[b"/x"], &mut buf), None);
        assert_eq!(encode(b"a\tb", &[], &[b"/x"], &mut buf), None);
    }

    #[test]
    fn the_wrappers_lines_still_read() {
        let data = b"chown\t-R root:root\t/usr/bin/su\nsetuid\t4755\t/usr/bin/su\ngarbage\ntrunc";
        let all = Record::parse_all(data);
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].arg, b"-R root:root");
        assert_eq!(all[1].path, b"/usr/bin/su");
    }

    #[test]
    fn bad_escapes_are_not_records() {
        assert_eq!(Record::parse(b"x\t\\q\t/a"), None);
        assert_eq!(Record::parse(b"x\t\t/a\\"), None);
        assert_eq!(Record::parse(b"x\ta"), None);
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever a log holds, reading it never panics.
        #[test]
        fn any_log_reads(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = Record::parse_all(&data);
        }

        /// Any argument and path come back as they were written.
        #[test]
        fn records_round_trip(
            kind in "[a-z0-9-]{1,12}",
            arg in proptest::collection::vec(any::<u8>(), 0..64),
            path in proptest::collection::vec(any::<u8>(), 0..128),
        ) {
            let r = Record::new(&kind, &arg, &path);
            let line = r.line().unwrap();
            prop_assert_eq!(line.iter().filter(|b| **b == b'\n').count(), 1);
            prop_assert_eq!(Record::parse_all(&line), vec![r]);
        }
    }
}
