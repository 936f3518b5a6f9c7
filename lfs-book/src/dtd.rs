//! Entity declarations as the books write them: the internal subset of a page's DOCTYPE and the
//! `.ent` files it pulls in through parameter entities (`<!ENTITY % general-entities SYSTEM
//! "../general.ent"> %general-entities;`). This module reads DTD text the way an XML processor
//! does — comments, processing instructions, `<!ENTITY>` (general and `%` parameter, internal
//! and `SYSTEM`), parameter-entity references (whose replacement text is read as DTD text in
//! turn), and `<![ %cond; [ … ]]>` conditional sections — and gathers the general entities a
//! page may use. The first declaration of a name wins, as XML says.
//!
//! Two files the books' `git-version.sh` generates are not in a checkout: `conditional.ent`
//! (which switches the `%sysv;` and `%systemd;` sections) is made from the chosen
//! [`Revision`], and `version.ent` from the words a development book uses.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::Error;

/// Which of the books' two init systems to read the conditional parts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Revision {
    #[default]
    Sysv,
    Systemd,
}

impl Revision {
    pub fn name(self) -> &'static str {
        match self {
            Revision::Sysv => "sysv",
            Revision::Systemd => "systemd",
        }
    }
}

/// A general entity: its replacement text, still holding character and entity references
/// (parameter references are already expanded), as the XML parser will read it.
pub type Entities = Vec<(String, String)>;

/// The declarations met so far.
#[derive(Debug, Clone, Default)]
pub struct Decls {
    general: HashMap<String, usize>,
    /// In declaration order (what the parser is handed).
    pub list: Entities,
    params: HashMap<String, Param>,
    /// External entities whose file does not exist.
    pub missing: Vec<(String, PathBuf)>,
}

#[derive(Debug, Clone)]
enum Param {
    Text(String),
    /// An external file, with the directory its relative references are against.
    File(PathBuf),
}

impl Decls {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.general.get(name).map(|&i| self.list[i].1.as_str())
    }

    fn add_general(&mut self, name: &str, value: String) {
        if !self.general.contains_key(name) {
            self.general.insert(name.to_string(), self.list.len());
            self.list.push((name.to_string(), value));
        }
    }

    fn add_param(&mut self, name: &str, p: Param) {
        self.params.entry(name.to_string()).or_insert(p);
    }

    fn merge(&mut self, other: &Decls) {
        for (n, v) in &other.list {
            self.add_general(n, v.clone());
        }
        for (n, p) in &other.params {
            self.add_param(n, p.clone());
        }
    }
}

/// Reads DTD text, sharing the entity files between pages: the result of reading an external
/// file from an empty state (what every page does first) is kept.
#[derive(Default)]
pub struct Reader {
    pub revision: Revision,
    files: Mutex<HashMap<PathBuf, Arc<String>>>,
    fresh: Mutex<HashMap<PathBuf, Arc<Decls>>>,
}

impl Reader {
    pub fn new(revision: Revision) -> Reader {
        Reader {
            revision,
            ..Reader::default()
        }
    }

