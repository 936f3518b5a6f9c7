//! Framing and parsing: [`check`] finds a complete line in a buffer (or says it is incomplete,
//! or too long), [`Request::parse`] reads a client's command, [`Reply`] names the server's fixed
//! answers. Any input gives a value or an error, never a panic.

use std::path::PathBuf;

use crate::record::unescape;

/// The longest line accepted (a command with a long path fits).
pub const MAX_LINE: usize = 16 * 1024;

/// Why a buffer holds no line yet.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// More bytes are needed.
    Incomplete,
    /// No line end within [`MAX_LINE`] bytes.
    TooLong,
}

/// The length of the first line in `buf` including its end (LF, or CRLF as sent by telnet).
pub fn check(buf: &[u8]) -> Result<usize, Frame> {
    match buf.iter().take(MAX_LINE + 2).position(|b| *b == b'\n') {
        Some(i) => Ok(i + 1),
        None if buf.len() > MAX_LINE => Err(Frame::TooLong),
        None => Err(Frame::Incomplete),
    }
}

/// A line without its end.
pub fn trim_end(line: &[u8]) -> &[u8] {
    let l = line.strip_suffix(b"\n").unwrap_or(line);
    l.strip_suffix(b"\r").unwrap_or(l)
}

/// A client's command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `AUTH [NONCE]`: ask for a challenge (the nonce asks the server to prove the secret too).
    Auth(Option<String>),
    /// `RESPONSE:<hex>`: the HMAC-SHA256 of the challenge under the shared secret.
    Response(String),
    Start,
    Init,
    /// `SN:<session>,<serial>`; the serial as given (it may be negative: invalid).
    Sn {
        session: String,
        serial: i64,
    },
    Next,
    /// `GET <serial> <path>`.
    Get {
        serial: u64,
        path: PathBuf,
    },
    /// `GET <serial> <path> META`: `GET`, its answer opened by `META:mode=… uid=… gid=…
    /// mtime=…`, the served file's own state (fs_mirror asks it for a file whose record carries
    /// none: a MOVE whose source it never had). A server without it reads the word as part of
    /// the path and answers `CHANGED`.
    GetMeta {
        serial: u64,
        path: PathBuf,
    },
    /// `SUM <serial> <path>`: the SHA-256 of a file's content, not the content (a differential
    /// INIT asks it of a file it has with the same size and another mtime).
    Sum {
        serial: u64,
        path: PathBuf,
    },
    /// `DELTA <serial> <path>`, followed by `SIG:<n>` and the signature's bytes.
    Delta {
        serial: u64,
        path: PathBuf,
    },
    Quit,
}

/// A line that is no command.
#[derive(Debug, PartialEq, Eq)]
pub struct Unknown;

impl Request {
    pub fn parse(line: &[u8]) -> Result<Request, Unknown> {
        let line = std::str::from_utf8(trim_end(line)).map_err(|_| Unknown)?;
        let line = line.trim();
        Ok(match line {
            "START" => Request::Start,
            "INIT" => Request::Init,
            "NEXT" => Request::Next,
            "QUIT" => Request::Quit,
            "AUTH" => Request::Auth(None),
            _ => {
                if let Some(nonce) = line.strip_prefix("AUTH ") {
                    Request::Auth(Some(hex_word(nonce)?))
                } else if let Some(r) = line.strip_prefix("RESPONSE:") {
                    Request::Response(hex_word(r)?)
                } else if let Some(sn) = line.strip_prefix("SN:") {
                    let (session, serial) = sn.split_once(',').ok_or(Unknown)?;
                    Request::Sn {
                        session: session.trim().to_string(),
                        serial: serial.trim().parse().map_err(|_| Unknown)?,
                    }
                } else if let Some(g) = line.strip_prefix("GET ") {
                    // A path never holds a bare space (it is escaped): the word is no part of it.
                    match g.strip_suffix(" META") {
                        Some(g) => {
                            let (serial, path) = serial_path(g)?;
                            Request::GetMeta { serial, path }
                        }
                        None => {
                            let (serial, path) = serial_path(g)?;
                            Request::Get { serial, path }
                        }
                    }
                } else if let Some(g) = line.strip_prefix("SUM ") {
                    let (serial, path) = serial_path(g)?;
                    Request::Sum { serial, path }
                } else if let Some(g) = line.strip_prefix("DELTA ") {
                    let (serial, path) = serial_path(g)?;
                    Request::Delta { serial, path }
                } else {
                    return Err(Unknown);
                }
            }
        })
    }

