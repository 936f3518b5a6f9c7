//! upm's settings for one target root, read from `etc/upm/upm.toml` (a ctree, so `.ct` syntax
//! works there too): the install group and the package-user id range, the install directories,
//! which trees the watcher tracks during an install, the system files root tools keep (never a
//! package's), and where source archives are looked for.
//! A missing file means the defaults; `upm init` writes the defaults out so they can be edited.

use std::path::{Path, PathBuf};

use crate::ctree::{self, Key, Value};
use crate::pkguser::{Collision, Ids};

/// Where the settings live inside a root.
pub const FILE: &str = "etc/upm/upm.toml";

/// Install directories: root:install, mode 1775, modelled on the package-users hint's list.
pub const DEFAULT_INSTALL_DIRS: &[&str] = &[
    "/etc",
    "/opt",
    "/usr/bin",
    "/usr/sbin",
    "/usr/lib",
    "/usr/lib/pkgconfig",
    "/usr/libexec",
    "/usr/include",
    "/usr/share",
    "/usr/share/aclocal",
    "/usr/share/doc",
    "/usr/share/info",
    "/usr/share/locale",
    "/usr/share/man",
    "/usr/share/man/man1",
    "/usr/share/man/man2",
    "/usr/share/man/man3",
    "/usr/share/man/man4",
    "/usr/share/man/man5",
    "/usr/share/man/man6",
    "/usr/share/man/man7",
    "/usr/share/man/man8",
    "/usr/share/misc",
    "/usr/share/pkgconfig",
    "/usr/local/bin",
    "/usr/local/sbin",
    "/usr/local/lib",
    "/usr/local/lib/pkgconfig",
    "/usr/local/libexec",
    "/usr/local/include",
    "/usr/local/share",
    "/usr/local/share/aclocal",
    "/usr/local/share/doc",
    "/usr/local/share/info",
    "/usr/local/share/locale",
    "/usr/local/share/man",
    "/usr/local/share/man/man1",
    "/usr/local/share/man/man3",
    "/usr/local/share/man/man5",
    "/usr/local/share/man/man7",
    "/usr/local/share/man/man8",
    "/usr/local/share/pkgconfig",
    "/var/lib",
];

/// Trees the watcher follows during an install.
pub const DEFAULT_TRACK_ROOTS: &[&str] = &["/usr", "/etc", "/opt", "/var", "/srv"];

/// Parts of those trees that are never part of a package: build trees and homes, upm's own
/// bookkeeping, and what a running system scribbles on.
pub const DEFAULT_TRACK_EXCLUDE: &[&str] = &[
    "/usr/src",
    "/var/lib/upm",
    "/var/tmp",
    "/var/cache",
    "/var/log",
    "/var/run",
    "/var/lock",
    "/var/spool",
    "/etc/ld.so.cache",
];

/// Files the system's root tools keep up to date for every package — the linker cache and its
/// temporary file, the info `dir` files, shared caches: never claimed by a package, never left
/// owned by one. A `*` matches within one path component.
pub const DEFAULT_SYSTEM_FILES: &[&str] = &[
    "/etc/ld.so.cache",
    "/etc/ld.so.cache~",
    "/usr/share/info/dir",
    "/usr/share/info/dir.old",
    "/usr/local/share/info/dir",
    "/usr/local/share/info/dir.old",
    "/usr/share/icons/*/icon-theme.cache",
    "/usr/share/glib-2.0/schemas/gschemas.compiled",
    "/usr/share/mime/mime.cache",
];

/// Shared trees: an existing or new directory matching one of these (`*` matches within one
/// path component) becomes an install directory when a package needs to write into it, and
/// `upm init` makes the existing ones install directories.
pub const DEFAULT_INSTALL_PATTERNS: &[&str] = &[
    "/usr/share/locale/*",
    "/usr/share/locale/*/LC_MESSAGES",
    "/usr/share/man/*",
    "/usr/share/man/*/man*",
    "/usr/local/share/locale/*",
    "/usr/local/share/locale/*/LC_MESSAGES",
    "/usr/local/share/man/*",
    "/usr/local/share/man/*/man*",
    "/usr/lib/pkgconfig",
    "/usr/share/pkgconfig",
    "/usr/share/aclocal",
    "/usr/share/icons/hicolor/*/*",
];

/// Whether an install may take over existing files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replace {
    /// Files no installed package owns (temporary tools, a distribution's files) may be
    /// replaced; they are kept for `upm remove --restore`.
    Unowned,
    /// Nothing existing is replaced: such an install is refused before it writes anything.
    None,
}

