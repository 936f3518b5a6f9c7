//! The per-template metadata file, `.unfold.toml`: the owner, group and mode each path gets
//! when the tree is unfolded into real files (git keeps neither owners nor most modes). One
//! table per unit-relative path, quoted, so the file diffs line by line:
//!
//! ```toml
//! ["etc/shadow"]
//! owner = "root"
//! group = "shadow"
//! mode = "0640"
//! ```
//!
//! A unit's own file is looked up first, then its parents' in `.inherits` order (depth first):
//! the first that names a path decides it. A path no file names keeps the file's mode from the
//! repository (directories 0755) and belongs to root.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{Error, META, Repo, Result};
use crate::fsutil::io;

/// What the metadata says about one path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entry {
    pub owner: Option<String>,
    pub group: Option<String>,
    pub mode: Option<u32>,
    /// The metadata file that said it (for messages).
    pub from: PathBuf,
}

/// The metadata of a unit and its ancestors, merged (first wins per path).
#[derive(Debug, Default)]
pub struct Meta {
    pub entries: BTreeMap<PathBuf, Entry>,
}

impl Meta {
    pub fn load(repo: &Repo, unit: &Path) -> Result<Meta> {
        let mut meta = Meta::default();
        for u in repo.ancestry(unit)? {
            let rel = u.join(META);
            let file = repo.abs(&rel);
            let text = match std::fs::read_to_string(&file) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io(&file)(e).into()),
            };
            for (path, entry) in parse(&rel, &text)? {
                meta.entries.entry(path).or_insert(entry);
            }
        }
        Ok(meta)
    }

    /// The entry for a unit-relative path (the unit's top is `.`).
    pub fn get(&self, sub: &Path) -> Option<&Entry> {
        let key = if sub.as_os_str().is_empty() {
            Path::new(".")
        } else {
            sub
        };
        self.entries.get(key)
    }
}

/// Parse one metadata file (`rel` names it in errors).
pub fn parse(rel: &Path, text: &str) -> Result<Vec<(PathBuf, Entry)>> {
    let bad = |what: String| Error::Bad {
        path: rel.to_path_buf(),
        what,
    };
    let doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| bad(format!("not valid TOML: {e}")))?;
    let mut out = Vec::new();
    for (key, item) in doc.iter() {
        let table = item.as_table_like().ok_or_else(|| {
            bad(format!(
                "{key:?}: expected a table [\"{key}\"] with owner, group and mode"
            ))
        })?;
        let path = super::normalize(Path::new(key))
            .filter(|_| !Path::new(key).is_absolute())
            .ok_or_else(|| bad(format!("{key:?}: a path inside the template, relative")))?;
        let path = if path.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            path
        };
        let mut e = Entry {
            from: rel.to_path_buf(),
            ..Entry::default()
        };
        for (k, v) in table.iter() {
            match k {
                "owner" | "group" => {
                    let s = v
                        .as_str()
                        .map(str::to_string)
                        .or_else(|| v.as_integer().map(|n| n.to_string()))
                        .ok_or_else(|| bad(format!("{key:?}.{k}: a name or a number")))?;
                    if k == "owner" {
                        e.owner = Some(s);
                    } else {
                        e.group = Some(s);
                    }
                }
                "mode" => {
                    let m = v
                        .as_str()
                        .and_then(|s| u32::from_str_radix(s, 8).ok())
                        .filter(|m| *m <= 0o7777)
                        .ok_or_else(|| {
                            bad(format!("{key:?}.mode: an octal string like \"0644\""))
                        })?;
                    e.mode = Some(m);
                }
                other => {
                    return Err(bad(format!(
                        "{key:?}.{other}: unknown key (owner, group and mode are known)"
                    )));
                }
            }
        }
        out.push((path, e));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_entries_and_refuses_bad_ones() {
        let text = "[\"etc/shadow\"]\nowner = \"root\"\ngroup = \"shadow\"\nmode = \"0640\"\n\
                    [\".\"]\nmode = \"0755\"\n";
        let e = parse(Path::new("templates/base/.unfold.toml"), text).unwrap();
        assert_eq!(e[0].0, PathBuf::from("etc/shadow"));
        assert_eq!(e[0].1.mode, Some(0o640));
        assert_eq!(e[0].1.group.as_deref(), Some("shadow"));
        assert_eq!(e[1].0, PathBuf::from("."));
        for bad in [
            "[\"../x\"]\nmode = \"0644\"\n",
            "[\"/etc/x\"]\nmode = \"0644\"\n",
            "[\"x\"]\nmode = \"rwx\"\n",
            "[\"x\"]\ncolour = \"red\"\n",
            "x = 1\n",
        ] {
            let err = parse(Path::new("m.toml"), bad).unwrap_err().to_string();
            assert!(err.starts_with("m.toml"), "{err}");
        }
    }
}
