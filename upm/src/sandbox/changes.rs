//! Reading an overlay upper directory as a list of changes against the lower layer: added,
//! modified and removed paths. Whiteouts (0/0 character devices) are removals; an opaque
//! directory replaced the lower one, so lower entries missing from it were removed; a copied-up
//! entry counts as modified only when its type, mode, owner, size, content, link target or
//! (for non-directories) mtime differ from the lower one.

use std::fs::{self, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::fsutil::FileKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChangeKind {
    Added,
    Modified,
    Removed,
}

impl ChangeKind {
    pub fn name(self) -> &'static str {
        match self {
            ChangeKind::Added => "added",
            ChangeKind::Modified => "modified",
            ChangeKind::Removed => "removed",
        }
    }

    /// The one-character mark used in summaries.
    pub fn mark(self) -> char {
        match self {
            ChangeKind::Added => '+',
            ChangeKind::Modified => '~',
            ChangeKind::Removed => '-',
        }
    }
}

/// One changed path, absolute as seen inside the sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub path: PathBuf,
    pub kind: ChangeKind,
    /// The type of the path after the change (before it, for removals).
    pub file_kind: FileKind,
}

type ScanResult<T> = Result<T, (PathBuf, io::Error)>;

fn with_path<T>(p: &Path, r: io::Result<T>) -> ScanResult<T> {
    r.map_err(|e| (p.to_path_buf(), e))
}

fn is_whiteout(m: &Metadata) -> bool {
    m.file_type().is_char_device() && m.rdev() == 0
}

fn is_opaque(p: &Path) -> bool {
    matches!(
        crate::sys::lgetxattr(p, "trusted.overlay.opaque"),
        Ok(Some(v)) if v == b"y"
    )
}

fn same_content(a: &Path, b: &Path) -> io::Result<bool> {
    let (mut fa, mut fb) = (fs::File::open(a)?, fs::File::open(b)?);
    let (mut ba, mut bb) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    loop {
        let na = fa.read(&mut ba)?;
        let mut nb = 0;
        while nb < na {
            let n = fb.read(&mut bb[nb..na])?;
            if n == 0 {
                return Ok(false);
            }
            nb += n;
        }
        if na == 0 {
            return Ok(fb.read(&mut bb[..1])? == 0);
        }
        if ba[..na] != bb[..na] {
            return Ok(false);
        }
    }
}

/// Whether the upper entry differs from the lower one it covers.
fn differs(up: &Path, um: &Metadata, low: &Path, lm: &Metadata) -> io::Result<bool> {
    let (uk, lk) = (FileKind::of(&um.file_type()), FileKind::of(&lm.file_type()));
    if uk != lk || um.mode() != lm.mode() || um.uid() != lm.uid() || um.gid() != lm.gid() {
        return Ok(true);
    }
    Ok(match uk {
        FileKind::Dir => false,
        FileKind::Symlink => fs::read_link(up)? != fs::read_link(low)?,
        FileKind::File => {
            um.size() != lm.size()
                || um.mtime() != lm.mtime()
                || um.mtime_nsec() != lm.mtime_nsec()
                || !same_content(up, low)?
        }
        _ => um.rdev() != lm.rdev() || um.mtime() != lm.mtime(),
    })
}

struct Scan<'a> {
    lower: &'a Path,
    skip: &'a [PathBuf],
    out: Vec<Change>,
}

impl Scan<'_> {
    /// Report everything below the lower directory `low` as removed.
    fn removed_below(&mut self, low: &Path, rel: &Path) -> ScanResult<()> {
        let mut names: Vec<_> = with_path(low, fs::read_dir(low))?
            .filter_map(Result::ok)
            .map(|e| e.file_name())
            .collect();
        names.sort();
        for name in names {
            let (l, r) = (low.join(&name), rel.join(&name));
            let Ok(m) = fs::symlink_metadata(&l) else {
                continue;
            };
            self.push(&r, ChangeKind::Removed, FileKind::of(&m.file_type()));
            if m.is_dir() {
                self.removed_below(&l, &r)?;
            }
        }
        Ok(())
    }

    fn push(&mut self, rel: &Path, kind: ChangeKind, file_kind: FileKind) {
        let path = Path::new("/").join(rel);
        if self.skip.iter().any(|s| path.starts_with(s)) {
            return;
        }
        self.out.push(Change {
            path,
            kind,
            file_kind,
        });
    }

    fn dir(&mut self, up: &Path, rel: &Path, lower_exists: bool) -> ScanResult<()> {
        let mut names: Vec<_> = with_path(up, fs::read_dir(up))?
            .filter_map(Result::ok)
            .map(|e| e.file_name())
            .collect();
        names.sort();
        for name in &names {
            let (u, r) = (up.join(name), rel.join(name));
            let low = self.lower.join(&r);
            let um = with_path(&u, fs::symlink_metadata(&u))?;
            let lm = if lower_exists {
                fs::symlink_metadata(&low).ok()
            } else {
                None
            };
            if is_whiteout(&um) {
                if let Some(lm) = &lm {
                    self.push(&r, ChangeKind::Removed, FileKind::of(&lm.file_type()));
                    if lm.is_dir() {
                        self.removed_below(&low, &r)?;
                    }
                }
                continue;
            }
            let kind = FileKind::of(&um.file_type());
            match &lm {
                None => self.push(&r, ChangeKind::Added, kind),
                Some(lm) => {
                    if with_path(&u, differs(&u, &um, &low, lm))? {
                        self.push(&r, ChangeKind::Modified, kind);
                    }
                }
            }
            if um.is_dir() {
                let lower_dir = lm.as_ref().is_some_and(|m| m.is_dir());
                if lower_dir && is_opaque(&u) {
                    // The directory was replaced: lower entries it does not hold are gone.
                    let mut gone: Vec<_> = with_path(&low, fs::read_dir(&low))?
                        .filter_map(Result::ok)
                        .map(|e| e.file_name())
                        .filter(|n| fs::symlink_metadata(u.join(n)).is_err())
                        .collect();
                    gone.sort();
                    for n in gone {
                        let l = low.join(&n);
                        let Ok(m) = fs::symlink_metadata(&l) else {
                            continue;
                        };
                        self.push(
                            &r.join(&n),
                            ChangeKind::Removed,
                            FileKind::of(&m.file_type()),
                        );
                        if m.is_dir() {
                            self.removed_below(&l, &r.join(&n))?;
                        }
                    }
                    self.dir(&u, &r, false)?;
                } else {
                    self.dir(&u, &r, lower_dir)?;
                }
            }
        }
        Ok(())
    }
}

/// The changes recorded in `upper` over `lower`, sorted by path, leaving out `skip` and what
/// lies below it.
pub fn scan(upper: &Path, lower: &Path, skip: &[PathBuf]) -> ScanResult<Vec<Change>> {
    let mut s = Scan {
        lower,
        skip,
        out: Vec::new(),
    };
    s.dir(upper, Path::new(""), true)?;
    s.out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(s.out)
}
