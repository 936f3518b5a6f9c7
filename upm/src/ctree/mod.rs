//! The configuration tree: one ordered tree of dotted keys whose leaves are strings, integers,
//! booleans or lists of strings, read from two syntaxes that convert into each other — the
//! plain-text tree (`.ct`, `a.b.c = "v";`) and TOML (through `toml_edit`, keeping layout when it
//! writes). Recipes, profiles and settings are all ctrees; this module knows nothing of them.
//!
//! Loading a file ([`load`]) parses it, grafts `ftree://` cross-file references, merges the
//! templates named by `inherit`, and finally resolves `${key}` / `$key` references. The raw,
//! unresolved tree of a single file ([`parse_file`]) is what conversion and `set` work on.

mod ct;
mod error;
mod key;
mod load;
mod resolve;
mod toml;

#[cfg(test)]
mod proptests;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use error::{Error, Loc};
pub use key::{Key, Pattern};
pub use load::{Loaded, RECORDED, Warning, in_branches, load, load_with};

/// A leaf value. Strings may still hold `${...}` references until the tree is resolved.
/// Serialized as the JSON string, number, boolean or array it is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(untagged)]
pub enum Value {
    Str(String),
    Int(i64),
    Bool(bool),
    List(Vec<String>),
}

impl Value {
    /// The name of the value's type, as error messages say it.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::Int(_) => "integer",
            Value::Bool(_) => "boolean",
            Value::List(_) => "list of strings",
        }
    }

    /// The value as it reads inside another string: lists are joined with spaces.
    pub fn as_text(&self) -> String {
        match self {
            Value::Str(s) => s.clone(),
            Value::Int(i) => i.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::List(l) => l.join(" "),
        }
    }

    /// Parse a value typed on a command line: a `.ct` literal (`"x"`, `5`, `true`, `["a", "b"]`)
    /// when it is one, otherwise the text itself as a string.
    pub fn from_cli(text: &str) -> Value {
        ct::parse_value_literal(text).unwrap_or_else(|| Value::Str(text.to_string()))
    }
}

impl fmt::Display for Value {
    /// The `.ct` literal form of the value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&ct::render_value(self))
    }
}

/// What a query found.
#[derive(Debug)]
pub enum Found<'a> {
    /// The value of the key asked for.
    Leaf(&'a Value),
    /// The entries under a branch or matching a pattern, in tree order.
    Entries(Vec<&'a Entry>),
}

/// Which syntax a file is written in, chosen by its extension (`.toml`, anything else `.ct`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    Ct,
    Toml,
}

impl Syntax {
    pub fn of(path: &Path) -> Syntax {
        match path.extension().and_then(|e| e.to_str()) {
            Some("toml") => Syntax::Toml,
            _ => Syntax::Ct,
        }
    }
}

/// One key of a tree with its value and where it was set.
#[derive(Debug, Clone)]
pub struct Entry {
    pub key: Key,
    pub value: Value,
    pub loc: Loc,
    /// Already resolved (grafted from another file): references in it are not expanded again.
    pub literal: bool,
}

/// An ordered tree of dotted keys. A key may be a leaf and a branch at once
/// (`a.type = "x"; a.type.default = "y";`), as in the plain-text syntax.
#[derive(Debug, Clone, Default)]
pub struct Tree {
    entries: Vec<Entry>,
    index: HashMap<Key, usize>,
}

impl Tree {
    pub fn new() -> Tree {
        Tree::default()
    }

    /// Add an entry; an existing key is replaced in place (keeping its position).
    pub fn insert(&mut self, entry: Entry) {
        match self.index.get(&entry.key) {
            Some(&i) => self.entries[i] = entry,
            None => {
                self.index.insert(entry.key.clone(), self.entries.len());
                self.entries.push(entry);
            }
        }
    }

    /// The tree without the entries whose key `drop` matches, in the same order.
    pub fn without(&self, drop: impl Fn(&Key) -> bool) -> Tree {
        let mut t = Tree::new();
        for e in self.entries.iter().filter(|e| !drop(&e.key)) {
            t.insert(e.clone());
        }
        t
    }

    pub fn remove(&mut self, key: &Key) -> Option<Entry> {
        let i = self.index.remove(key)?;
        let e = self.entries.remove(i);
        for idx in self.index.values_mut() {
            if *idx > i {
                *idx -= 1;
            }
        }
        Some(e)
    }

    pub fn entry(&self, key: &Key) -> Option<&Entry> {
        self.index.get(key).map(|&i| &self.entries[i])
    }

    pub fn get(&self, key: &Key) -> Option<&Value> {
        self.entry(key).map(|e| &e.value)
    }

    /// The value of a key given as dotted text; `None` if absent or not a valid key.
    pub fn get_str(&self, key: &str) -> Option<&Value> {
        Key::parse(key)
            .ok()
            .and_then(|k| self.get(&k).map(|v| v as _))
    }

