//! The plain-text tree syntax (`.ct`), as in sysctl.conf or postfix:
//!
//! ```text
//! # a comment
//! fs_backup.type.default = "full";      # a comment after a value
//! fs_backup.type = ${fs_backup.type.default};
//! fs_backup.datadir = "/var/backup";
//! fs_backup.logdir = "$datadir/log";
//! script = """
//! make install
//! """;
//! jobs = 4; strict = true; names = ["a", "b"];
//! ```
//!
//! The parser keeps the byte span of every value so that [`set`] can rewrite one value and leave
//! every other byte of the file alone.

use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use super::error::Lines;
use super::key::{self, Key};
use super::{Entry, Error, Loc, Tree, Value};

/// A statement of a parsed file: its key and the byte span of its value.
#[derive(Debug, Clone)]
pub struct Stmt {
    pub key: Key,
    pub value: Range<usize>,
    /// The byte offset just past the statement's `;`.
    pub end: usize,
}

pub struct Parsed {
    pub tree: Tree,
    pub stmts: Vec<Stmt>,
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
    file: &'a Arc<PathBuf>,
    lines: Lines,
}

const VALUE_EXPECTED: &str = "expected a value: \"string\", \"\"\"multi-line string\"\"\", integer, \
     true/false, [\"list\", \"of\", \"strings\"] or ${reference}";

impl<'a> Parser<'a> {
    fn loc(&self, pos: usize) -> Loc {
        self.lines.loc(self.file, self.text, pos)
    }

    fn err(&self, pos: usize, msg: impl Into<String>) -> Error {
        Error::at(self.loc(pos), msg)
    }

    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn found(&self) -> String {
        match self.peek() {
            None => "end of file".into(),
            Some('\n') => "end of line".into(),
            Some(c) => format!("{c:?}"),
        }
    }

    /// Skip whitespace (newlines included) and `#` comments.
    fn skip_blank(&mut self) {
        loop {
            let r = self.rest();
            let trimmed = r.trim_start_matches([' ', '\t', '\r', '\n', '\u{feff}']);
            self.pos += r.len() - trimmed.len();
            if trimmed.starts_with('#') {
                self.pos += trimmed.find('\n').unwrap_or(trimmed.len());
            } else {
                return;
            }
        }
    }

    fn statement(&mut self) -> Result<(Key, Value, Range<usize>), Error> {
        let key_start = self.pos;
        let (key, rest) =
            key::parse_prefix(self.rest()).map_err(|(at, m)| self.err(key_start + at, m))?;
        self.pos = self.text.len() - rest.len();
        self.skip_blank();
        if self.peek() != Some('=') {
            return Err(self.err(
                self.pos,
                format!("expected '=' after key `{key}`, found {}", self.found()),
            ));
        }
        self.pos += 1;
        self.skip_blank();
        let vstart = self.pos;
        let value = self.value()?;
        let vend = self.pos;
        self.skip_blank();
        if self.peek() != Some(';') {
            return Err(self.err(
                self.pos,
                format!(
                    "expected ';' after the value of `{key}`, found {}",
                    self.found()
                ),
            ));
        }
        self.pos += 1;
        Ok((key, value, vstart..vend))
    }

    fn value(&mut self) -> Result<Value, Error> {
        let r = self.rest();
        if r.starts_with("\"\"\"") {
            self.multiline().map(Value::Str)
        } else if r.starts_with('"') {
            self.string().map(Value::Str)
        } else if r.starts_with('[') {
            self.list().map(Value::List)
        } else if r.starts_with('$') {
            self.reference().map(Value::Str)
        } else if let Some(word) = self.word() {
            let start = self.pos;
            self.pos += word.len();
            match word {
                "true" => Ok(Value::Bool(true)),
                "false" => Ok(Value::Bool(false)),
                w if is_integer(w) => w
                    .parse::<i64>()
                    .map(Value::Int)
                    .map_err(|_| self.err(start, format!("integer {w} is out of range"))),
                w => Err(self.err(
                    start,
                    format!("{VALUE_EXPECTED}, found `{w}` (strings need quotes)"),
                )),
            }
        } else {
            Err(self.err(
                self.pos,
                format!("{VALUE_EXPECTED}, found {}", self.found()),
            ))
        }
    }

