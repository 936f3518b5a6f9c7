//! A replay's plan: its inputs read — a directory of recipes or profiles (in file-name order,
//! which is the book's order for `upm book import`'s `NNNN-NAME.toml`), a host profile (its
//! packages in its order, with the keys it sets on them), or recipe files — every recipe
//! loaded, ordered by dependencies, and cut by `--from` and `--only`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::ctree::{self, Key, Value};
use crate::ctx::Ctx;
use crate::db::ReplayStep;
use crate::profile::hostfile::{self, HostProfile};
use crate::recipe;

use super::order::{self, Level, Node};
use super::{Error, Options, io};

/// One package to replay.
#[derive(Debug, Clone)]
pub struct Planned {
    pub name: String,
    pub version: String,
    pub recipe: PathBuf,
    /// Keys a host profile sets on it.
    pub overrides: Vec<(Key, Value)>,
    pub depends: Vec<(String, Level)>,
    /// Its place in the book's or host profile's order.
    pub rank: i64,
}

impl Planned {
    /// The pending step of the `i`th package of the order.
    pub fn step(&self, i: usize) -> ReplayStep {
        ReplayStep {
            seq: i as i64 + 1,
            name: self.name.clone(),
            version: self.version.clone(),
            recipe: self.recipe.clone(),
            overrides: overrides_json(&self.overrides),
            state: "pending".into(),
            phase: None,
            note: None,
            seconds: None,
            phase_ms: None,
            build_bytes: None,
            installed_bytes: None,
        }
    }
}

fn overrides_json(o: &[(Key, Value)]) -> String {
    let v: Vec<(String, &Value)> = o.iter().map(|(k, v)| (k.to_string(), v)).collect();
    serde_json::to_string(&v).expect("values serialize")
}

/// The overrides a step stored.
pub fn overrides_of(json: &str) -> Vec<(Key, Value)> {
    let v: Vec<(String, serde_json::Value)> = serde_json::from_str(json).unwrap_or_default();
    v.into_iter()
        .filter_map(|(k, v)| {
            let key = Key::parse(&k).ok()?;
            let value = match v {
                serde_json::Value::String(s) => Value::Str(s),
                serde_json::Value::Bool(b) => Value::Bool(b),
                serde_json::Value::Number(n) => Value::Int(n.as_i64()?),
                serde_json::Value::Array(a) => Value::List(
                    a.into_iter()
                        .filter_map(|x| x.as_str().map(String::from))
                        .collect(),
                ),
                _ => return None,
            };
            Some((key, value))
        })
        .collect()
}

/// A recipe's dependencies with their levels: `package.depends` and `depends.required` are
/// required; `depends.recommended`, `depends.optional`, `depends.runtime` as named. A
/// package named at two levels counts at the stronger.
pub fn depends(loaded: &recipe::Loaded) -> Vec<(String, Level)> {
    let mut out: BTreeMap<String, Level> = BTreeMap::new();
    let mut add = |name: &str, level: Level| {
        let e = out.entry(name.to_string()).or_insert(level);
        *e = (*e).min(level);
    };
    for d in &loaded.recipe.package.depends {
        add(d, Level::Required);
    }
    for level in [
        Level::Required,
        Level::Recommended,
        Level::Optional,
        Level::Runtime,
    ] {
        let key = Key::new(vec!["depends".into(), level.name().into()]);
        match loaded.tree.get(&key) {
            Some(Value::List(l)) => l.iter().for_each(|d| add(d, level)),
            Some(Value::Str(s)) => s.split_whitespace().for_each(|d| add(d, level)),
            _ => {}
        }
    }
    out.into_iter().collect()
}

