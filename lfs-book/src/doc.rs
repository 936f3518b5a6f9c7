//! A book file as a tree of owned elements: the file parsed by `roxmltree` with the entities
//! its DOCTYPE declares (read by [`crate::dtd`] and handed to the parser as one internal
//! subset, so the parser expands them — nested, in text and attributes — as XML says),
//! `xi:include` elements replaced by the files they name (`parse="text"` and the books'
//! `xpointer(/a/b[n])` form included), and the elements of the other revision
//! (`revision="systemd"` in a sysv import) left out, as the books' profiling stylesheets do.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::Error;
use crate::dtd::{self, Decls, Reader, Revision};

const XINCLUDE: &str = "http://www.w3.org/2001/XInclude";

/// How deep `xi:include` may nest.
const MAX_INCLUDE_DEPTH: usize = 24;

/// The character entities of DocBook's DTD that the books use without declaring them
/// (they come from the DocBook DTD, which an offline import does not read).
const DOCBOOK_ENTITIES: &[(&str, &str)] = &[
    ("nbsp", "&#160;"),
    ("ndash", "&#8211;"),
    ("mdash", "&#8212;"),
    ("hellip", "&#8230;"),
    ("copy", "&#169;"),
    ("reg", "&#174;"),
    ("trade", "&#8482;"),
    ("lsquo", "&#8216;"),
    ("rsquo", "&#8217;"),
    ("ldquo", "&#8220;"),
    ("rdquo", "&#8221;"),
    ("times", "&#215;"),
    ("deg", "&#176;"),
    ("eacute", "&#233;"),
    ("ouml", "&#246;"),
    ("uuml", "&#252;"),
    ("auml", "&#228;"),
    ("aring", "&#229;"),
    ("oslash", "&#248;"),
    ("szlig", "&#223;"),
    ("ccedil", "&#231;"),
    ("aacute", "&#225;"),
    ("iacute", "&#237;"),
    ("oacute", "&#243;"),
    ("uacute", "&#250;"),
    ("ntilde", "&#241;"),
    ("egrave", "&#232;"),
    ("agrave", "&#224;"),
    ("Ouml", "&#214;"),
    ("Uuml", "&#220;"),
    ("Auml", "&#196;"),
    ("AElig", "&#198;"),
    ("aelig", "&#230;"),
    ("rArr", "&#8658;"),
    ("lArr", "&#8656;"),
    ("rarr", "&#8594;"),
    ("larr", "&#8592;"),
    ("le", "&#8804;"),
    ("ge", "&#8805;"),
    ("ne", "&#8800;"),
    ("plusmn", "&#177;"),
    ("micro", "&#181;"),
    ("middot", "&#183;"),
    ("bull", "&#8226;"),
    ("laquo", "&#171;"),
    ("raquo", "&#187;"),
    ("euro", "&#8364;"),
    ("pound", "&#163;"),
    ("sect", "&#167;"),
    ("shy", "&#173;"),
];

#[derive(Debug, Clone)]
pub enum Node {
    Elem(Element),
    Text(String),
}

#[derive(Debug, Clone)]
pub struct Element {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Node>,
    /// The file and line it was read from.
    pub file: Arc<PathBuf>,
    pub line: u32,
}

impl Element {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The child elements.
    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Elem(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    /// The child elements of a name.
    pub fn named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> {
        self.elements().filter(move |e| e.name == name)
    }

    /// Every element below this one, depth first, in document order.
    pub fn descendants(&self) -> Vec<&Element> {
        let mut out = Vec::new();
        fn walk<'a>(e: &'a Element, out: &mut Vec<&'a Element>) {
            for c in e.elements() {
                out.push(c);
                walk(c, out);
            }
        }
        walk(self, &mut out);
        out
    }

    /// All the text below this element.
    pub fn text(&self) -> String {
        let mut s = String::new();
        fn walk(e: &Element, s: &mut String) {
            for n in &e.children {
                match n {
                    Node::Text(t) => s.push_str(t),
                    Node::Elem(c) => walk(c, s),
                }
            }
        }
        walk(self, &mut s);
        s
    }

    /// `file:line` of the element, for messages.
    pub fn at(&self) -> String {
        format!("{}:{}", self.file.display(), self.line)
    }
}

/// What converting one parsed file shares.
struct Cx<'a> {
    doc: &'a roxmltree::Document<'a>,
    file: &'a Arc<PathBuf>,
    /// Lines the generated DOCTYPE added.
    shift: u32,
    depth: usize,
}

/// The element that stands for an include that could not be read: the page holding it is
/// reported as failed, the rest of the book is read.
pub const FAILED: &str = "upm-failed-include";

