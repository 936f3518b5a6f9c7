//! The Linux backend: one inotify instance, one watch per directory, raw events read without
//! blocking. Its descriptor can be polled (see [`crate::Running`]).

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use inotify::{EventMask, WatchDescriptor, WatchMask};
use nix::errno::Errno;

use crate::backend::{Lister, list_dir};
use crate::{Backend, Error, Kind, Raw, Rules};

fn errno(e: &io::Error, which: &[Errno]) -> bool {
    e.raw_os_error()
        .is_some_and(|n| which.iter().any(|w| *w as i32 == n))
}

fn mask() -> WatchMask {
    WatchMask::CREATE
        | WatchMask::CLOSE_WRITE
        | WatchMask::ATTRIB
        | WatchMask::DELETE
        | WatchMask::MOVED_FROM
        | WatchMask::MOVED_TO
        | WatchMask::DONT_FOLLOW
        | WatchMask::ONLYDIR
        | WatchMask::EXCL_UNLINK
}

pub struct Inotify {
    inotify: inotify::Inotify,
    buf: Vec<u8>,
}

impl Inotify {
    pub fn new() -> Result<Inotify, Error> {
        Ok(Inotify {
            inotify: inotify::Inotify::init().map_err(Error::Start)?,
            buf: vec![0u8; 256 * 1024],
        })
    }
}

impl AsFd for Inotify {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inotify.as_fd()
    }
}

fn kind(mask: EventMask) -> Option<Kind> {
    [
        (EventMask::MOVED_FROM, Kind::MovedFrom),
        (EventMask::MOVED_TO, Kind::MovedTo),
        (EventMask::CREATE, Kind::Create),
        (EventMask::CLOSE_WRITE, Kind::Write),
        (EventMask::ATTRIB, Kind::Attrib),
        (EventMask::DELETE, Kind::Delete),
    ]
    .into_iter()
    .find(|(m, _)| mask.contains(*m))
    .map(|(_, k)| k)
}

impl Backend for Inotify {
    type Wd = WatchDescriptor;

    fn add(&mut self, dir: &Path) -> Result<Option<WatchDescriptor>, Error> {
        match self.inotify.watches().add(dir, mask()) {
            Ok(wd) => Ok(Some(wd)),
            Err(e) if errno(&e, &[Errno::ENOENT, Errno::ENOTDIR]) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => Ok(None),
            Err(e) if errno(&e, &[Errno::ENOSPC]) => Err(Error::Limit {
                path: dir.to_path_buf(),
            }),
            Err(source) => Err(Error::Watch {
                path: dir.to_path_buf(),
                source,
            }),
        }
    }

    fn remove(&mut self, wd: WatchDescriptor) {
        // Fails only when the watch is gone already.
        let _ = self.inotify.watches().remove(wd);
    }

    fn read(&mut self, out: &mut Vec<Raw<WatchDescriptor>>) -> Result<(), Error> {
        loop {
            let events = match self.inotify.read_events(&mut self.buf) {
                Ok(events) => events,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(Error::Read(e)),
            };
            let mut read = 0;
            for e in events {
                read += 1;
                if e.mask.contains(EventMask::Q_OVERFLOW) {
                    out.push(Raw::Overflow);
                } else if e.mask.contains(EventMask::IGNORED) {
                    out.push(Raw::Ignored(e.wd));
                } else if let (Some(name), Some(kind)) = (e.name, kind(e.mask)) {
                    out.push(Raw::Entry {
                        wd: e.wd,
                        name: name.to_os_string(),
                        kind,
                        dir: e.mask.contains(EventMask::ISDIR),
                        cookie: e.cookie,
                    });
                }
            }
            if read == 0 {
                return Ok(());
            }
        }
    }

    fn list(&self, dir: &Path) -> Vec<(PathBuf, bool)> {
        list_dir(dir)
    }

    fn lister(&self) -> Option<Lister> {
        Some(list_dir)
    }

    fn dirs(&self, rules: &Rules) -> Vec<PathBuf> {
        crate::writable_dirs(rules)
    }
}
