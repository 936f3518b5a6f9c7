//! Comparing two profiles: the recipe keys, the commands of each phase, and the manifest —
//! each as added, removed or changed. In the manifest, a difference of path, type, mode, owner
//! or link target is a real one; a file whose content alone differs (same size or not) is
//! reported as "differs (build embeds timestamps?)": many builds write the date or the build
//! path into what they install, so two good builds of one recipe rarely hash the same.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{File, Profile};

/// One recipe key or command that differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// The recipe key, or the phase and command number (`configure`, `install #2`).
    pub what: String,
    /// `added`, `removed` or `changed` (from A to B).
    pub change: &'static str,
    pub a: Option<String>,
    pub b: Option<String>,
}

/// One manifest path that differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileChange {
    pub path: String,
    pub change: &'static str,
    /// What differs, in words (`mode 0755 -> 0700`, `differs (build embeds timestamps?)`).
    pub details: Vec<String>,
    /// Only the content (size, sha256) differs.
    pub content_only: bool,
}

/// What differs between profile A and profile B.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Diff {
    pub recipe: Vec<Change>,
    pub commands: Vec<Change>,
    pub manifest: Vec<FileChange>,
}

impl Diff {
    /// Whether anything differs beyond file contents.
    pub fn differs(&self) -> bool {
        !self.recipe.is_empty()
            || !self.commands.is_empty()
            || self.manifest.iter().any(|f| !f.content_only)
    }

    /// Whether the manifests have the same paths, types, modes, owners and link targets.
    pub fn same_manifest(&self) -> bool {
        self.manifest.iter().all(|f| f.content_only)
    }
}

fn change(what: String, a: Option<String>, b: Option<String>) -> Option<Change> {
    let change = match (&a, &b) {
        (None, None) => return None,
        (Some(x), Some(y)) if x == y => return None,
        (Some(_), Some(_)) => "changed",
        (None, Some(_)) => "added",
        (Some(_), None) => "removed",
    };
    Some(Change { what, change, a, b })
}

/// Compare profile A with profile B.
pub fn diff(a: &Profile, b: &Profile) -> Diff {
    Diff {
        recipe: recipe(a, b),
        commands: commands(a, b),
        manifest: manifest(&a.manifest, &b.manifest),
    }
}

fn recipe(a: &Profile, b: &Profile) -> Vec<Change> {
    let map = |p: &Profile| -> BTreeMap<String, String> {
        p.recipe
            .entries()
            .iter()
            .map(|e| (e.key.to_string(), e.value.to_string()))
            .collect()
    };
    let (ma, mb) = (map(a), map(b));
    let mut keys: Vec<&String> = ma.keys().chain(mb.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|k| change(k.clone(), ma.get(k).cloned(), mb.get(k).cloned()))
        .collect()
}

/// Commands are matched by phase and their number within it.
fn commands(a: &Profile, b: &Profile) -> Vec<Change> {
    let numbered = |p: &Profile| -> Vec<(String, String)> {
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        p.commands
            .iter()
            .map(|c| {
                let n = seen.entry(c.phase.as_str()).or_default();
                *n += 1;
                let what = if *n == 1 {
                    c.phase.clone()
                } else {
                    format!("{} #{n}", c.phase)
                };
                let status = c
                    .status
                    .map_or("did not finish".to_string(), |s| format!("status {s}"));
                (
                    what,
                    format!("(in {}, {status}) {}", c.cwd, c.command.trim_end()),
                )
            })
            .collect()
    };
    let (na, nb) = (numbered(a), numbered(b));
    let mb: BTreeMap<&String, &String> = nb.iter().map(|(k, v)| (k, v)).collect();
    let ma: BTreeMap<&String, &String> = na.iter().map(|(k, v)| (k, v)).collect();
    let mut out = Vec::new();
    for (k, v) in &na {
        out.extend(change(
            k.clone(),
            Some(v.clone()),
            mb.get(k).map(|s| s.to_string()),
        ));
    }
    for (k, v) in &nb {
        if !ma.contains_key(k) {
            out.extend(change(k.clone(), None, Some(v.clone())));
        }
    }
    out
}

