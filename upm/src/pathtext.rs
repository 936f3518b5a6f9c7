//! How a file name is shown, whatever bytes it holds. Linux names may contain spaces, newlines,
//! control characters and bytes that are not UTF-8; upm prints every one of them
//! unambiguously:
//!
//! - in text for people ([`quoted`]) a name made only of ordinary characters stays as it is;
//!   any other is quoted the way a POSIX shell reads it back: `'a b'` when it is printable
//!   UTF-8, `$'a\nb'` / `$'bad\xffname'` (bash, zsh, ksh `$'…'` escapes) when it holds control
//!   characters or bytes that are not UTF-8;
//! - in JSON for scripts ([`JsonPath`], [`text`], [`bytes`]) a name is a string (with U+FFFD
//!   for bytes that are not UTF-8) and, only when it is not UTF-8, the exact bytes in base64
//!   under a second key (`path_bytes`, `target_bytes`).

use std::ffi::OsStr;
use std::fmt::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use base64::Engine;

/// `name` for text output, quoted only when it has to be (see the module documentation).
pub fn quoted<S: AsRef<OsStr> + ?Sized>(name: &S) -> Quoted<'_> {
    Quoted(name.as_ref())
}

/// A name shown for people: `Display` writes it plain or shell-quoted.
#[derive(Debug, Clone, Copy)]
pub struct Quoted<'a>(&'a OsStr);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = self.0.as_bytes();
        match std::str::from_utf8(bytes) {
            Ok(s) if !s.is_empty() && s.chars().all(plain) => f.write_str(s),
            Ok(s) if !s.chars().any(needs_escape) => {
                f.write_char('\'')?;
                for part in s.split_inclusive('\'') {
                    match part.strip_suffix('\'') {
                        Some(head) => write!(f, "{head}'\\''")?,
                        None => f.write_str(part)?,
                    }
                }
                f.write_char('\'')
            }
            _ => escaped(bytes, f),
        }
    }
}

/// A character that needs no quoting: the ones a shell leaves alone, and printable letters
/// beyond ASCII.
fn plain(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            '/' | '.' | '_' | '-' | '+' | ',' | ':' | '@' | '%' | '=' | '^'
        )
        || (!c.is_ascii() && !needs_escape(c) && !c.is_whitespace())
}

/// A character that cannot be shown as itself: control characters and the invisible ones that
/// reorder or hide text.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

/// `$'…'` with every byte that is not a printable character escaped.
fn escaped(mut bytes: &[u8], f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.write_str("$'")?;
    while !bytes.is_empty() {
        let (good, rest) = match std::str::from_utf8(bytes) {
            Ok(s) => (s, &[][..]),
            Err(e) => {
                let (good, rest) = bytes.split_at(e.valid_up_to());
                // The prefix is UTF-8 by construction.
                (std::str::from_utf8(good).unwrap_or_default(), rest)
            }
        };
        for c in good.chars() {
            match c {
                '\\' => f.write_str("\\\\")?,
                '\'' => f.write_str("\\'")?,
                '\n' => f.write_str("\\n")?,
                '\t' => f.write_str("\\t")?,
                '\r' => f.write_str("\\r")?,
                c if c.is_ascii_control() => write!(f, "\\x{:02x}", c as u32)?,
                c if needs_escape(c) => write!(f, "\\u{:04x}", c as u32)?,
                c => f.write_char(c)?,
            }
        }
        if let Some((&bad, tail)) = rest.split_first() {
            write!(f, "\\x{bad:02x}")?;
            bytes = tail;
        } else {
            bytes = rest;
        }
    }
    f.write_char('\'')
}

/// The name as a JSON string: itself when it is UTF-8, else with U+FFFD for the bad bytes.
pub fn text(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// The exact bytes of a name that is not UTF-8, in standard base64; `None` for UTF-8 names,
/// whose string is already exact.
pub fn bytes(p: &Path) -> Option<String> {
    match p.to_str() {
        Some(_) => None,
        None => Some(base64::engine::general_purpose::STANDARD.encode(p.as_os_str().as_bytes())),
    }
}

/// A path in JSON output, flattened into the object that has it: `path`, and `path_bytes` only
/// when the path is not UTF-8.
#[derive(Debug, Clone, serde::Serialize)]
pub struct JsonPath {
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_bytes: Option<String>,
}

impl JsonPath {
    pub fn new(p: &Path) -> JsonPath {
        JsonPath {
            path: text(p),
            path_bytes: bytes(p),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt;

    fn q(b: &[u8]) -> String {
        quoted(OsStr::from_bytes(b)).to_string()
    }

    #[test]
    fn plain_names_stay_plain() {
        assert_eq!(q(b"/usr/lib/libz.so.1.3"), "/usr/lib/libz.so.1.3");
        assert_eq!(
            q(b"/usr/share/man/de@euro/x+y,z:1=2"),
            "/usr/share/man/de@euro/x+y,z:1=2"
        );
        assert_eq!(
            q("/usr/share/locale/ça/é".as_bytes()),
            "/usr/share/locale/ça/é"
        );
    }

    #[test]
    fn printable_names_with_shell_characters_are_single_quoted() {
        assert_eq!(q(b"/a b"), "'/a b'");
        assert_eq!(q(b"it's"), r"'it'\''s'");
        assert_eq!(q(b"$HOME*"), "'$HOME*'");
        assert_eq!(q(b""), "''");
        assert_eq!(q(b"'"), r"''\'''");
    }

    #[test]
    fn control_characters_and_bad_bytes_are_escaped() {
        assert_eq!(q(b"/a\nb"), r"$'/a\nb'");
        assert_eq!(q(b"bad\xff\xfebytes"), r"$'bad\xff\xfebytes'");
        assert_eq!(q(b"x\x01'\\y"), r"$'x\x01\'\\y'");
        assert_eq!(q("a\u{202e}b".as_bytes()), r"$'a\u202eb'");
        assert_eq!(q(b"\xc3\xa9\xff\xff"), r"$'é\xff\xff'");
    }

    #[test]
    fn json_keeps_the_bytes_only_when_needed() {
        let ok = JsonPath::new(Path::new("/a\nb"));
        assert_eq!(ok.path, "/a\nb");
        assert_eq!(ok.path_bytes, None);
        let bad = JsonPath::new(Path::new(OsStr::from_bytes(b"/x\xff")));
        assert_eq!(bad.path, "/x\u{fffd}");
        assert_eq!(bad.path_bytes.as_deref(), Some("L3j/"));
        assert_eq!(serde_json::to_string(&ok).unwrap(), r#"{"path":"/a\nb"}"#);
    }
}
