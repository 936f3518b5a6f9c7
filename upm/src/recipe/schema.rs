//! The keys a recipe may have, their types, and the conversion of a resolved tree into a
//! [`Recipe`], collecting every error (file:line) and warning (unknown keys, with suggestions).

use std::path::Path;

use super::{Diagnostic, Options, Package, Phase, Recipe, Root, Source};
use crate::ctree::{Entry, Key, Loc, Tree, Value};
use crate::suggest;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Str,
    List,
    Int,
    Bool,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Str => "a string",
            Kind::List => "a list of strings",
            Kind::Int => "an integer",
            Kind::Bool => "true or false",
        }
    }

    fn accepts(self, v: &Value) -> bool {
        matches!(
            (self, v),
            (Kind::Str, Value::Str(_))
                | (Kind::List, Value::List(_))
                | (Kind::Int, Value::Int(_))
                | (Kind::Bool, Value::Bool(_))
        )
    }
}

const SCHEMA: &[(&str, Kind)] = &[
    ("package.name", Kind::Str),
    ("package.version", Kind::Str),
    ("package.description", Kind::Str),
    ("package.depends", Kind::List),
    ("package.build_depends", Kind::List),
    ("package.config", Kind::List),
    ("source.file", Kind::Str),
    ("source.url", Kind::Str),
    ("source.md5", Kind::Str),
    ("source.sha256", Kind::Str),
    ("source.patches", Kind::List),
    ("source.dir", Kind::Str),
    ("source.extra", Kind::List),
    ("depends.required", Kind::List),
    ("depends.recommended", Kind::List),
    ("depends.optional", Kind::List),
    ("depends.runtime", Kind::List),
    ("book.name", Kind::Str),
    ("book.chapter", Kind::Int),
    ("book.section", Kind::Str),
    ("book.order", Kind::Int),
    ("book.page", Kind::Str),
    ("phases.prepare", Kind::Str),
    ("phases.configure", Kind::Str),
    ("phases.compile", Kind::Str),
    ("phases.check", Kind::Str),
    ("phases.install", Kind::Str),
    ("root.commands", Kind::Str),
    ("root.allow", Kind::List),
    ("options.jobs", Kind::Int),
    ("options.check_fatal", Kind::Bool),
    ("options.shell", Kind::Str),
];

/// Every key a recipe may set (besides `env.NAME`, `source.md5sums.FILE` and anything under
/// `vars.`).
pub fn known_keys() -> impl Iterator<Item = &'static str> {
    SCHEMA.iter().map(|(k, _)| *k)
}

/// An action only root may do, which a recipe may allow upm to apply after the install.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RootStep {
    /// Give a file to root or another user (`chown root`).
    Chown,
    /// Give a file to another group (`chgrp`).
    Chgrp,
    /// Set the setuid bit.
    Setuid,
    /// Set the setgid bit.
    Setgid,
    /// Rebuild the dynamic linker cache.
    Ldconfig,
    /// Create device nodes.
    Mknod,
    /// Add the package's info pages to the shared info `dir` file.
    InstallInfo,
}

impl RootStep {
    pub const ALL: [RootStep; 7] = [
        RootStep::Chown,
        RootStep::Chgrp,
        RootStep::Setuid,
        RootStep::Setgid,
        RootStep::Ldconfig,
        RootStep::Mknod,
        RootStep::InstallInfo,
    ];

    pub fn name(self) -> &'static str {
        match self {
            RootStep::Chown => "chown",
            RootStep::Chgrp => "chgrp",
            RootStep::Setuid => "setuid",
            RootStep::Setgid => "setgid",
            RootStep::Ldconfig => "ldconfig",
            RootStep::Mknod => "mknod",
            RootStep::InstallInfo => "install-info",
        }
    }

    pub fn from_name(s: &str) -> Option<RootStep> {
        RootStep::ALL.into_iter().find(|r| r.name() == s)
    }
}

struct Checker<'a> {
    tree: &'a Tree,
    file_loc: Loc,
    errors: Vec<Diagnostic>,
}

