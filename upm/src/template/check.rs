//! `upm template check`: what is wrong in a configuration repository — links that point at
//! nothing, links that loop, links that lead out of the repository (absolute, or climbing
//! above it), `.inherits` naming a missing parent or forming a cycle, and conflicts (entries
//! two parents provide with different contents that the unit has not settled with its own).

use std::path::PathBuf;

use super::{Error, Repo, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    Dangling {
        link: PathBuf,
        target: PathBuf,
    },
    Escapes {
        link: PathBuf,
        target: PathBuf,
    },
    Loop {
        link: PathBuf,
    },
    MissingParent {
        unit: PathBuf,
        parent: PathBuf,
    },
    Cycle {
        units: Vec<PathBuf>,
    },
    Conflict {
        unit: PathBuf,
        path: PathBuf,
        used: PathBuf,
        others: Vec<PathBuf>,
    },
}

impl Problem {
    pub fn kind(&self) -> &'static str {
        match self {
            Problem::Dangling { .. } => "dangling",
            Problem::Escapes { .. } => "escapes",
            Problem::Loop { .. } => "loop",
            Problem::MissingParent { .. } => "missing-parent",
            Problem::Cycle { .. } => "cycle",
            Problem::Conflict { .. } => "conflict",
        }
    }
}

pub fn check(repo: &Repo) -> Result<Vec<Problem>> {
    let mut out = Vec::new();
    let units = repo.units()?;
    for unit in &units {
        for link in repo.links_in(unit)? {
            match repo.resolve(&link) {
                Ok(r) if !r.exists => out.push(Problem::Dangling {
                    target: r.real().to_path_buf(),
                    link,
                }),
                Ok(_) => {}
                Err(Error::Escapes { target, .. }) => out.push(Problem::Escapes { link, target }),
                Err(Error::Loop { .. }) => out.push(Problem::Loop { link }),
                Err(e) => return Err(e),
            }
        }
        for parent in repo.parents(unit)? {
            if !repo.abs(&parent).is_dir() {
                out.push(Problem::MissingParent {
                    unit: unit.clone(),
                    parent,
                });
            }
        }
    }
    cycles(repo, &units, &mut out)?;
    // Conflicts only where the tree can be walked.
    if out.is_empty() {
        for unit in &units {
            if repo.parents(unit)?.len() < 2 {
                continue;
            }
            for o in super::inherit::plan(repo, unit)?.conflicts() {
                out.push(Problem::Conflict {
                    unit: unit.clone(),
                    path: o.path.clone(),
                    used: o.used.clone(),
                    others: o.others.clone(),
                });
            }
        }
    }
    Ok(out)
}

/// Cycles in `.inherits`, each reported once (as the units on it, starting at the smallest).
fn cycles(repo: &Repo, units: &[PathBuf], out: &mut Vec<Problem>) -> Result<()> {
    let mut found: Vec<Vec<PathBuf>> = Vec::new();
    for start in units {
        // Depth-first from each unit, looking for a way back to it.
        let mut stack = vec![(start.clone(), vec![start.clone()])];
        while let Some((u, path)) = stack.pop() {
            for p in repo.parents(&u)? {
                if &p == start {
                    let mut cyc = path.clone();
                    let min = cyc
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, x)| *x)
                        .map(|(i, _)| i);
                    cyc.rotate_left(min.unwrap_or(0));
                    if !found.contains(&cyc) {
                        found.push(cyc);
                    }
                } else if !path.contains(&p) && repo.abs(&p).is_dir() {
                    let mut next = path.clone();
                    next.push(p.clone());
                    stack.push((p, next));
                }
            }
        }
    }
    out.extend(found.into_iter().map(|units| Problem::Cycle { units }));
    Ok(())
}
