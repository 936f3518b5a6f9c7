//! `upm template custom`: make a path of a unit the unit's own. The linked directories above
//! it become real directories whose other entries stay links (siblings keep inheriting); an
//! inherited file is cut off (copied, a real file from then on) or tracked upwards (the parent
//! template's file is edited instead, asking again at each level); the units that would see
//! the change are listed and some of them can be excluded (they are cut off first, keeping
//! what they have now). Then the command (`$EDITOR` by default) runs on the path.
//!
//! The questions are asked through [`Ask`], so the caller decides how (a terminal, a test).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::impact::{Impact, impact};
use super::{Error, Repo, Result, relative_link, sorted_names, unit_of};
use crate::fsutil::io;

/// How to treat an inherited path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Ask each time (cut off / track upwards / cancel), and ask about the impact.
    Ask,
    /// Cut off without asking, and go on whatever the impact.
    Force,
    /// Track upwards to the template the file really comes from.
    Track,
    /// Track upwards until the named template, and cut off there.
    TrackEnd(String),
}

/// The answer about an inherited path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inherited {
    CutOff,
    Track,
    Cancel,
}

/// The answer about the units that would see the change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Impacted {
    Yes,
    No,
    /// Go on, but these units (by their place in the list) keep what they have now.
    Exclude(Vec<PathBuf>),
}

/// Questions for the person customising.
pub trait Ask {
    /// `path` is inherited from `from`: cut off, track upwards, or cancel?
    fn inherited(&mut self, path: &Path, from: &Path) -> Inherited;
    /// These units would see a change to `path`: go on?
    fn impacted(&mut self, path: &Path, units: &[Impact]) -> Impacted;
}

/// What `prepare` settled.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The repository-relative path to edit (after tracking upwards).
    pub path: PathBuf,
    /// The units that see it (excluded ones left out).
    pub impact: Vec<Impact>,
    /// The units cut off to keep their contents.
    pub excluded: Vec<PathBuf>,
}

/// Make `rel` editable in its own unit; `None` when the user cancelled.
pub fn prepare(
    repo: &Repo,
    rel: &Path,
    mode: &Mode,
    ask: &mut dyn Ask,
) -> Result<Option<Prepared>> {
    repo.unit(rel)?;
    let mut cur = rel.to_path_buf();
    while let Some(from) = inherited_from(repo, &cur)? {
        let choice = match mode {
            Mode::Ask => ask.inherited(&cur, &from),
            Mode::Force => Inherited::CutOff,
            Mode::Track => Inherited::Track,
            Mode::TrackEnd(end) => {
                let at_end = unit_of(&cur).is_some_and(|u| {
                    u == Path::new(end) || u.file_name().is_some_and(|n| n == end.as_str())
                });
                if at_end {
                    Inherited::CutOff
                } else {
                    Inherited::Track
                }
            }
        };
        match choice {
            Inherited::Cancel => return Ok(None),
            Inherited::Track => cur = from,
            Inherited::CutOff => {
                cut_off(repo, &cur)?;
                break;
            }
        }
    }
    // A new file: its directories become the unit's own.
    split_above(repo, &cur)?;
    let mut seen = impact(repo, &cur)?;
    let mut excluded = Vec::new();
    if !seen.is_empty() && *mode != Mode::Force {
        match ask.impacted(&cur, &seen) {
            Impacted::Yes => {}
            Impacted::No => return Ok(None),
            Impacted::Exclude(units) => {
                for u in units {
                    if let Some(i) = seen.iter().position(|s| s.unit == u) {
                        let s = seen.remove(i);
                        if repo.resolve(&s.path)?.exists {
                            split_above(repo, &s.path)?;
                            if is_link(repo, &s.path)? {
                                cut_off(repo, &s.path)?;
                            }
                        }
                        excluded.push(s.unit);
                    }
                }
                // Who still sees it after the cut-offs.
                seen = impact(repo, &cur)?;
            }
        }
    }
    Ok(Some(Prepared {
        path: cur,
        impact: seen,
        excluded,
    }))
}

/// The command that edits a file when none is given: `$EDITOR`, else `vi`.
pub fn editor_command() -> Vec<OsString> {
    ["sh", "-c", "${EDITOR:-vi} \"$1\"", "sh"]
        .iter()
        .map(OsString::from)
        .collect()
}

/// Run `cmd` with the repository path `rel` as its last argument; with `dir` (the target was
/// given with a trailing `/`), a missing target is made a directory first, for commands like
/// `cp -r SRC/* TARGET/`.
pub fn run(repo: &Repo, cmd: &[OsString], rel: &Path, dir: bool) -> Result<()> {
    let target = repo.abs(rel);
    if dir && std::fs::symlink_metadata(&target).is_err() {
        std::fs::create_dir(&target).map_err(io(&target))?;
    }
    let line = cmd
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    let (prog, args) = cmd.split_first().ok_or_else(|| Error::Bad {
        path: rel.to_path_buf(),
        what: "no command to run".into(),
    })?;
    let status = std::process::Command::new(prog)
        .args(args)
        .arg(&target)
        .status()
        .map_err(|source| Error::Spawn {
            path: target.clone(),
            cmd: line.clone(),
            source,
        })?;
    if !status.success() {
        return Err(Error::Command {
            cmd: line,
            status: status.to_string(),
        });
    }
    Ok(())
}

