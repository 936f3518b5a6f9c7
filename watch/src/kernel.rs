//! The kernel backend chosen at run time: inotify (one watch per directory, any kernel, any
//! user) or fanotify (one mark per file system, `CAP_SYS_ADMIN`, Linux ≥ 5.17), or `auto` —
//! fanotify where it works for the given trees, inotify otherwise, with the reason.

use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use inotify::WatchDescriptor;

use crate::backend::Lister;
use crate::{Backend, Error, Fanotify, Handle, Inotify, Raw, Rules};

/// Which backend to use (`--backend`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    Inotify,
    Fanotify,
    /// Fanotify when it works, else inotify.
    Auto,
}

impl std::str::FromStr for Choice {
    type Err = String;
    fn from_str(s: &str) -> Result<Choice, String> {
        match s {
            "inotify" => Ok(Choice::Inotify),
            "fanotify" => Ok(Choice::Fanotify),
            "auto" => Ok(Choice::Auto),
            _ => Err(format!("{s:?}: expected inotify, fanotify or auto")),
        }
    }
}

pub enum Kernel {
    Inotify(Inotify),
    Fanotify(Fanotify),
}

/// A watch of either backend.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KernelWd {
    Inotify(WatchDescriptor),
    Fanotify(Handle),
}

impl Kernel {
    /// Open the chosen backend for trees `roots`. With [`Choice::Auto`], the second value says
    /// why fanotify was not taken (none when it was).
    pub fn open(choice: Choice, roots: &[PathBuf]) -> Result<(Kernel, Option<String>), Error> {
        match choice {
            Choice::Inotify => Ok((Kernel::Inotify(Inotify::new()?), None)),
            Choice::Fanotify => Ok((Kernel::Fanotify(Fanotify::for_roots(roots)?), None)),
            Choice::Auto => match Fanotify::for_roots(roots) {
                Ok(f) => Ok((Kernel::Fanotify(f), None)),
                Err(e) => Ok((Kernel::Inotify(Inotify::new()?), Some(e.to_string()))),
            },
        }
    }

    /// "inotify" or "fanotify".
    pub fn name(&self) -> &'static str {
        match self {
            Kernel::Inotify(_) => "inotify",
            Kernel::Fanotify(_) => "fanotify",
        }
    }
}

impl AsFd for Kernel {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Kernel::Inotify(i) => i.as_fd(),
            Kernel::Fanotify(f) => f.as_fd(),
        }
    }
}

impl Backend for Kernel {
    type Wd = KernelWd;

    fn add(&mut self, dir: &Path) -> Result<Option<KernelWd>, Error> {
        Ok(match self {
            Kernel::Inotify(i) => i.add(dir)?.map(KernelWd::Inotify),
            Kernel::Fanotify(f) => f.add(dir)?.map(KernelWd::Fanotify),
        })
    }

    fn remove(&mut self, wd: KernelWd) {
        match (self, wd) {
            (Kernel::Inotify(i), KernelWd::Inotify(wd)) => i.remove(wd),
            (Kernel::Fanotify(f), KernelWd::Fanotify(wd)) => f.remove(wd),
            _ => {}
        }
    }

    fn read(&mut self, out: &mut Vec<Raw<KernelWd>>) -> Result<(), Error> {
        fn wrap<W>(raw: Vec<Raw<W>>, f: fn(W) -> KernelWd, out: &mut Vec<Raw<KernelWd>>) {
            out.extend(raw.into_iter().map(|r| match r {
                Raw::Overflow => Raw::Overflow,
                Raw::Ignored(wd) => Raw::Ignored(f(wd)),
                Raw::DirAttrib(wd) => Raw::DirAttrib(f(wd)),
                Raw::Entry {
                    wd,
                    name,
                    kind,
                    dir,
                    cookie,
                } => Raw::Entry {
                    wd: f(wd),
                    name,
                    kind,
                    dir,
                    cookie,
                },
            }));
        }
        match self {
            Kernel::Inotify(i) => {
                let mut raw = Vec::new();
                i.read(&mut raw)?;
                wrap(raw, KernelWd::Inotify, out);
            }
            Kernel::Fanotify(f) => {
                let mut raw = Vec::new();
                f.read(&mut raw)?;
                wrap(raw, KernelWd::Fanotify, out);
            }
        }
        Ok(())
    }

    fn list(&self, dir: &Path) -> Vec<(PathBuf, bool)> {
        match self {
            Kernel::Inotify(i) => i.list(dir),
            Kernel::Fanotify(f) => f.list(dir),
        }
    }

    fn lister(&self) -> Option<Lister> {
        match self {
            Kernel::Inotify(i) => i.lister(),
            Kernel::Fanotify(f) => f.lister(),
        }
    }

    fn dirs(&self, rules: &Rules) -> Vec<PathBuf> {
        match self {
            Kernel::Inotify(i) => i.dirs(rules),
            Kernel::Fanotify(f) => f.dirs(rules),
        }
    }
}
