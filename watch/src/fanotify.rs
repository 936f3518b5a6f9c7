//! The fanotify backend: one `FAN_MARK_FILESYSTEM` mark per file system instead of one inotify
//! watch per directory. Events name the directory by its **file handle** (`FAN_REPORT_DFID_NAME`)
//! and the entry by name; a rename is one `FAN_RENAME` event with both halves (Linux ≥ 5.17).
//!
//! A directory's "watch descriptor" is its file handle ([`Handle`]: file system id, handle type
//! and bytes), taken with `name_to_handle_at` when the watcher adds the directory — no kernel
//! object, no pinned inode. The watcher's index then turns the handle of each event into the
//! directory's path exactly as it turns an inotify descriptor into one, in event order and across
//! renames; a handle the index does not hold is a directory outside the watched trees (or
//! excluded), and its events are dropped. Whole-file-system marks see every change on the file
//! system, so the kernel queue fills with changes elsewhere too: an overflow is a
//! [`Raw::Overflow`] as with inotify (its limit is `fs.fanotify.max_queued_events`).
//!
//! Needs `CAP_SYS_ADMIN` and Linux ≥ 5.17 (`FAN_RENAME`, `FAN_REPORT_TARGET_FID`), and file
//! systems that give file handles (ext4, XFS, btrfs, tmpfs…). The OS calls live in the small
//! `sys` module below, each with its `// SAFETY:` note.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::backend::{Lister, list_dir};
use crate::{Backend, Error, Kind, Raw, Rules};

/// A directory as fanotify names it: file system id, handle type and handle bytes — inline
/// when short (ext4, XFS and tmpfs handles make 20 bytes in all), so the watch index holds
/// 100,000 of them without an allocation each.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Handle(Repr);

/// Up to this many bytes a handle is kept inline.
const INLINE: usize = 30;

/// One representation per length (inline up to [`INLINE`] bytes), so equal handles compare
/// and hash equal.
#[derive(Clone, PartialEq, Eq, Hash)]
enum Repr {
    Inline(u8, [u8; INLINE]),
    Heap(Box<[u8]>),
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Handle(")?;
        for b in self.bytes() {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

impl Handle {
    fn new(fsid: [u8; 8], handle_type: i32, bytes: &[u8]) -> Handle {
        let all = [&fsid[..], &handle_type.to_ne_bytes(), bytes];
        let len: usize = all.iter().map(|p| p.len()).sum();
        if len <= INLINE {
            let mut b = [0u8; INLINE];
            let mut at = 0;
            for p in all {
                b[at..at + p.len()].copy_from_slice(p);
                at += p.len();
            }
            Handle(Repr::Inline(len as u8, b))
        } else {
            Handle(Repr::Heap(all.concat().into_boxed_slice()))
        }
    }

    fn bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline(n, b) => &b[..*n as usize],
            Repr::Heap(b) => b,
        }
    }
}

/// The events asked for: what inotify's mask asks, renames as one event, on directories too.
const MASK: u64 = libc::FAN_CREATE
    | libc::FAN_CLOSE_WRITE
    | libc::FAN_ATTRIB
    | libc::FAN_DELETE
    | libc::FAN_RENAME
    | libc::FAN_ONDIR;

pub struct Fanotify {
    fd: File,
    /// The file system id of each mount seen (by `name_to_handle_at`'s mount id).
    mounts: HashMap<i32, [u8; 8]>,
    /// The file systems marked.
    marked: HashSet<[u8; 8]>,
    /// `name_to_handle_at` flags: `AT_HANDLE_FID` (the encoding fanotify uses) where the
    /// kernel knows it (≥ 6.5), else none (the same bytes on the usual file systems).
    handle_flags: i32,
    buf: Vec<u8>,
    /// The cookie given to the two halves of the next rename.
    cookie: u32,
}

impl Fanotify {
    /// A fanotify group reporting directory handles and names; file systems are marked as
    /// the watcher adds their first directory. Fails without `CAP_SYS_ADMIN` or on a kernel
    /// older than 5.17, saying so.
    pub fn new() -> Result<Fanotify, Error> {
        let fd = sys::init().map_err(|e| {
            Error::Start(io::Error::new(
                e.kind(),
                format!(
                    "fanotify_init with FAN_REPORT_DFID_NAME_TARGET (needs CAP_SYS_ADMIN and \
                     Linux 5.17 or later): {e}"
                ),
            ))
        })?;
        Ok(Fanotify {
            fd,
            mounts: HashMap::new(),
            marked: HashSet::new(),
            handle_flags: libc::AT_HANDLE_FID,
            buf: vec![0u8; 256 * 1024],
            cookie: 0,
        })
    }