impl Checker<'_> {
    fn err(&mut self, loc: &Loc, message: String) {
        self.errors.push(Diagnostic {
            loc: loc.clone(),
            message,
        });
    }

    fn entry(&self, key: &str) -> Option<&Entry> {
        Key::parse(key).ok().and_then(|k| self.tree.entry(&k))
    }

    fn string(&self, key: &str) -> Option<String> {
        match self.entry(key).map(|e| &e.value) {
            Some(Value::Str(s)) => Some(s.clone()),
            _ => None,
        }
    }

    fn list(&self, key: &str) -> Vec<String> {
        match self.entry(key).map(|e| &e.value) {
            Some(Value::List(l)) => l.clone(),
            _ => Vec::new(),
        }
    }

    /// Where to point for a missing key: the first key of its table, or the file.
    fn near(&self, key: &str) -> Loc {
        let table = key.split('.').next().unwrap_or(key);
        self.tree
            .entries()
            .iter()
            .find(|e| e.key.first() == Some(table))
            .map_or_else(|| self.file_loc.clone(), |e| e.loc.clone())
    }

    fn required(&mut self, key: &str) -> String {
        match self.string(key) {
            Some(s) if !s.trim().is_empty() => s,
            Some(_) => {
                let loc = self
                    .entry(key)
                    .map(|e| e.loc.clone())
                    .unwrap_or_else(|| self.near(key));
                self.err(&loc, format!("`{key}` must not be empty"));
                String::new()
            }
            None if self.entry(key).is_some() => String::new(), // type error already reported
            None => {
                let loc = self.near(key);
                self.err(&loc, format!("missing required key `{key}`"));
                String::new()
            }
        }
    }

    fn hex(&mut self, key: &str, len: usize) -> Option<String> {
        let s = self.string(key)?;
        let ok = s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
        if !ok {
            let loc = self
                .entry(key)
                .map(|e| e.loc.clone())
                .unwrap_or_else(|| self.near(key));
            self.err(
                &loc,
                format!("`{key}` must be {len} hexadecimal digits, found {s:?}"),
            );
        }
        Some(s.to_ascii_lowercase())
    }
}

/// The shell `options.shell` names: `bash` and `sh` in `/bin`, or an absolute path.
fn shell_path(s: &str) -> Option<String> {
    match s {
        "bash" | "sh" => Some(format!("/bin/{s}")),
        _ if s.starts_with('/') && s.len() > 1 && !s.contains(char::is_whitespace) => {
            Some(s.to_string())
        }
        _ => None,
    }
}