pub const DEFAULT_SOURCE_DIRS: &[&str] = &["/sources"];

/// Where `upm install NAME` looks for `NAME.toml` (or `NAME.ct`).
pub const DEFAULT_RECIPE_DIRS: &[&str] = &["/etc/upm/recipes", "/usr/share/upm/recipes"];

#[derive(Debug, Clone)]
pub struct Config {
    /// The file the settings came from (it may not exist).
    pub path: PathBuf,
    pub ids: Ids,
    pub install_dirs: Vec<PathBuf>,
    /// Patterns of shared directories (see [`DEFAULT_INSTALL_PATTERNS`]).
    pub install_patterns: Vec<String>,
    /// `install.replace`: whether an install may take over files no package owns.
    pub replace: Replace,
    /// `install.keep_replaced`: keep what an install replaced under `var/lib/upm/replaced`.
    pub keep_replaced: bool,
    pub track_roots: Vec<PathBuf>,
    pub track_exclude: Vec<PathBuf>,
    /// `track.shim`: load the LD_PRELOAD shim into installs (besides the watcher).
    pub track_shim: bool,
    /// `install.system_files`: see [`DEFAULT_SYSTEM_FILES`].
    pub system_files: Vec<PathBuf>,
    pub source_dirs: Vec<PathBuf>,
    pub recipe_dirs: Vec<PathBuf>,
    /// `binhost.url`: a binary host (`upm export --all` served over HTTP) `upm install` looks
    /// in for an archive of the same recipe hash before building.
    pub binhost_url: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Tree(#[from] ctree::Error),
    #[error("{}: `{key}` must be {want}", path.display())]
    Type {
        path: PathBuf,
        key: &'static str,
        want: &'static str,
    },
    #[error("{}: `{key}`: {path_value:?} is not an absolute path", path.display())]
    Relative {
        path: PathBuf,
        key: &'static str,
        path_value: String,
    },
}

/// A TOML string literal.
fn quote(s: &str) -> String {
    toml_edit::Value::from(s).to_string()
}

fn paths(list: &[&str]) -> Vec<PathBuf> {
    list.iter().map(PathBuf::from).collect()
}

impl Config {
    pub fn defaults(path: PathBuf) -> Config {
        Config {
            path,
            ids: Ids::default(),
            install_dirs: paths(DEFAULT_INSTALL_DIRS),
            install_patterns: DEFAULT_INSTALL_PATTERNS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            replace: Replace::Unowned,
            keep_replaced: true,
            track_roots: paths(DEFAULT_TRACK_ROOTS),
            track_exclude: paths(DEFAULT_TRACK_EXCLUDE),
            track_shim: true,
            system_files: paths(DEFAULT_SYSTEM_FILES),
            source_dirs: paths(DEFAULT_SOURCE_DIRS),
            recipe_dirs: paths(DEFAULT_RECIPE_DIRS),
            binhost_url: None,
        }
    }