    /// The text of an entity file (read once), or the generated one for the files a checkout
    /// lacks.
    fn file(&self, path: &Path) -> Result<Arc<String>, Error> {
        if let Some(t) = self.files.lock().expect("not poisoned").get(path) {
            return Ok(t.clone());
        }
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                match generated(path, self.revision) {
                    Some(t) => t,
                    None => return Err(Error::io(path, e)),
                }
            }
            Err(e) => return Err(Error::io(path, e)),
        };
        let text = Arc::new(strip_text_decl(&text).to_string());
        self.files
            .lock()
            .expect("not poisoned")
            .insert(path.to_path_buf(), text.clone());
        Ok(text)
    }

    /// Read DTD text (an internal subset, or a whole file) into `decls`. `base` is the file the
    /// text is in, for relative `SYSTEM` names and error messages.
    pub fn read(&self, text: &str, base: &Path, decls: &mut Decls) -> Result<(), Error> {
        let mut p = Scan {
            r: self,
            text,
            pos: 0,
            base,
            depth: 0,
        };
        p.subset(decls, false)
    }

    fn read_file(&self, path: &Path, decls: &mut Decls, depth: usize) -> Result<(), Error> {
        // Nothing declared yet that the file could depend on: its declarations are the same
        // for every page, read once.
        let fresh =
            decls.list.is_empty() && decls.params.values().all(|p| matches!(p, Param::File(_)));
        if !fresh {
            return self.scan_file(path, decls, depth);
        }
        let cached = self.fresh.lock().expect("not poisoned").get(path).cloned();
        let own = match cached {
            Some(d) => d,
            None => {
                let mut d = Decls::default();
                self.scan_file(path, &mut d, depth)?;
                let d = Arc::new(d);
                self.fresh
                    .lock()
                    .expect("not poisoned")
                    .insert(path.to_path_buf(), d.clone());
                d
            }
        };
        decls.merge(&own);
        Ok(())
    }

    fn scan_file(&self, path: &Path, decls: &mut Decls, depth: usize) -> Result<(), Error> {
        let text = self.file(path)?;
        let mut p = Scan {
            r: self,
            text: &text,
            pos: 0,
            base: path,
            depth,
        };
        p.subset(decls, false)
    }
}

/// The files `git-version.sh` writes, for a checkout that lacks them.
fn generated(path: &Path, rev: Revision) -> Option<String> {
    let (on, off) = match rev {
        Revision::Sysv => ("sysv", "systemd"),
        Revision::Systemd => ("systemd", "sysv"),
    };
    match path.file_name()?.to_str()? {
        "conditional.ent" => Some(format!(
            "<!ENTITY % {on} \"INCLUDE\">\n<!ENTITY % {off} \"IGNORE\">\n"
        )),
        "version.ent" => Some(
            [
                "version",
                "versiond",
                "releasedate",
                "pubdate",
                "copyrightdate",
                "year",
            ]
            .iter()
            .map(|n| format!("<!ENTITY {n} \"development\">\n"))
            .collect(),
        ),
        _ => None,
    }
}

/// Drop a text declaration (`<?xml encoding="…"?>`) at the start of an external entity.
fn strip_text_decl(text: &str) -> &str {
    let t = text.strip_prefix('\u{feff}').unwrap_or(text);
    if t.starts_with("<?xml ")
        && let Some(end) = t.find("?>")
    {
        return &t[end + 2..];
    }
    t
}

/// The limit of parameter entities within parameter entities.
const MAX_DEPTH: usize = 16;

struct Scan<'a> {
    r: &'a Reader,
    text: &'a str,
    pos: usize,
    base: &'a Path,
    depth: usize,
}

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | ':')
}

