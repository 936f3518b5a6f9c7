//! fs_info: what to mirror. An **identity** ("system", "website") is a set of included trees
//! (`t:`) minus excluded subtrees (`x:`), kept as the original design kept them: one path a line
//! in `DATADIR/IDENTITY/.t_files` and `.x_files`, so they can be edited by hand too. Paths are
//! checked when added: absolute, existing, and not inside an excluded tree unless forced.

use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result, io};

/// Included (`t`) or excluded (`x`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tag {
    Include,
    Exclude,
}

impl Tag {
    fn file(self) -> &'static str {
        match self {
            Tag::Include => ".t_files",
            Tag::Exclude => ".x_files",
        }
    }
}

/// One `-a`/`-r` argument: `t:PATH`, `x:PATH`, or `tL:LISTFILE`/`xL:LISTFILE` (a file of paths).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub tag: Tag,
    pub path: PathBuf,
    pub list: bool,
}

impl Entry {
    pub fn parse(s: &str) -> Result<Entry> {
        let (tag, path) = s.split_once(':').ok_or_else(|| {
            Error::FsInfo(format!(
                "{s:?}: expected t:PATH, x:PATH, tL:LISTFILE or xL:LISTFILE"
            ))
        })?;
        let (tag, list) = match tag {
            "t" => (Tag::Include, false),
            "x" => (Tag::Exclude, false),
            "tL" => (Tag::Include, true),
            "xL" => (Tag::Exclude, true),
            _ => {
                return Err(Error::FsInfo(format!(
                    "{s:?}: unknown tag {tag:?} (t: include, x: exclude, tL:/xL: a file listing paths)"
                )));
            }
        };
        Ok(Entry {
            tag,
            path: PathBuf::from(path),
            list,
        })
    }
}

/// The included and excluded paths of one identity.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    pub include: Vec<PathBuf>,
    pub exclude: Vec<PathBuf>,
}

impl Identity {
    pub fn excluded(&self, p: &Path) -> bool {
        self.exclude.iter().any(|x| p.starts_with(x))
    }

    /// The watcher's rules for these identities together.
    pub fn rules(ids: &[Identity]) -> upm_watch::Rules {
        upm_watch::Rules {
            roots: ids.iter().flat_map(|i| i.include.iter().cloned()).collect(),
            exclude: ids.iter().flat_map(|i| i.exclude.iter().cloned()).collect(),
            writer: None,
        }
    }
}

/// The identities kept under one data directory.
pub struct FsInfo {
    dir: PathBuf,
}

/// An identity name is one plain path component.
fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && !name.contains('/')
        && !name.chars().any(char::is_control);
    if ok {
        Ok(())
    } else {
        Err(Error::FsInfo(format!(
            "{name:?} is not an identity name (one word such as system or website, no '/', not starting with '.')"
        )))
    }
}

/// Whether `p` is absolute and plain (no `.`, `..` or empty components).
fn plain_absolute(p: &Path) -> bool {
    (crate::record::plain_absolute(p) || p == Path::new("/"))
        && !p.as_os_str().as_bytes().contains(&b'\n')
}

impl FsInfo {
    pub fn new(dir: impl Into<PathBuf>) -> FsInfo {
        FsInfo { dir: dir.into() }
    }

    fn file(&self, name: &str, tag: Tag) -> PathBuf {
        self.dir.join(name).join(tag.file())
    }

