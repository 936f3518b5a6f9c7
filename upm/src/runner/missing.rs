//! Why a phase could not start: after the kernel's bare "No such file or directory", find what
//! is missing in the target root — the working directory, the program (`/bin/sh`), the
//! interpreter its `#!` line names, or the dynamic loader its ELF header names — so the
//! message can name it. Symlinks are followed as the chrooted phase would follow them.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::fsutil::resolve_in_root;

/// What is missing in `root` (a path inside it) for `program` to start in `cwd`, if anything.
pub fn find(root: &Path, program: &Path, cwd: &Path) -> Option<(PathBuf, &'static str)> {
    if resolve_in_root(root, cwd).is_none_or(|p| !p.is_dir()) {
        return Some((cwd.to_path_buf(), "the working directory"));
    }
    let mut prog = program.to_path_buf();
    // A script's interpreter may be a script too; the kernel allows a few levels.
    for _ in 0..4 {
        let Some(host) = resolve_in_root(root, &prog) else {
            return Some((prog, "the program"));
        };
        match interpreter(&host) {
            Some(next) => prog = next,
            None => return None,
        }
        if resolve_in_root(root, &prog).is_none() {
            return Some((prog, "the interpreter"));
        }
    }
    None
}

/// The interpreter a file names: its `#!` line, or an ELF program's PT_INTERP (the dynamic
/// loader).
fn interpreter(file: &Path) -> Option<PathBuf> {
    let mut head = Vec::new();
    std::fs::File::open(file)
        .ok()?
        .take(64 * 1024)
        .read_to_end(&mut head)
        .ok()?;
    if let Some(rest) = head.strip_prefix(b"#!") {
        let line = rest.split(|&b| b == b'\n').next()?;
        let line = String::from_utf8_lossy(line);
        return line.split_whitespace().next().map(PathBuf::from);
    }
    elf_interp(&head)
}

/// PT_INTERP of a little-endian ELF file whose first bytes are `b`.
fn elf_interp(b: &[u8]) -> Option<PathBuf> {
    if b.get(..4)? != b"\x7fELF" || *b.get(5)? != 1 {
        return None;
    }
    let u16_at = |o: usize| Some(u16::from_le_bytes(b.get(o..o + 2)?.try_into().ok()?) as usize);
    let u32_at = |o: usize| Some(u32::from_le_bytes(b.get(o..o + 4)?.try_into().ok()?) as usize);
    let u64_at = |o: usize| Some(u64::from_le_bytes(b.get(o..o + 8)?.try_into().ok()?) as usize);
    // (program header offset, entry size, count) and, per entry, (offset, size) fields.
    let wide = *b.get(4)? == 2;
    let (phoff, phentsize, phnum) = if wide {
        (u64_at(0x20)?, u16_at(0x36)?, u16_at(0x38)?)
    } else {
        (u32_at(0x1c)?, u16_at(0x2a)?, u16_at(0x2c)?)
    };
    for i in 0..phnum {
        let ph = phoff.checked_add(i.checked_mul(phentsize)?)?;
        const PT_INTERP: usize = 3;
        if u32_at(ph)? != PT_INTERP {
            continue;
        }
        let (off, size) = if wide {
            (u64_at(ph + 0x08)?, u64_at(ph + 0x20)?)
        } else {
            (u32_at(ph + 0x04)?, u32_at(ph + 0x10)?)
        };
        let name = b.get(off..off.checked_add(size)?)?;
        let name = name.split(|&c| c == 0).next()?;
        return Some(PathBuf::from(String::from_utf8_lossy(name).into_owned()));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_what_is_missing() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        std::fs::create_dir_all(r.join("bin")).unwrap();
        std::fs::create_dir_all(r.join("work")).unwrap();
        let sh = Path::new("/bin/sh");
        let work = Path::new("/work");
        assert_eq!(
            find(r, sh, Path::new("/nowhere")),
            Some((PathBuf::from("/nowhere"), "the working directory"))
        );
        assert_eq!(find(r, sh, work), Some((sh.into(), "the program")));
        // An absolute symlink resolves inside the root, not on the host.
        std::os::unix::fs::symlink("/usr/bin/dash", r.join("bin/sh")).unwrap();
        assert_eq!(find(r, sh, work), Some((sh.into(), "the program")));
        std::fs::create_dir_all(r.join("usr/bin")).unwrap();
        std::fs::write(r.join("usr/bin/dash"), "#!/bin/busybox sh\n").unwrap();
        assert_eq!(
            find(r, sh, work),
            Some((PathBuf::from("/bin/busybox"), "the interpreter"))
        );
        std::fs::write(r.join("bin/busybox"), "\x7fELF").unwrap();
        assert_eq!(find(r, sh, work), None);
    }

    #[test]
    fn reads_the_loader_of_a_real_program() {
        // This test's own binary is a dynamically linked ELF file (Rust's default on Linux).
        let me = std::env::current_exe().unwrap();
        let mut head = Vec::new();
        std::fs::File::open(&me)
            .unwrap()
            .take(64 * 1024)
            .read_to_end(&mut head)
            .unwrap();
        let l = elf_interp(&head).expect("a dynamically linked test binary names its loader");
        assert!(l.is_absolute() && l.exists(), "{}", l.display());
        assert_eq!(elf_interp(b"\x7fELF"), None);
        assert_eq!(elf_interp(b"not elf at all"), None);
    }
}