impl Scan<'_> {
    fn rest(&self) -> &str {
        &self.text[self.pos..]
    }

    fn err(&self, msg: impl Into<String>) -> Error {
        let line = self.text[..self.pos].matches('\n').count() + 1;
        Error::Dtd {
            file: self.base.to_path_buf(),
            line,
            msg: msg.into(),
        }
    }

    fn skip_ws(&mut self) {
        let n = self.rest().len() - self.rest().trim_start().len();
        self.pos += n;
    }

    fn expect(&mut self, s: &str) -> Result<(), Error> {
        if self.rest().starts_with(s) {
            self.pos += s.len();
            Ok(())
        } else {
            Err(self.err(format!("expected {s:?}")))
        }
    }

    fn skip_past(&mut self, end: &str) -> Result<(), Error> {
        match self.rest().find(end) {
            Some(i) => {
                self.pos += i + end.len();
                Ok(())
            }
            None => Err(self.err(format!("unterminated: no {end:?}"))),
        }
    }

    fn name(&mut self) -> Result<String, Error> {
        let n: String = self
            .rest()
            .chars()
            .take_while(|&c| is_name_char(c))
            .collect();
        if n.is_empty() {
            return Err(self.err("expected a name"));
        }
        self.pos += n.len();
        Ok(n)
    }

    fn quoted(&mut self) -> Result<String, Error> {
        let q = match self.rest().chars().next() {
            Some(c @ ('"' | '\'')) => c,
            _ => return Err(self.err("expected a quoted string")),
        };
        self.pos += 1;
        match self.rest().find(q) {
            Some(i) => {
                let s = self.rest()[..i].to_string();
                self.pos += i + 1;
                Ok(s)
            }
            None => Err(self.err("unterminated quoted string")),
        }
    }

    /// Declarations until the end of the text, or (inside a conditional section) until `]]>`.
    /// In the internal subset, a lone `]` ends it too (the caller finds the DOCTYPE's end).
    fn subset(&mut self, decls: &mut Decls, in_section: bool) -> Result<(), Error> {
        loop {
            self.skip_ws();
            let rest = self.rest();
            if rest.is_empty() {
                return if in_section {
                    Err(self.err("unterminated conditional section: no \"]]>\""))
                } else {
                    Ok(())
                };
            }
            if rest.starts_with("]]>") && in_section {
                self.pos += 3;
                return Ok(());
            }
            if rest.starts_with(']') && !in_section {
                return Ok(());
            }
            if rest.starts_with("<!--") {
                self.skip_past("-->")?;
            } else if rest.starts_with("<?") {
                self.skip_past("?>")?;
            } else if rest.starts_with("<![") {
                self.pos += 3;
                self.section(decls)?;
            } else if rest.starts_with("<!ENTITY") {
                self.pos += 8;
                self.entity(decls)?;
            } else if rest.starts_with("<!") {
                // ELEMENT, ATTLIST, NOTATION: not needed for entities.
                self.skip_decl()?;
            } else if rest.starts_with('%') {
                self.pos += 1;
                let name = self.name()?;
                self.expect(";")?;
                self.param_ref(&name, decls)?;
            } else {
                let c = rest.chars().next().unwrap_or(' ');
                return Err(self.err(format!("unexpected {c:?} in a DTD")));
            }
        }
    }

    fn skip_decl(&mut self) -> Result<(), Error> {
        while let Some(c) = self.rest().chars().next() {
            match c {
                '>' => {
                    self.pos += 1;
                    return Ok(());
                }
                '"' | '\'' => {
                    self.quoted()?;
                }
                _ => self.pos += c.len_utf8(),
            }
        }
        Err(self.err("unterminated declaration"))
    }

    /// A parameter-entity reference between declarations: its text is read as DTD text.
    fn param_ref(&mut self, name: &str, decls: &mut Decls) -> Result<(), Error> {
        if self.depth >= MAX_DEPTH {
            return Err(self.err(format!("%{name}; nests too deep (a loop?)")));
        }
        match decls.params.get(name).cloned() {
            Some(Param::File(path)) => self.r.read_file(&path, decls, self.depth + 1),
            Some(Param::Text(text)) => {
                let mut p = Scan {
                    r: self.r,
                    text: &text,
                    pos: 0,
                    base: self.base,
                    depth: self.depth + 1,
                };
                p.subset(decls, false)
            }
            None => Err(self.err(format!("undeclared parameter entity %{name};"))),
        }
    }

    /// `<![ KEYWORD [ … ]]>` after the `<![`.
    fn section(&mut self, decls: &mut Decls) -> Result<(), Error> {
        self.skip_ws();
        let keyword = if self.rest().starts_with('%') {
            self.pos += 1;
            let name = self.name()?;
            self.expect(";")?;
            match decls.params.get(&name) {
                Some(Param::Text(t)) => t.trim().to_string(),
                Some(Param::File(_)) => {
                    return Err(self.err(format!("%{name}; names a file, not INCLUDE or IGNORE")));
                }
                None => {
                    return Err(self.err(format!(
                        "undeclared parameter entity %{name}; in a conditional section"
                    )));
                }
            }
        } else {
            self.name()?
        };
        self.skip_ws();
        self.expect("[")?;
        match keyword.as_str() {
            "INCLUDE" => self.subset(decls, true),
            "IGNORE" => self.ignore(),
            other => Err(self.err(format!(
                "a conditional section must be INCLUDE or IGNORE, found {other:?}"
            ))),
        }
    }

    /// Skip an ignored section, with the sections nested in it.
    fn ignore(&mut self) -> Result<(), Error> {
        let mut depth = 1;
        while depth > 0 {
            let rest = self.rest();
            let open = rest.find("<![");
            let close = rest.find("]]>");
            match (open, close) {
                (Some(o), Some(c)) if o < c => {
                    self.pos += o + 3;
                    depth += 1;
                }
                (_, Some(c)) => {
                    self.pos += c + 3;
                    depth -= 1;
                }
                (_, None) => return Err(self.err("unterminated ignored section")),
            }
        }
        Ok(())
    }

    /// `<!ENTITY [%] name (value | SYSTEM "uri" | PUBLIC "id" "uri") [NDATA n]>` after `<!ENTITY`.
    fn entity(&mut self, decls: &mut Decls) -> Result<(), Error> {
        self.skip_ws();
        let param = if self.rest().starts_with('%') {
            self.pos += 1;
            self.skip_ws();
            true
        } else {
            false
        };
        let name = self.name()?;
        self.skip_ws();
        let system = if self.rest().starts_with("SYSTEM") {
            self.pos += 6;
            self.skip_ws();
            Some(self.quoted()?)
        } else if self.rest().starts_with("PUBLIC") {
            self.pos += 6;
            self.skip_ws();
            self.quoted()?;
            self.skip_ws();
            Some(self.quoted()?)
        } else {
            None
        };
        let literal = match system {
            Some(_) => None,
            None => Some(self.quoted()?),
        };
        self.skip_ws();
        if self.rest().starts_with("NDATA") {
            self.skip_decl()?;
            return Ok(()); // an unparsed entity: nothing to expand
        }
        self.expect(">")?;
        let dir = self.base.parent().unwrap_or(Path::new("."));
        match (param, system, literal) {
            (true, Some(uri), _) => decls.add_param(&name, Param::File(dir.join(uri))),
            (true, None, Some(lit)) => {
                let v = self.expand_params(&lit, decls)?;
                decls.add_param(&name, Param::Text(v));
            }
            (false, Some(uri), _) => {
                let path = dir.join(uri);
                match self.r.file(&path) {
                    Ok(text) => decls.add_general(&name, text.to_string()),
                    // Declaring is not using: a page that uses it fails, naming the file.
                    Err(Error::Io { source, .. })
                        if source.kind() == std::io::ErrorKind::NotFound =>
                    {
                        decls.missing.push((name, path));
                    }
                    Err(e) => return Err(e),
                }
            }
            (false, None, Some(lit)) => {
                let v = self.expand_params(&lit, decls)?;
                decls.add_general(&name, v);
            }
            (_, None, None) => unreachable!("a literal is read when there is no SYSTEM"),
        }
        Ok(())
    }

    /// Replace `%name;` in an entity's literal value by the parameter entity's text.
    fn expand_params(&self, lit: &str, decls: &Decls) -> Result<String, Error> {
        if !lit.contains('%') {
            return Ok(lit.to_string());
        }
        let mut out = String::with_capacity(lit.len());
        let mut rest = lit;
        while let Some(i) = rest.find('%') {
            out.push_str(&rest[..i]);
            let after = &rest[i + 1..];
            let n: String = after.chars().take_while(|&c| is_name_char(c)).collect();
            if !n.is_empty() && after[n.len()..].starts_with(';') {
                match decls.params.get(&n) {
                    Some(Param::Text(t)) => out.push_str(t),
                    Some(Param::File(p)) => out.push_str(&self.r.file(p)?),
                    None => {
                        return Err(self.err(format!("undeclared parameter entity %{n};")));
                    }
                }
                rest = &after[n.len() + 1..];
            } else {
                out.push('%');
                rest = after;
            }
        }
        out.push_str(rest);
        Ok(out)
    }
}