    /// A group with the file systems of `roots` marked already: whether fanotify works for
    /// these trees is known before anything is watched (see [`crate::Kernel`]).
    pub fn for_roots(roots: &[PathBuf]) -> Result<Fanotify, Error> {
        let mut f = Fanotify::new()?;
        for r in roots {
            f.handle(r)?;
        }
        Ok(f)
    }

    /// How many file systems are marked.
    pub fn marks(&self) -> usize {
        self.marked.len()
    }

    /// The handle of `dir`, marking its file system first when it is new; `None` when it is
    /// gone or unreadable.
    fn handle(&mut self, dir: &Path) -> Result<Option<Handle>, Error> {
        let watch_err = |source: io::Error| Error::Watch {
            path: dir.to_path_buf(),
            source,
        };
        let got = match sys::name_to_handle(dir, self.handle_flags) {
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) && self.handle_flags != 0 => {
                self.handle_flags = 0;
                sys::name_to_handle(dir, 0)
            }
            r => r,
        };
        let (handle_type, bytes, mount) = match got {
            Ok(h) => h,
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => {
                return Ok(None);
            }
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => return Ok(None),
            Err(e) => {
                return Err(watch_err(io::Error::new(
                    e.kind(),
                    format!(
                        "name_to_handle_at: {e} (this file system gives no file handles: use \
                         --backend inotify)"
                    ),
                )));
            }
        };
        let fsid = match self.mounts.get(&mount) {
            Some(f) => *f,
            None => {
                let Some(fsid) = sys::fsid(dir).map_err(watch_err)? else {
                    return Ok(None);
                };
                self.mounts.insert(mount, fsid);
                fsid
            }
        };
        if !self.marked.contains(&fsid) {
            sys::mark_filesystem(&self.fd, dir, MASK).map_err(|e| {
                watch_err(io::Error::new(
                    e.kind(),
                    format!(
                        "fanotify_mark FAN_MARK_FILESYSTEM: {e} (needs CAP_SYS_ADMIN, Linux 5.17 \
                         or later for FAN_RENAME, and a file system with an id)"
                    ),
                ))
            })?;
            self.marked.insert(fsid);
        }
        Ok(Some(Handle::new(fsid, handle_type, &bytes)))
    }

    fn next_cookie(&mut self) -> u32 {
        self.cookie = self.cookie.wrapping_add(1).max(1);
        self.cookie
    }

