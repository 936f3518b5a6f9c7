//! The typed view of a recipe: what to build and how. A recipe is a ctree (TOML or `.ct`) whose
//! variables and `inherit` are resolved by [`crate::ctree`]; this module checks its keys and
//! types, with file:line messages and "did you mean" suggestions for unknown keys, and never
//! runs anything.
//!
//! ```toml
//! inherit = ["templates/autotools.toml"]
//! [package]
//! name = "zlib"
//! version = "1.3.1"
//! [source]
//! file = "zlib-${package.version}.tar.gz"
//! md5 = "9855b6d802d7fe5b7bd5b196a2271655"
//! ```

mod schema;

use std::fmt;
use std::path::{Path, PathBuf};

use crate::ctree::{self, Loc, Tree, Value};
use crate::pathtext::quoted;

pub use schema::{RootStep, known_keys, valid_name};

/// The build phases, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    Prepare,
    Configure,
    Compile,
    Check,
    Install,
}

impl Phase {
    pub const ALL: [Phase; 5] = [
        Phase::Prepare,
        Phase::Configure,
        Phase::Compile,
        Phase::Check,
        Phase::Install,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Phase::Prepare => "prepare",
            Phase::Configure => "configure",
            Phase::Compile => "compile",
            Phase::Check => "check",
            Phase::Install => "install",
        }
    }

    pub fn from_name(name: &str) -> Option<Phase> {
        Phase::ALL.into_iter().find(|p| p.name() == name)
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Package {
    pub name: String,
    pub version: String,
    pub description: Option<String>,
    pub depends: Vec<String>,
    pub build_depends: Vec<String>,
    /// Configuration files besides those under `/etc` (absolute paths): an upgrade keeps a
    /// changed one and writes the new one beside it as `FILE.upmnew`.
    pub config: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Source {
    pub file: Option<String>,
    pub url: Option<String>,
    pub md5: Option<String>,
    pub sha256: Option<String>,
    pub patches: Vec<String>,
    /// Other archives the commands take from beside the source (`tar -xf ../x.tar.xz`).
    pub extra: Vec<String>,
    /// The md5 of a patch or extra archive, by file name (`source.md5sums."FILE"`).
    pub md5sums: Vec<(String, String)>,
    /// A local directory (relative to the recipe) copied in place of an archive, for
    /// packages developed next to their recipe.
    pub dir: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Root {
    /// Shell commands run as root after the install phase.
    pub commands: Option<String>,
    /// The root steps recorded during the install that upm may apply.
    pub allow: Vec<RootStep>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Options {
    /// Parallel jobs for make (`MAKEFLAGS=-jN`); `None` means the number of CPUs.
    pub jobs: Option<u32>,
    /// Whether a failing check phase stops the build (default: yes).
    pub check_fatal: bool,
    /// The shell the phases run under (an absolute path inside the root); `None`: bash when
    /// the root has `/bin/bash`, `sh` otherwise.
    pub shell: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            jobs: None,
            check_fatal: true,
            shell: None,
        }
    }
}

/// A checked recipe. Serialized (`upm recipe show --json`) with `phases` and `env` as
/// objects in run and file order.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Recipe {
    #[serde(serialize_with = "path_text")]
    pub path: PathBuf,
    pub package: Package,
    pub source: Source,
    /// The phase scripts present, in run order; an empty script is skipped.
    #[serde(serialize_with = "ordered_map")]
    pub phases: Vec<(Phase, String)>,
    pub root: Root,
    /// Extra environment for the phases, in file order.
    #[serde(serialize_with = "ordered_map")]
    pub env: Vec<(String, String)>,
    pub options: Options,
}

fn path_text<S: serde::Serializer>(p: &Path, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&crate::pathtext::text(p))
}

fn ordered_map<S: serde::Serializer, K: fmt::Display>(
    pairs: &[(K, String)],
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_map(pairs.iter().map(|(k, v)| (k.to_string(), v)))
}