    pub fn contains(&self, key: &Key) -> bool {
        self.index.contains_key(key)
    }

    /// Whether some key lies strictly below `key`.
    pub fn is_branch(&self, key: &Key) -> bool {
        self.entries
            .iter()
            .any(|e| e.key.starts_with(key) && e.key.len() > key.len())
    }

    /// Every key that has keys below it.
    pub fn branches(&self) -> std::collections::HashSet<Key> {
        let mut out = std::collections::HashSet::new();
        for e in &self.entries {
            for n in 1..e.key.len() {
                out.insert(Key::new(e.key.segments()[..n].to_vec()));
            }
        }
        out
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries matching a query pattern, in tree order.
    pub fn query<'a, 'p>(
        &'a self,
        pattern: &'p Pattern,
    ) -> impl Iterator<Item = &'a Entry> + use<'a, 'p> {
        self.entries.iter().filter(move |e| pattern.matches(&e.key))
    }

    /// The entries at or below `prefix`, with `prefix` removed from their keys.
    pub fn subtree(&self, prefix: &Key) -> Tree {
        let mut t = Tree::new();
        for e in &self.entries {
            if e.key.starts_with(prefix) && e.key.len() > prefix.len() {
                t.insert(Entry {
                    key: e.key.tail(prefix.len()),
                    ..e.clone()
                });
            }
        }
        t
    }

    /// Answer a query: a key names its value (or, for a pure branch, its subtree); a pattern
    /// with `*` names the matching entries. An unknown key gets a "did you mean".
    pub fn find(&self, query: &str) -> Result<Found<'_>, String> {
        let pattern = Pattern::parse(query).map_err(|m| format!("bad key {query:?}: {m}"))?;
        if let Some(key) = pattern.as_key()
            && let Some(v) = self.get(&key)
        {
            return Ok(Found::Leaf(v));
        }
        let entries: Vec<&Entry> = self.query(&pattern).collect();
        if entries.is_empty() {
            let keys: Vec<String> = self.entries.iter().map(|e| e.key.to_string()).collect();
            let hint = crate::suggest::closest(query, keys.iter().map(String::as_str))
                .map(|k| format!("; did you mean `{k}`?"))
                .unwrap_or_default();
            return Err(format!("no key matches `{query}`{hint}"));
        }
        Ok(Found::Entries(entries))
    }

    /// Render the tree in the plain-text syntax.
    pub fn to_ct(&self) -> String {
        ct::render_tree(self)
    }

    /// Render the tree as TOML.
    pub fn to_toml(&self) -> String {
        toml::render_tree(self)
    }

    /// Render in the given syntax.
    pub fn render(&self, syntax: Syntax) -> String {
        match syntax {
            Syntax::Ct => self.to_ct(),
            Syntax::Toml => self.to_toml(),
        }
    }
}

/// Parse text in the given syntax into a raw (unresolved) tree. `file` names it in errors.
pub fn parse_str(text: &str, syntax: Syntax, file: &Path) -> Result<Tree, Error> {
    let file = Arc::new(file.to_path_buf());
    match syntax {
        Syntax::Ct => ct::parse(text, &file).map(|p| p.tree),
        Syntax::Toml => toml::parse(text, &file),
    }
}

/// Parse raw bytes (which may not even be UTF-8) into a raw tree, or a located error.
pub fn parse_bytes(bytes: &[u8], syntax: Syntax, file: &Path) -> Result<Tree, Error> {
    let text = error::utf8(bytes, file)?;
    parse_str(text, syntax, file)
}

/// Read and parse one file without inheritance, grafts or reference resolution.
pub fn parse_file(path: &Path) -> Result<Tree, Error> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_bytes(&bytes, Syntax::of(path), path)
}

/// Set `key` to `value` in the file at `path`, in place: every other line, comment and blank
/// line stays as it was. The file is rewritten atomically.
pub fn set_in_file(path: &Path, key: &Key, value: &Value) -> Result<(), Error> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let text = error::utf8(&bytes, path)?;
    let file = Arc::new(path.to_path_buf());
    let out = match Syntax::of(path) {
        Syntax::Ct => ct::set(text, &file, key, value)?,
        Syntax::Toml => toml::set(text, &file, key, value)?,
    };
    crate::fsutil::write_atomic(path, out.as_bytes()).map_err(|e| Error::io(path, e))
}

/// Convert a file to the other syntax (or the same one, normalised), unresolved.
pub fn convert_file(path: &Path, to: Syntax) -> Result<String, Error> {
    Ok(parse_file(path)?.render(to))
}

/// The path a relative reference in `referrer` names.
fn relative_to(referrer: &Path, target: &str) -> PathBuf {
    let t = Path::new(target);
    if t.is_absolute() {
        t.to_path_buf()
    } else {
        referrer.parent().unwrap_or(Path::new(".")).join(t)
    }
}