    /// The command as a line (without CRLF), as fs_mirror sends it.
    pub fn line(&self) -> String {
        match self {
            Request::Auth(None) => "AUTH".into(),
            Request::Auth(Some(n)) => format!("AUTH {n}"),
            Request::Response(r) => format!("RESPONSE:{r}"),
            Request::Start => "START".into(),
            Request::Init => "INIT".into(),
            Request::Sn { session, serial } => format!("SN:{session},{serial}"),
            Request::Next => "NEXT".into(),
            Request::Get { serial, path } => {
                format!("GET {serial} {}", crate::record::escape(path.as_os_str()))
            }
            Request::GetMeta { serial, path } => {
                format!(
                    "GET {serial} {} META",
                    crate::record::escape(path.as_os_str())
                )
            }
            Request::Sum { serial, path } => {
                format!("SUM {serial} {}", crate::record::escape(path.as_os_str()))
            }
            Request::Delta { serial, path } => {
                format!("DELTA {serial} {}", crate::record::escape(path.as_os_str()))
            }
            Request::Quit => "QUIT".into(),
        }
    }
}

/// `<serial> <path>` of `GET`, `SUM` and `DELTA`.
fn serial_path(s: &str) -> Result<(u64, PathBuf), Unknown> {
    let (serial, path) = s.split_once(' ').ok_or(Unknown)?;
    let path = PathBuf::from(unescape(path.trim()).ok_or(Unknown)?);
    Ok((serial.parse().map_err(|_| Unknown)?, path))
}

fn hex_word(s: &str) -> Result<String, Unknown> {
    let s = s.trim();
    if !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(s.to_ascii_lowercase())
    } else {
        Err(Unknown)
    }
}

/// The server's fixed answers.
pub struct Reply;

impl Reply {
    pub const OK: &str = "OK";
    pub const EOF: &str = "EOF";
    pub const KEEPALIVE: &str = "KEEPALIVE";
    pub const CHANGED: &str = "CHANGED";
    pub const BYE: &str = "BYE";
    pub const INVALID_COMMAND: &str = "INVALID COMMAND";
    pub const INVALID_INIT_COMMAND: &str = "INVALID INIT COMMAND";
    pub const INVALID_REALTIME_COMMAND: &str = "INVALID REALTIME COMMAND";
    pub const SESSION_INVALID: &str = "SESSION INVALID";
    pub const SERIAL_INVALID: &str = "SERIAL OVERDUE OR INVALID";
    pub const AUTH_REQUIRED: &str = "AUTH REQUIRED";
    pub const AUTH_FAILED: &str = "AUTH FAILED";
    pub const LINE_TOO_LONG: &str = "LINE TOO LONG";
}

/// Lower-case hex of bytes.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_read_back_and_junk_is_unknown() {
        for r in [
            Request::Start,
            Request::Init,
            Request::Next,
            Request::Quit,
            Request::Auth(None),
            Request::Auth(Some("ab01".into())),
            Request::Response("ff".into()),
            Request::Sn {
                session: "8c0a4927a5280905e6f3ca01d5a02a53".into(),
                serial: 3282,
            },
            Request::Get {
                serial: 7,
                path: "/var/www/a b".into(),
            },
            Request::GetMeta {
                serial: 7,
                path: "/var/www/a META".into(),
            },
            Request::Sum {
                serial: 8,
                path: "/var/www/a%b".into(),
            },
            Request::Delta {
                serial: 9,
                path: "/var/big file".into(),
            },
        ] {
            assert_eq!(
                Request::parse(format!("{}\r\n", r.line()).as_bytes()),
                Ok(r)
            );
        }
        // The original design's own spelling, with a space after the comma.
        assert_eq!(
            Request::parse(b"SN:8c0a, -1\r\n"),
            Ok(Request::Sn {
                session: "8c0a".into(),
                serial: -1
            })
        );
        for junk in [
            &b"THIS"[..],
            b"NXT",
            b"",
            b"SN:",
            b"SN:x,y",
            b"GET x /a",
            b"GET 1",
            b"\xff\xfe",
            b"AUTH zz",
            b"GET 1 /a%q",
            b"DELTA x /a",
        ] {
            assert_eq!(Request::parse(junk), Err(Unknown), "{junk:?}");
        }
    }

    #[test]
    fn framing_finds_lines_and_refuses_endless_ones() {
        assert_eq!(check(b"START\r\nINIT"), Ok(7));
        assert_eq!(check(b"STA"), Err(Frame::Incomplete));
        assert_eq!(check(&vec![b'a'; MAX_LINE + 1]), Err(Frame::TooLong));
    }
}
