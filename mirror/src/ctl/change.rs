//! `mirrord ctl include|exclude PATH`: persist the change in fs_info, then hand the new rules
//! to the running watcher, which (on its own thread, between two bursts of events) first tells
//! the monitor ([`forget_uncovered`]: an excluded tree leaves the snapshot without records, the
//! mirrors keep their copy) and then stops watching what is left out and walks what is new
//! (every path of an included tree logged as created, so the clients fetch it).

use std::path::{Path, PathBuf};

use rusqlite::Connection;
use serde_json::{Value, json};
use upm_watch::Rules;

use crate::ctl::Change;
use crate::ctl::server::Ctl;
use crate::error::{Error, Result};
use crate::fs_info::{Entry, FsInfo, Identity, Tag};
use crate::store::snapshot;

fn refuse(what: String) -> Error {
    Error::Internal(what)
}

pub fn apply(ctl: &Ctl, change: Change, path: &Path, identity: Option<&str>) -> Result<Value> {
    let mut rules = ctl.rules.lock().unwrap_or_else(|e| e.into_inner());
    let path = trim_slash(path);
    if !crate::record::plain_absolute(&path) {
        return Err(refuse(format!(
            "{}: give an absolute path without '.', '..' or a trailing '/'",
            path.display()
        )));
    }
    if let Some(i) = identity
        && !ctl.identities.iter().any(|n| n == i)
    {
        return Err(refuse(format!(
            "this mirrord serves the identities {:?}, not {i:?}",
            ctl.identities
        )));
    }
    let info = FsInfo::new(&ctl.fs_info_dir);
    let ids = ctl
        .identities
        .iter()
        .map(|n| Ok((n.as_str(), info.load(n)?)))
        .collect::<Result<Vec<_>>>()?;
    match change {
        Change::Include => include(&info, &ids, &rules, &path, identity)?,
        Change::Exclude => exclude(&info, &ids, &rules, &path, identity)?,
    }
    let now = ctl
        .identities
        .iter()
        .map(|n| info.load(n))
        .collect::<Result<Vec<_>>>()?;
    let new = Identity::rules(&now);
    let paths_before = snapshot::len(&ctl.served.store.connect()?)?;
    ctl.control.set_rules(new.clone())?;
    *rules = new;
    let paths = snapshot::len(&ctl.served.store.connect()?)?;
    Ok(json!({
        "ok": true,
        "change": if change == Change::Include { "include" } else { "exclude" },
        "path": path.to_string_lossy(),
        "watches": ctl.control.watched(),
        "paths": paths,
        "paths_before": paths_before,
    }))
}

fn trim_slash(p: &Path) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    let b = p.as_os_str().as_bytes();
    match b.strip_suffix(b"/") {
        Some(s) if !s.is_empty() => PathBuf::from(std::ffi::OsStr::from_bytes(s)),
        _ => p.to_path_buf(),
    }
}

fn entry(tag: Tag, p: &Path) -> Entry {
    Entry {
        tag,
        path: p.to_path_buf(),
        list: false,
    }
}

/// Mirror `path` too: undo its exclusion, or add it as a tree.
fn include(
    info: &FsInfo,
    ids: &[(&str, Identity)],
    rules: &Rules,
    path: &Path,
    identity: Option<&str>,
) -> Result<()> {
    if rules.covers(path) {
        return Err(refuse(format!("{} is mirrored already", path.display())));
    }
    // Excluded by name: the exclusion goes.
    let unexclude: Vec<&str> = ids
        .iter()
        .filter(|(n, id)| identity.is_none_or(|i| i == *n) && id.exclude.iter().any(|x| x == path))
        .map(|(n, _)| *n)
        .collect();
    for n in &unexclude {
        info.remove(n, &[entry(Tag::Exclude, path)])?;
    }
    if !unexclude.is_empty() {
        return Ok(());
    }
    if let Some(x) = rules.exclude.iter().find(|x| path.starts_with(x)) {
        return Err(refuse(format!(
            "{} is inside the excluded tree {}: include {} (then exclude what it should not hold)",
            path.display(),
            x.display(),
            x.display()
        )));
    }
    let name = identity.unwrap_or(ids[0].0);
    info.add(name, &[entry(Tag::Include, path)], false)?;
    Ok(())
}

/// Stop mirroring `path`: drop it as a tree, or exclude it from the tree it is in.
fn exclude(
    info: &FsInfo,
    ids: &[(&str, Identity)],
    rules: &Rules,
    path: &Path,
    identity: Option<&str>,
) -> Result<()> {
    if !rules.covers(path) {
        return Err(refuse(format!(
            "{} is not mirrored: nothing to exclude",
            path.display()
        )));
    }
    let covering = |id: &Identity| id.include.iter().any(|t| path.starts_with(t));
    let Some((name, id)) = ids
        .iter()
        .find(|(n, id)| identity.is_none_or(|i| i == *n) && covering(id))
    else {
        return Err(refuse(format!(
            "identity {:?} does not include {}",
            identity.unwrap_or_default(),
            path.display()
        )));
    };
    // A tree of its own, and no other tree around it: the tree goes.
    let own = id.include.iter().any(|t| t == path)
        && !rules.roots.iter().any(|t| t != path && path.starts_with(t));
    if own {
        if id.include.len() == 1 {
            return Err(refuse(format!(
                "{} is the only tree of identity {name:?}; stop mirrord rather than mirror nothing",
                path.display()
            )));
        }
        info.remove(name, &[entry(Tag::Include, path)])?;
    } else {
        info.add(name, &[entry(Tag::Exclude, path)], false)?;
    }
    Ok(())
}

/// The monitor's side of a change of rules from `old` to `new`: snapshot entries the new rules
/// leave out are forgotten, without records (the mirrors keep their copy); how many.
pub fn forget_uncovered(db: &Connection, old: &Rules, new: &Rules) -> Result<u64> {
    let mut n = 0u64;
    for x in new.exclude.iter().filter(|x| old.covers(x)) {
        n += snapshot::remove_tree(db, x)? as u64;
    }
    if old.roots.iter().any(|r| !new.covers(r)) {
        let mut after: Option<PathBuf> = None;
        loop {
            let page = snapshot::page(db, after.as_deref(), 1024)?;
            let Some((last, _)) = page.last() else { break };
            after = Some(last.clone());
            for (p, _) in page {
                if !new.covers(&p) {
                    n += snapshot::remove_tree(db, &p)? as u64;
                }
            }
        }
    }
    Ok(n)
}