/// Where a document's DOCTYPE is and what its internal subset says: the byte range of the
/// whole prolog up to the end of the DOCTYPE, and the internal subset's text.
pub struct Prolog<'a> {
    pub end: usize,
    pub subset: Option<&'a str>,
}

/// Find the DOCTYPE of an XML document (after the XML declaration, comments and PIs).
pub fn prolog<'a>(text: &'a str, file: &Path) -> Result<Prolog<'a>, Error> {
    let err = |pos: usize, msg: &str| Error::Dtd {
        file: file.to_path_buf(),
        line: text[..pos.min(text.len())].matches('\n').count() + 1,
        msg: msg.to_string(),
    };
    let mut pos = 0;
    loop {
        let rest = &text[pos..];
        let trimmed = rest.trim_start();
        pos += rest.len() - trimmed.len();
        if trimmed.starts_with("<?") || trimmed.starts_with("<!--") {
            let end = if trimmed.starts_with("<?") {
                "?>"
            } else {
                "-->"
            };
            match trimmed.find(end) {
                Some(i) => pos += i + end.len(),
                None => return Err(err(pos, "unterminated comment or processing instruction")),
            }
            continue;
        }
        if !trimmed.starts_with("<!DOCTYPE") {
            return Ok(Prolog {
                end: 0,
                subset: None,
            });
        }
        break;
    }
    // `<!DOCTYPE name [external id] [ [subset] ] >`
    let mut i = pos + "<!DOCTYPE".len();
    let bytes = text.as_bytes();
    while i < bytes.len() && bytes[i] != b'[' && bytes[i] != b'>' {
        if bytes[i] == b'"' || bytes[i] == b'\'' {
            let q = bytes[i];
            i += 1;
            while i < bytes.len() && bytes[i] != q {
                i += 1;
            }
        }
        i += 1;
    }
    if i >= bytes.len() {
        return Err(err(pos, "unterminated DOCTYPE"));
    }
    if bytes[i] == b'>' {
        return Ok(Prolog {
            end: i + 1,
            subset: None,
        });
    }
    // Find the subset's end with the DTD scanner (quotes and comments may hold `]`).
    let start = i + 1;
    let reader = Reader::default();
    let mut scan = Scan {
        r: &reader,
        text,
        pos: start,
        base: file,
        depth: 0,
    };
    scan.skip_subset()?;
    let subset_end = scan.pos;
    let rest = &text[subset_end + 1..];
    let close = rest
        .find('>')
        .ok_or_else(|| err(subset_end, "unterminated DOCTYPE: no '>' after ']'"))?;
    Ok(Prolog {
        end: subset_end + 1 + close + 1,
        subset: Some(&text[start..subset_end]),
    })
}

