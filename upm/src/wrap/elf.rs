//! Telling a dynamically linked program from a static one: an ELF file with a program
//! interpreter (`PT_INTERP`, the dynamic loader) loads LD_PRELOAD libraries; one without does
//! not. A script (`#!`) runs an interpreter that does, so it counts as dynamic.

use std::io::Read;
use std::path::Path;

const PT_INTERP: u32 = 3;

/// Whether `path` is a program the dynamic loader starts (so the shim is loaded into it).
pub fn dynamic(path: &Path) -> bool {
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    let mut data = Vec::new();
    // The program headers follow the ELF header closely; 64 KiB covers any real layout.
    if f.by_ref().take(64 * 1024).read_to_end(&mut data).is_err() {
        return false;
    }
    has_interp(&data).unwrap_or(false)
}

/// Whether the ELF image starting with `d` has a PT_INTERP header; `None` when it is not one
/// this can read. Scripts count as dynamic.
fn has_interp(d: &[u8]) -> Option<bool> {
    if d.starts_with(b"#!") {
        return Some(true);
    }
    if !d.starts_with(b"\x7fELF") {
        return None;
    }
    let is64 = *d.get(4)? == 2;
    let le = *d.get(5)? == 1;
    let u16_at = |o: usize| -> Option<u64> {
        let b: [u8; 2] = d.get(o..o + 2)?.try_into().ok()?;
        Some(u64::from(if le {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        }))
    };
    let u32_at = |o: usize| -> Option<u64> {
        let b: [u8; 4] = d.get(o..o + 4)?.try_into().ok()?;
        Some(u64::from(if le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        }))
    };
    let u64_at = |o: usize| -> Option<u64> {
        let b: [u8; 8] = d.get(o..o + 8)?.try_into().ok()?;
        Some(if le {
            u64::from_le_bytes(b)
        } else {
            u64::from_be_bytes(b)
        })
    };
    let (phoff, phentsize, phnum) = if is64 {
        (u64_at(0x20)?, u16_at(0x36)?, u16_at(0x38)?)
    } else {
        (u32_at(0x1c)?, u16_at(0x2a)?, u16_at(0x2c)?)
    };
    for i in 0..phnum {
        let at = usize::try_from(phoff + i * phentsize).ok()?;
        if u32_at(at)? == u64::from(PT_INTERP) {
            return Some(true);
        }
    }
    Some(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_tools_are_dynamic_and_scripts_count() {
        assert!(dynamic(Path::new("/bin/sh")));
        assert_eq!(has_interp(b"#!/bin/sh\n"), Some(true));
        assert_eq!(has_interp(b"hello"), None);
        assert!(!dynamic(Path::new("/nonexistent")));
    }
}