/// The plan of a replay. See the module documentation.
pub fn plan(ctx: &Ctx, opts: &Options) -> Result<Vec<Planned>, Error> {
    if opts.inputs.is_empty() {
        return Err(Error::ReplayEmpty);
    }
    let mut planned: Vec<Planned> = Vec::new();
    for input in &opts.inputs {
        for (path, overrides) in files(ctx, input)? {
            let mut p = load(&path, overrides)?;
            if let Some(other) = planned.iter().find(|q| q.name == p.name) {
                return Err(Error::ReplayTwice {
                    name: p.name,
                    a: other.recipe.clone(),
                    b: path,
                });
            }
            if p.rank == i64::MIN {
                p.rank = planned.len() as i64;
            }
            planned.push(p);
        }
    }
    let nodes: Vec<Node> = planned
        .iter()
        .map(|p| Node {
            name: p.name.clone(),
            rank: p.rank,
            depends: p.depends.clone(),
        })
        .collect();
    let order = order::order(&nodes)?;
    let mut slots: Vec<Option<Planned>> = planned.into_iter().map(Some).collect();
    let mut ordered: Vec<Planned> = order
        .into_iter()
        .map(|i| slots[i].take().expect("each index once"))
        .collect();
    let known = ordered
        .iter()
        .map(|p| p.name.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    if let Some(from) = &opts.from {
        let Some(at) = ordered.iter().position(|p| &p.name == from) else {
            return Err(Error::ReplayUnknown {
                name: from.clone(),
                known: known.clone(),
            });
        };
        ordered.drain(..at);
    }
    if !opts.only.is_empty() {
        if let Some(n) = opts
            .only
            .iter()
            .find(|n| !ordered.iter().any(|p| &p.name == *n))
        {
            return Err(Error::ReplayUnknown {
                name: n.clone(),
                known: known.clone(),
            });
        }
        ordered.retain(|p| opts.only.contains(&p.name));
    }
    Ok(ordered)
}

/// A recipe file, with the keys a host profile sets on it.
type Input = (PathBuf, Vec<(Key, Value)>);

/// The recipe files of one input, with the keys a host profile sets on each.
fn files(ctx: &Ctx, input: &Path) -> Result<Vec<Input>, Error> {
    let bad = |why: &str| Error::ReplayInput {
        path: input.to_path_buf(),
        why: why.into(),
    };
    if input.is_dir() {
        if input.join(hostfile::FILE).is_file() {
            return host(ctx, &hostfile::read(input)?);
        }
        let mut out = Vec::new();
        for e in std::fs::read_dir(input).map_err(io(input))? {
            let p = e.map_err(io(input))?.path();
            let recipe_like = p.extension().is_some_and(|x| x == "toml" || x == "ct");
            if recipe_like && p.is_file() {
                out.push(p);
            }
        }
        if out.is_empty() {
            return Err(bad(
                "no recipes here (*.toml or *.ct files) and no host.toml; give a directory of \
                 recipes or profiles, or a host profile",
            ));
        }
        out.sort();
        return Ok(out.into_iter().map(|p| (p, Vec::new())).collect());
    }
    if !input.is_file() {
        return Err(bad("no such file or directory"));
    }
    let tree = ctree::parse_file(input).map_err(recipe::Error::from)?;
    if hostfile::is_host(&tree) {
        return host(ctx, &hostfile::read(input)?);
    }
    Ok(vec![(input.to_path_buf(), Vec::new())])
}

/// The recipes of a host profile's packages, in its order.
fn host(ctx: &Ctx, h: &HostProfile) -> Result<Vec<Input>, Error> {
    let mut out = Vec::new();
    for p in &h.packages {
        let file = match h.recipe_of(&p.name) {
            Some(f) => f,
            None => match super::install::find_recipe(ctx, &ctx.cfg, &p.name) {
                Ok(f) => f,
                Err(_) => {
                    return Err(Error::ReplayInput {
                        path: h.file.clone(),
                        why: format!(
                            "no recipe for its package {}: looked for {0}.profile.toml, {0}.toml \
                             and {0}.ct in {} and the recipe directories of etc/upm/upm.toml; \
                             add one, or a directory holding it to host.recipes",
                            p.name,
                            h.searched()
                        ),
                    });
                }
            },
        };
        out.push((file, p.overrides.clone()));
    }
    Ok(out)
}

fn load(path: &Path, overrides: Vec<(Key, Value)>) -> Result<Planned, Error> {
    let loaded = recipe::load_with(path, &overrides)?;
    let rank = match loaded.tree.get_str("book.order") {
        Some(Value::Int(i)) => *i,
        _ => i64::MIN,
    };
    Ok(Planned {
        name: loaded.recipe.package.name.clone(),
        version: loaded.recipe.package.version.clone(),
        recipe: path.to_path_buf(),
        depends: depends(&loaded),
        overrides,
        rank,
    })
}
