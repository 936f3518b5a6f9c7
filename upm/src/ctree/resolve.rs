//! Reference resolution: `${a.b}`, `${name}` and `$name` inside values.
//!
//! A reference is looked up among the siblings of the key being defined, then among its
//! parent's siblings, and so on up to the top, so `${package.version}` works anywhere and
//! `$datadir` finds the sibling `datadir`. A string that is exactly one reference takes the
//! referenced value with its type (`jobs = ${defaults.jobs};` stays an integer).
//!
//! Shell text passes through: a one-segment reference that names no key (`$PATH`, `$1`,
//! `${CFLAGS}`) and `${...}` that is not a key at all (`${x:-y}`) stay as written, and a key
//! never resolves to itself (`env.PATH = "/tools/bin:$PATH"`). `$$` writes a literal `$`.
//! A dotted reference that names no key is an error, and so is a cycle, which is named.

use std::collections::HashMap;

use super::key::{self, Key};
use super::{Entry, Error, Loc, Tree, Value};

enum Piece<'a> {
    Lit(&'a str),
    Ref { key: Key, text: &'a str },
}

/// Split a string into literal text and references.
fn pieces(s: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut lit_start = 0;
    let mut i = 0;
    let b = s.as_bytes();
    while i < b.len() {
        if b[i] != b'$' {
            i += 1;
            continue;
        }
        let next = b.get(i + 1).copied();
        if next == Some(b'$') {
            out.push(Piece::Lit(&s[lit_start..i + 1]));
            i += 2;
            lit_start = i;
            continue;
        }
        let (key, end) = if next == Some(b'{') {
            match key::parse_prefix(&s[i + 2..]) {
                Ok((k, rest)) if rest.starts_with('}') => (Some(k), s.len() - rest.len() + 1),
                _ => (None, i + 1),
            }
        } else {
            let n = b[i + 1..]
                .iter()
                .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
                .count();
            if n == 0 {
                (None, i + 1)
            } else {
                (
                    Some(Key::new(vec![s[i + 1..i + 1 + n].to_string()])),
                    i + 1 + n,
                )
            }
        };
        match key {
            Some(key) => {
                if lit_start < i {
                    out.push(Piece::Lit(&s[lit_start..i]));
                }
                out.push(Piece::Ref {
                    key,
                    text: &s[i..end],
                });
                i = end;
                lit_start = end;
            }
            None => i += 1,
        }
    }
    if lit_start < s.len() {
        out.push(Piece::Lit(&s[lit_start..]));
    }
    out
}

struct Resolver<'t> {
    tree: &'t Tree,
    done: HashMap<Key, Value>,
    stack: Vec<Key>,
}

impl Resolver<'_> {
    /// The key a reference written in `from` names, if any.
    fn lookup(&self, r: &Key, from: &Key) -> Option<Key> {
        let mut scope = from.parent();
        loop {
            let cand = scope.join(r);
            if &cand != from && self.tree.contains(&cand) {
                return Some(cand);
            }
            if scope.is_empty() {
                return None;
            }
            scope = scope.parent();
        }
    }

    fn value_of(&mut self, key: &Key) -> Result<Value, Error> {
        if let Some(v) = self.done.get(key) {
            return Ok(v.clone());
        }
        let entry = self.tree.entry(key).expect("looked up keys exist");
        if let Some(pos) = self.stack.iter().position(|k| k == key) {
            let mut chain: Vec<String> = self.stack[pos..].iter().map(Key::to_string).collect();
            chain.push(key.to_string());
            return Err(Error::at(
                entry.loc.clone(),
                format!("reference cycle: {}", chain.join(" -> ")),
            ));
        }
        if entry.literal {
            return Ok(entry.value.clone());
        }
        self.stack.push(key.clone());
        let v = match &entry.value {
            Value::Str(s) => self.expand(s, key, &entry.loc, true)?,
            Value::List(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    out.push(self.expand(item, key, &entry.loc, false)?.as_text());
                }
                Value::List(out)
            }
            other => other.clone(),
        };
        self.stack.pop();
        self.done.insert(key.clone(), v.clone());
        Ok(v)
    }

    fn expand(&mut self, s: &str, key: &Key, loc: &Loc, typed: bool) -> Result<Value, Error> {
        if !s.contains('$') {
            return Ok(Value::Str(s.to_string()));
        }
        let pieces = pieces(s);
        if typed
            && let [Piece::Ref { key: r, .. }] = pieces.as_slice()
            && let Some(target) = self.lookup(r, key)
        {
            return self.value_of(&target);
        }
        let mut out = String::with_capacity(s.len());
        for p in &pieces {
            match p {
                Piece::Lit(t) => out.push_str(t),
                Piece::Ref { key: r, text } => match self.lookup(r, key) {
                    Some(target) => out.push_str(&self.value_of(&target)?.as_text()),
                    None if r.len() == 1 => out.push_str(text),
                    None => {
                        let why = if self.tree.is_branch(r) {
                            format!("`{r}` is a table, not a value; name one of its keys")
                        } else {
                            format!("no key `{r}` is defined")
                        };
                        return Err(Error::at(
                            loc.clone(),
                            format!("`{key}`: unknown reference {text}: {why}"),
                        ));
                    }
                },
            }
        }
        Ok(Value::Str(out))
    }
}

