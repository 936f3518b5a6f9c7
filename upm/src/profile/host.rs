//! Host facts a profile records: the machine's architecture, and the C library and compiler of
//! the target root — read from its files, never by running anything (the root may be an LFS
//! chroot half built).

use std::path::Path;

/// What a build ran on.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Host {
    /// The kernel's machine name (`x86_64`, `aarch64`).
    pub arch: String,
    /// `glibc 2.36`, `musl`, or `unknown`.
    pub libc: String,
    /// `gcc 12 (x86_64-linux-gnu)`, or `unknown`.
    pub compiler: String,
}

/// The facts of this machine and `root`.
pub fn facts(root: &Path) -> Host {
    let arch = nix::sys::utsname::uname()
        .map(|u| u.machine().to_string_lossy().into_owned())
        .unwrap_or_else(|_| std::env::consts::ARCH.to_string());
    Host {
        arch,
        libc: libc(root).unwrap_or_else(|| "unknown".into()),
        compiler: compiler(root).unwrap_or_else(|| "unknown".into()),
    }
}

/// The C library: glibc's version from the text its `libc.so.6` carries
/// ("GNU C Library ... release version 2.36"), or musl by its loader's name.
fn libc(root: &Path) -> Option<String> {
    let dirs = lib_dirs(root);
    for dir in &dirs {
        let Ok(bytes) = std::fs::read(dir.join("libc.so.6")) else {
            continue;
        };
        if let Some(v) = glibc_version(&bytes) {
            return Some(format!("glibc {v}"));
        }
    }
    for dir in &dirs {
        let Ok(rd) = std::fs::read_dir(dir) else {
            continue;
        };
        if rd
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("ld-musl-"))
        {
            return Some("musl".into());
        }
    }
    None
}

fn glibc_version(bytes: &[u8]) -> Option<String> {
    let needle = b"release version ";
    let at = bytes.windows(needle.len()).position(|w| w == needle)? + needle.len();
    let v: String = bytes[at..]
        .iter()
        .take_while(|b| b.is_ascii_digit() || **b == b'.')
        .map(|b| *b as char)
        .collect();
    let v = v.trim_end_matches('.');
    (!v.is_empty()).then(|| v.to_string())
}

/// The library directories of a root: the usual ones and the multiarch ones under them.
fn lib_dirs(root: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for d in ["lib", "lib64", "usr/lib", "usr/lib64"] {
        let dir = root.join(d);
        if let Ok(rd) = std::fs::read_dir(&dir) {
            let mut multi: Vec<_> = rd
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.ends_with("-linux-gnu") || n.ends_with("-linux-musl"))
                })
                .collect();
            multi.sort();
            out.push(dir);
            out.extend(multi);
        }
    }
    out
}

/// The compiler: gcc by its versioned directories (`usr/lib/gcc/TARGET/VERSION`), the newest.
fn compiler(root: &Path) -> Option<String> {
    let mut found: Vec<(Vec<u32>, String, String)> = Vec::new();
    for base in ["usr/lib/gcc", "usr/lib64/gcc", "usr/libexec/gcc"] {
        let Ok(targets) = std::fs::read_dir(root.join(base)) else {
            continue;
        };
        for t in targets.flatten() {
            let target = t.file_name().to_string_lossy().into_owned();
            let Ok(versions) = std::fs::read_dir(t.path()) else {
                continue;
            };
            for v in versions.flatten() {
                let version = v.file_name().to_string_lossy().into_owned();
                let parts: Option<Vec<u32>> = version.split('.').map(|p| p.parse().ok()).collect();
                if let Some(parts) = parts {
                    found.push((parts, version, target.clone()));
                }
            }
        }
    }
    found.sort();
    found
        .pop()
        .map(|(_, version, target)| format!("gcc {version} ({target})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glibc_version_from_its_banner() {
        let b = b"\0GNU C Library (Debian GLIBC 2.36-9) stable release version 2.36.\n\0";
        assert_eq!(glibc_version(b).as_deref(), Some("2.36"));
        assert_eq!(glibc_version(b"nothing here"), None);
    }

    #[test]
    fn compiler_from_versioned_dirs() {
        let d = tempfile::tempdir().unwrap();
        for v in ["9", "12", "12.2.0"] {
            std::fs::create_dir_all(d.path().join("usr/lib/gcc/x86_64-linux-gnu").join(v)).unwrap();
        }
        assert_eq!(
            compiler(d.path()).as_deref(),
            Some("gcc 12.2.0 (x86_64-linux-gnu)")
        );
        assert_eq!(facts(d.path()).libc, "unknown");
    }
}