    /// The raw events of one fanotify event (`mask` and its information records).
    fn translate(&mut self, mask: u64, infos: &[Info], out: &mut Vec<Raw<Handle>>) {
        if mask & libc::FAN_Q_OVERFLOW != 0 {
            out.push(Raw::Overflow);
            return;
        }
        let dir = mask & libc::FAN_ONDIR != 0;
        let find = |t: u8| infos.iter().find(|i| i.kind == t);
        if mask & libc::FAN_RENAME != 0 {
            let (Some(old), Some(new)) = (
                find(libc::FAN_EVENT_INFO_TYPE_OLD_DFID_NAME),
                find(libc::FAN_EVENT_INFO_TYPE_NEW_DFID_NAME),
            ) else {
                return;
            };
            let cookie = self.next_cookie();
            for (i, kind) in [(old, Kind::MovedFrom), (new, Kind::MovedTo)] {
                out.push(Raw::Entry {
                    wd: i.handle.clone(),
                    name: i.name.clone(),
                    kind,
                    dir,
                    cookie,
                });
            }
            return;
        }
        let Some(at) = find(libc::FAN_EVENT_INFO_TYPE_DFID_NAME) else {
            return;
        };
        if at.name.as_bytes() == b"." {
            // An event on a directory itself, named by its own handle.
            if mask & libc::FAN_ATTRIB != 0 {
                out.push(Raw::DirAttrib(at.handle.clone()));
            }
            return;
        }
        // Events of one name merged in the queue lose their order. A deletion and a creation
        // of the same object (a hard link removed and made again) are in that order; with the
        // creation first, the consumer, looking at the disk, finds nothing for either.
        let order: &[(u64, Kind)] = if mask & libc::FAN_CREATE != 0 && mask & libc::FAN_DELETE != 0
        {
            &[
                (libc::FAN_DELETE, Kind::Delete),
                (libc::FAN_CREATE, Kind::Create),
                (libc::FAN_CLOSE_WRITE, Kind::Write),
                (libc::FAN_ATTRIB, Kind::Attrib),
            ]
        } else {
            &[
                (libc::FAN_CREATE, Kind::Create),
                (libc::FAN_CLOSE_WRITE, Kind::Write),
                (libc::FAN_ATTRIB, Kind::Attrib),
                (libc::FAN_DELETE, Kind::Delete),
            ]
        };
        for (bit, kind) in order {
            if mask & bit == 0 {
                continue;
            }
            out.push(Raw::Entry {
                wd: at.handle.clone(),
                name: at.name.clone(),
                kind: *kind,
                dir,
                cookie: 0,
            });
            if *kind == Kind::Delete
                && dir
                && let Some(me) = find(libc::FAN_EVENT_INFO_TYPE_FID)
            {
                // The removed directory's own handle: its "watch" is gone, as inotify's
                // IN_IGNORED says.
                out.push(Raw::Ignored(me.handle.clone()));
            }
        }
    }
}

impl AsFd for Fanotify {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// One information record of an event: its type, the object's handle, and the entry's name
/// (empty in a record without one).
struct Info {
    kind: u8,
    handle: Handle,
    name: OsString,
}

fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(i..i + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], i: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(i..i + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], i: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(b.get(i..i + 8)?.try_into().ok()?))
}

/// The records after an event's metadata: `struct fanotify_event_info_fid` (header, fsid,
/// `struct file_handle`), then, in the name types, the entry's name ending in a NUL.
fn infos(mut b: &[u8]) -> Vec<Info> {
    let mut out = Vec::new();
    while b.len() >= 4 {
        let kind = b[0];
        let len = u16_at(b, 2).unwrap_or(0) as usize;
        if len < 4 || len > b.len() {
            break;
        }
        let rec = &b[..len];
        b = &b[len..];
        let fid_types = [
            libc::FAN_EVENT_INFO_TYPE_FID,
            libc::FAN_EVENT_INFO_TYPE_DFID,
            libc::FAN_EVENT_INFO_TYPE_DFID_NAME,
            libc::FAN_EVENT_INFO_TYPE_OLD_DFID_NAME,
            libc::FAN_EVENT_INFO_TYPE_NEW_DFID_NAME,
        ];
        if !fid_types.contains(&kind) {
            continue;
        }
        let parsed = (|| {
            let fsid: [u8; 8] = rec.get(4..12)?.try_into().ok()?;
            let nbytes = u32_at(rec, 12)? as usize;
            let htype = u32_at(rec, 16)? as i32;
            let bytes = rec.get(20..20 + nbytes)?;
            let rest = &rec[20 + nbytes..];
            let name = rest.split(|c| *c == 0).next().unwrap_or_default();
            Some(Info {
                kind,
                handle: Handle::new(fsid, htype, bytes),
                name: std::ffi::OsStr::from_bytes(name).to_os_string(),
            })
        })();
        out.extend(parsed);
    }
    out
}

/// `struct fanotify_event_metadata`: event_len u32, vers u8, reserved u8, metadata_len u16,
/// mask u64, fd i32, pid i32.
const METADATA_LEN: usize = 24;

impl Backend for Fanotify {
    type Wd = Handle;

    fn add(&mut self, dir: &Path) -> Result<Option<Handle>, Error> {
        self.handle(dir)
    }

    fn remove(&mut self, _wd: Handle) {
        // Nothing in the kernel stands for one directory.
    }