    /// The settings of `root`: its `etc/upm/upm.toml` over the defaults.
    pub fn load(root: &Path) -> Result<Config, Error> {
        let path = root.join(FILE);
        let mut c = Config::defaults(path.clone());
        if !path.exists() {
            return Ok(c);
        }
        let tree = ctree::load(&path)?.tree;
        let get = |k: &str| tree.get(&Key::parse(k).expect("a valid key"));
        let int = |k: &'static str, into: &mut u32| -> Result<(), Error> {
            match get(k) {
                None => Ok(()),
                Some(Value::Int(i)) if (0..=u32::MAX as i64).contains(i) => {
                    *into = *i as u32;
                    Ok(())
                }
                Some(_) => Err(Error::Type {
                    path: path.clone(),
                    key: k,
                    want: "a non-negative integer",
                }),
            }
        };
        int("install.gid", &mut c.ids.install_gid)?;
        int("users.first", &mut c.ids.first)?;
        int("users.last", &mut c.ids.last)?;
        match get("install.group") {
            None => {}
            Some(Value::Str(s)) => c.ids.install_group = s.clone(),
            Some(_) => {
                return Err(Error::Type {
                    path,
                    key: "install.group",
                    want: "a string",
                });
            }
        }
        let list = |k: &'static str, into: &mut Vec<PathBuf>| -> Result<(), Error> {
            match get(k) {
                None => Ok(()),
                Some(Value::List(l)) => {
                    if let Some(bad) = l.iter().find(|p| !p.starts_with('/')) {
                        return Err(Error::Relative {
                            path: path.clone(),
                            key: k,
                            path_value: bad.clone(),
                        });
                    }
                    *into = l.iter().map(PathBuf::from).collect();
                    Ok(())
                }
                Some(_) => Err(Error::Type {
                    path: path.clone(),
                    key: k,
                    want: "a list of absolute paths",
                }),
            }
        };
        match get("users.prefix") {
            None => {}
            Some(Value::Str(s)) => c.ids.prefix = s.clone(),
            Some(_) => {
                return Err(Error::Type {
                    path,
                    key: "users.prefix",
                    want: "a string",
                });
            }
        }
        match get("users.collision") {
            None => {}
            Some(Value::Str(s)) if Collision::from_name(s).is_some() => {
                c.ids.collision = Collision::from_name(s).expect("checked");
            }
            Some(_) => {
                return Err(Error::Type {
                    path,
                    key: "users.collision",
                    want: "\"prefix\" or \"refuse\"",
                });
            }
        }
        list("install.dirs", &mut c.install_dirs)?;
        let mut patterns: Vec<PathBuf> = Vec::new();
        list("install.patterns", &mut patterns)?;
        if get("install.patterns").is_some() {
            c.install_patterns = patterns.iter().map(|p| p.display().to_string()).collect();
        }
        match get("install.replace") {
            None => {}
            Some(Value::Str(s)) if s == "unowned" => c.replace = Replace::Unowned,
            Some(Value::Str(s)) if s == "none" => c.replace = Replace::None,
            Some(_) => {
                return Err(Error::Type {
                    path,
                    key: "install.replace",
                    want: "\"unowned\" or \"none\"",
                });
            }
        }
        match get("install.keep_replaced") {
            None => {}
            Some(Value::Bool(b)) => c.keep_replaced = *b,
            Some(_) => {
                return Err(Error::Type {
                    path,
                    key: "install.keep_replaced",
                    want: "true or false",
                });
            }
        }
        match get("track.shim") {
            None => {}
            Some(Value::Bool(b)) => c.track_shim = *b,
            Some(_) => {
                return Err(Error::Type {
                    path,
                    key: "track.shim",
                    want: "true or false",
                });
            }
        }
        list("track.roots", &mut c.track_roots)?;
        list("track.exclude", &mut c.track_exclude)?;
        list("install.system_files", &mut c.system_files)?;
        list("sources.dirs", &mut c.source_dirs)?;
        list("recipes.dirs", &mut c.recipe_dirs)?;
        match get("binhost.url") {
            None => {}
            Some(Value::Str(s)) if s.is_empty() => {}
            Some(Value::Str(s)) if crate::profile::binhost::is_url(s) => {
                c.binhost_url = Some(s.clone())
            }
            Some(_) => {
                return Err(Error::Type {
                    path,
                    key: "binhost.url",
                    want: "an http:// or https:// URL (the directory `upm export --all` wrote, served)",
                });
            }
        }
        Ok(c)
    }

    /// The settings file's text for these settings, with comments saying what each key does.
    pub fn render(&self) -> String {
        let list = |v: &[PathBuf]| {
            let items: Vec<String> = v
                .iter()
                .map(|p| format!("    {},", quote(&p.display().to_string())))
                .collect();
            format!("[\n{}\n]", items.join("\n"))
        };
        format!(
            "# upm settings for this root. Paths are as seen inside the root.\n\n\
             [install]\n\
             # The group every package user belongs to; install directories are root:GROUP 1775.\n\
             group = {}\n\
             gid = {}\n\
             # Directories many packages install into (`upm installdir add|remove` edits this).\n\
             dirs = {}\n\
             # Files root tools keep for every package (the linker cache, the info `dir` files):\n\
             # never part of a package, given back to root when a package's tool wrote them.\n\
             system_files = {}\n\
             # Shared trees (`*` matches within one path component): matching directories become\n\
             # install directories when a package needs to write into them.\n\
             patterns = {}\n\
             # \"unowned\": an install may replace files no package owns (the temporary tools, a\n\
             # distribution's files), keeping them for `upm remove --restore`; \"none\": never.\n\
             replace = {}\n\
             keep_replaced = {}\n\n\
             [users]\n\
             # Package users get uids and gids from this range.\n\
             first = {}\n\
             last = {}\n\
             # A package whose name is already a user or group of the system (sudo, man, mail):\n\
             # \"prefix\" names its package user prefix + name (pkg-sudo), \"refuse\" refuses it.\n\
             collision = {}\n\
             prefix = {}\n\n\
             [track]\n\
             # Trees the watcher follows during an install, and parts of them it ignores.\n\
             roots = {}\n\
             exclude = {}\n\
             # Load the LD_PRELOAD shim into installs too (UPM_SHIM=0 turns it off for one run).\n\
             shim = {}\n\n\
             [sources]\n\
             # Where source archives are looked for (besides /usr/src/PACKAGE and --sources-dir).\n\
             dirs = {}\n\n\
             [recipes]\n\
             # Where `upm install NAME` finds NAME.toml or NAME.ct.\n\
             dirs = {}\n\n\
             [binhost]\n\
             # A binary host (`upm export --all -o DIR` on a build host, DIR served over HTTP):\n\
             # `upm install` imports its archive of the same recipe hash instead of building\n\
             # (signed by a key in etc/upm/trusted-keys). Empty: always build.\n\
             url = {}\n",
            quote(&self.ids.install_group),
            self.ids.install_gid,
            list(&self.install_dirs),
            list(&self.system_files),
            {
                let items: Vec<String> = self
                    .install_patterns
                    .iter()
                    .map(|p| format!("    {},", quote(p)))
                    .collect();
                format!("[\n{}\n]", items.join("\n"))
            },
            quote(match self.replace {
                Replace::Unowned => "unowned",
                Replace::None => "none",
            }),
            self.keep_replaced,
            self.ids.first,
            self.ids.last,
            quote(self.ids.collision.name()),
            quote(&self.ids.prefix),
            list(&self.track_roots),
            list(&self.track_exclude),
            self.track_shim,
            list(&self.source_dirs),
            list(&self.recipe_dirs),
            quote(self.binhost_url.as_deref().unwrap_or("")),
        )
    }

    /// Set the install-directory list in the settings file, writing the file first if needed.
    pub fn save_install_dirs(&mut self, dirs: Vec<PathBuf>) -> Result<(), Error> {
        self.install_dirs = dirs;
        if !self.path.exists() {
            return self.write();
        }
        let value = Value::List(
            self.install_dirs
                .iter()
                .map(|p| p.display().to_string())
                .collect(),
        );
        ctree::set_in_file(
            &self.path,
            &Key::parse("install.dirs").expect("key"),
            &value,
        )?;
        Ok(())
    }

    /// Write the settings file (the whole of it).
    pub fn write(&self) -> Result<(), Error> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| ctree::Error::io(dir, e))?;
        }
        crate::fsutil::write_atomic(&self.path, self.render().as_bytes())
            .map_err(|e| ctree::Error::io(&self.path, e))?;
        Ok(())
    }

    /// Whether `path` (inside the root) is a system file (`install.system_files`).
    pub fn system_file(&self, path: &Path) -> bool {
        self.system_files
            .iter()
            .any(|pat| pattern_matches(&pat.to_string_lossy(), path))
    }

    /// Whether `dir` (inside the root) matches one of the shared-tree patterns.
    pub fn shared_tree(&self, dir: &Path) -> bool {
        self.install_patterns
            .iter()
            .any(|p| pattern_matches(p, dir))
    }

    /// Whether `path` (inside the root) is under a tracked root and not excluded.
    pub fn tracked(&self, path: &Path) -> bool {
        self.track_roots.iter().any(|r| path.starts_with(r))
            && !self.track_exclude.iter().any(|x| path.starts_with(x))
    }
}