fn owner(f: &File) -> String {
    format!("{}:{}", f.owner, f.group)
}

fn manifest(a: &[File], b: &[File]) -> Vec<FileChange> {
    let ma: BTreeMap<&str, &File> = a.iter().map(|f| (f.path.as_str(), f)).collect();
    let mb: BTreeMap<&str, &File> = b.iter().map(|f| (f.path.as_str(), f)).collect();
    let mut paths: Vec<&str> = ma.keys().chain(mb.keys()).copied().collect();
    paths.sort_unstable();
    paths.dedup();
    let mut out = Vec::new();
    for p in paths {
        let (fa, fb) = match (ma.get(p), mb.get(p)) {
            (Some(fa), Some(fb)) => (fa, fb),
            (None, Some(fb)) => {
                out.push(FileChange {
                    path: p.to_string(),
                    change: "added",
                    details: vec![fb.kind.clone()],
                    content_only: false,
                });
                continue;
            }
            (Some(fa), None) => {
                out.push(FileChange {
                    path: p.to_string(),
                    change: "removed",
                    details: vec![fa.kind.clone()],
                    content_only: false,
                });
                continue;
            }
            (None, None) => continue,
        };
        let mut details = Vec::new();
        if fa.kind != fb.kind {
            details.push(format!("type {} -> {}", fa.kind, fb.kind));
        }
        if fa.mode != fb.mode {
            details.push(format!("mode {:04o} -> {:04o}", fa.mode, fb.mode));
        }
        if owner(fa) != owner(fb) {
            details.push(format!("owner {} -> {}", owner(fa), owner(fb)));
        }
        if fa.target != fb.target {
            details.push(format!(
                "link target {} -> {}",
                fa.target.as_deref().unwrap_or("-"),
                fb.target.as_deref().unwrap_or("-")
            ));
        }
        let structural = !details.is_empty();
        if fa.kind == fb.kind && (fa.size != fb.size || fa.sha256 != fb.sha256) {
            if fa.size != fb.size {
                details.push(format!(
                    "size {} -> {}",
                    fa.size.unwrap_or(0),
                    fb.size.unwrap_or(0)
                ));
            }
            details.push("differs (build embeds timestamps?)".into());
        }
        if !details.is_empty() {
            out.push(FileChange {
                path: p.to_string(),
                change: "changed",
                details,
                content_only: !structural,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::render::tests::sample;
    use super::*;

    #[test]
    fn same_profile_no_difference() {
        let a = sample();
        let d = diff(&a, &a);
        assert!(!d.differs() && d.same_manifest(), "{d:?}");
        assert!(d.manifest.is_empty() && d.recipe.is_empty() && d.commands.is_empty());
    }

    #[test]
    fn changes_are_named() {
        let a = sample();
        let mut b = sample();
        b.manifest[1].sha256 = Some("ef".repeat(32));
        let d = diff(&a, &b);
        assert!(!d.differs() && d.same_manifest(), "content only: {d:?}");
        assert_eq!(
            d.manifest[0].details,
            ["differs (build embeds timestamps?)"]
        );

        b.manifest[1].mode = 0o700;
        b.manifest.remove(0);
        b.commands[0].command = "./configure".into();
        b.recipe.insert(crate::ctree::Entry {
            key: crate::ctree::Key::parse("package.version").unwrap(),
            value: crate::ctree::Value::Str("2.12".into()),
            loc: crate::ctree::Loc::none(),
            literal: true,
        });
        let d = diff(&a, &b);
        assert!(d.differs() && !d.same_manifest());
        assert_eq!(d.recipe.len(), 1);
        assert_eq!(d.recipe[0].what, "package.version");
        assert_eq!(d.recipe[0].change, "changed");
        assert_eq!(d.commands[0].what, "configure");
        let kinds: Vec<(&str, &str)> = d
            .manifest
            .iter()
            .map(|f| (f.path.as_str(), f.change))
            .collect();
        assert_eq!(
            kinds,
            [
                ("/usr/bin/hello", "changed"),
                ("/usr/share/info", "removed")
            ]
        );
        assert!(
            d.manifest[0]
                .details
                .contains(&"mode 0755 -> 0700".to_string())
        );
    }
}