    /// A run of characters up to a delimiter, for unquoted words (numbers, booleans, mistakes).
    fn word(&self) -> Option<&'a str> {
        let r = self.rest();
        let end = r
            .find(|c: char| c.is_whitespace() || matches!(c, ';' | '#' | ',' | ']'))
            .unwrap_or(r.len());
        (end > 0).then(|| &r[..end])
    }

    fn string(&mut self) -> Result<String, Error> {
        let open = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.err(open, "unterminated string (expected a closing '\"')"));
            };
            self.pos += c.len_utf8();
            match c {
                '"' => return Ok(out),
                '\n' => {
                    return Err(self.err(
                        open,
                        "unterminated string: a \"...\" string ends on its line (use \"\"\" for multi-line values)",
                    ));
                }
                '\\' => {
                    let at = self.pos - 1;
                    let Some(e) = self.peek() else {
                        return Err(self.err(open, "unterminated string"));
                    };
                    self.pos += e.len_utf8();
                    match e {
                        'n' => out.push('\n'),
                        't' => out.push('\t'),
                        'r' => out.push('\r'),
                        '"' => out.push('"'),
                        '\\' => out.push('\\'),
                        'u' => {
                            let (ch, used) = key::parse_unicode_escape(self.rest())
                                .map_err(|m| self.err(at, m))?;
                            out.push(ch);
                            let skip: usize =
                                self.rest().chars().take(used).map(char::len_utf8).sum();
                            self.pos += skip;
                        }
                        other => {
                            return Err(self.err(
                                at,
                                format!(
                                    "unknown escape \\{other} (known: \\n \\t \\r \\\" \\\\ \\u{{hex}})"
                                ),
                            ));
                        }
                    }
                }
                c => out.push(c),
            }
        }
    }

    fn multiline(&mut self) -> Result<String, Error> {
        let open = self.pos;
        self.pos += 3;
        let r = self.rest();
        if let Some(s) = r.strip_prefix("\r\n") {
            self.pos += r.len() - s.len();
        } else if r.starts_with('\n') {
            self.pos += 1;
        }
        let body = self.rest();
        match body.find("\"\"\"") {
            Some(end) => {
                self.pos += end + 3;
                Ok(body[..end].to_string())
            }
            None => Err(self.err(
                open,
                "unterminated multi-line string (expected a closing \"\"\")",
            )),
        }
    }

    fn list(&mut self) -> Result<Vec<String>, Error> {
        let open = self.pos;
        self.pos += 1;
        let mut items = Vec::new();
        loop {
            self.skip_blank();
            match self.peek() {
                Some(']') => {
                    self.pos += 1;
                    return Ok(items);
                }
                None => return Err(self.err(open, "unterminated list (expected ']')")),
                _ => {}
            }
            let item = if self.rest().starts_with("\"\"\"") {
                self.multiline()?
            } else if self.rest().starts_with('"') {
                self.string()?
            } else if self.rest().starts_with('$') {
                self.reference()?
            } else {
                return Err(self.err(
                    self.pos,
                    format!(
                        "expected a quoted string or ']' in list, found {}",
                        self.found()
                    ),
                ));
            };
            items.push(item);
            self.skip_blank();
            match self.peek() {
                Some(',') => self.pos += 1,
                Some(']') => {}
                _ => {
                    return Err(self.err(
                        self.pos,
                        format!("expected ',' or ']' in list, found {}", self.found()),
                    ));
                }
            }
        }
    }

    /// A bare reference (`${a.b}` or `$name`), kept as its text: a string that is exactly one
    /// reference takes the referenced value, type and all.
    fn reference(&mut self) -> Result<String, Error> {
        let start = self.pos;
        let r = &self.rest()[1..];
        if let Some(inner) = r.strip_prefix('{') {
            let (_, after) = key::parse_prefix(inner)
                .map_err(|(at, m)| self.err(start + 2 + at, format!("in reference: {m}")))?;
            if !after.starts_with('}') {
                return Err(self.err(start, "unterminated reference (expected '}' after ${key)"));
            }
            let len = 2 + (inner.len() - after.len()) + 1;
            self.pos += len;
        } else {
            let n = r
                .bytes()
                .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
                .count();
            if n == 0 {
                return Err(self.err(start, "expected a key name or {key} after '$'"));
            }
            self.pos += 1 + n;
        }
        Ok(self.text[start..self.pos].to_string())
    }
}