    fn read(&mut self, out: &mut Vec<Raw<Handle>>) -> Result<(), Error> {
        loop {
            let n = match (&self.fd).read(&mut self.buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::Read(e)),
            };
            if n == 0 {
                return Ok(());
            }
            let buf = std::mem::take(&mut self.buf);
            let mut b = &buf[..n];
            while b.len() >= METADATA_LEN {
                let event_len = u32_at(b, 0).unwrap_or(0) as usize;
                let meta_len = u16_at(b, 6).unwrap_or(0) as usize;
                if event_len < METADATA_LEN || event_len > b.len() || meta_len > event_len {
                    break;
                }
                let mask = u64_at(b, 8).unwrap_or(0);
                let records = infos(&b[meta_len..event_len]);
                self.translate(mask, &records, out);
                b = &b[event_len..];
            }
            self.buf = buf;
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

/// The fanotify and file-handle system calls, each behind a safe function.
mod sys {
    use std::ffi::CString;
    use std::fs::File;
    use std::io;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::os::unix::ffi::OsStrExt;
    use std::path::Path;

    fn cpath(p: &Path) -> io::Result<CString> {
        CString::new(p.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL in the path"))
    }

    /// A non-blocking notification group reporting directory handles, names and the target's
    /// handle (renames as one event).
    pub fn init() -> io::Result<File> {
        let flags = libc::FAN_CLOEXEC
            | libc::FAN_NONBLOCK
            | libc::FAN_CLASS_NOTIF
            | libc::FAN_REPORT_DFID_NAME_TARGET;
        // SAFETY: plain system call with integer arguments; the result is checked.
        let fd = unsafe { libc::fanotify_init(flags, (libc::O_RDONLY | libc::O_CLOEXEC) as u32) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by fanotify_init and nothing else owns it.
        Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Mark the whole file system `path` is on.
    pub fn mark_filesystem(group: &File, path: &Path, mask: u64) -> io::Result<()> {
        let c = cpath(path)?;
        // SAFETY: `group` is an open fanotify descriptor, `c` a NUL-terminated path that
        // outlives the call; the result is checked.
        let r = unsafe {
            libc::fanotify_mark(
                group.as_raw_fd(),
                libc::FAN_MARK_ADD | libc::FAN_MARK_FILESYSTEM,
                mask,
                libc::AT_FDCWD,
                c.as_ptr(),
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// `struct file_handle` with room for the largest handle.
    #[repr(C)]
    struct FileHandle {
        handle_bytes: u32,
        handle_type: i32,
        f_handle: [u8; libc::MAX_HANDLE_SZ as usize],
    }

    /// The handle of `path` (not following a final symlink): type, bytes, and the mount id.
    pub fn name_to_handle(path: &Path, flags: i32) -> io::Result<(i32, Vec<u8>, i32)> {
        let c = cpath(path)?;
        let mut h = FileHandle {
            handle_bytes: libc::MAX_HANDLE_SZ as u32,
            handle_type: 0,
            f_handle: [0; libc::MAX_HANDLE_SZ as usize],
        };
        let mut mount: libc::c_int = 0;
        // SAFETY: `h` is a `struct file_handle` whose handle_bytes says how much room follows
        // it (MAX_HANDLE_SZ, the kernel's limit); `c` and `mount` outlive the call.
        let r = unsafe {
            libc::name_to_handle_at(
                libc::AT_FDCWD,
                c.as_ptr(),
                (&raw mut h).cast::<libc::file_handle>(),
                &mut mount,
                flags,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = (h.handle_bytes as usize).min(h.f_handle.len());
        Ok((h.handle_type, h.f_handle[..n].to_vec(), mount))
    }

    /// The file system id of `path` (`statfs`'s f_fsid, which fanotify reports), as bytes;
    /// `None` when the path is gone.
    pub fn fsid(path: &Path) -> io::Result<Option<[u8; 8]>> {
        let c = cpath(path)?;
        let mut st = std::mem::MaybeUninit::<libc::statfs>::zeroed();
        // SAFETY: `st` has room for a `struct statfs`, `c` is NUL-terminated; checked below.
        let r = unsafe { libc::statfs(c.as_ptr(), st.as_mut_ptr()) };
        if r < 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::ENOENT | libc::ENOTDIR) => Ok(None),
                _ => Err(e),
            };
        }
        // SAFETY: statfs succeeded, so it filled the structure.
        let st = unsafe { st.assume_init() };
        // SAFETY: fsid_t is two C ints (its field is private in libc): 8 plain bytes.
        let bytes: [u8; 8] = unsafe { std::mem::transmute(st.f_fsid) };
        Ok(Some(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Fanotify group, or `None` (said loudly) where the kernel or privileges refuse.
    fn group() -> Option<Fanotify> {
        match Fanotify::new() {
            Ok(f) => Some(f),
            Err(e) => {
                eprintln!("SKIPPED: fanotify is not available here: {e}");
                None
            }
        }
    }

    fn read_until(f: &mut Fanotify, want: impl Fn(&[Raw<Handle>]) -> bool) -> Vec<Raw<Handle>> {
        let mut got = Vec::new();
        for _ in 0..200 {
            f.read(&mut got).unwrap();
            if want(&got) {
                return got;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("not seen: {got:?}");
    }

    #[test]
    fn events_name_the_directory_by_the_handle_taken_when_it_was_added() {
        let Some(mut f) = group() else { return };
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("a");
        std::fs::create_dir(&a).unwrap();
        let ha = f.add(&a).unwrap().unwrap();
        assert_eq!(
            f.add(&a).unwrap(),
            Some(ha.clone()),
            "the same handle twice"
        );
        assert_eq!(f.marks(), 1);
        std::fs::write(a.join("f"), b"x").unwrap();
        std::fs::rename(a.join("f"), a.join("g")).unwrap();
        std::fs::create_dir(a.join("sub")).unwrap();
        let hs = f.add(&a.join("sub")).unwrap().unwrap();
        std::fs::remove_dir(a.join("sub")).unwrap();
        let is = |r: &Raw<Handle>, k: Kind, n: &str| matches!(r, Raw::Entry { wd, name, kind, .. } if *wd == ha && *kind == k && name == n);
        let got = read_until(&mut f, |g| g.contains(&Raw::Ignored(hs.clone())));
        let mine: Vec<_> = got
            .iter()
            .filter(|r| {
                matches!(r, Raw::Entry { wd, .. } if *wd == ha) || **r == Raw::Ignored(hs.clone())
            })
            .collect();
        assert!(is(mine[0], Kind::Create, "f"), "{mine:?}");
        assert!(is(mine[1], Kind::Write, "f"), "{mine:?}");
        let (Raw::Entry { cookie: c1, .. }, Raw::Entry { cookie: c2, .. }) = (mine[2], mine[3])
        else {
            panic!("{mine:?}")
        };
        assert!(is(mine[2], Kind::MovedFrom, "f") && is(mine[3], Kind::MovedTo, "g"));
        assert!(c1 == c2 && *c1 != 0, "one cookie for both halves: {mine:?}");
        // mkdir and rmdir of one directory may merge in the queue: a deletion first, then.
        let sub = |k: Kind| move |r: &&Raw<Handle>| matches!(r, Raw::Entry { name, kind, dir: true, .. } if name == "sub" && *kind == k);
        let made = mine.iter().position(sub(Kind::Create)).expect("mkdir");
        let gone = mine.iter().position(sub(Kind::Delete)).expect("rmdir");
        assert_eq!(
            *mine[gone + 1],
            Raw::Ignored(hs),
            "the removed directory's handle"
        );
        assert!(made > 3 && gone > 3, "{mine:?}");
    }

    #[test]
    fn a_directory_changed_itself_is_an_attrib_of_its_own_handle() {
        let Some(mut f) = group() else { return };
        let d = tempfile::tempdir().unwrap();
        let h = f.add(d.path()).unwrap().unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
        read_until(&mut f, |g| g.contains(&Raw::DirAttrib(h.clone())));
    }

    #[test]
    fn short_and_long_handles_compare_by_their_bytes() {
        let short = Handle::new([1; 8], 1, &[7; 8]);
        assert_eq!(short, Handle::new([1; 8], 1, &[7; 8]));
        assert_ne!(short, Handle::new([1; 8], 2, &[7; 8]));
        assert_eq!(short.bytes().len(), 20);
        let long = Handle::new([1; 8], 1, &[7; 40]);
        assert_eq!(long, Handle::new([1; 8], 1, &[7; 40]));
        assert_ne!(long, Handle::new([1; 8], 1, &[7; 41]));
        assert_eq!(long.bytes().len(), 52);
        assert_eq!(std::mem::size_of::<Handle>(), 32);
    }

    #[test]
    fn a_gone_path_has_no_handle() {
        let Some(mut f) = group() else { return };
        let d = tempfile::tempdir().unwrap();
        assert_eq!(f.add(&d.path().join("nothing")).unwrap(), None);
    }

    #[test]
    fn a_running_watcher_over_fanotify_sees_what_inotify_sees() {
        let Some(f) = group() else { return };
        let d = tempfile::tempdir().unwrap();
        let d = d.path();
        std::fs::create_dir(d.join("skip")).unwrap();
        std::fs::write(d.join("old"), "x").unwrap();
        let rules = Rules {
            roots: vec![d.to_path_buf()],
            exclude: vec![d.join("skip")],
            writer: None,
        };
        let mut found = Vec::new();
        let w = crate::Watcher::walking(f, rules, &mut |e| found.push(e)).unwrap();
        assert_eq!(w.watched(), 1, "the root (skip is excluded)");
        let running = w.spawn(Vec::new()).unwrap();
        std::fs::create_dir_all(d.join("a/b/c")).unwrap();
        std::fs::write(d.join("a/b/c/f"), "x").unwrap();
        std::fs::rename(d.join("old"), d.join("new")).unwrap();
        std::fs::write(d.join("skip/ignored"), "x").unwrap();
        std::fs::rename(d.join("a/b"), d.join("moved")).unwrap();
        std::fs::write(d.join("moved/c/g"), "x").unwrap();
        std::fs::remove_file(d.join("new")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(d.join("moved"), std::fs::Permissions::from_mode(0o700)).unwrap();
        let ev = running.finish().unwrap();
        use crate::Event;
        for want in [
            Event::Moved {
                from: d.join("old"),
                to: d.join("new"),
                dir: false,
            },
            Event::Moved {
                from: d.join("a/b"),
                to: d.join("moved"),
                dir: true,
            },
            Event::Written {
                path: d.join("moved/c/g"),
            },
            Event::Deleted {
                path: d.join("new"),
                dir: false,
            },
            Event::Attrib {
                path: d.join("moved"),
                dir: true,
            },
        ] {
            assert!(ev.contains(&want), "{want:?} not in {ev:?}");
        }
        assert!(
            ev.iter().all(|e| !format!("{e:?}").contains("skip")),
            "excluded subtree reported: {ev:?}"
        );
    }

    #[test]
    fn a_move_out_of_the_trees_is_a_deletion_at_once() {
        let Some(f) = group() else { return };
        let d = tempfile::tempdir().unwrap();
        let (tree, out) = (d.path().join("tree"), d.path().join("out"));
        std::fs::create_dir_all(tree.join("sub")).unwrap();
        std::fs::create_dir(&out).unwrap();
        std::fs::write(tree.join("sub/f"), "x").unwrap();
        let rules = Rules {
            roots: vec![tree.clone()],
            exclude: vec![],
            writer: None,
        };
        let mut w = crate::Watcher::walking(f, rules, &mut |_| {}).unwrap();
        std::fs::rename(tree.join("sub"), out.join("sub")).unwrap();
        let mut ev = Vec::new();
        for _ in 0..200 {
            w.read(&mut |e| ev.push(e)).unwrap();
            if !ev.is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        // Its partner landed outside: settled now, not at the next event in the trees.
        assert_eq!(
            ev,
            [crate::Event::Deleted {
                path: tree.join("sub"),
                dir: true
            }]
        );
        assert!(!w.has_pending());
        assert!(!w.is_watched(&tree.join("sub")), "its watch went with it");
    }
}
