//! Configuration templates, the original design's "configuration sharing mechanism": a
//! configuration repository (an ordinary git repository) holds `templates/NAME/` (classes) and
//! `hosts/NAME/` (instances), each a file tree (`etc/httpd/conf/httpd.conf`, …) plus a
//! `.inherits` file naming its parents in order. A unit inherits from its parents by relative
//! symlinks at the coarsest level ([`inherit`]), is customised one file at a time ([`custom`],
//! which splits linked directories down to the file), tells who sees a change ([`impact`]) and
//! where a file really comes from ([`show`]), is checked for dangling, looping and escaping links
//! and conflicts ([`check`]), and is unfolded into real files with the owners and modes of the
//! per-template metadata file ([`meta`], [`unfold`]).
//!
//! Paths are handled repository-relative (`templates/base/etc/hosts`). Links are resolved
//! lexically, one hop at a time, by [`resolve`]: a link that is absolute or leads out of the
//! repository is an error, never followed, so nothing upm reads or writes lies outside it.

pub mod check;
pub mod custom;
pub mod impact;
pub mod inherit;
pub mod meta;
pub mod show;
pub mod unfold;

use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

use crate::fsutil::{PathError, io};
use crate::pathtext::quoted;

/// The file naming a unit's parents, one per line, first wins.
pub const INHERITS: &str = ".inherits";
/// The per-template metadata file: owners and modes for unfold (git keeps neither).
pub const META: &str = ".unfold.toml";
/// The two kinds of unit: classes and instances.
pub const KINDS: [&str; 2] = ["templates", "hosts"];

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Io(#[from] PathError),
    #[error(
        "{}: not inside a configuration repository's template or host; give a path like \
         REPO/templates/NAME[/FILE] or REPO/hosts/NAME[/FILE]",
        quoted(path)
    )]
    NotInRepo { path: PathBuf },
    #[error(
        "{}: no such template or host; create it with `upm template inherit -t PARENT {}`",
        quoted(unit),
        quoted(unit)
    )]
    NoUnit { unit: PathBuf },
    #[error("{}: {what}", quoted(path))]
    Bad { path: PathBuf, what: String },
    #[error(
        "{}: the link leads out of the repository ({}); upm never follows it: make it a \
         relative link inside the repository, or a real file",
        quoted(link),
        quoted(target)
    )]
    Escapes { link: PathBuf, target: PathBuf },
    #[error(
        "{}: the links loop; fix them (`upm template check` lists them)",
        quoted(path)
    )]
    Loop { path: PathBuf },
    #[error(
        "{}: dangling link (nothing at {}); remove it or re-run `upm template inherit`",
        quoted(link),
        quoted(target)
    )]
    Dangling { link: PathBuf, target: PathBuf },
    #[error("{}: `{cmd}` could not run: {source}", quoted(path))]
    Spawn {
        path: PathBuf,
        cmd: String,
        source: std::io::Error,
    },
    #[error("`{cmd}` failed ({status})")]
    Command { cmd: String, status: String },
}

pub type Result<T> = std::result::Result<T, Error>;

/// A configuration repository: the directory holding `templates/` and `hosts/`.
#[derive(Debug, Clone)]
pub struct Repo {
    /// The repository's top directory, canonical.
    pub root: PathBuf,
}