/// Whether `path` matches `pattern` component by component; `*` in a component matches any
/// run of characters within it.
pub fn pattern_matches(pattern: &str, path: &Path) -> bool {
    let pat: Vec<&str> = pattern.split('/').filter(|c| !c.is_empty()).collect();
    let comps: Vec<String> = path
        .components()
        .filter_map(|c| match c {
            std::path::Component::Normal(n) => Some(n.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect();
    pat.len() == comps.len() && pat.iter().zip(&comps).all(|(p, c)| glob(p, c))
}

/// The existing directories of `root` (paths inside it) that match `pattern`.
pub fn pattern_dirs(root: &Path, pattern: &str) -> Vec<PathBuf> {
    let mut found = vec![PathBuf::from("/")];
    for comp in pattern.split('/').filter(|c| !c.is_empty()) {
        let mut next = Vec::new();
        for dir in &found {
            if !comp.contains('*') {
                next.push(dir.join(comp));
                continue;
            }
            let Ok(rd) = std::fs::read_dir(crate::fsutil::on_host(root, dir)) else {
                continue;
            };
            for e in rd.flatten() {
                if let Some(name) = e.file_name().to_str()
                    && glob(comp, name)
                {
                    next.push(dir.join(name));
                }
            }
        }
        found = next;
    }
    found.retain(|d| {
        std::fs::symlink_metadata(crate::fsutil::on_host(root, d)).is_ok_and(|m| m.is_dir())
    });
    found.sort();
    found
}

/// `*`-only wildcard match of one component.
fn glob(pat: &str, s: &str) -> bool {
    match pat.split_once('*') {
        None => pat == s,
        Some((head, rest)) => {
            let Some(tail) = s.strip_prefix(head) else {
                return false;
            };
            (0..=tail.len())
                .filter(|i| tail.is_char_boundary(*i))
                .any(|i| glob(rest, &tail[i..]))
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn patterns_match_within_components() {
        use super::pattern_matches as m;
        let p = |s: &str| std::path::PathBuf::from(s);
        assert!(m(
            "/usr/share/locale/*/LC_MESSAGES",
            &p("/usr/share/locale/de/LC_MESSAGES")
        ));
        assert!(!m(
            "/usr/share/locale/*/LC_MESSAGES",
            &p("/usr/share/locale/de")
        ));
        assert!(m("/usr/share/man/*/man*", &p("/usr/share/man/fr/man1")));
        assert!(!m("/usr/share/man/*/man*", &p("/usr/share/man/fr/cat1")));
        assert!(m("/usr/lib/pkgconfig", &p("/usr/lib/pkgconfig")));
        assert!(!m(
            "/usr/share/locale/*",
            &p("/usr/share/locale/de/LC_MESSAGES")
        ));
    }

    use super::*;

    #[test]
    fn rendered_defaults_load_back() {
        let dir = tempfile::tempdir().unwrap();
        let c = Config::defaults(dir.path().join(FILE));
        c.write().unwrap();
        let back = Config::load(dir.path()).unwrap();
        assert_eq!(back.install_dirs, c.install_dirs);
        assert_eq!(back.track_exclude, c.track_exclude);
        assert_eq!(back.system_files, c.system_files);
        assert_eq!(back.ids.install_gid, 9999);
        let mut back = back;
        back.save_install_dirs(vec!["/usr/bin".into()]).unwrap();
        let text = std::fs::read_to_string(&back.path).unwrap();
        assert!(text.contains("# Package users get uids"), "comments kept");
        assert_eq!(
            Config::load(dir.path()).unwrap().install_dirs,
            vec![PathBuf::from("/usr/bin")]
        );
    }

    #[test]
    fn the_shim_setting_reads_and_refuses_a_non_boolean() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Config::defaults(dir.path().join(FILE));
        assert!(c.track_shim);
        c.track_shim = false;
        c.write().unwrap();
        assert!(!Config::load(dir.path()).unwrap().track_shim);
        let text = std::fs::read_to_string(&c.path).unwrap();
        std::fs::write(&c.path, text.replace("shim = false", "shim = \"no\"")).unwrap();
        let err = Config::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("`track.shim` must be true or false"), "{err}");
    }

    #[test]
    fn system_files_match_by_component() {
        let c = Config::defaults(PathBuf::from("/x"));
        assert!(c.system_file(Path::new("/etc/ld.so.cache~")));
        assert!(c.system_file(Path::new("/usr/share/info/dir")));
        assert!(c.system_file(Path::new("/usr/share/icons/hicolor/icon-theme.cache")));
        assert!(!c.system_file(Path::new("/usr/share/icons/a/b/icon-theme.cache")));
        assert!(!c.system_file(Path::new("/usr/share/info/dir/x")));
        assert!(!c.system_file(Path::new("/etc/ld.so.conf")));
        assert!(glob("*.cache", "x.cache") && !glob("a*b", "ac"));
    }

    #[test]
    fn tracked_honours_excludes() {
        let c = Config::defaults(PathBuf::from("/x"));
        assert!(c.tracked(Path::new("/usr/lib/libz.so")));
        assert!(!c.tracked(Path::new("/usr/src/zlib/build")));
        assert!(!c.tracked(Path::new("/home/x")));
    }
}
