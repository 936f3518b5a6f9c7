//! What changed between two versions of a book, page by page (pages are matched by their
//! id, which the books keep across releases): pages added and removed, versions, the
//! commands of each phase and root commands, dependencies by level, and pages that became or
//! stopped being packages.

use std::collections::HashMap;

use crate::book::{Book, PageRef};
use crate::page::Phase;

/// One difference.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Change {
    /// The page's id.
    pub page: String,
    pub name: String,
    /// `added`, `removed`, `version`, `phase`, `root`, `depends`, `status`, `source`.
    pub what: &'static str,
    pub detail: String,
}

/// The changes from `old` to `new`, in the new book's order (removed pages last).
pub fn diff(old: &Book, new: &Book) -> Vec<Change> {
    let before: HashMap<&str, &PageRef> =
        old.pages.iter().map(|p| (p.place.id.as_str(), p)).collect();
    let mut out = Vec::new();
    for n in &new.pages {
        let id = n.place.id.as_str();
        let change = |what, detail: String| Change {
            page: id.to_string(),
            name: n.name().to_string(),
            what,
            detail,
        };
        let Some(o) = before.get(id) else {
            out.push(change(
                "added",
                format!("{} {}", n.name(), n.version().unwrap_or(""))
                    .trim()
                    .into(),
            ));
            continue;
        };
        if o.version() != n.version() {
            out.push(change(
                "version",
                format!(
                    "{} -> {}",
                    o.version().unwrap_or("-"),
                    n.version().unwrap_or("-")
                ),
            ));
        }
        match (o.package(), n.package()) {
            (Some(a), Some(b)) => {
                if a.file != b.file || a.md5 != b.md5 {
                    out.push(change("source", format!("{} -> {}", a.file, b.file)));
                }
                for p in Phase::ALL {
                    if a.phase(p) != b.phase(p) {
                        out.push(change("phase", commands(p.name(), a.phase(p), b.phase(p))));
                    }
                }
                if a.root_commands != b.root_commands {
                    out.push(change(
                        "root",
                        commands(
                            "root.commands",
                            a.root_commands.as_deref(),
                            b.root_commands.as_deref(),
                        ),
                    ));
                }
                for ((level, x), (_, y)) in a.deps.levels().into_iter().zip(b.deps.levels()) {
                    let added: Vec<_> = y.iter().filter(|d| !x.contains(d)).cloned().collect();
                    let gone: Vec<_> = x.iter().filter(|d| !y.contains(d)).cloned().collect();
                    if !added.is_empty() || !gone.is_empty() {
                        let mut d = format!("{level}:");
                        for a in added {
                            d.push_str(&format!(" +{a}"));
                        }
                        for g in gone {
                            d.push_str(&format!(" -{g}"));
                        }
                        out.push(change("depends", d));
                    }
                }
            }
            (None, Some(_)) => out.push(change("status", "now a package".into())),
            (Some(_), None) => out.push(change("status", "no longer a package".into())),
            (None, None) => {}
        }
    }
    let now: HashMap<&str, ()> = new
        .pages
        .iter()
        .map(|p| (p.place.id.as_str(), ()))
        .collect();
    for o in &old.pages {
        if !now.contains_key(o.place.id.as_str()) {
            out.push(Change {
                page: o.place.id.clone(),
                name: o.name().to_string(),
                what: "removed",
                detail: format!("{} {}", o.name(), o.version().unwrap_or(""))
                    .trim()
                    .into(),
            });
        }
    }
    out
}

/// A phase's commands before and after, as removed and added lines.
fn commands(label: &str, a: Option<&str>, b: Option<&str>) -> String {
    let old: Vec<&str> = a.unwrap_or("").lines().collect();
    let new: Vec<&str> = b.unwrap_or("").lines().collect();
    let mut s = format!("{label}:");
    for l in old.iter().filter(|l| !new.contains(l)) {
        s.push_str(&format!("\n  - {l}"));
    }
    for l in new.iter().filter(|l| !old.contains(l)) {
        s.push_str(&format!("\n  + {l}"));
    }
    s
}