    fn read_list(path: &Path) -> Result<Vec<PathBuf>> {
        match std::fs::read(path) {
            Ok(b) => Ok(b
                .split(|c| *c == b'\n')
                .filter(|l| !l.is_empty() && !l.starts_with(b"#"))
                .map(|l| PathBuf::from(OsStr::from_bytes(l)))
                .collect()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(io(path)(e)),
        }
    }

    /// An identity as stored (empty when it does not exist).
    pub fn load(&self, name: &str) -> Result<Identity> {
        check_name(name)?;
        Ok(Identity {
            include: Self::read_list(&self.file(name, Tag::Include))?,
            exclude: Self::read_list(&self.file(name, Tag::Exclude))?,
        })
    }

    /// An identity that must exist and include something (what mirrord watches).
    pub fn load_existing(&self, name: &str) -> Result<Identity> {
        let id = self.load(name)?;
        if id.include.is_empty() {
            return Err(Error::FsInfo(format!(
                "identity {name:?} includes nothing in {}; add a tree with: fs_info -d {} -a t:/PATH {name}",
                self.dir.display(),
                self.dir.display()
            )));
        }
        Ok(id)
    }

    fn store(&self, name: &str, id: &Identity) -> Result<()> {
        let d = self.dir.join(name);
        std::fs::create_dir_all(&d).map_err(io(&d))?;
        for (tag, list) in [(Tag::Include, &id.include), (Tag::Exclude, &id.exclude)] {
            let path = self.file(name, tag);
            let tmp = path.with_extension("tmp");
            let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
            for p in list {
                f.write_all(p.as_os_str().as_bytes()).map_err(io(&tmp))?;
                f.write_all(b"\n").map_err(io(&tmp))?;
            }
            f.sync_all().map_err(io(&tmp))?;
            std::fs::rename(&tmp, &path).map_err(io(&path))?;
        }
        Ok(())
    }

    /// The paths an entry stands for (a list file's lines, or its one path).
    fn expand(e: &Entry) -> Result<Vec<PathBuf>> {
        if e.list {
            if !e.path.is_file() {
                return Err(Error::FsInfo(format!(
                    "list file {} does not exist",
                    e.path.display()
                )));
            }
            Self::read_list(&e.path)
        } else {
            Ok(vec![e.path.clone()])
        }
    }

    /// Add entries to identity `name` (created if new), checking each path; `force` allows
    /// including a path inside an excluded tree and excluding one outside every included tree.
    pub fn add(&self, name: &str, entries: &[Entry], force: bool) -> Result<Identity> {
        let mut id = self.load(name)?;
        for e in entries {
            for p in Self::expand(e)? {
                let p = PathBuf::from(
                    p.as_os_str()
                        .as_bytes()
                        .strip_suffix(b"/")
                        .filter(|s| !s.is_empty())
                        .map_or(p.as_os_str(), OsStr::from_bytes),
                );
                if !plain_absolute(&p) {
                    return Err(Error::FsInfo(format!(
                        "{}: give an absolute path without '.', '..' or newlines",
                        p.display()
                    )));
                }
                if std::fs::symlink_metadata(&p).is_err() {
                    return Err(Error::FsInfo(format!(
                        "{}: no such file or directory",
                        p.display()
                    )));
                }
                match e.tag {
                    Tag::Include => {
                        if id.excluded(&p) && !force {
                            return Err(Error::FsInfo(format!(
                                "{} is inside an excluded tree of {name:?}; remove the exclusion (-r x:...) or add --force",
                                p.display()
                            )));
                        }
                        if !id.include.contains(&p) {
                            id.include.push(p);
                        }
                    }
                    Tag::Exclude => {
                        if !id.include.iter().any(|t| p.starts_with(t)) && !force {
                            return Err(Error::FsInfo(format!(
                                "{} is outside every included tree of {name:?}: excluding it changes nothing (add --force to keep it anyway)",
                                p.display()
                            )));
                        }
                        if !id.exclude.contains(&p) {
                            id.exclude.push(p);
                        }
                    }
                }
            }
        }
        self.store(name, &id)?;
        Ok(id)
    }

    /// Remove entries from identity `name`.
    pub fn remove(&self, name: &str, entries: &[Entry]) -> Result<Identity> {
        let mut id = self.load(name)?;
        for e in entries {
            for p in Self::expand(e)? {
                let list = match e.tag {
                    Tag::Include => &mut id.include,
                    Tag::Exclude => &mut id.exclude,
                };
                let before = list.len();
                list.retain(|q| *q != p);
                if list.len() == before {
                    return Err(Error::FsInfo(format!(
                        "{} is not among the {} paths of {name:?} (see fs_info -l {name})",
                        p.display(),
                        if e.tag == Tag::Include {
                            "included"
                        } else {
                            "excluded"
                        }
                    )));
                }
            }
        }
        self.store(name, &id)?;
        Ok(id)
    }

    /// Every path the identity selects (symlinks are not followed), parents before children.
    pub fn find(&self, name: &str, out: &mut dyn FnMut(&Path)) -> Result<()> {
        let id = self.load(name)?;
        let mut stack: Vec<PathBuf> = id.include.iter().rev().cloned().collect();
        while let Some(p) = stack.pop() {
            if id.excluded(&p) {
                continue;
            }
            out(&p);
            let Ok(m) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            if m.is_dir()
                && let Ok(rd) = std::fs::read_dir(&p)
            {
                let mut kids: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
                kids.sort();
                stack.extend(kids.into_iter().rev());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_checked_when_added() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("www");
        std::fs::create_dir_all(root.join("cache/x")).unwrap();
        let info = FsInfo::new(d.path().join("info"));
        let e = |s: String| Entry::parse(&s).unwrap();
        let id = info
            .add(
                "website",
                &[
                    e(format!("t:{}", root.display())),
                    e(format!("x:{}/cache", root.display())),
                ],
                false,
            )
            .unwrap();
        assert_eq!(id.exclude, [root.join("cache")]);
        assert_eq!(info.load("website").unwrap(), id);
        // Inside an excluded tree, missing, relative, with '..': refused, nothing stored.
        for bad in [
            format!("t:{}/cache/x", root.display()),
            format!("t:{}/nope", root.display()),
            "t:rel".into(),
            format!("t:{}/../www", root.display()),
        ] {
            assert!(
                info.add("website", &[e(bad.clone())], false).is_err(),
                "{bad}"
            );
        }
        assert_eq!(info.load("website").unwrap(), id);
        assert!(
            info.add(
                "website",
                &[e(format!("t:{}/cache/x", root.display()))],
                true
            )
            .is_ok()
        );
        assert!(Entry::parse("q:/x").is_err() && Entry::parse("/x").is_err());
        assert!(info.load("../etc").is_err());
        let id = info
            .remove("website", &[e(format!("x:{}/cache", root.display()))])
            .unwrap();
        assert!(id.exclude.is_empty());
    }
}