fn is_integer(w: &str) -> bool {
    let digits = w.strip_prefix('-').unwrap_or(w);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Parse a whole `.ct` text.
pub fn parse(text: &str, file: &Arc<PathBuf>) -> Result<Parsed, Error> {
    let mut p = Parser {
        text,
        pos: 0,
        file,
        lines: Lines::new(text),
    };
    let mut tree = Tree::new();
    let mut stmts = Vec::new();
    loop {
        p.skip_blank();
        if p.pos >= text.len() {
            return Ok(Parsed { tree, stmts });
        }
        let start = p.pos;
        let (key, value, span) = p.statement()?;
        if let Some(prev) = tree.entry(&key) {
            return Err(p.err(
                start,
                format!("key `{key}` is set twice (first at line {})", prev.loc.line),
            ));
        }
        tree.insert(Entry {
            key: key.clone(),
            value,
            loc: p.loc(start),
            literal: false,
        });
        stmts.push(Stmt {
            key,
            value: span,
            end: p.pos,
        });
    }
}

/// Parse one value literal (as typed on a command line); `None` unless the whole text is one.
pub fn parse_value_literal(text: &str) -> Option<Value> {
    let file = Arc::new(PathBuf::new());
    let text = text.trim();
    let mut p = Parser {
        text,
        pos: 0,
        file: &file,
        lines: Lines::new(text),
    };
    let v = p.value().ok()?;
    (p.pos == text.len()).then_some(v)
}

fn render_str(s: &str, out: &mut String) {
    if s.contains('\n') && !s.contains("\"\"\"") && !s.ends_with('"') {
        out.push_str("\"\"\"\n");
        out.push_str(s);
        out.push_str("\"\"\"");
    } else {
        key::quote(s, out);
    }
}

/// The `.ct` literal of a value.
pub fn render_value(v: &Value) -> String {
    let mut out = String::new();
    match v {
        Value::Str(s) => render_str(s, &mut out),
        Value::Int(i) => out.push_str(&i.to_string()),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                render_str(item, &mut out);
            }
            out.push(']');
        }
    }
    out
}

/// A whole tree in the plain-text syntax, one statement a line.
pub fn render_tree(tree: &Tree) -> String {
    let mut out = String::new();
    for e in tree.entries() {
        out.push_str(&e.key.to_string());
        out.push_str(" = ");
        out.push_str(&render_value(&e.value));
        out.push_str(";\n");
    }
    out
}

