//! `upm template impact`: every template and host that would see a change to a path, found
//! through the links of every unit, transitively (a host linking to a template's directory
//! that links to its parent's file sees that file).

use std::path::{Path, PathBuf};

use super::{Repo, Result, unit_of};

/// A unit that sees the path, and where in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Impact {
    pub unit: PathBuf,
    /// The repository-relative path under which the unit sees it.
    pub path: PathBuf,
}

/// The units (other than the path's own) that see `rel`, nearest first.
pub fn impact(repo: &Repo, rel: &Path) -> Result<Vec<Impact>> {
    let mut links = Vec::new();
    for unit in repo.units()? {
        for link in repo.links_in(&unit)? {
            if let Ok(target) = repo.link_target(&link) {
                links.push((link, target));
            }
        }
    }
    let own = unit_of(rel);
    let mut seen: Vec<PathBuf> = vec![rel.to_path_buf()];
    let mut out: Vec<Impact> = Vec::new();
    let mut i = 0;
    while i < seen.len() {
        let x = seen[i].clone();
        i += 1;
        for (link, target) in &links {
            let via = if let Ok(rest) = x.strip_prefix(target) {
                if rest.as_os_str().is_empty() {
                    link.clone()
                } else {
                    link.join(rest)
                }
            } else if target.starts_with(&x) {
                link.clone()
            } else {
                continue;
            };
            if seen.contains(&via) {
                continue;
            }
            seen.push(via.clone());
            if let Some(u) = unit_of(&via)
                && Some(&u) != own.as_ref()
                && !out.iter().any(|o| o.unit == u)
            {
                out.push(Impact { unit: u, path: via });
            }
        }
    }
    Ok(out)
}