/// Where `rel` is inherited from (its own link, or the first linked directory above it,
/// followed one hop), or `None` when it is the unit's own (or new).
fn inherited_from(repo: &Repo, rel: &Path) -> Result<Option<PathBuf>> {
    let unit = unit_of(rel).expect("checked to be in a unit");
    let mut prefix = unit.clone();
    let rest = rel.strip_prefix(&unit).expect("inside its unit");
    let comps: Vec<_> = rest.components().collect();
    for (i, c) in comps.iter().enumerate() {
        prefix.push(c);
        if is_link(repo, &prefix)? {
            let target = repo.link_target(&prefix)?;
            let below: PathBuf = comps[i + 1..].iter().collect();
            let from = if below.as_os_str().is_empty() {
                target
            } else {
                target.join(below)
            };
            // A new file under a linked directory is not inherited: it only splits it.
            return Ok(repo.resolve(&from)?.exists.then_some(from));
        }
        if !repo.abs(&prefix).exists() {
            break;
        }
    }
    Ok(None)
}

fn is_link(repo: &Repo, rel: &Path) -> Result<bool> {
    let abs = repo.abs(rel);
    match std::fs::symlink_metadata(&abs) {
        Ok(m) => Ok(m.file_type().is_symlink()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io(&abs)(e).into()),
    }
}

/// Turn every linked directory above `rel` (inside its unit) into a real directory whose
/// entries link to the linked directory's entries; create missing directories.
pub fn split_above(repo: &Repo, rel: &Path) -> Result<()> {
    let unit = unit_of(rel).expect("checked to be in a unit");
    let rest = rel.strip_prefix(&unit).expect("inside its unit");
    let mut prefix = unit.clone();
    let comps: Vec<_> = rest.components().collect();
    for c in comps.iter().take(comps.len().saturating_sub(1)) {
        prefix.push(c);
        let abs = repo.abs(&prefix);
        if is_link(repo, &prefix)? {
            split_dir(repo, &prefix)?;
        } else if !abs.exists() {
            std::fs::create_dir(&abs).map_err(io(&abs))?;
        }
    }
    Ok(())
}

/// A link to a directory becomes a real directory of links to that directory's entries.
fn split_dir(repo: &Repo, link: &Path) -> Result<()> {
    let target = repo.link_target(link)?;
    let r = repo.resolve(&target)?;
    let real_abs = repo.abs(r.real());
    if !r.exists || !real_abs.is_dir() {
        return Err(Error::Bad {
            path: link.to_path_buf(),
            what: format!("links to {}, not a directory", target.display()),
        });
    }
    let names = sorted_names(&real_abs)?;
    let abs = repo.abs(link);
    std::fs::remove_file(&abs).map_err(io(&abs))?;
    std::fs::create_dir(&abs).map_err(io(&abs))?;
    for name in names {
        let l = link.join(&name);
        let text = relative_link(&l, &target.join(&name));
        std::os::unix::fs::symlink(&text, repo.abs(&l)).map_err(io(&repo.abs(&l)))?;
    }
    Ok(())
}

/// An inherited path (a link, or under a linked directory) becomes a real copy of what it
/// resolves to: a file with its contents and mode, a directory copied whole.
pub fn cut_off(repo: &Repo, rel: &Path) -> Result<()> {
    split_above(repo, rel)?;
    let r = repo.resolve(rel)?;
    if !r.exists {
        return Err(Error::Dangling {
            link: rel.to_path_buf(),
            target: r.real().to_path_buf(),
        });
    }
    let real = r.real().to_path_buf();
    let abs = repo.abs(rel);
    let tmp = abs.with_file_name(format!(
        ".{}.upm-custom",
        abs.file_name().unwrap_or_default().to_string_lossy()
    ));
    copy_resolved(repo, &real, &tmp, &mut Vec::new())?;
    std::fs::remove_file(&abs).map_err(io(&abs))?;
    std::fs::rename(&tmp, &abs).map_err(io(&abs))?;
    Ok(())
}

/// Copy what `rel` resolves to (through links inside the repository) to `out`.
fn copy_resolved(repo: &Repo, rel: &Path, out: &Path, stack: &mut Vec<PathBuf>) -> Result<()> {
    let r = repo.resolve(rel)?;
    if !r.exists {
        return Err(Error::Dangling {
            link: rel.to_path_buf(),
            target: r.real().to_path_buf(),
        });
    }
    let real = r.real().to_path_buf();
    let src = repo.abs(&real);
    let m = std::fs::metadata(&src).map_err(io(&src))?;
    if m.is_dir() {
        if stack.contains(&real) {
            return Err(Error::Loop {
                path: rel.to_path_buf(),
            });
        }
        stack.push(real.clone());
        std::fs::create_dir(out).map_err(io(out))?;
        for name in sorted_names(&src)? {
            copy_resolved(repo, &real.join(&name), &out.join(&name), stack)?;
        }
        stack.pop();
    } else {
        std::fs::copy(&src, out).map_err(io(out))?;
    }
    Ok(())
}
