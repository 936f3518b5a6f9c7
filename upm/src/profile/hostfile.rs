//! Host profiles: what a host is, as a file a git repository can share — its packages in
//! build order (`host.packages`, plus `host.add` in a profile that `inherit`s another), the
//! recipe directories they are found in (`host.recipes`, relative to the file), the versions
//! and recipe hashes it expects (`versions.PKG`, `hashes.PKG`; `upm profile export` writes
//! them) and recipe keys it sets per package (`set.PKG.KEY = VALUE`). [`export`] writes this
//! host's: every installed package's profile beside a `host.toml`; [`compare`] says how this
//! host differs from one. The text is stable — sorted where order does not matter, no
//! timestamps — so it diffs well.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::Error;
use crate::ctree::{self, Key, Tree, Value};
use crate::ctx::Ctx;
use crate::db::{Db, State};
use crate::fsutil::{io, write_atomic};
use crate::pathtext::quoted;

/// The file a host profile directory holds.
pub const FILE: &str = "host.toml";

/// One package of a host profile.
#[derive(Debug, Clone, PartialEq)]
pub struct HostPackage {
    pub name: String,
    pub version: Option<String>,
    pub hash: Option<String>,
    /// Recipe keys the host sets (`set.PKG.*`).
    pub overrides: Vec<(Key, Value)>,
}

/// A host profile read from its file, inheritance resolved.
#[derive(Debug, Clone)]
pub struct HostProfile {
    pub file: PathBuf,
    pub name: String,
    /// In the host's order.
    pub packages: Vec<HostPackage>,
    /// Where its recipes are: the file's directory first, then `host.recipes`.
    pub recipe_dirs: Vec<PathBuf>,
}

/// Whether a tree is a host profile (it has a `host` branch).
pub fn is_host(tree: &Tree) -> bool {
    tree.is_branch(&Key::new(vec!["host".into()]))
}

fn list(tree: &Tree, key: &str, file: &Path) -> Result<Vec<String>, Error> {
    match tree.get_str(key) {
        None => Ok(Vec::new()),
        Some(Value::List(l)) => Ok(l.clone()),
        Some(Value::Str(s)) => Ok(vec![s.clone()]),
        Some(v) => Err(bad(
            file,
            format!("{key} must be a list of strings, not a {}", v.type_name()),
        )),
    }
}

fn bad(file: &Path, why: String) -> Error {
    Error::NotProfile {
        path: file.to_path_buf(),
        why: format!("a host profile: {why}"),
    }
}

/// Read a host profile: a `host.toml` file, or a directory holding one.
pub fn read(path: &Path) -> Result<HostProfile, Error> {
    let file = if path.is_dir() {
        path.join(FILE)
    } else {
        path.to_path_buf()
    };
    let tree = ctree::load(&file)?.tree;
    if !is_host(&tree) {
        return Err(bad(&file, "it has no [host] table".into()));
    }
    let dir = file.parent().unwrap_or(Path::new(".")).to_path_buf();
    let name = crate::recipe::tree_str(&tree, "host.name")
        .unwrap_or("host")
        .to_string();
    let mut names = list(&tree, "host.packages", &file)?;
    for n in list(&tree, "host.add", &file)? {
        if !names.contains(&n) {
            names.push(n);
        }
    }
    let remove = list(&tree, "host.remove", &file)?;
    names.retain(|n| !remove.contains(n));
    let mut seen = BTreeSet::new();
    for n in &names {
        if !seen.insert(n) {
            return Err(bad(&file, format!("{n} is listed twice in host.packages")));
        }
    }
    let text = |a: &str, b: &str| match tree.get(&Key::new(vec![a.into(), b.into()])) {
        Some(Value::Str(s)) => Some(s.clone()),
        _ => None,
    };
    let packages = names
        .into_iter()
        .map(|name| {
            let prefix = Key::new(vec!["set".into(), name.clone()]);
            let overrides = tree
                .subtree(&prefix)
                .entries()
                .iter()
                .map(|e| (override_key(&e.key), e.value.clone()))
                .collect();
            HostPackage {
                version: text("versions", &name),
                hash: text("hashes", &name),
                overrides,
                name,
            }
        })
        .collect();
    let mut recipe_dirs = vec![dir.clone()];
    recipe_dirs.extend(
        list(&tree, "host.recipes", &file)?
            .into_iter()
            .map(|d| dir.join(d)),
    );
    Ok(HostProfile {
        file,
        name,
        packages,
        recipe_dirs,
    })
}

/// The recipe key a `set.PKG.*` entry sets: `"vars.prefix" = …` (one quoted segment, as
/// `--set` writes it) and `vars.prefix = …` both set `vars.prefix`.
fn override_key(k: &Key) -> Key {
    match k.segments() {
        [one] if one.contains('.') => Key::parse(one).unwrap_or_else(|_| k.clone()),
        _ => k.clone(),
    }
}

/// What `upm profile export` wrote.
#[derive(Debug, Clone, Serialize)]
pub struct Exported {
    pub host: PathBuf,
    /// One per package, in the host's order.
    pub profiles: Vec<PathBuf>,
    /// Profiles of packages no longer installed, removed from the directory.
    pub removed: Vec<PathBuf>,
}

/// An installed package as a host profile lists it.
struct Listed {
    name: String,
    version: String,
    hash: String,
    text: String,
}