/// `path` made absolute against the working directory, `.` and `..` folded lexically.
pub fn lexical_abs(path: &Path) -> PathBuf {
    let abs = crate::fsutil::absolute(path);
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// A relative path with `.` and `..` folded; `None` when it climbs above its start.
pub fn normalize(rel: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in rel.components() {
        match c {
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// The relative link text that leads from a link at `link` (repository-relative) to `to`.
pub fn relative_link(link: &Path, to: &Path) -> PathBuf {
    let from: Vec<_> = link
        .parent()
        .unwrap_or(Path::new(""))
        .components()
        .collect();
    let to_c: Vec<_> = to.components().collect();
    let common = from.iter().zip(&to_c).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..from.len() {
        out.push("..");
    }
    for c in &to_c[common..] {
        out.push(c);
    }
    out
}

/// The unit (`templates/NAME` or `hosts/NAME`) a repository-relative path lies in.
pub fn unit_of(rel: &Path) -> Option<PathBuf> {
    let mut c = rel.components();
    let kind = c.next()?.as_os_str();
    let name = c.next()?.as_os_str();
    KINDS
        .iter()
        .any(|k| kind == *k)
        .then(|| Path::new(kind).join(name))
}

/// Where a path was found after following links (lexically, one hop at a time).
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The path as given, then the path after each link followed; the last one has no link
    /// in it.
    pub hops: Vec<PathBuf>,
    /// Whether something exists at the last hop.
    pub exists: bool,
}

impl Resolved {
    pub fn real(&self) -> &Path {
        self.hops.last().expect("a resolution has its start")
    }
}

impl Repo {
    /// The repository at `dir` (it must hold `templates/` or `hosts/`).
    pub fn open(dir: &Path) -> Result<Repo> {
        let root = dir.canonicalize().map_err(io(dir))?;
        if !KINDS.iter().any(|k| root.join(k).is_dir()) {
            return Err(Error::Bad {
                path: dir.to_path_buf(),
                what: "not a configuration repository (it has neither templates/ nor hosts/)"
                    .into(),
            });
        }
        Ok(Repo { root })
    }

    /// The repository a path lies in and the path relative to it: the path must lie in
    /// `REPO/templates/NAME` or `REPO/hosts/NAME`.
    pub fn locate(path: &Path) -> Result<(Repo, PathBuf)> {
        let abs = lexical_abs(path);
        let comps: Vec<_> = abs.components().collect();
        for i in 0..comps.len().saturating_sub(1) {
            if !KINDS.iter().any(|k| comps[i].as_os_str() == *k) {
                continue;
            }
            let top: PathBuf = comps[..i].iter().collect();
            let rel: PathBuf = comps[i..].iter().collect();
            if let Ok(root) = top.canonicalize() {
                return Ok((Repo { root }, rel));
            }
        }
        Err(Error::NotInRepo {
            path: path.to_path_buf(),
        })
    }

    /// A repository-relative path on the host.
    pub fn abs(&self, rel: &Path) -> PathBuf {
        self.root.join(rel)
    }

    /// A unit given on the command line (`templates/base`, a path to it, or a path inside
    /// one), checked to exist.
    pub fn unit(&self, rel: &Path) -> Result<PathBuf> {
        let unit = unit_of(rel).ok_or_else(|| Error::NotInRepo {
            path: rel.to_path_buf(),
        })?;
        if !self.abs(&unit).is_dir() {
            return Err(Error::NoUnit { unit });
        }
        Ok(unit)
    }

    /// Every unit of the repository that is a real directory (an alias, a unit that is a
    /// link to another, is that other one), sorted.
    pub fn units(&self) -> Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        for kind in KINDS {
            let dir = self.root.join(kind);
            if !dir.is_dir() {
                continue;
            }
            for name in sorted_names(&dir)? {
                let rel = Path::new(kind).join(&name);
                let m = std::fs::symlink_metadata(self.abs(&rel)).map_err(io(&self.abs(&rel)))?;
                if m.is_dir() {
                    out.push(rel);
                }
            }
        }
        Ok(out)
    }

    /// A unit's parents as its `.inherits` names them (none when it has no such file).
    pub fn parents(&self, unit: &Path) -> Result<Vec<PathBuf>> {
        let file = self.abs(&unit.join(INHERITS));
        let text = match std::fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(&file)(e).into()),
        };
        Ok(text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(PathBuf::from)
            .collect())
    }

    /// A unit and all its ancestors, nearest first, each once (the order metadata is
    /// looked up in: the unit itself, then its parents in order, depth first).
    pub fn ancestry(&self, unit: &Path) -> Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        let mut stack = vec![unit.to_path_buf()];
        while let Some(u) = stack.pop() {
            if out.contains(&u) {
                continue;
            }
            let parents = self.parents(&u)?;
            out.push(u);
            stack.extend(parents.into_iter().rev());
        }
        Ok(out)
    }

    /// Where the link at `link` points, repository-relative; an absolute link or one that
    /// climbs out of the repository is [`Error::Escapes`].
    pub fn link_target(&self, link: &Path) -> Result<PathBuf> {
        let abs = self.abs(link);
        let text = std::fs::read_link(&abs).map_err(io(&abs))?;
        let escapes = || Error::Escapes {
            link: link.to_path_buf(),
            target: text.clone(),
        };
        if text.is_absolute() {
            return Err(escapes());
        }
        let joined = link.parent().unwrap_or(Path::new("")).join(&text);
        normalize(&joined).ok_or_else(escapes)
    }

    /// Follow `rel` through the links in it, one hop at a time, never out of the repository.
    pub fn resolve(&self, rel: &Path) -> Result<Resolved> {
        let mut hops = vec![rel.to_path_buf()];
        let mut cur = rel.to_path_buf();
        'outer: loop {
            let comps: Vec<_> = cur.components().collect();
            let mut prefix = PathBuf::new();
            for (i, c) in comps.iter().enumerate() {
                prefix.push(c);
                let abs = self.abs(&prefix);
                let m = match std::fs::symlink_metadata(&abs) {
                    Ok(m) => m,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        return Ok(Resolved {
                            hops,
                            exists: false,
                        });
                    }
                    Err(e) => return Err(io(&abs)(e).into()),
                };
                if m.file_type().is_symlink() {
                    let target = self.link_target(&prefix)?;
                    let rest: PathBuf = comps[i + 1..].iter().collect();
                    cur = if rest.as_os_str().is_empty() {
                        target
                    } else {
                        target.join(rest)
                    };
                    hops.push(cur.clone());
                    if hops.len() > 64 {
                        return Err(Error::Loop {
                            path: rel.to_path_buf(),
                        });
                    }
                    continue 'outer;
                }
                if !m.is_dir() && i + 1 < comps.len() {
                    return Ok(Resolved {
                        hops,
                        exists: false,
                    });
                }
            }
            return Ok(Resolved { hops, exists: true });
        }
    }

    /// Every link in a unit's own tree (not followed), repository-relative, sorted.
    pub fn links_in(&self, unit: &Path) -> Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        let mut dirs = vec![unit.to_path_buf()];
        while let Some(d) = dirs.pop() {
            for name in sorted_names(&self.abs(&d))? {
                if name == ".git" {
                    continue;
                }
                let rel = d.join(&name);
                let abs = self.abs(&rel);
                let m = std::fs::symlink_metadata(&abs).map_err(io(&abs))?;
                if m.file_type().is_symlink() {
                    out.push(rel);
                } else if m.is_dir() {
                    dirs.push(rel);
                }
            }
        }
        out.sort();
        Ok(out)
    }
}

