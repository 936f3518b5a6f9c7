//! Library dependencies read from the ELF files themselves. At install time (and at each
//! `upm record` commit) every regular file of the manifest is read for its dynamic section
//! ([`elf`]): the sonames it needs, the soname it provides, its run path; the database keeps
//! them (`db::libs`). The questions — which packages a package needs, which need it, which
//! installed files miss a library, what a removal or upgrade would take away — are answered
//! in `ops::libs` from those rows and, for a soname no package provides, from the loader's
//! search path in the root ([`SearchPath`]).

pub mod elf;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::fsutil::{FileKind, on_host};
use crate::manifest::Entry;

pub use elf::Dynamic;

/// One ELF file of a manifest and what its dynamic section says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfFile {
    /// The path inside the root.
    pub path: PathBuf,
    pub dynamic: Dynamic,
}

/// What a scan of a manifest found, and how long it took (the install reports it).
#[derive(Debug, Default)]
pub struct Scan {
    pub files: Vec<ElfFile>,
    pub took: Duration,
}

/// Read the dynamic section of each regular file of `files` (paths inside `root`).
pub fn scan(root: &Path, files: &[Entry]) -> Scan {
    let start = Instant::now();
    let found = files
        .iter()
        .filter(|e| e.kind == FileKind::File && e.size >= 52)
        .filter_map(|e| {
            elf::read(&on_host(root, &e.path)).map(|dynamic| ElfFile {
                path: e.path.clone(),
                dynamic,
            })
        })
        .collect();
    Scan {
        files: found,
        took: start.elapsed(),
    }
}

/// Where the dynamic loader of a root looks for a needed soname: the file's own run path
/// (`$ORIGIN` expanded), then the directories of `etc/ld.so.conf` (and the files it
/// includes), then the trusted `/lib`, `/usr/lib` (and their `64` twins).
#[derive(Debug, Clone)]
pub struct SearchPath {
    root: PathBuf,
    dirs: Vec<PathBuf>,
}

impl SearchPath {
    pub fn of(root: &Path) -> SearchPath {
        let mut dirs = Vec::new();
        read_conf(root, Path::new("/etc/ld.so.conf"), &mut dirs, 0);
        for d in ["/lib64", "/usr/lib64", "/lib", "/usr/lib"] {
            dirs.push(PathBuf::from(d));
        }
        let mut seen = std::collections::HashSet::new();
        dirs.retain(|d| seen.insert(d.clone()));
        SearchPath {
            root: root.to_path_buf(),
            dirs,
        }
    }

    /// Where `soname`, needed by the file at `needer` (inside the root) with run path
    /// `runpath`, is found: the path inside the root, or `None` when the loader would not
    /// find it.
    pub fn find(&self, soname: &str, needer: &Path, runpath: Option<&str>) -> Option<PathBuf> {
        if soname.contains('/') {
            let p = needer.parent().unwrap_or(Path::new("/")).join(soname);
            return on_host(&self.root, &p).exists().then_some(p);
        }
        let origin = needer.parent().unwrap_or(Path::new("/"));
        let from_runpath = runpath.into_iter().flat_map(|r| r.split(':')).map(|d| {
            PathBuf::from(
                d.replace("${ORIGIN}", &origin.to_string_lossy())
                    .replace("$ORIGIN", &origin.to_string_lossy()),
            )
        });
        from_runpath
            .chain(self.dirs.iter().cloned())
            .map(|d| lexical(&d.join(soname)))
            .find(|p| on_host(&self.root, p).exists())
    }
}

/// `path` with `.` and `..` taken out by their names, as the loader does with `$ORIGIN/..`
/// (the directory before `..` need not exist).
fn lexical(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            c => out.push(c),
        }
    }
    out
}

/// Add the directories an ld.so.conf lists, following `include` lines (one level of `*`).
fn read_conf(root: &Path, conf: &Path, dirs: &mut Vec<PathBuf>, depth: usize) {
    if depth > 4 {
        return;
    }
    let Ok(text) = std::fs::read_to_string(on_host(root, conf)) else {
        return;
    };
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if let Some(pattern) = line.strip_prefix("include") {
            let pattern = pattern.trim();
            let pattern = if pattern.starts_with('/') {
                PathBuf::from(pattern)
            } else {
                conf.parent().unwrap_or(Path::new("/")).join(pattern)
            };
            for f in glob_one(root, &pattern) {
                read_conf(root, &f, dirs, depth + 1);
            }
        } else if line.starts_with('/') {
            dirs.push(PathBuf::from(line));
        }
    }
}

/// The files matching `pattern` whose last component may hold one `*`, sorted.
fn glob_one(root: &Path, pattern: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(name)) = (pattern.parent(), pattern.file_name()) else {
        return Vec::new();
    };
    let name = name.to_string_lossy();
    let Some((pre, post)) = name.split_once('*') else {
        return vec![pattern.to_path_buf()];
    };
    let mut out: Vec<PathBuf> = std::fs::read_dir(on_host(root, dir))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            (n.starts_with(pre) && n.ends_with(post) && n.len() >= pre.len() + post.len())
                .then(|| dir.join(n))
        })
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_path_follows_ld_so_conf_includes_and_runpath_origin() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        std::fs::create_dir_all(r.join("etc/ld.so.conf.d")).unwrap();
        std::fs::write(
            r.join("etc/ld.so.conf"),
            "include /etc/ld.so.conf.d/*.conf\n# c\n",
        )
        .unwrap();
        std::fs::write(r.join("etc/ld.so.conf.d/x.conf"), "/opt/x/lib  # mine\n").unwrap();
        std::fs::create_dir_all(r.join("opt/x/lib")).unwrap();
        std::fs::write(r.join("opt/x/lib/libx.so.1"), "").unwrap();
        std::fs::create_dir_all(r.join("app/lib")).unwrap();
        std::fs::write(r.join("app/lib/liby.so.2"), "").unwrap();
        let s = SearchPath::of(r);
        assert_eq!(
            s.find("libx.so.1", Path::new("/usr/bin/p"), None),
            Some(PathBuf::from("/opt/x/lib/libx.so.1"))
        );
        assert_eq!(
            s.find("liby.so.2", Path::new("/app/bin/p"), Some("$ORIGIN/../lib")),
            Some(PathBuf::from("/app/lib/liby.so.2"))
        );
        assert_eq!(s.find("liby.so.2", Path::new("/usr/bin/p"), None), None);
    }
}