/// Loads book files for one revision.
pub struct Loader {
    pub reader: Reader,
    /// Keep elements marked `arch="…"` only for this architecture (empty: keep all).
    pub arch: String,
}

impl Loader {
    pub fn new(revision: Revision) -> Loader {
        Loader {
            reader: Reader::new(revision),
            arch: String::new(),
        }
    }

    fn revision(&self) -> Revision {
        self.reader.revision
    }

    /// The root element of a file, its includes resolved.
    pub fn load(&self, path: &Path) -> Result<Element, Error> {
        self.load_at(path, 0)?.ok_or_else(|| Error::Xml {
            file: path.to_path_buf(),
            line: 1,
            msg: format!(
                "the root element is for another revision than {}",
                self.revision().name()
            ),
        })
    }

    /// The root element, or nothing when it belongs to the other revision.
    fn load_at(&self, path: &Path, depth: usize) -> Result<Option<Element>, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let prolog = dtd::prolog(&text, path)?;
        let mut decls = Decls::default();
        if let Some(subset) = prolog.subset {
            self.reader.read(subset, path, &mut decls)?;
        }
        let (doc_text, shift) = with_entities(&text, prolog.end, &decls);
        if std::env::var_os("LFSBOOK_DUMP").is_some() {
            std::fs::write("/tmp/lfsbook-dump.xml", &doc_text).ok();
        }
        let opts = roxmltree::ParsingOptions {
            allow_dtd: true,
            nodes_limit: u32::MAX,
            ..roxmltree::ParsingOptions::default()
        };
        let doc = roxmltree::Document::parse_with_options(&doc_text, opts).map_err(|e| {
            let msg = match &e {
                roxmltree::Error::UnknownEntityReference(name, _) => {
                    match decls.missing.iter().find(|(n, _)| n == name) {
                        Some((_, f)) => format!(
                            "entity &{name}; names {}, which does not exist (a file the book's \
                             Makefile generates)",
                            f.display()
                        ),
                        None => format!("unknown entity &{name};"),
                    }
                }
                e => e.to_string(),
            };
            Error::Xml {
                file: path.to_path_buf(),
                line: e.pos().row.saturating_sub(shift),
                msg,
            }
        })?;
        let file = Arc::new(path.to_path_buf());
        let cx = Cx {
            doc: &doc,
            file: &file,
            shift,
            depth,
        };
        let mut nodes = self.convert(&cx, doc.root_element())?;
        match nodes.pop() {
            Some(Node::Elem(e)) if nodes.is_empty() => Ok(Some(e)),
            None => Ok(None),
            _ => Err(Error::Xml {
                file: path.to_path_buf(),
                line: 1,
                msg: "the root element is an include of text".into(),
            }),
        }
    }

    /// One node in the tree: nothing when it belongs to the other revision, the included
    /// content for an `xi:include`.
    fn convert(&self, cx: &Cx, node: roxmltree::Node) -> Result<Vec<Node>, Error> {
        if node.is_text() {
            return Ok(vec![Node::Text(node.text().unwrap_or("").to_string())]);
        }
        if !node.is_element() {
            return Ok(Vec::new());
        }
        if let Some(rev) = node.attribute("revision")
            && !rev.split(';').any(|r| r.trim() == self.revision().name())
        {
            return Ok(Vec::new());
        }
        if let Some(arch) = node.attribute("arch")
            && !self.arch.is_empty()
            && !arch
                .split(';')
                .any(|a| a.trim() == self.arch || a.trim() == "default")
        {
            return Ok(Vec::new());
        }
        let line = cx
            .doc
            .text_pos_at(node.range().start)
            .row
            .saturating_sub(cx.shift);
        let tag = node.tag_name();
        if tag.namespace() == Some(XINCLUDE) && tag.name() == "include" {
            return Ok(self.include(node, cx.file, line, cx.depth));
        }
        let mut children = Vec::new();
        for c in node.children() {
            children.extend(self.convert(cx, c)?);
        }
        Ok(vec![Node::Elem(Element {
            name: tag.name().to_string(),
            attrs: node
                .attributes()
                .map(|a| (a.name().to_string(), a.value().to_string()))
                .collect(),
            children,
            file: cx.file.clone(),
            line,
        })])
    }

    /// The content an `xi:include` stands for, or a [`FAILED`] element saying why not.
    fn include(
        &self,
        node: roxmltree::Node,
        file: &Arc<PathBuf>,
        line: u32,
        depth: usize,
    ) -> Vec<Node> {
        match self.try_include(node, file, line, depth) {
            Ok(n) => n,
            Err(e) => vec![Node::Elem(Element {
                name: FAILED.into(),
                attrs: vec![
                    ("href".into(), node.attribute("href").unwrap_or("").into()),
                    ("error".into(), e.to_string()),
                ],
                children: Vec::new(),
                file: file.clone(),
                line,
            })],
        }
    }

    fn try_include(
        &self,
        node: roxmltree::Node,
        file: &Arc<PathBuf>,
        line: u32,
        depth: usize,
    ) -> Result<Vec<Node>, Error> {
        let at = || format!("{}:{line}", file.display());
        let href = node.attribute("href").ok_or_else(|| Error::Include {
            at: at(),
            msg: "xi:include without href".into(),
        })?;
        if depth >= MAX_INCLUDE_DEPTH {
            return Err(Error::Include {
                at: at(),
                msg: format!("includes nest deeper than {MAX_INCLUDE_DEPTH} (a loop?) at {href}"),
            });
        }
        let target = file.parent().unwrap_or(Path::new(".")).join(href);
        if node.attribute("parse") == Some("text") {
            let t = std::fs::read_to_string(&target).map_err(|e| Error::io(&target, e))?;
            return Ok(vec![Node::Text(t)]);
        }
        let Some(root) = self.load_at(&target, depth + 1)? else {
            return Ok(Vec::new());
        };
        match node.attribute("xpointer") {
            None => Ok(vec![Node::Elem(root)]),
            Some(xp) => {
                let found = xpointer(&root, xp).map_err(|msg| Error::Include { at: at(), msg })?;
                Ok(vec![Node::Elem(found)])
            }
        }
    }
}

