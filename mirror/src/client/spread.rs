//! Where the client makes new files: in a directory of its own under `DIR/.fs_mirror/`, a new
//! one every [`PER_DIR`] files, each put by the file system where inodes are free and were
//! not freed lately. A file system without a journal (ext4 here) skips the inodes freed in the
//! last minutes one by one when it looks for a free one near the directory (`recently_deleted`
//! in `perf`): a catch-up that replaces 40,000 files spent half its time there when the new
//! files were made beside the ones being replaced. `.fs_mirror` is marked a top of directory
//! hierarchies (`chattr +T`, where the file system knows the flag), so ext4's Orlov allocator
//! spreads the directories made in it to groups with free inodes rather than keeping them
//! near their parent.

use std::path::{Path, PathBuf};

use crate::error::{Result, io};

/// Files made in one directory before the next is made: a block group's inodes, about.
pub const PER_DIR: u64 = 4096;

/// `FS_TOPDIR_FL` of `linux/fs.h` (`chattr +T`).
const TOPDIR: nix::libc::c_int = 0x0002_0000;

/// Mark `dir` a top of directory hierarchies. Best effort: where the file system has no such
/// flag (or refuses it), new directories are placed as it always places them.
pub fn mark_top(dir: &Path) {
    let Ok(f) = std::fs::File::open(dir) else {
        return;
    };
    use std::os::fd::AsRawFd;
    let fd = f.as_raw_fd();
    let mut flags: nix::libc::c_int = 0;
    // SAFETY: FS_IOC_GETFLAGS writes one int (the kernel's size for it, whatever the request
    // number says) to the pointer, which points to a live local int; `fd` is open for the
    // call's duration.
    if unsafe { nix::libc::ioctl(fd, nix::libc::FS_IOC_GETFLAGS, &mut flags) } != 0 {
        return;
    }
    if flags & TOPDIR == 0 {
        flags |= TOPDIR;
        // SAFETY: FS_IOC_SETFLAGS reads one int from the pointer, a live local int.
        unsafe { nix::libc::ioctl(fd, nix::libc::FS_IOC_SETFLAGS, &flags) };
    }
}

/// The directories new files are made in, one after another.
pub struct Spread {
    top: PathBuf,
    /// The one in use, and how many files were made in it.
    dir: PathBuf,
    made: u64,
    k: u64,
    /// Directories used up: removed once no file being written can still be in them.
    pub used: Vec<PathBuf>,
}

impl Spread {
    /// `top`: the client's own directory (`DIR/.fs_mirror`), its leftovers already set aside
    /// ([`crate::client::reaper::Reaper::clear_later`]).
    pub fn new(top: &Path) -> Result<Spread> {
        mark_top(top);
        let mut s = Spread {
            top: top.to_path_buf(),
            dir: PathBuf::new(),
            made: 0,
            k: 0,
            used: Vec::new(),
        };
        s.next_dir()?;
        Ok(s)
    }

    /// Make the next directory; the one in use joins [`Spread::used`].
    fn next_dir(&mut self) -> Result<()> {
        self.k += 1;
        let dir = self.top.join(format!("n{}", self.k));
        std::fs::create_dir(&dir).map_err(io(&dir))?;
        let old = std::mem::replace(&mut self.dir, dir);
        if !old.as_os_str().is_empty() {
            self.used.push(old);
        }
        self.made = 0;
        Ok(())
    }

    /// A free name for a new file (its directory is where the file system places it).
    pub fn name(&mut self, n: u64) -> Result<PathBuf> {
        if self.made == PER_DIR {
            self.next_dir()?;
        }
        self.made += 1;
        Ok(self.dir.join(format!("t{n}")))
    }
}

/// Whether a name in `DIR/.fs_mirror` is one of these directories (`n1`, `n2`, ...).
pub fn is_spread_dir(name: &std::ffi::OsStr) -> bool {
    let b = std::os::unix::ffi::OsStrExt::as_bytes(name);
    b.len() > 1 && b[0] == b'n' && b[1..].iter().all(u8::is_ascii_digit)
}