/// The names in a directory, sorted.
pub fn sorted_names(dir: &Path) -> Result<Vec<OsString>> {
    let mut names = Vec::new();
    for e in std::fs::read_dir(dir).map_err(io(dir))? {
        names.push(e.map_err(io(dir))?.file_name());
    }
    names.sort();
    Ok(names)
}

/// Whether a name in a unit's top directory is upm's own file, not part of the tree.
pub fn is_own_file(name: &std::ffi::OsStr) -> bool {
    name == INHERITS || name == META || name == ".git"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_links() {
        assert_eq!(
            relative_link(
                Path::new("templates/httpd/etc/ld.so.conf"),
                Path::new("templates/base/etc/ld.so.conf")
            ),
            Path::new("../../base/etc/ld.so.conf")
        );
        assert_eq!(
            relative_link(Path::new("hosts/www2/etc"), Path::new("templates/docs/etc")),
            Path::new("../../templates/docs/etc")
        );
    }

    #[test]
    fn normalize_refuses_climbing_out() {
        assert_eq!(normalize(Path::new("a/../../b")), None);
        assert_eq!(
            normalize(Path::new("a/./b/../c")),
            Some(PathBuf::from("a/c"))
        );
    }

    #[test]
    fn unit_of_paths() {
        assert_eq!(
            unit_of(Path::new("hosts/www2/etc/x")),
            Some(PathBuf::from("hosts/www2"))
        );
        assert_eq!(unit_of(Path::new("other/x/y")), None);
        assert_eq!(unit_of(Path::new("templates")), None);
    }
}