/// The text with `key` set to `value`: an existing value is replaced where it stands; a new key
/// goes after the statement sharing the longest key prefix with it, or at the end.
pub fn set(text: &str, file: &Arc<PathBuf>, key: &Key, value: &Value) -> Result<String, Error> {
    let parsed = parse(text, file)?;
    let rendered = render_value(value);
    let mut out = String::with_capacity(text.len() + rendered.len() + 32);
    if let Some(stmt) = parsed.stmts.iter().find(|s| &s.key == key) {
        out.push_str(&text[..stmt.value.start]);
        out.push_str(&rendered);
        out.push_str(&text[stmt.value.end..]);
    } else {
        let line = format!("{key} = {rendered};\n");
        let shared = |s: &Stmt| {
            s.key
                .segments()
                .iter()
                .zip(key.segments())
                .take_while(|(a, b)| a == b)
                .count()
        };
        let best = parsed
            .stmts
            .iter()
            .filter(|s| shared(s) > 0)
            .max_by_key(|s| (shared(s), s.end));
        match best {
            Some(s) => {
                // After the end of the line holding the statement's ';' (keeping its comment).
                let at = text[s.end..]
                    .find('\n')
                    .map_or(text.len(), |i| s.end + i + 1);
                out.push_str(&text[..at]);
                if !out.ends_with('\n') {
                    out.push('\n');
                }
                out.push_str(&line);
                out.push_str(&text[at..]);
            }
            None => {
                out.push_str(text);
                if !out.is_empty() && !out.ends_with('\n') {
                    out.push('\n');
                }
                out.push_str(&line);
            }
        }
    }
    parse(&out, file)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<Tree, Error> {
        parse(text, &Arc::new(PathBuf::from("t.ct"))).map(|p| p.tree)
    }

    #[test]
    fn values_comments_multiline() {
        let t = p(
            "# top\na.b = \"x\"; # after\nn = -42;\nok = true;\nl = [\"a\", \"b\",];\n\
                   m = \"\"\"\nline1\nline2\n\"\"\";\nr = ${a.b};\ns = $n;\n",
        )
        .unwrap();
        assert_eq!(t.get_str("a.b"), Some(&Value::Str("x".into())));
        assert_eq!(t.get_str("n"), Some(&Value::Int(-42)));
        assert_eq!(t.get_str("ok"), Some(&Value::Bool(true)));
        assert_eq!(
            t.get_str("l"),
            Some(&Value::List(vec!["a".into(), "b".into()]))
        );
        assert_eq!(t.get_str("m"), Some(&Value::Str("line1\nline2\n".into())));
        assert_eq!(t.get_str("r"), Some(&Value::Str("${a.b}".into())));
        assert_eq!(t.get_str("s"), Some(&Value::Str("$n".into())));
    }

    #[test]
    fn errors_have_positions_and_expectations() {
        let e = p("a = \"x\"\nb = 1;").unwrap_err().to_string();
        assert!(e.starts_with("t.ct:2:1: expected ';'"), "{e}");
        let e = p("a.b = x;").unwrap_err().to_string();
        assert!(e.contains("t.ct:1:7") && e.contains("need quotes"), "{e}");
        let e = p("a = 1;\na = 2;").unwrap_err().to_string();
        assert!(e.contains("set twice (first at line 1)"), "{e}");
        let e = p("a = \"\"\"open").unwrap_err().to_string();
        assert!(e.contains("unterminated multi-line"), "{e}");
        let e = p("a..b = 1;").unwrap_err().to_string();
        assert!(e.contains("1:3"), "{e}");
    }

    #[test]
    fn set_keeps_everything_else() {
        let file = Arc::new(PathBuf::from("t.ct"));
        let text = "# c\na.x = \"1\"; # keep\n\nb.y = 2;\n";
        let k = Key::parse("a.x").unwrap();
        let out = set(text, &file, &k, &Value::Str("new".into())).unwrap();
        assert_eq!(out, "# c\na.x = \"new\"; # keep\n\nb.y = 2;\n");
        let k = Key::parse("a.z").unwrap();
        let out = set(text, &file, &k, &Value::Int(3)).unwrap();
        assert_eq!(out, "# c\na.x = \"1\"; # keep\na.z = 3;\n\nb.y = 2;\n");
        let k = Key::parse("c").unwrap();
        let out = set("x = 1;", &file, &k, &Value::Bool(false)).unwrap();
        assert_eq!(out, "x = 1;\nc = false;\n");
    }

    #[test]
    fn literals() {
        assert_eq!(parse_value_literal("5"), Some(Value::Int(5)));
        assert_eq!(parse_value_literal("1.3.1"), None);
        assert_eq!(
            parse_value_literal("\"a b\""),
            Some(Value::Str("a b".into()))
        );
        assert_eq!(parse_value_literal("-"), None);
    }
}