impl Scan<'_> {
    /// Move to the `]` that ends an internal subset, without reading declarations.
    fn skip_subset(&mut self) -> Result<(), Error> {
        loop {
            self.skip_ws();
            let rest = self.rest();
            if rest.is_empty() {
                return Err(self.err("unterminated internal subset: no ']'"));
            }
            if rest.starts_with(']') {
                return Ok(());
            }
            if rest.starts_with("<!--") {
                self.skip_past("-->")?;
            } else if rest.starts_with("<?") {
                self.skip_past("?>")?;
            } else if rest.starts_with("<!") {
                self.skip_decl()?;
            } else if rest.starts_with('%') {
                self.pos += 1;
                self.name()?;
                self.expect(";")?;
            } else {
                let c = rest.chars().next().unwrap_or(' ');
                return Err(self.err(format!("unexpected {c:?} in a DOCTYPE")));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(files: &[(&str, &str)], subset: &str) -> Decls {
        let dir = tempfile::tempdir().unwrap();
        for (n, t) in files {
            std::fs::write(dir.path().join(n), t).unwrap();
        }
        let r = Reader::new(Revision::Sysv);
        let mut d = Decls::default();
        r.read(subset, &dir.path().join("page.xml"), &mut d)
            .unwrap();
        d
    }

    #[test]
    fn nested_parameter_entities_and_sections() {
        let d = read(
            &[
                (
                    "general.ent",
                    "<!ENTITY % dev \"INCLUDE\">\n<!ENTITY % rel 'IGNORE'>\n<!ENTITY % relnum \"12.3\">\n\
                     <!ENTITY % conditional-entities SYSTEM \"conditional.ent\">%conditional-entities;\n\
                     <![ %dev; [ <![ %sysv; [ <!ENTITY v \"dev-sysv\"> ]]> <![ %systemd; [ <!ENTITY v \"dev-systemd\"> ]]> ]]>\n\
                     <![ %rel; [ <!ENTITY v \"%relnum;\"> <![ IGNORE [ x ]]> ]]>\n\
                     <!ENTITY n \"%relnum;-&v;\"><!-- ]]> in a comment -->\n\
                     <!ENTITY % p SYSTEM \"p.ent\"> %p;",
                ),
                (
                    "p.ent",
                    "<!ENTITY sed-version \"4.9\"><!ENTITY v \"later\">",
                ),
            ],
            "<!ENTITY % g SYSTEM \"general.ent\"> %g; <!ENTITY own \"&sed-version;\">",
        );
        assert_eq!(d.get("v"), Some("dev-sysv"));
        assert_eq!(d.get("n"), Some("12.3-&v;"));
        assert_eq!(d.get("sed-version"), Some("4.9"));
        assert_eq!(d.get("own"), Some("&sed-version;"));
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let r = Reader::new(Revision::Sysv);
        let mut d = Decls::default();
        let e = r
            .read("\n%nope;", Path::new("/b/page.xml"), &mut d)
            .unwrap_err()
            .to_string();
        assert!(e.contains("/b/page.xml:2") && e.contains("%nope;"), "{e}");
    }

    #[test]
    fn prolog_finds_the_subset() {
        let t = "<?xml version=\"1.0\"?>\n<!DOCTYPE sect1 PUBLIC \"a\" \"b\" [\n <!ENTITY x \"]\">\n]>\n<sect1/>";
        let p = prolog(t, Path::new("x.xml")).unwrap();
        assert_eq!(&t[p.end..], "\n<sect1/>");
        assert_eq!(p.subset, Some("\n <!ENTITY x \"]\">\n"));
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any text gives declarations or an error naming the file, never a panic.
        #[test]
        fn any_subset_reads_or_fails_cleanly(text in "(<!ENTITY|<!\\[|%[a-z]{1,3};|\"|'|\\]\\]>|<!--|-->|[ a-z%&;<>\\[\\]\"'é]){0,40}") {
            let r = Reader::new(Revision::Sysv);
            let mut d = Decls::default();
            if let Err(e) = r.read(&text, Path::new("/x/p.xml"), &mut d) {
                prop_assert!(e.to_string().starts_with("/x/p.xml:"));
            }
        }

        #[test]
        fn any_prolog_is_found_or_refused(text in "(<\\?xml\\?>|<!DOCTYPE a|\\[|\\]|>|<!--|-->|\"|'|<!ENTITY x \"y\">|é| ){0,30}") {
            let _ = prolog(&text, Path::new("p.xml"));
        }
    }
}
