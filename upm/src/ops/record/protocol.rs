//! What the recording shell tells upm, and how: records of NUL-terminated fields written to a
//! FIFO (`$HOME/.upm/record.in`), which bash's strings cannot contain, so a command line with
//! newlines, tabs or quotes needs no escaping. Each record is a type and a fixed number of
//! fields:
//!
//! - `start CWD` — a command line is about to run in CWD, the directory it is recorded with
//!   (sent by the DEBUG trap, no answer awaited);
//! - `end SEQ STATUS CWD CONTROL LINE` — it ended (sent by PROMPT_COMMAND): its sequence
//!   number, exit status, the shell's working directory afterwards, the control word the
//!   shell functions set (`commit`, `rollback`, `rollback --undo`, `phase NAME`, or empty
//!   for a command to record) and the line as history has it. The shell then waits until upm
//!   writes `SEQ\n` to `$HOME/.upm/record.out`: upm has cut the command's paths (or done
//!   the control's work) by then, so the next command's effects are its own.

/// One record from the shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// A line starts, in this directory (inside the root).
    Start(String),
    End(End),
}

/// A command line that ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct End {
    pub seq: String,
    pub status: i32,
    /// The shell's working directory after the line (inside the root).
    pub cwd: String,
    pub control: Option<Control>,
    pub line: String,
}

/// A control word typed in the shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    Commit,
    Rollback {
        undo: bool,
    },
    Phase(String),
    /// Something the shell functions would not send (a typo in a hand-written record).
    Unknown(String),
}

impl Control {
    fn parse(s: &str) -> Option<Control> {
        let words: Vec<&str> = s.split_whitespace().collect();
        Some(match words.as_slice() {
            [] => return None,
            ["commit"] => Control::Commit,
            ["rollback"] => Control::Rollback { undo: false },
            ["rollback", "--undo"] => Control::Rollback { undo: true },
            ["phase", name] => Control::Phase(name.to_string()),
            _ => Control::Unknown(s.to_string()),
        })
    }
}

/// Splits the byte stream into records as bytes arrive.
#[derive(Debug, Default)]
pub struct Parser {
    buf: Vec<u8>,
}

impl Parser {
    /// Add bytes read from the FIFO; the records they complete.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Record> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some((record, used)) = parse_one(&self.buf) {
            self.buf.drain(..used);
            if let Some(r) = record {
                out.push(r);
            }
        }
        out
    }
}

/// The first record in `buf` and the bytes it took, when it is complete; an unknown type
/// is skipped (None) up to its first NUL.
fn parse_one(buf: &[u8]) -> Option<(Option<Record>, usize)> {
    let mut fields = Vec::new();
    let mut start = 0;
    let want = |first: &[u8]| match first {
        b"start" => 2,
        b"end" => 6,
        _ => 1,
    };
    for (i, b) in buf.iter().enumerate() {
        if *b != 0 {
            continue;
        }
        fields.push(String::from_utf8_lossy(&buf[start..i]).into_owned());
        start = i + 1;
        if fields.len() == want(fields[0].as_bytes()) {
            return Some((record(fields), start));
        }
    }
    None
}

fn record(mut f: Vec<String>) -> Option<Record> {
    match f[0].as_str() {
        "start" => f.pop().map(Record::Start),
        "end" => {
            let line = f.pop()?;
            let control = Control::parse(&f.pop()?);
            let cwd = f.pop()?;
            let status = f.pop()?.trim().parse().unwrap_or(1);
            let seq = f.pop()?;
            Some(Record::End(End {
                seq,
                status,
                cwd,
                control,
                line,
            }))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_split_on_nul_whatever_the_line_holds_and_however_the_bytes_arrive() {
        let stream = b"start\0/usr/src/x/build\0end\x003\x000\0/usr/src/x/build\0\0make \\\n  install\tDESTDIR='a b'\0garbage\0start\0/\0end\x004\x00130\0/\0rollback --undo\0rollback --undo\0";
        let mut whole = Parser::default();
        let all = whole.push(stream);
        let mut bytewise = Parser::default();
        let mut one_by_one = Vec::new();
        for b in stream {
            one_by_one.extend(bytewise.push(&[*b]));
        }
        assert_eq!(all, one_by_one);
        assert_eq!(
            all,
            vec![
                Record::Start("/usr/src/x/build".into()),
                Record::End(End {
                    seq: "3".into(),
                    status: 0,
                    cwd: "/usr/src/x/build".into(),
                    control: None,
                    line: "make \\\n  install\tDESTDIR='a b'".into(),
                }),
                Record::Start("/".into()),
                Record::End(End {
                    seq: "4".into(),
                    status: 130,
                    cwd: "/".into(),
                    control: Some(Control::Rollback { undo: true }),
                    line: "rollback --undo".into(),
                }),
            ]
        );
    }

    #[test]
    fn control_words() {
        assert_eq!(Control::parse("commit"), Some(Control::Commit));
        assert_eq!(
            Control::parse("phase configure"),
            Some(Control::Phase("configure".into()))
        );
        assert_eq!(
            Control::parse("rollback --undo"),
            Some(Control::Rollback { undo: true })
        );
        assert_eq!(Control::parse(""), None);
        assert_eq!(
            Control::parse("rollback --force"),
            Some(Control::Unknown("rollback --force".into()))
        );
    }
}
