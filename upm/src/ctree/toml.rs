//! TOML as a ctree syntax, through `toml_edit`. Tables and dotted keys map to the same dotted
//! keys as the plain-text syntax. A key that is a leaf and a branch at once (`a = 1;` and
//! `a.b = 2;` in `.ct`) is written in TOML with the empty key for the node's own value:
//! `[a]` / `"" = 1` / `b = 2`. Writing a key back ([`set`]) edits the document in place, so
//! every other line, comment and blank line stays as it was.

use std::path::PathBuf;
use std::sync::Arc;

use toml_edit::{DocumentMut, Item, TableLike};

use super::error::Lines;
use super::key::Key;
use super::{Entry, Error, Loc, Tree, Value};

/// Parse TOML text into a raw tree, in the order the keys appear in the file.
pub fn parse(text: &str, file: &Arc<PathBuf>) -> Result<Tree, Error> {
    let doc = toml_edit::Document::parse(text).map_err(|e| {
        let off = e.span().map_or(0, |s| s.start);
        Error::at(
            Loc::at(file, text, off),
            format!("invalid TOML: {}", e.message().trim_end()),
        )
    })?;
    let mut found = Vec::new();
    let cx = Walk {
        text,
        file,
        lines: Lines::new(text),
    };
    cx.table(doc.as_table(), &Key::new(Vec::new()), 0, &mut found)?;
    found.sort_by_key(|(off, _)| *off);
    let mut tree = Tree::new();
    for (_, e) in found {
        tree.insert(e);
    }
    Ok(tree)
}

struct Walk<'a> {
    text: &'a str,
    file: &'a Arc<PathBuf>,
    lines: Lines,
}

impl Walk<'_> {
    fn table(
        &self,
        table: &dyn TableLike,
        prefix: &Key,
        fallback: usize,
        out: &mut Vec<(usize, Entry)>,
    ) -> Result<(), Error> {
        for (k, item) in table.iter() {
            let off = table
                .key(k)
                .and_then(|key| key.span())
                .or_else(|| item.span())
                .map_or(fallback, |s| s.start);
            let loc = self.lines.loc(self.file, self.text, off);
            let key = if k.is_empty() {
                if prefix.is_empty() {
                    return Err(Error::at(
                        loc,
                        "the empty key \"\" is only allowed inside a table, for the table's own value",
                    ));
                }
                if !matches!(item, Item::Value(v) if !v.is_inline_table()) {
                    return Err(Error::at(
                        loc,
                        "the empty key \"\" holds a table's own value and cannot be a table itself",
                    ));
                }
                prefix.clone()
            } else {
                prefix.child(k)
            };
            match item {
                Item::None => {}
                Item::Table(t) => self.table(t, &key, off, out)?,
                Item::ArrayOfTables(_) => {
                    return Err(Error::at(
                        loc,
                        format!(
                            "`{key}`: arrays of tables ([[...]]) are not supported; use a list of strings or sub-tables"
                        ),
                    ));
                }
                Item::Value(toml_edit::Value::InlineTable(t)) => self.table(t, &key, off, out)?,
                Item::Value(v) => {
                    let value = self.value(v, &key, &loc)?;
                    out.push((
                        off,
                        Entry {
                            key,
                            value,
                            loc,
                            literal: false,
                        },
                    ));
                }
            }
        }
        Ok(())
    }

    fn value(&self, v: &toml_edit::Value, key: &Key, loc: &Loc) -> Result<Value, Error> {
        use toml_edit::Value as T;
        Ok(match v {
            T::String(s) => Value::Str(s.value().clone()),
            T::Integer(i) => Value::Int(*i.value()),
            T::Boolean(b) => Value::Bool(*b.value()),
            T::Array(a) => {
                let mut items = Vec::with_capacity(a.len());
                for item in a.iter() {
                    match item {
                        T::String(s) => items.push(s.value().clone()),
                        other => {
                            return Err(Error::at(
                                loc.clone(),
                                format!(
                                    "`{key}`: lists may only hold strings, found {}",
                                    other.type_name()
                                ),
                            ));
                        }
                    }
                }
                Value::List(items)
            }
            other => {
                return Err(Error::at(
                    loc.clone(),
                    format!(
                        "`{key}`: a {} is not a ctree value (use a string, integer, boolean or list of strings)",
                        other.type_name()
                    ),
                ));
            }
        })
    }
}

fn toml_value(v: &Value) -> toml_edit::Value {
    match v {
        Value::Str(s) => toml_edit::Value::from(s.as_str()),
        Value::Int(i) => toml_edit::Value::from(*i),
        Value::Bool(b) => toml_edit::Value::from(*b),
        Value::List(l) => toml_edit::Value::Array(l.iter().map(String::as_str).collect()),
    }
}

fn key_repr(segs: &[String]) -> String {
    segs.iter()
        .map(|s| toml_edit::Key::new(s.as_str()).display_repr().into_owned())
        .collect::<Vec<_>>()
        .join(".")
}

