//! Dotted keys (`package.version`, `a."odd key".b`) and the query patterns over them
//! (`phases.*` for a subtree, `*.name` for one segment).

use std::fmt;

/// A key: one or more segments. Bare segments are `[A-Za-z0-9_-]+`; anything else is quoted.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key(Vec<String>);

/// Whether a segment can be written without quotes.
pub fn is_bare(seg: &str) -> bool {
    !seg.is_empty()
        && seg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Write a segment, quoting it when needed.
pub fn quote_segment(seg: &str, out: &mut String) {
    if is_bare(seg) {
        out.push_str(seg);
    } else {
        quote(seg, out);
    }
}

/// Write `s` as a double-quoted string with the escapes both keys and values use.
pub fn quote(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

impl Key {
    pub fn new(segments: Vec<String>) -> Key {
        Key(segments)
    }

    /// Parse dotted text. Errors say what was wrong, without a location (callers add it).
    pub fn parse(text: &str) -> Result<Key, String> {
        let (key, rest) = parse_prefix(text).map_err(|(_, m)| m)?;
        if !rest.is_empty() {
            return Err(format!("unexpected {:?} after key", rest));
        }
        Ok(key)
    }

    pub fn segments(&self) -> &[String] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn starts_with(&self, prefix: &Key) -> bool {
        self.0.starts_with(&prefix.0)
    }

    /// The key without its first `n` segments.
    pub fn tail(&self, n: usize) -> Key {
        Key(self.0[n.min(self.0.len())..].to_vec())
    }

    /// The key without its last segment (the empty key for a top-level key).
    pub fn parent(&self) -> Key {
        Key(self.0[..self.0.len().saturating_sub(1)].to_vec())
    }

    pub fn join(&self, other: &Key) -> Key {
        let mut v = self.0.clone();
        v.extend(other.0.iter().cloned());
        Key(v)
    }

    pub fn child(&self, seg: &str) -> Key {
        let mut v = self.0.clone();
        v.push(seg.to_string());
        Key(v)
    }

    pub fn first(&self) -> Option<&str> {
        self.0.first().map(String::as_str)
    }

    pub fn last(&self) -> Option<&str> {
        self.0.last().map(String::as_str)
    }
}

/// Parse a key at the start of `text`; returns it and the rest of the text, or the byte offset
/// of the fault and what is wrong there.
pub fn parse_prefix(text: &str) -> Result<(Key, &str), (usize, String)> {
    let mut segs = Vec::new();
    let mut rest = text;
    loop {
        let (seg, r) = parse_segment(rest).map_err(|m| (text.len() - rest.len(), m))?;
        segs.push(seg);
        rest = r;
        match rest.strip_prefix('.') {
            Some(r) => rest = r,
            None => return Ok((Key(segs), rest)),
        }
    }
}

fn parse_segment(text: &str) -> Result<(String, &str), String> {
    if let Some(body) = text.strip_prefix('"') {
        let mut seg = String::new();
        let mut chars = body.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    if seg.is_empty() {
                        return Err("a key segment may not be empty".into());
                    }
                    return Ok((seg, &body[i + 1..]));
                }
                '\\' => match chars.next() {
                    Some((_, 'n')) => seg.push('\n'),
                    Some((_, 't')) => seg.push('\t'),
                    Some((_, 'r')) => seg.push('\r'),
                    Some((_, '"')) => seg.push('"'),
                    Some((_, '\\')) => seg.push('\\'),
                    Some((j, 'u')) => {
                        let (ch, used) = parse_unicode_escape(&body[j + 1..])?;
                        seg.push(ch);
                        for _ in 0..used {
                            chars.next();
                        }
                    }
                    _ => return Err("unknown escape in quoted key segment".into()),
                },
                '\n' => return Err("a quoted key segment may not span lines".into()),
                c => seg.push(c),
            }
        }
        Err("unterminated quoted key segment (expected '\"')".into())
    } else {
        let end = text
            .bytes()
            .position(|b| !(b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))
            .unwrap_or(text.len());
        if end == 0 {
            let found = text
                .chars()
                .next()
                .map_or("end of input".to_string(), |c| format!("{c:?}"));
            return Err(format!(
                "expected a key segment (letters, digits, '_', '-' or a quoted string), found {found}"
            ));
        }
        Ok((text[..end].to_string(), &text[end..]))
    }
}

