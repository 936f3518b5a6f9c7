//! Reading an ELF file's dynamic section — DT_NEEDED, DT_SONAME, DT_RUNPATH (or the older
//! DT_RPATH) — through the `object` crate, reading only the parts of the file it needs.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use object::Endianness;
use object::elf;
use object::read::ReadCache;
use object::read::elf::{FileHeader, SectionHeader};

/// What the dynamic loader reads from one ELF file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dynamic {
    /// DT_SONAME: the name other files need it by (a shared library's).
    pub soname: Option<String>,
    /// DT_NEEDED, in order.
    pub needed: Vec<String>,
    /// DT_RUNPATH, else DT_RPATH, as written (`$ORIGIN` unexpanded).
    pub runpath: Option<String>,
}

/// The dynamic section of `path`, if it is an ELF file with one; `None` for anything else
/// (a script, a static program, an object file, a file this cannot read).
pub fn read(path: &Path) -> Option<Dynamic> {
    let mut f = File::open(path).ok()?;
    let mut magic = [0u8; 5];
    f.read_exact(&mut magic).ok()?;
    if &magic[..4] != b"\x7fELF" {
        return None;
    }
    let cache = ReadCache::new(f);
    // EI_CLASS: 1 for 32-bit, 2 for 64-bit.
    match magic[4] {
        2 => parse::<elf::FileHeader64<Endianness>>(&cache),
        1 => parse::<elf::FileHeader32<Endianness>>(&cache),
        _ => None,
    }
}

fn parse<Elf: FileHeader<Endian = Endianness>>(data: &ReadCache<File>) -> Option<Dynamic> {
    let header = Elf::parse(data).ok()?;
    let endian = header.endian().ok()?;
    let kind = header.e_type(endian);
    if kind != elf::ET_DYN && kind != elf::ET_EXEC {
        return None;
    }
    let sections = header.sections(endian, data).ok()?;
    // A file without a dynamic section (static, or an object) needs nothing by name.
    sections
        .iter()
        .find(|s| s.sh_type(endian) == elf::SHT_DYNAMIC)?;
    let table = sections.dynamic_table(endian, data).ok()?;
    let mut out = Dynamic::default();
    let mut rpath = None;
    for d in &table {
        let text = || {
            table
                .string(d)
                .ok()
                .map(|s| String::from_utf8_lossy(s).into_owned())
        };
        match d.tag {
            elf::DT_NEEDED => out.needed.extend(text()),
            elf::DT_SONAME => out.soname = text(),
            elf::DT_RUNPATH => out.runpath = text(),
            elf::DT_RPATH => rpath = text(),
            _ => {}
        }
    }
    if out.runpath.is_none() {
        out.runpath = rpath;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_test_programs_needs_and_ignores_other_files() {
        let me = std::env::current_exe().unwrap();
        let d = read(&me).expect("the test binary is a dynamic ELF file");
        assert!(d.needed.iter().any(|n| n.starts_with("libc.so")), "{d:?}");
        assert_eq!(d.soname, None);
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("s");
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        assert_eq!(read(&script), None);
        let fake = dir.path().join("f");
        std::fs::write(&fake, b"\x7fELF\x02garbage").unwrap();
        assert_eq!(read(&fake), None);
    }
}
