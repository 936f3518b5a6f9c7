//! Loading a file into a resolved tree: parse it, graft its `ftree://` cross-file references,
//! merge the templates its `inherit` names, then resolve references over the merged tree (so a
//! template's `${vars.prefix}` sees the inheriting file's value).
//!
//! - `key = "ftree:///etc/other.ct";` grafts that file's whole (resolved) tree at `key`;
//!   `ftree:///etc/other.ct/root.branch` grafts one subtree. Relative paths are relative to the
//!   referring file.
//! - `inherit = ["templates/autotools.toml", ...]`: keys the file does not set come from its
//!   templates, the first template that has a key winning. A key two templates set differently
//!   (and the file does not) is reported as a conflict naming both. Templates may inherit too.
//! - `recorded = ["profile"]`: the named branches hold data the file records, not settings
//!   (a profile's commands and manifest): their values are taken literally (no reference is
//!   resolved in them) and `inherit` does not pass them on to the files inheriting this one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::key::Key;
use super::{Entry, Error, Loc, Tree, Value, parse_file, relative_to, resolve};
use crate::pathtext::quoted;

/// Something worth telling the user that does not stop the load.
#[derive(Debug, Clone)]
pub struct Warning {
    pub loc: Loc,
    pub message: String,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.loc, self.message)
    }
}

/// A loaded file: the resolved tree, the merged tree before resolution, and warnings.
#[derive(Debug)]
pub struct Loaded {
    pub tree: Tree,
    pub raw: Tree,
    /// The branches the file's `recorded` key names (data, not settings).
    pub recorded: Vec<Key>,
    pub warnings: Vec<Warning>,
}

impl Loaded {
    /// Whether `key` lies in a branch the file records as data.
    pub fn is_recorded(&self, key: &Key) -> bool {
        in_branches(&self.recorded, key)
    }
}

/// Whether `key` is one of `branches` or lies below one.
pub fn in_branches(branches: &[Key], key: &Key) -> bool {
    branches.iter().any(|b| key.starts_with(b))
}

/// The key naming a file's recorded branches.
pub const RECORDED: &str = "recorded";

/// Load a file with its grafts and templates, and resolve its references.
pub fn load(path: &Path) -> Result<Loaded, Error> {
    load_with(path, &[])
}

/// [`load`], with keys set from outside (the command line) over the merged tree before
/// references are resolved.
pub fn load_with(path: &Path, overrides: &[(Key, Value)]) -> Result<Loaded, Error> {
    let mut cx = Loader::default();
    let (mut raw, recorded) = cx.merged(path, None)?;
    for (key, value) in overrides {
        raw.insert(Entry {
            key: key.clone(),
            value: value.clone(),
            loc: Loc::file(Path::new("<command line>")),
            literal: false,
        });
    }
    let tree = resolve::resolve(&raw)?;
    Ok(Loaded {
        tree,
        raw,
        recorded,
        warnings: cx.warnings,
    })
}

#[derive(Default)]
struct Loader {
    stack: Vec<PathBuf>,
    warnings: Vec<Warning>,
}

/// Split what follows `ftree://` into the file and the subtree key, if any.
fn split_ftree(spec: &str) -> (&str, Option<&str>) {
    for (i, _) in spec.match_indices('/') {
        let file = &spec[..i];
        if file.ends_with(".ct") || file.ends_with(".toml") {
            let sub = &spec[i + 1..];
            return (file, (!sub.is_empty()).then_some(sub));
        }
    }
    (spec, None)
}

impl Loader {
    /// The merged, unresolved tree of one file, and the branches it records as data.
    fn merged(&mut self, path: &Path, referrer: Option<&Loc>) -> Result<(Tree, Vec<Key>), Error> {
        let canon = std::fs::canonicalize(path).map_err(|e| match referrer {
            Some(loc) => Error::at(loc.clone(), format!("cannot read {}: {e}", quoted(&path))),
            None => Error::io(path, e),
        })?;
        if let Some(pos) = self.stack.iter().position(|p| p == &canon) {
            let mut chain: Vec<String> = self.stack[pos..]
                .iter()
                .map(|p| p.display().to_string())
                .collect();
            chain.push(canon.display().to_string());
            let loc = referrer.cloned().unwrap_or_else(Loc::none);
            return Err(Error::at(
                loc,
                format!("files include each other: {}", chain.join(" -> ")),
            ));
        }
        self.stack.push(canon);
        let result = self.merged_inner(path);
        self.stack.pop();
        result
    }

    fn merged_inner(&mut self, path: &Path) -> Result<(Tree, Vec<Key>), Error> {
        let mut parsed = parse_file(path)?;
        let recorded = recorded_branches(&mut parsed)?;
        let tree = self.graft(path, parsed)?;
        let mut tree = self.inherit(path, tree)?;
        if !recorded.is_empty() {
            let mut out = Tree::new();
            for e in tree.entries() {
                let literal = e.literal || in_branches(&recorded, &e.key);
                out.insert(Entry {
                    literal,
                    ..e.clone()
                });
            }
            tree = out;
        }
        Ok((tree, recorded))
    }