/// A whole tree as TOML: top-level leaves first, then one `[table]` per first key segment, in
/// the order the tree first names it, with deeper keys written as dotted keys.
pub fn render_tree(tree: &Tree) -> String {
    let mut out = String::new();
    let branches = tree.branches();
    let mut groups: Vec<(&str, Vec<&Entry>)> = Vec::new();
    for e in tree.entries() {
        let first = e.key.first().unwrap_or("");
        if e.key.len() == 1 && !branches.contains(&e.key) {
            out.push_str(&format!(
                "{} = {}\n",
                key_repr(e.key.segments()),
                toml_value(&e.value)
            ));
            continue;
        }
        match groups.iter_mut().find(|(g, _)| *g == first) {
            Some((_, v)) => v.push(e),
            None => groups.push((first, vec![e])),
        }
    }
    for (group, entries) in groups {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&format!("[{}]\n", key_repr(&[group.to_string()])));
        for e in entries {
            let mut rest = e.key.segments()[1..].to_vec();
            if rest.is_empty() || branches.contains(&e.key) {
                rest.push(String::new());
            }
            out.push_str(&format!("{} = {}\n", key_repr(&rest), toml_value(&e.value)));
        }
    }
    out
}

/// The TOML text with `key` set to `value`, everything else untouched.
pub fn set(text: &str, file: &Arc<PathBuf>, key: &Key, value: &Value) -> Result<String, Error> {
    // Report syntax errors with our own locations first.
    parse(text, file)?;
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| Error::at(Loc::at(file, text, 0), e.to_string()))?;
    let segs = key.segments();
    let (last, parents) = segs.split_last().expect("keys have at least one segment");
    let mut table: &mut dyn TableLike = doc.as_table_mut();
    for (i, seg) in parents.iter().enumerate() {
        if !table.contains_key(seg) {
            let mut t = toml_edit::Table::new();
            t.set_implicit(i + 1 < parents.len());
            table.insert(seg, Item::Table(t));
        }
        let item = table.get_mut(seg).expect("inserted above");
        if item.as_table_like().is_none() {
            // A leaf becomes a branch: its own value moves under the empty key.
            let own = std::mem::take(item);
            let mut t = toml_edit::Table::new();
            t.insert("", own);
            *item = Item::Table(t);
        }
        table = item.as_table_like_mut().expect("made a table above");
    }
    let mut new = toml_value(value);
    match table.get_mut(last) {
        Some(Item::Value(old)) if !old.is_inline_table() => {
            *new.decor_mut() = old.decor().clone();
            *old = new;
        }
        Some(item) if item.as_table_like().is_some() => {
            let t = item.as_table_like_mut().expect("checked");
            match t.get_mut("") {
                Some(Item::Value(old)) => {
                    *new.decor_mut() = old.decor().clone();
                    *old = new;
                }
                _ => {
                    t.insert("", Item::Value(new));
                }
            }
        }
        _ => {
            table.insert(last, Item::Value(new));
        }
    }
    let out = doc.to_string();
    parse(&out, file)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> Arc<PathBuf> {
        Arc::new(PathBuf::from("t.toml"))
    }

    #[test]
    fn tables_dotted_and_inline_in_file_order() {
        let t = parse(
            "top = 1\n[package]\nname = \"zlib\"\nsrc.file = \"z.tgz\"\n[phases]\ni = { a = \"x\" }\n",
            &file(),
        )
        .unwrap();
        let keys: Vec<String> = t.entries().iter().map(|e| e.key.to_string()).collect();
        assert_eq!(
            keys,
            ["top", "package.name", "package.src.file", "phases.i.a"]
        );
        assert_eq!(t.entries()[1].loc.line, 3);
    }

    #[test]
    fn unsupported_values_are_located() {
        let e = parse("[a]\nx = 1.5\n", &file()).unwrap_err().to_string();
        assert!(e.starts_with("t.toml:2:1:") && e.contains("float"), "{e}");
        let e = parse("a = [1, 2]\n", &file()).unwrap_err().to_string();
        assert!(e.contains("only hold strings"), "{e}");
        let e = parse("a = \n", &file()).unwrap_err().to_string();
        assert!(e.starts_with("t.toml:1:"), "{e}");
    }

    #[test]
    fn set_keeps_comments_and_layout() {
        let text = "# recipe\n[package]\nname = \"zlib\" # the name\n\n# phases\n[phases]\ninstall = \"make install\"\n";
        let k = Key::parse("package.name").unwrap();
        let out = set(text, &file(), &k, &Value::Str("xz".into())).unwrap();
        assert_eq!(out, text.replace("\"zlib\"", "\"xz\""));
        let k = Key::parse("package.version").unwrap();
        let out = set(text, &file(), &k, &Value::Str("1.0".into())).unwrap();
        assert!(
            out.starts_with(
                "# recipe\n[package]\nname = \"zlib\" # the name\nversion = \"1.0\"\n\n# phases\n"
            ),
            "{out}"
        );
        let k = Key::parse("options.jobs").unwrap();
        let out = set(text, &file(), &k, &Value::Int(4)).unwrap();
        assert!(
            out.starts_with(text) && out.ends_with("[options]\njobs = 4\n"),
            "{out}"
        );
    }

    #[test]
    fn leaf_and_branch_round_trip() {
        let ct = "a.type = \"x\";\na.type.default = \"full\";\nz = true;\n";
        let tree = super::super::parse_str(ct, super::super::Syntax::Ct, "t.ct".as_ref()).unwrap();
        let toml = render_tree(&tree);
        let back = parse(&toml, &file()).unwrap();
        assert_eq!(back.get_str("a.type"), Some(&Value::Str("x".into())));
        assert_eq!(
            back.get_str("a.type.default"),
            Some(&Value::Str("full".into()))
        );
        assert_eq!(back.get_str("z"), Some(&Value::Bool(true)));
    }
}