impl Recipe {
    pub fn phase(&self, p: Phase) -> Option<&str> {
        self.phases
            .iter()
            .find(|(q, _)| *q == p)
            .map(|(_, s)| s.as_str())
    }
}

/// A message about a place in a recipe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub loc: Loc,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.loc, self.message)
    }
}

/// What checking a recipe found.
#[derive(Debug)]
pub struct Report {
    /// The recipe, when there were no errors.
    pub recipe: Option<Recipe>,
    /// The resolved tree, when the file loaded (without recorded data).
    pub tree: Option<Tree>,
    /// The tree as written, when the file loaded: templates merged, `${...}` references kept,
    /// without recorded data (what a profile records as its recipe).
    pub written: Option<Tree>,
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Tree(#[from] ctree::Error),
    #[error("{} is not a valid recipe:\n{}", quoted(&path), errors.iter().map(|e| format!("  {e}")).collect::<Vec<_>>().join("\n"))]
    Invalid {
        path: PathBuf,
        errors: Vec<Diagnostic>,
    },
}

/// Load and check a recipe, collecting every error and warning.
pub fn check(path: &Path) -> Report {
    check_with(path, &[])
}

/// [`check`], with keys set from outside the file (`upm install --set vars.prefix=/usr/local`)
/// before references are resolved, so everything that refers to them follows.
pub fn check_with(path: &Path, overrides: &[(ctree::Key, Value)]) -> Report {
    let loaded = match ctree::load_with(path, overrides) {
        Ok(l) => l,
        Err(e) => {
            let loc = e.loc().cloned().unwrap_or_else(|| Loc::file(path));
            let message = match &e {
                ctree::Error::At { msg, .. } => msg.clone(),
                other => other.to_string(),
            };
            return Report {
                recipe: None,
                tree: None,
                written: None,
                errors: vec![Diagnostic { loc, message }],
                warnings: Vec::new(),
            };
        }
    };
    // Recorded data (a profile's commands and manifest) is not part of the recipe.
    let recorded = |k: &ctree::Key| loaded.is_recorded(k);
    let tree = loaded.tree.without(recorded);
    let written = loaded.raw.without(recorded);
    let mut warnings: Vec<Diagnostic> = loaded
        .warnings
        .iter()
        .map(|w| Diagnostic {
            loc: w.loc.clone(),
            message: w.message.clone(),
        })
        .collect();
    let (recipe, errors) = schema::typed(path, &tree, &mut warnings);
    Report {
        recipe: errors.is_empty().then_some(recipe),
        tree: Some(tree),
        written: Some(written),
        errors,
        warnings,
    }
}

/// A recipe that loaded without errors.
#[derive(Debug)]
pub struct Loaded {
    pub recipe: Recipe,
    /// The resolved tree it was read from.
    pub tree: Tree,
    /// The tree as written: templates merged, references kept (what a profile records, so a
    /// recipe inheriting the profile with another `package.version` follows it).
    pub written: Tree,
    pub warnings: Vec<Diagnostic>,
}

/// Load a recipe, failing on any error.
pub fn load(path: &Path) -> Result<Loaded, Error> {
    load_with(path, &[])
}

/// [`load`] with overrides, as [`check_with`].
pub fn load_with(path: &Path, overrides: &[(ctree::Key, Value)]) -> Result<Loaded, Error> {
    let report = check_with(path, overrides);
    match (report.recipe, report.tree, report.written) {
        (Some(recipe), Some(tree), Some(written)) => Ok(Loaded {
            recipe,
            tree,
            written,
            warnings: report.warnings,
        }),
        _ => Err(Error::Invalid {
            path: path.to_path_buf(),
            errors: report.errors,
        }),
    }
}

/// A string value, for code that reads optional recipe keys straight from a tree.
pub fn tree_str<'a>(tree: &'a Tree, key: &str) -> Option<&'a str> {
    match tree.get_str(key) {
        Some(Value::Str(s)) => Some(s),
        _ => None,
    }
}
