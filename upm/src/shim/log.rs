//! Reading the shim's log: its records (the `upm-rootstep` format) folded into the paths an
//! install touched, as the watcher's events are ([`crate::track::Touched`]). The shim logs
//! paths as the process named them; here they are normalised (`.` and `..`), their directories
//! resolved inside the root (`/lib/x` is `/usr/lib/x` where `/lib` is a symlink, as the
//! watcher sees it), and kept only when under the tracked trees.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use upm_rootstep::Record;

use crate::config::Config;
use crate::fsutil::{in_root, resolve_in_root};
use crate::track::Touched;

/// Lexically normal: `/a/./b/../c` is `/a/c`; `None` for a relative path.
pub fn normal(p: &[u8]) -> Option<PathBuf> {
    let p = Path::new(OsStr::from_bytes(p));
    if !p.is_absolute() {
        return None;
    }
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            _ => {}
        }
    }
    Some(out)
}

/// Resolves the directories of logged paths inside a root, remembering each directory.
struct Resolver<'a> {
    root: &'a Path,
    dirs: BTreeMap<PathBuf, PathBuf>,
}

impl Resolver<'_> {
    /// The path with its directory's symlinks resolved (the last component kept).
    fn resolve(&mut self, p: &Path) -> PathBuf {
        let (Some(parent), Some(name)) = (p.parent(), p.file_name()) else {
            return p.to_path_buf();
        };
        let root = self.root;
        let dir = self.dirs.entry(parent.to_path_buf()).or_insert_with(|| {
            match resolve_in_root(root, parent) {
                Some(host) => in_root(root, &host),
                // A directory gone since (removed by the install): as named.
                None => parent.to_path_buf(),
            }
        });
        dir.join(name)
    }
}

/// The paths a log's records touched, inside the root, under the tracked trees of `cfg`.
pub fn touched(root: &Path, cfg: &Config, data: &[u8]) -> Touched {
    let mut t = Touched::default();
    let mut r = Resolver {
        root,
        dirs: BTreeMap::new(),
    };
    let mut path = |bytes: &[u8]| {
        let p = r.resolve(&normal(bytes)?);
        cfg.tracked(&p).then_some(p)
    };
    for rec in Record::parse_all(data) {
        let Some(p) = path(&rec.path) else {
            // A rename out of the tracked trees still deletes its source.
            if rec.kind == b"rename"
                && let Some(from) = path(&rec.arg)
            {
                t.deleted.insert(from);
            }
            continue;
        };
        match rec.kind.as_slice() {
            b"create" | b"mkdir" | b"symlink" | b"link" | b"mknod" => {
                t.appeared.insert(p.clone());
                t.changed.insert(p);
            }
            b"open" | b"chmod" | b"chown" | b"truncate" | b"utimens" => {
                t.changed.insert(p);
            }
            b"exchange" => {
                if let Some(from) = path(&rec.arg) {
                    t.changed.insert(from);
                }
                t.changed.insert(p);
            }
            b"rename" => {
                if let Some(from) = path(&rec.arg) {
                    // What was touched under a directory now lives under its new name.
                    let under: Vec<PathBuf> = t
                        .changed
                        .iter()
                        .filter(|c| c.starts_with(&from) && **c != from)
                        .cloned()
                        .collect();
                    for c in under {
                        t.changed.remove(&c);
                        t.appeared.remove(&c);
                        if let Ok(rest) = c.strip_prefix(&from) {
                            t.changed.insert(p.join(rest));
                            t.appeared.insert(p.join(rest));
                        }
                    }
                    t.changed.remove(&from);
                    t.appeared.remove(&from);
                    t.deleted.insert(from);
                }
                // A directory moved into place: its whole content counts (read from disk).
                if std::fs::symlink_metadata(crate::fsutil::on_host(root, &p))
                    .is_ok_and(|m| m.is_dir())
                {
                    t.trees.insert(p.clone());
                }
                t.appeared.insert(p.clone());
                t.changed.insert(p);
            }
            b"unlink" | b"rmdir" => {
                t.deleted.insert(p);
            }
            _ => {}
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> Config {
        Config::defaults(PathBuf::from("/etc/upm/upm.toml"))
    }

    fn log(lines: &[(&str, &str, &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (k, a, p) in lines {
            out.extend(Record::new(k, a.as_bytes(), p.as_bytes()).line().unwrap());
        }
        out
    }

    #[test]
    fn paths_are_normalised_and_only_tracked_trees_kept() {
        assert_eq!(
            normal(b"/usr/lib/../bin/./x"),
            Some(PathBuf::from("/usr/bin/x"))
        );
        assert_eq!(normal(b"x"), None);
        let d = tempfile::tempdir().unwrap();
        let t = touched(
            d.path(),
            &cfg(),
            &log(&[
                ("create", "", "/usr/bin/../lib/libz.so"),
                ("open", "", "/tmp/x"),
                ("open", "", "/usr/src/zlib/build/a.o"),
                ("mkdir", "755", "/usr/share/doc/z"),
                ("unlink", "", "/usr/lib/libz.a"),
                ("chmod", "755", "/usr/bin/tool"),
            ]),
        );
        let p = |s: &str| PathBuf::from(s);
        assert!(t.appeared.contains(&p("/usr/lib/libz.so")));
        assert!(t.appeared.contains(&p("/usr/share/doc/z")));
        assert!(t.changed.contains(&p("/usr/bin/tool")));
        assert!(!t.appeared.contains(&p("/usr/bin/tool")));
        assert!(t.deleted.contains(&p("/usr/lib/libz.a")));
        assert!(
            !t.changed
                .iter()
                .any(|c| c.starts_with("/tmp") || c.starts_with("/usr/src"))
        );
    }

    #[test]
    fn renames_move_what_was_touched_and_delete_their_source() {
        let d = tempfile::tempdir().unwrap();
        let t = touched(
            d.path(),
            &cfg(),
            &log(&[
                ("mkdir", "755", "/usr/lib/tmp.d"),
                ("create", "", "/usr/lib/tmp.d/x.so"),
                ("rename", "/usr/lib/tmp.d", "/usr/lib/x"),
                ("create", "", "/tmp/build/y"),
                ("rename", "/tmp/build/y", "/usr/bin/y"),
            ]),
        );
        let p = |s: &str| PathBuf::from(s);
        assert!(t.changed.contains(&p("/usr/lib/x/x.so")));
        assert!(!t.changed.iter().any(|c| c.starts_with("/usr/lib/tmp.d")));
        assert!(t.deleted.contains(&p("/usr/lib/tmp.d")));
        assert!(t.appeared.contains(&p("/usr/bin/y")));
    }

    #[test]
    fn symlinked_directories_resolve_as_the_watcher_sees_them() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("usr/lib")).unwrap();
        std::os::unix::fs::symlink("usr/lib", d.path().join("lib")).unwrap();
        let mut c = cfg();
        c.track_roots.push(PathBuf::from("/lib"));
        let t = touched(d.path(), &c, &log(&[("create", "", "/lib/libx.so")]));
        assert!(
            t.appeared.contains(&PathBuf::from("/usr/lib/libx.so")),
            "{t:?}"
        );
    }
}