/// A package name must be usable as a Unix user and group name.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && name.len() <= 32
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Check the resolved tree of `path` and build the recipe. The recipe is meaningful only when
/// the returned error list is empty.
pub fn typed(
    path: &Path,
    tree: &Tree,
    warnings: &mut Vec<Diagnostic>,
) -> (Recipe, Vec<Diagnostic>) {
    let file_loc = Loc::file(path);
    let mut c = Checker {
        tree,
        file_loc,
        errors: Vec::new(),
    };

    // Every key: known and well typed, or free-form (env, vars), or unknown (warn).
    let mut env = Vec::new();
    for e in tree.entries() {
        let text = e.key.to_string();
        if let Some((_, kind)) = SCHEMA.iter().find(|(k, _)| *k == text) {
            if !kind.accepts(&e.value) {
                c.err(
                    &e.loc,
                    format!(
                        "`{text}` must be {}, found {}",
                        kind.name(),
                        e.value.type_name()
                    ),
                );
            }
            continue;
        }
        match e.key.first() {
            Some("vars") => continue,
            Some("source") if e.key.len() == 3 && e.key.segments()[1] == "md5sums" => {
                // The md5 of a patch or extra archive, by file name (as the books give it).
                let ok = matches!(&e.value, Value::Str(s)
                    if s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()));
                if !ok {
                    c.err(
                        &e.loc,
                        format!("`{text}` must be 32 hexadecimal digits (an md5 sum)"),
                    );
                }
                continue;
            }
            Some("env") if e.key.len() == 2 => {
                let name = &e.key.segments()[1];
                let valid = name
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !valid {
                    c.err(
                        &e.loc,
                        format!("`{text}`: {name:?} is not an environment variable name"),
                    );
                } else {
                    env.push((name.clone(), e.value.as_text()));
                }
                continue;
            }
            _ => {}
        }
        let hint = suggest::closest(&text, known_keys())
            .map(|s| format!("; did you mean `{s}`?"))
            .unwrap_or_else(|| {
                "; known tables are package, source, depends, book, phases, root, env, vars, options".into()
            });
        warnings.push(Diagnostic {
            loc: e.loc.clone(),
            message: format!("unknown key `{text}`{hint}"),
        });
    }

    let name = c.required("package.name");
    if !name.is_empty() && !valid_name(&name) {
        let loc = c
            .entry("package.name")
            .map(|e| e.loc.clone())
            .unwrap_or_else(|| c.near("package"));
        c.err(
            &loc,
            format!(
                "package name {name:?} cannot be a user name: use letters, digits, '_' and '-', \
                 starting with a letter, at most 32 characters"
            ),
        );
    }
    let package = Package {
        name,
        version: c.required("package.version"),
        description: c.string("package.description"),
        depends: c.list("package.depends"),
        build_depends: c.list("package.build_depends"),
        config: c.list("package.config"),
    };
    for f in &package.config {
        if !f.starts_with('/') || f.split('/').any(|part| part == "..") {
            let loc = c
                .entry("package.config")
                .map(|e| e.loc.clone())
                .unwrap_or_else(|| c.near("package"));
            c.err(
                &loc,
                format!(
                    "package.config: {f:?} must be an absolute path inside the root (no `..`), \
                     such as \"/etc/{}.conf\"",
                    package.name
                ),
            );
        }
    }
    let source = Source {
        file: c.string("source.file"),
        url: c.string("source.url"),
        md5: c.hex("source.md5", 32),
        sha256: c.hex("source.sha256", 64),
        patches: c.list("source.patches"),
        extra: c.list("source.extra"),
        md5sums: tree
            .entries()
            .iter()
            .filter(|e| e.key.len() == 3 && e.key.first() == Some("source"))
            .filter(|e| e.key.segments()[1] == "md5sums")
            .filter_map(|e| match &e.value {
                Value::Str(s) => Some((e.key.segments()[2].clone(), s.to_ascii_lowercase())),
                _ => None,
            })
            .collect(),
        dir: c.string("source.dir"),
    };
    if (source.md5.is_some() || source.sha256.is_some() || !source.patches.is_empty())
        && source.file.is_none()
        && source.url.is_none()
    {
        let loc = c.near("source");
        c.err(
            &loc,
            "a checksum or patches are given but no `source.file` or `source.url`".into(),
        );
    }

    let mut phases = Vec::new();
    for p in Phase::ALL {
        if let Some(s) = c.string(&format!("phases.{}", p.name()))
            && !s.trim().is_empty()
        {
            phases.push((p, s));
        }
    }
    if !phases.iter().any(|(p, _)| *p == Phase::Install) {
        // A typo (`phases.instal`) would otherwise make an empty package.
        let loc = c.near("phases");
        c.err(
            &loc,
            "the recipe has no install phase: set `phases.install` to the commands that install \
             the package (`make install`)"
                .into(),
        );
    }

    let mut allow = Vec::new();
    if let Some(e) = c.entry("root.allow").cloned()
        && let Value::List(items) = &e.value
    {
        for item in items {
            match RootStep::from_name(item) {
                Some(s) => allow.push(s),
                None => {
                    let names = RootStep::ALL.map(RootStep::name);
                    let hint = suggest::closest(item, names)
                        .map(|s| format!("did you mean {s:?}? "))
                        .unwrap_or_default();
                    c.err(
                        &e.loc,
                        format!(
                            "unknown root step {item:?} in `root.allow`; {hint}known: {}",
                            names.join(", ")
                        ),
                    );
                }
            }
        }
    }
    let root = Root {
        commands: c.string("root.commands").filter(|s| !s.trim().is_empty()),
        allow,
    };

    let mut options = Options::default();
    if let Some(e) = c.entry("options.jobs").cloned()
        && let Value::Int(j) = e.value
    {
        if (1..=1024).contains(&j) {
            options.jobs = Some(j as u32);
        } else {
            c.err(
                &e.loc,
                format!("`options.jobs` must be between 1 and 1024, found {j}"),
            );
        }
    }
    if let Some(Value::Bool(b)) = c.entry("options.check_fatal").map(|e| &e.value) {
        options.check_fatal = *b;
    }
    if let Some(e) = c.entry("options.shell").cloned()
        && let Value::Str(sh) = &e.value
    {
        match shell_path(sh) {
            Some(p) => options.shell = Some(p),
            None => c.err(
                &e.loc,
                format!(
                    "`options.shell` must be \"bash\", \"sh\" or an absolute path to a shell, \
                     found {sh:?}"
                ),
            ),
        }
    }

    let recipe = Recipe {
        path: path.to_path_buf(),
        package,
        source,
        phases,
        root,
        env,
        options,
    };
    (recipe, c.errors)
}