    fn graft(&mut self, path: &Path, parsed: Tree) -> Result<Tree, Error> {
        let has_graft = parsed
            .entries()
            .iter()
            .any(|e| matches!(&e.value, Value::Str(s) if s.starts_with("ftree://")));
        if !has_graft {
            return Ok(parsed);
        }
        let mut out = Tree::new();
        for e in parsed.entries() {
            let spec = match &e.value {
                Value::Str(s) if s.starts_with("ftree://") => &s["ftree://".len()..],
                _ => {
                    out.insert(e.clone());
                    continue;
                }
            };
            let (file, sub) = split_ftree(spec);
            let target = relative_to(path, file);
            let (other, _) = self.merged(&target, Some(&e.loc))?;
            let other = resolve::resolve(&other)?;
            let part = match sub {
                None => other,
                Some(sub) => {
                    let k = Key::parse(sub).map_err(|m| {
                        Error::at(e.loc.clone(), format!("bad key in {spec:?}: {m}"))
                    })?;
                    let part = other.subtree(&k);
                    if part.is_empty() {
                        return Err(Error::at(
                            e.loc.clone(),
                            format!("{} has no keys under `{k}`", quoted(&target)),
                        ));
                    }
                    part
                }
            };
            for g in part.entries() {
                let key = e.key.join(&g.key);
                // Keys the file sets itself win over grafted ones.
                if parsed.contains(&key) {
                    continue;
                }
                out.insert(Entry {
                    key,
                    literal: true,
                    ..g.clone()
                });
            }
        }
        Ok(out)
    }

    fn inherit(&mut self, path: &Path, mut tree: Tree) -> Result<Tree, Error> {
        let Some(inh) = tree.remove(&Key::new(vec!["inherit".into()])) else {
            return Ok(tree);
        };
        let names = match &inh.value {
            Value::Str(s) => vec![s.clone()],
            Value::List(l) => l.clone(),
            other => {
                return Err(Error::at(
                    inh.loc,
                    format!(
                        "`inherit` must be a template path or a list of them, not a {}",
                        other.type_name()
                    ),
                ));
            }
        };
        let mut templates = Vec::with_capacity(names.len());
        for name in &names {
            let tpath = relative_to(path, name);
            let (t, recorded) = self.merged(&tpath, Some(&inh.loc))?;
            // A template's recorded data (a profile's commands and manifest) stays its own.
            let t = if recorded.is_empty() {
                t
            } else {
                t.without(|k| in_branches(&recorded, k))
            };
            templates.push((name.as_str(), t));
        }
        let mut from: HashMap<Key, (usize, Loc)> = HashMap::new();
        for (ti, (name, t)) in templates.iter().enumerate() {
            for e in t.entries() {
                match from.get(&e.key) {
                    None if tree.contains(&e.key) => {}
                    None => {
                        from.insert(e.key.clone(), (ti, e.loc.clone()));
                        tree.insert(e.clone());
                    }
                    Some((first, first_loc)) => {
                        if tree.get(&e.key) != Some(&e.value) {
                            self.warnings.push(Warning {
                                loc: inh.loc.clone(),
                                message: format!(
                                    "conflict: `{}` is set differently by templates {} ({}) and {} ({}); \
                                     the first wins — set it in {} to choose",
                                    e.key,
                                    templates[*first].0,
                                    first_loc,
                                    name,
                                    e.loc,
                                    quoted(&path)
                                ),
                            });
                        }
                    }
                }
            }
        }
        Ok(tree)
    }
}

/// Take the `recorded` key out of a parsed file: the branches it names.
fn recorded_branches(tree: &mut Tree) -> Result<Vec<Key>, Error> {
    let Some(e) = tree.remove(&Key::new(vec![RECORDED.into()])) else {
        return Ok(Vec::new());
    };
    let names = match &e.value {
        Value::Str(s) => vec![s.clone()],
        Value::List(l) => l.clone(),
        other => {
            return Err(Error::at(
                e.loc,
                format!(
                    "`{RECORDED}` must be a key or a list of keys, not a {}",
                    other.type_name()
                ),
            ));
        }
    };
    names
        .iter()
        .map(|n| {
            Key::parse(n).map_err(|m| {
                Error::at(e.loc.clone(), format!("bad key {n:?} in `{RECORDED}`: {m}"))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_branches_are_literal_and_not_inherited() {
        let d = tempfile::tempdir().unwrap();
        let t = d.path().join("p.toml");
        std::fs::write(
            &t,
            "recorded = [\"profile\"]\n[package]\nversion = \"1\"\nfile = \"x-${package.version}\"\n\
             [profile]\ncommand = \"echo ${no.such.key} $$\"\n",
        )
        .unwrap();
        let l = load(&t).unwrap();
        assert_eq!(l.recorded, [Key::parse("profile").unwrap()]);
        assert_eq!(
            l.tree.get_str("profile.command"),
            Some(&Value::Str("echo ${no.such.key} $$".into()))
        );
        assert!(l.tree.get_str("recorded").is_none());
        let r = d.path().join("r.toml");
        std::fs::write(&r, "inherit = [\"p.toml\"]\n[package]\nversion = \"2\"\n").unwrap();
        let l = load(&r).unwrap();
        assert_eq!(l.tree.get_str("file"), None);
        assert_eq!(
            l.tree.get_str("package.file"),
            Some(&Value::Str("x-2".into()))
        );
        assert!(l.tree.get_str("profile.command").is_none());
        assert!(l.recorded.is_empty());
    }

    #[test]
    fn ftree_specs() {
        assert_eq!(split_ftree("/etc/other.ct"), ("/etc/other.ct", None));
        assert_eq!(
            split_ftree("/etc/other.ct/root.branch"),
            ("/etc/other.ct", Some("root.branch"))
        );
        assert_eq!(split_ftree("rel/x.toml/a"), ("rel/x.toml", Some("a")));
    }
}
