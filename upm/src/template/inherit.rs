//! `upm template inherit`: a unit takes its parents' trees as relative symlinks, at the
//! coarsest level — a whole directory is one link unless two parents both provide it with
//! different contents (or the unit has customised something in it), in which case it is a real
//! directory and the same is done one level down. The first parent that has an entry wins;
//! entries several parents provide are overlaps, and those whose contents differ are conflicts
//! for the user to settle (with `upm template custom`). The parents and the overlaps are
//! recorded in `.inherits`.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::{Error, INHERITS, Repo, Result, is_own_file, relative_link, sorted_names};
use crate::fsutil::io;

/// An entry that more than one parent provides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overlap {
    /// Unit-relative path.
    pub path: PathBuf,
    /// The parent whose entry is used (the first).
    pub used: PathBuf,
    /// The other parents that have it.
    pub others: Vec<PathBuf>,
    /// Whether all of them have the same contents (else it is a conflict).
    pub same: bool,
}

#[derive(Debug, Default)]
pub struct Report {
    /// Links made: (link, text it points to), repository-relative link.
    pub links: Vec<(PathBuf, PathBuf)>,
    pub overlaps: Vec<Overlap>,
}

impl Report {
    pub fn conflicts(&self) -> impl Iterator<Item = &Overlap> {
        self.overlaps.iter().filter(|o| !o.same)
    }
}

/// Make `target` inherit from `parents` (in order): write `.inherits`, then link.
pub fn inherit(repo: &Repo, target: &Path, parents: &[PathBuf]) -> Result<Report> {
    let target = super::unit_of(target)
        .filter(|u| u == target)
        .ok_or_else(|| Error::Bad {
            path: target.to_path_buf(),
            what: "a template or host is REPO/templates/NAME or REPO/hosts/NAME".into(),
        })?;
    if parents.is_empty() {
        return Err(Error::Bad {
            path: target,
            what: "no parent given; name one or more with -t templates/NAME".into(),
        });
    }
    let mut units = Vec::new();
    for p in parents {
        let u = repo.unit(p)?;
        if u == target || repo.ancestry(&u)?.contains(&target) {
            return Err(Error::Bad {
                path: target,
                what: format!(
                    "cannot inherit from {}: it is (or inherits from) this one, a cycle",
                    u.display()
                ),
            });
        }
        units.push(u);
    }
    let abs = repo.abs(&target);
    if std::fs::symlink_metadata(&abs).is_ok_and(|m| !m.is_dir()) {
        return Err(Error::Bad {
            path: target,
            what: "exists and is not a directory (an alias link is not followed); remove it or \
                   choose another name"
                .into(),
        });
    }
    std::fs::create_dir_all(&abs).map_err(io(&abs))?;
    let mut walk = Walk {
        repo,
        dry: false,
        report: Report::default(),
    };
    let providers: Vec<(PathBuf, PathBuf)> = units.iter().map(|u| (u.clone(), u.clone())).collect();
    walk.level(&target, Path::new(""), &providers)?;
    write_inherits(repo, &target, &units, &walk.report.overlaps)?;
    Ok(walk.report)
}

/// What inheriting would give, without changing anything: the overlaps of a unit's parents
/// that the unit has not settled with a file of its own (`upm template check`).
pub fn plan(repo: &Repo, target: &Path) -> Result<Report> {
    let parents = repo.parents(target)?;
    let mut walk = Walk {
        repo,
        dry: true,
        report: Report::default(),
    };
    let providers: Vec<(PathBuf, PathBuf)> = parents
        .iter()
        .filter(|p| repo.abs(p).is_dir())
        .map(|u| (u.clone(), u.clone()))
        .collect();
    walk.level(target, Path::new(""), &providers)?;
    Ok(walk.report)
}

fn write_inherits(
    repo: &Repo,
    target: &Path,
    parents: &[PathBuf],
    overlaps: &[Overlap],
) -> Result<()> {
    let mut text = String::from(
        "# Parents of this template, in order: the first that has an entry wins.\n\
         # Written by `upm template inherit`; overlaps are listed below as comments.\n",
    );
    for p in parents {
        text.push_str(&format!("{}\n", p.display()));
    }
    for o in overlaps {
        let others: Vec<_> = o.others.iter().map(|p| p.display().to_string()).collect();
        text.push_str(&format!(
            "# {} {}: {} used, also in {}\n",
            if o.same { "overlap" } else { "CONFLICT" },
            o.path.display(),
            o.used.display(),
            others.join(", ")
        ));
    }
    let file = repo.abs(&target.join(INHERITS));
    crate::fsutil::write_atomic(&file, text.as_bytes()).map_err(io(&file))?;
    Ok(())
}

struct Walk<'a> {
    repo: &'a Repo,
    dry: bool,
    report: Report,
}