/// Parse `{hex}` after `\u`; returns the char and how many chars were consumed.
pub fn parse_unicode_escape(text: &str) -> Result<(char, usize), String> {
    let body = text
        .strip_prefix('{')
        .ok_or("expected '{' after \\u (write \\u{hex})")?;
    let end = body.find('}').ok_or("unterminated \\u{...} escape")?;
    let hex = &body[..end];
    let code = u32::from_str_radix(hex, 16).map_err(|_| format!("bad hex {hex:?} in \\u{{}}"))?;
    let ch = char::from_u32(code).ok_or(format!("\\u{{{hex}}} is not a character"))?;
    Ok((ch, hex.chars().count() + 2))
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        for (i, seg) in self.0.iter().enumerate() {
            if i > 0 {
                s.push('.');
            }
            quote_segment(seg, &mut s);
        }
        f.write_str(&s)
    }
}

/// A query: a key whose segments may be `*`. A `*` matches one segment, except in last place,
/// where it matches everything below (`phases.*` is the whole `phases` subtree). A pattern
/// without `*` matches the key itself and everything below it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    segs: Vec<String>,
}

impl Pattern {
    pub fn parse(text: &str) -> Result<Pattern, String> {
        if text == "*" {
            return Ok(Pattern {
                segs: vec!["*".into()],
            });
        }
        let mut segs = Vec::new();
        let mut rest = text;
        loop {
            if let Some(r) = rest.strip_prefix('*') {
                segs.push("*".to_string());
                rest = r;
            } else {
                let (seg, r) = parse_segment(rest)?;
                segs.push(seg);
                rest = r;
            }
            if rest.is_empty() {
                return Ok(Pattern { segs });
            }
            rest = rest
                .strip_prefix('.')
                .ok_or_else(|| format!("unexpected {rest:?} in pattern"))?;
        }
    }

    /// Whether the pattern has a wildcard (and so names a set, not one key).
    pub fn is_wild(&self) -> bool {
        self.segs.iter().any(|s| s == "*")
    }

    /// The key the pattern names, when it has no wildcard.
    pub fn as_key(&self) -> Option<Key> {
        (!self.is_wild()).then(|| Key(self.segs.clone()))
    }

    pub fn matches(&self, key: &Key) -> bool {
        let last_wild = self.segs.last().is_some_and(|s| s == "*");
        let n = self.segs.len();
        if last_wild {
            if key.0.len() < n {
                return false;
            }
        } else if key.0.len() < n {
            return false;
        }
        self.segs
            .iter()
            .zip(&key.0)
            .all(|(p, k)| p == "*" || p == k)
            && (last_wild || !self.is_wild() || key.0.len() == n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_display_round_trip() {
        for text in ["a", "a.b-c.d_e", "a.\"b c\".d", "\"x.y\""] {
            assert_eq!(Key::parse(text).unwrap().to_string(), text);
        }
        assert!(Key::parse("a..b").is_err());
        assert!(Key::parse("a.\"\"").is_err());
        assert!(Key::parse("").is_err());
    }

    #[test]
    fn patterns() {
        let k = |s| Key::parse(s).unwrap();
        let p = Pattern::parse("build.*").unwrap();
        assert!(p.matches(&k("build.install")));
        assert!(p.matches(&k("build.a.b")));
        assert!(!p.matches(&k("build")));
        assert!(!p.matches(&k("other.x")));
        let p = Pattern::parse("*.name").unwrap();
        assert!(p.matches(&k("package.name")));
        assert!(!p.matches(&k("package.name.x")));
        let p = Pattern::parse("package").unwrap();
        assert!(p.matches(&k("package")));
        assert!(p.matches(&k("package.name")));
        assert!(Pattern::parse("*").unwrap().matches(&k("a.b")));
    }
}