/// Resolve every reference of a tree. The result's entries are all literal.
pub fn resolve(tree: &Tree) -> Result<Tree, Error> {
    let mut r = Resolver {
        tree,
        done: HashMap::new(),
        stack: Vec::new(),
    };
    let mut out = Tree::new();
    for e in tree.entries() {
        let value = r.value_of(&e.key)?;
        out.insert(Entry {
            value,
            literal: true,
            ..e.clone()
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::{Syntax, parse_str};
    use super::*;

    fn res(text: &str) -> Result<Tree, Error> {
        resolve(&parse_str(text, Syntax::Ct, "t.ct".as_ref()).unwrap())
    }

    fn s(t: &Tree, k: &str) -> Value {
        t.get_str(k).unwrap().clone()
    }

    #[test]
    fn seed_example() {
        let t = res("fs_backup.type.default = \"full\";\n\
                     fs_backup.type = ${fs_backup.type.default};\n\
                     fs_backup.datadir = \"/var/backup\";\n\
                     fs_backup.logdir = \"$datadir/log\";\n\
                     fs_backup.tmp = \"${datadir}/tmp\";\n")
        .unwrap();
        assert_eq!(s(&t, "fs_backup.type"), Value::Str("full".into()));
        assert_eq!(
            s(&t, "fs_backup.logdir"),
            Value::Str("/var/backup/log".into())
        );
        assert_eq!(s(&t, "fs_backup.tmp"), Value::Str("/var/backup/tmp".into()));
    }

    #[test]
    fn typed_and_shell_passthrough() {
        let t = res(
            "d.jobs = 4;\nd.l = [\"a\", \"b\"];\nx.j = ${d.jobs};\nx.s = \"-j${d.jobs} ${d.l}\";\n\
                     env.PATH = \"/tools/bin:$PATH\";\nsh = \"${x:-y} $1 $$HOME $\";\n",
        )
        .unwrap();
        assert_eq!(s(&t, "x.j"), Value::Int(4));
        assert_eq!(s(&t, "x.s"), Value::Str("-j4 a b".into()));
        assert_eq!(s(&t, "env.PATH"), Value::Str("/tools/bin:$PATH".into()));
        assert_eq!(s(&t, "sh"), Value::Str("${x:-y} $1 $HOME $".into()));
    }

    #[test]
    fn cycles_and_unknown_references() {
        let e = res("a = \"${b}\";\nb = \"${c.d}\";\nc.d = $a;\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("reference cycle: a -> b -> c.d -> a"), "{e}");
        let e = res("a = 1;\nb = \"${a.nope}\";\n").unwrap_err().to_string();
        assert!(
            e.starts_with("t.ct:2:1:") && e.contains("unknown reference ${a.nope}"),
            "{e}"
        );
    }
}