/// The books' XPointer form: `xpointer(/sect1/sect2[1]/para[1])`.
fn xpointer(root: &Element, xp: &str) -> Result<Element, String> {
    let path = xp
        .strip_prefix("xpointer(")
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| format!("unsupported xpointer {xp:?}: only xpointer(/a/b[n]) is read"))?;
    let mut steps = path.trim_start_matches('/').split('/');
    let step = |s: &str| -> Result<(String, usize), String> {
        match s.split_once('[') {
            Some((n, rest)) => {
                let i: usize = rest
                    .trim_end_matches(']')
                    .parse()
                    .map_err(|_| format!("bad step {s:?} in xpointer {xp:?}"))?;
                Ok((n.to_string(), i.max(1)))
            }
            None => Ok((s.to_string(), 1)),
        }
    };
    let (first, _) = step(steps.next().unwrap_or(""))?;
    if first != root.name {
        return Err(format!(
            "xpointer {xp:?} starts at <{first}>, the file's root is <{}>",
            root.name
        ));
    }
    let mut cur = root;
    for s in steps {
        let (name, n) = step(s)?;
        cur = cur
            .elements()
            .filter(|e| e.name == name)
            .nth(n - 1)
            .ok_or_else(|| format!("xpointer {xp:?}: no {s}"))?;
    }
    Ok(cur.clone())
}

/// The document with its prolog replaced by one DOCTYPE declaring every entity, and how many
/// lines that DOCTYPE adds to the file's (to give the file's own line numbers in messages).
fn with_entities(text: &str, prolog_end: usize, decls: &Decls) -> (String, u32) {
    if prolog_end == 0 {
        return (text.to_string(), 0);
    }
    let mut out = String::with_capacity(text.len() + decls.list.len() * 64);
    out.push_str("<!DOCTYPE doc [");
    let own = decls.list.iter().map(|(n, v)| (n.as_str(), v.as_str()));
    let docbook = DOCBOOK_ENTITIES
        .iter()
        .filter(|(n, _)| decls.get(n).is_none())
        .copied();
    for (name, value) in own.chain(docbook) {
        // The value goes in as written (its references are expanded where it is used);
        // only the quote and `%`, which would end or break the literal, are escaped.
        let q = if value.contains('"') && !value.contains('\'') {
            '\''
        } else {
            '"'
        };
        out.push_str("<!ENTITY ");
        out.push_str(name);
        out.push(' ');
        out.push(q);
        for c in value.chars() {
            match c {
                '"' if q == '"' => out.push_str("&#34;"),
                '%' => out.push_str("&#37;"),
                c => out.push(c),
            }
        }
        out.push(q);
        out.push('>');
    }
    out.push_str("]>");
    let added = out.matches('\n').count() as u32;
    let removed = text[..prolog_end].matches('\n').count() as u32;
    out.push_str(&text[prolog_end..]);
    (out, added.saturating_sub(removed))
}