/// Write every installed package's profile (`NAME.profile.toml`) and the host profile
/// (`host.toml`) into `dir` (a host path), in install order; profiles of packages no longer
/// installed are removed, so the directory is this host.
pub fn export(ctx: &Ctx, db: &Db, dir: &Path) -> Result<Exported, Error> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut pkgs = db.packages()?;
    pkgs.retain(|p| p.state == State::Installed);
    pkgs.sort_by_key(|p| p.id);
    let mut listed = Vec::new();
    for p in &pkgs {
        let (_, text) = super::text_of(db, &p.name)?;
        listed.push(Listed {
            name: p.name.clone(),
            version: p.version.clone(),
            hash: super::hash_of(db, &p.name)?,
            text,
        });
    }
    let mut profiles = Vec::new();
    for l in &listed {
        let f = dir.join(format!("{}.profile.toml", l.name));
        write_atomic(&f, l.text.as_bytes()).map_err(io(&f))?;
        profiles.push(f);
    }
    let keep: BTreeSet<PathBuf> = profiles.iter().cloned().collect();
    let mut removed = Vec::new();
    for e in std::fs::read_dir(dir).map_err(io(dir))?.flatten() {
        let p = e.path();
        if p.to_string_lossy().ends_with(".profile.toml") && !keep.contains(&p) {
            std::fs::remove_file(&p).map_err(io(&p))?;
            removed.push(p);
        }
    }
    removed.sort();
    let host = dir.join(FILE);
    let name = std::fs::read_to_string(ctx.root.join("etc/hostname"))
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "host".into());
    write_atomic(&host, render(&name, &listed).as_bytes()).map_err(io(&host))?;
    Ok(Exported {
        host,
        profiles,
        removed,
    })
}

fn render(name: &str, listed: &[Listed]) -> String {
    let mut t = Tree::new();
    let set = |t: &mut Tree, k: Vec<&str>, v: Value| {
        t.insert(ctree::Entry {
            key: Key::new(k.into_iter().map(String::from).collect()),
            value: v,
            loc: ctree::Loc::none(),
            literal: true,
        })
    };
    set(&mut t, vec!["host", "name"], Value::Str(name.into()));
    set(
        &mut t,
        vec!["host", "packages"],
        Value::List(listed.iter().map(|l| l.name.clone()).collect()),
    );
    for l in listed {
        set(
            &mut t,
            vec!["versions", &l.name],
            Value::Str(l.version.clone()),
        );
    }
    for l in listed {
        set(&mut t, vec!["hashes", &l.name], Value::Str(l.hash.clone()));
    }
    format!(
        "# A host profile written by `upm profile export`: this host's packages in install order,\n\
         # with the version and recipe hash of each; their profiles are beside it. `upm replay DIR`\n\
         # rebuilds the same system; `upm profile diff DIR` says how a host differs from it.\n{}",
        t.to_toml()
    )
}

/// How this host differs from a host profile, for one package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostChange {
    pub name: String,
    /// `missing` (in the profile, not installed), `extra` (installed, not in the profile),
    /// `version` or `recipe` (installed from another version or recipe hash).
    pub change: &'static str,
    /// What this host has.
    pub here: Option<String>,
    /// What the host profile says.
    pub profile: Option<String>,
}

/// How the packages installed in `db` differ from the host profile `host`.
pub fn compare(db: &Db, host: &HostProfile) -> Result<Vec<HostChange>, Error> {
    let installed: BTreeMap<String, String> = db
        .packages()?
        .into_iter()
        .filter(|p| p.state == State::Installed)
        .map(|p| (p.name, p.version))
        .collect();
    let mut out = Vec::new();
    for p in &host.packages {
        let Some(version) = installed.get(&p.name) else {
            out.push(HostChange {
                name: p.name.clone(),
                change: "missing",
                here: None,
                profile: p.version.clone(),
            });
            continue;
        };
        if let Some(v) = &p.version
            && v != version
        {
            out.push(HostChange {
                name: p.name.clone(),
                change: "version",
                here: Some(version.clone()),
                profile: Some(v.clone()),
            });
            continue;
        }
        if let Some(h) = &p.hash {
            let here = super::hash_of(db, &p.name)?;
            if &here != h {
                out.push(HostChange {
                    name: p.name.clone(),
                    change: "recipe",
                    here: Some(here),
                    profile: Some(h.clone()),
                });
            }
        }
    }
    let listed: BTreeSet<&str> = host.packages.iter().map(|p| p.name.as_str()).collect();
    for (name, version) in &installed {
        if !listed.contains(name.as_str()) {
            out.push(HostChange {
                name: name.clone(),
                change: "extra",
                here: Some(version.clone()),
                profile: None,
            });
        }
    }
    Ok(out)
}

impl HostProfile {
    /// The file of a package's recipe: its exported profile, a recipe of its name in one of
    /// the recipe directories, or `None`.
    pub fn recipe_of(&self, name: &str) -> Option<PathBuf> {
        for d in &self.recipe_dirs {
            for f in [
                format!("{name}.profile.toml"),
                format!("{name}.toml"),
                format!("{name}.ct"),
            ] {
                let p = d.join(f);
                if p.is_file() {
                    return Some(p);
                }
            }
        }
        None
    }

    /// Where [`recipe_of`](Self::recipe_of) looked, for an error message.
    pub fn searched(&self) -> String {
        self.recipe_dirs
            .iter()
            .map(|d| quoted(d).to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}