/// One parent's entry: its unit, its repository-relative path, where it really is.
struct Entry {
    unit: PathBuf,
    path: PathBuf,
    real: PathBuf,
    dir: bool,
}

impl Walk<'_> {
    /// Link the entries of `providers` (unit, directory in it) into `tdir`, a directory of
    /// the target at unit-relative `sub`.
    fn level(&mut self, tdir: &Path, sub: &Path, providers: &[(PathBuf, PathBuf)]) -> Result<()> {
        let mut names: BTreeMap<OsString, Vec<Entry>> = BTreeMap::new();
        for (unit, dir) in providers {
            let r = self.repo.resolve(dir)?;
            if !r.exists || !self.repo.abs(r.real()).is_dir() {
                continue;
            }
            for name in sorted_names(&self.repo.abs(r.real()))? {
                if sub.as_os_str().is_empty() && is_own_file(&name) || name == ".git" {
                    continue;
                }
                let path = dir.join(&name);
                let res = self.repo.resolve(&path)?;
                if !res.exists {
                    return Err(Error::Dangling {
                        link: path,
                        target: res.real().to_path_buf(),
                    });
                }
                names.entry(name).or_default().push(Entry {
                    unit: unit.clone(),
                    dir: self.repo.abs(res.real()).is_dir(),
                    real: res.real().to_path_buf(),
                    path,
                });
            }
        }
        for (name, has) in names {
            self.entry(&tdir.join(&name), &sub.join(&name), has)?;
        }
        Ok(())
    }

    fn entry(&mut self, tpath: &Path, sub: &Path, has: Vec<Entry>) -> Result<()> {
        let abs = self.repo.abs(tpath);
        let existing = std::fs::symlink_metadata(&abs).ok();
        match &existing {
            Some(m) if m.is_dir() => {
                // Customised below: go down into it with the parents that have a directory.
                let dirs: Vec<_> = has
                    .iter()
                    .filter(|e| e.dir)
                    .map(|e| (e.unit.clone(), e.path.clone()))
                    .collect();
                return self.level(tpath, sub, &dirs);
            }
            Some(m) if !m.file_type().is_symlink() => return Ok(()), // the unit's own file
            _ => {}
        }
        let first = &has[0];
        let all_same_place = has.iter().all(|e| e.real == first.real);
        let differ = !all_same_place && !self.same_contents(&has)?;
        if has.len() > 1 && differ && has.iter().all(|e| e.dir) {
            // Two parents' directories differ: a real directory here, merged one level down.
            if !self.dry {
                if existing.is_some() {
                    std::fs::remove_file(&abs).map_err(io(&abs))?;
                }
                std::fs::create_dir(&abs).map_err(io(&abs))?;
            }
            let dirs: Vec<_> = has
                .iter()
                .map(|e| (e.unit.clone(), e.path.clone()))
                .collect();
            return self.level(tpath, sub, &dirs);
        }
        if has.len() > 1 {
            self.report.overlaps.push(Overlap {
                path: sub.to_path_buf(),
                used: first.unit.clone(),
                others: has[1..].iter().map(|e| e.unit.clone()).collect(),
                same: !differ,
            });
        }
        let text = relative_link(tpath, &first.path);
        if !self.dry {
            if existing.is_some() {
                std::fs::remove_file(&abs).map_err(io(&abs))?;
            }
            std::os::unix::fs::symlink(&text, &abs).map_err(io(&abs))?;
        }
        self.report.links.push((tpath.to_path_buf(), text));
        Ok(())
    }

    /// Whether every entry has the first one's contents (files byte for byte, directories
    /// entry for entry, through links inside the repository).
    fn same_contents(&self, has: &[Entry]) -> Result<bool> {
        let first = &has[0];
        for e in &has[1..] {
            if !self.same_tree(&first.real, &e.real)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn same_tree(&self, a: &Path, b: &Path) -> Result<bool> {
        let (aa, ab) = (self.repo.abs(a), self.repo.abs(b));
        let (da, db) = (aa.is_dir(), ab.is_dir());
        if da != db {
            return Ok(false);
        }
        if !da {
            let x = std::fs::read(&aa).map_err(io(&aa))?;
            let y = std::fs::read(&ab).map_err(io(&ab))?;
            return Ok(x == y);
        }
        let (na, nb) = (sorted_names(&aa)?, sorted_names(&ab)?);
        if na != nb {
            return Ok(false);
        }
        for n in na {
            let ra = self.repo.resolve(&a.join(&n))?;
            let rb = self.repo.resolve(&b.join(&n))?;
            if !ra.exists || !rb.exists {
                return Ok(ra.exists == rb.exists);
            }
            if ra.real() != rb.real() && !self.same_tree(ra.real(), rb.real())? {
                return Ok(false);
            }
        }
        Ok(true)
    }
}
