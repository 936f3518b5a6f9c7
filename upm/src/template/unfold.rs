//! `upm template unfold`: a unit's tree copied out with every link resolved into real files,
//! owners and modes from the metadata ([`super::meta`]). The copy is built in a staging
//! directory beside DEST and swapped in with one atomic exchange (`renameat2`), so an unfold
//! that fails or is killed leaves DEST as it was (a leftover staging directory is removed by
//! the next unfold). What changed against DEST's previous contents is reported. A DEST of the
//! form `user@host:/path` is sent with rsync over ssh instead (`--delay-updates`, so files
//! change at the end), and rsync's itemised list is the report. Links are followed only inside
//! the repository: one that leads out of it stops the unfold.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::meta::Meta;
use super::{Error, Repo, Result, is_own_file, sorted_names};
use crate::fsutil::io;

/// Where to unfold to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dest {
    Local(PathBuf),
    /// `[user@]host:/path`, through rsync over ssh.
    Remote(String),
}

impl Dest {
    pub fn parse(s: &str) -> Dest {
        match s.split_once(':') {
            Some((host, _)) if !host.is_empty() && !host.contains('/') => Dest::Remote(s.into()),
            _ => Dest::Local(PathBuf::from(s)),
        }
    }
}

/// A difference between DEST before and after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Added(PathBuf),
    Removed(PathBuf),
    /// The path and what changed (contents, mode, owner, type).
    Changed(PathBuf, String),
    /// One line of rsync's itemised changes.
    Remote(String),
}

/// Unfold `unit` to `dest`; the changes against what was there.
pub fn unfold(repo: &Repo, unit: &Path, dest: &Dest) -> Result<Vec<Change>> {
    let unit = repo.unit(unit)?;
    let meta = Meta::load(repo, &unit)?;
    match dest {
        Dest::Local(d) => unfold_local(repo, &unit, &meta, d),
        Dest::Remote(r) => {
            let tmp = tempfile::tempdir().map_err(io(Path::new("/tmp")))?;
            let staging = tmp.path().join("tree");
            Stager { repo, meta: &meta }.stage(&unit, &staging)?;
            send(&staging, r)
        }
    }
}

fn unfold_local(repo: &Repo, unit: &Path, meta: &Meta, dest: &Path) -> Result<Vec<Change>> {
    let dest = super::lexical_abs(dest);
    let bad = |what: &str| Error::Bad {
        path: dest.clone(),
        what: what.into(),
    };
    let name = dest
        .file_name()
        .ok_or_else(|| bad("give a directory to unfold into"))?;
    let parent = dest
        .parent()
        .ok_or_else(|| bad("give a directory to unfold into"))?;
    if !parent.is_dir() {
        return Err(bad("its parent directory does not exist; create it first"));
    }
    let existing = std::fs::symlink_metadata(&dest).ok();
    if existing.as_ref().is_some_and(|m| !m.is_dir()) {
        return Err(bad(
            "exists and is not a directory (a link is not followed); remove it or choose \
                 another DEST",
        ));
    }
    let real_parent = parent.canonicalize().map_err(io(parent))?;
    if real_parent.starts_with(&repo.root) || repo.root.starts_with(real_parent.join(name)) {
        return Err(bad(
            "lies in the repository (or holds it); unfold outside it",
        ));
    }
    let prefix = format!(".{}.upm-unfold-", name.to_string_lossy());
    for n in sorted_names(parent)? {
        if n.to_string_lossy().starts_with(&prefix) {
            let p = parent.join(&n);
            std::fs::remove_dir_all(&p).map_err(io(&p))?;
        }
    }
    let staging = parent.join(format!("{prefix}{}", std::process::id()));
    let guard = Cleanup(Some(staging.clone()));
    Stager { repo, meta }.stage(unit, &staging)?;
    let before = if existing.is_some() {
        snapshot(&dest)?
    } else {
        BTreeMap::new()
    };
    let after = snapshot(&staging)?;
    let changes = compare(&before, &after);
    if existing.is_some() {
        crate::sys::exchange(&staging, &dest).map_err(io(&dest))?;
        // `staging` now holds the old tree; the guard removes it.
    } else {
        std::fs::rename(&staging, &dest).map_err(io(&dest))?;
    }
    drop(guard);
    Ok(changes)
}

/// Removes the staging directory unless it was renamed away.
struct Cleanup(Option<PathBuf>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(p) = self.0.take()
            && std::fs::symlink_metadata(&p).is_ok()
        {
            let _ = std::fs::remove_dir_all(&p);
        }
    }
}

struct Stager<'a> {
    repo: &'a Repo,
    meta: &'a Meta,
}

impl Stager<'_> {
    fn stage(&self, unit: &Path, out: &Path) -> Result<()> {
        std::fs::create_dir(out).map_err(io(out))?;
        self.dir(unit, Path::new(""), out, &mut vec![unit.to_path_buf()])?;
        self.apply(Path::new(""), out, 0o755)
    }

    /// Copy the entries of the repository directory `src` (at unit-relative `sub`) to `out`.
    fn dir(&self, src: &Path, sub: &Path, out: &Path, stack: &mut Vec<PathBuf>) -> Result<()> {
        for name in sorted_names(&self.repo.abs(src))? {
            if sub.as_os_str().is_empty() && is_own_file(&name) || name == ".git" {
                continue;
            }
            let rel = src.join(&name);
            let r = self.repo.resolve(&rel)?;
            if !r.exists {
                return Err(Error::Dangling {
                    link: rel,
                    target: r.real().to_path_buf(),
                });
            }
            let real = r.real().to_path_buf();
            let abs = self.repo.abs(&real);
            let m = std::fs::symlink_metadata(&abs).map_err(io(&abs))?;
            let (s, o) = (sub.join(&name), out.join(&name));
            if m.is_dir() {
                if stack.contains(&real) {
                    return Err(Error::Loop { path: rel });
                }
                std::fs::create_dir(&o).map_err(io(&o))?;
                stack.push(real.clone());
                self.dir(&real, &s, &o, stack)?;
                stack.pop();
                self.apply(&s, &o, 0o755)?;
            } else if m.is_file() {
                std::fs::copy(&abs, &o).map_err(io(&o))?;
                self.apply(&s, &o, m.mode() & 0o777)?;
            } else {
                return Err(Error::Bad {
                    path: real,
                    what: "not a regular file or directory; a template holds files and \
                           directories only"
                        .into(),
                });
            }
        }
        Ok(())
    }

    /// Owner, group and mode of a staged path.
    fn apply(&self, sub: &Path, out: &Path, default_mode: u32) -> Result<()> {
        let e = self.meta.get(sub);
        let uid = match e.and_then(|e| e.owner.as_deref()) {
            Some(o) => Some(user_id(o, sub, e)?),
            None => Some(0),
        };
        let gid = match e.and_then(|e| e.group.as_deref()) {
            Some(g) => Some(group_id(g, sub, e)?),
            None => Some(0),
        };
        std::os::unix::fs::lchown(out, uid, gid).map_err(io(out))?;
        let mode = e.and_then(|e| e.mode).unwrap_or(default_mode);
        std::fs::set_permissions(out, std::fs::Permissions::from_mode(mode)).map_err(io(out))?;
        Ok(())
    }
}

fn user_id(name: &str, sub: &Path, e: Option<&super::meta::Entry>) -> Result<u32> {
    if let Ok(n) = name.parse() {
        return Ok(n);
    }
    match nix::unistd::User::from_name(name) {
        Ok(Some(u)) => Ok(u.uid.as_raw()),
        _ => Err(unknown("user", name, sub, e)),
    }
}

fn group_id(name: &str, sub: &Path, e: Option<&super::meta::Entry>) -> Result<u32> {
    if let Ok(n) = name.parse() {
        return Ok(n);
    }
    match nix::unistd::Group::from_name(name) {
        Ok(Some(g)) => Ok(g.gid.as_raw()),
        _ => Err(unknown("group", name, sub, e)),
    }
}

fn unknown(what: &str, name: &str, sub: &Path, e: Option<&super::meta::Entry>) -> Error {
    Error::Bad {
        path: e.map(|e| e.from.clone()).unwrap_or_default(),
        what: format!(
            "{}: no {what} {name:?} on this host; create it, or give a number",
            sub.display()
        ),
    }
}

/// What a tree holds: per relative path, its type, owner, group, mode and contents.
type Snapshot = BTreeMap<PathBuf, (char, u32, u32, u32, Option<Vec<u8>>)>;

fn snapshot(top: &Path) -> Result<Snapshot> {
    let mut out = Snapshot::new();
    let mut dirs = vec![PathBuf::new()];
    while let Some(d) = dirs.pop() {
        for name in sorted_names(&top.join(&d))? {
            let rel = d.join(&name);
            let abs = top.join(&rel);
            let m = std::fs::symlink_metadata(&abs).map_err(io(&abs))?;
            let (kind, data) = if m.is_dir() {
                dirs.push(rel.clone());
                ('d', None)
            } else if m.is_file() {
                ('f', Some(std::fs::read(&abs).map_err(io(&abs))?))
            } else if m.file_type().is_symlink() {
                (
                    'l',
                    Some(
                        std::fs::read_link(&abs)
                            .map_err(io(&abs))?
                            .into_os_string()
                            .into_encoded_bytes(),
                    ),
                )
            } else {
                ('?', None)
            };
            out.insert(rel, (kind, m.uid(), m.gid(), m.mode() & 0o7777, data));
        }
    }
    Ok(out)
}

fn compare(before: &Snapshot, after: &Snapshot) -> Vec<Change> {
    let mut out = Vec::new();
    for (p, a) in after {
        match before.get(p) {
            None => out.push(Change::Added(p.clone())),
            Some(b) => {
                let mut what = Vec::new();
                if b.0 != a.0 {
                    what.push("type".to_string());
                } else if b.4 != a.4 {
                    what.push("contents".to_string());
                }
                if b.3 != a.3 {
                    what.push(format!("mode {:04o} -> {:04o}", b.3, a.3));
                }
                if (b.1, b.2) != (a.1, a.2) {
                    what.push(format!("owner {}:{} -> {}:{}", b.1, b.2, a.1, a.2));
                }
                if !what.is_empty() {
                    out.push(Change::Changed(p.clone(), what.join(", ")));
                }
            }
        }
    }
    for p in before.keys() {
        if !after.contains_key(p) {
            out.push(Change::Removed(p.clone()));
        }
    }
    out
}

/// The rsync command that sends a staged tree to `[user@]host:/path`.
pub fn rsync_command(staging: &Path, remote: &str) -> Vec<OsString> {
    let mut src = staging.as_os_str().to_os_string();
    src.push("/");
    let mut dst = OsString::from(remote);
    if !remote.ends_with('/') {
        dst.push("/");
    }
    [
        "rsync",
        "--archive",
        "--delete",
        "--delay-updates",
        "--itemize-changes",
        "--rsh=ssh",
        "--",
    ]
    .iter()
    .map(OsString::from)
    .chain([src, dst])
    .collect()
}

fn send(staging: &Path, remote: &str) -> Result<Vec<Change>> {
    let cmd = rsync_command(staging, remote);
    let line = cmd
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    let out = std::process::Command::new(&cmd[0])
        .args(&cmd[1..])
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|source| Error::Spawn {
            path: staging.to_path_buf(),
            cmd: line.clone(),
            source,
        })?;
    if !out.status.success() {
        return Err(Error::Command {
            cmd: line,
            status: out.status.to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| Change::Remote(l.to_string()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dest_forms() {
        assert_eq!(
            Dest::parse("root@www2:/etc"),
            Dest::Remote("root@www2:/etc".into())
        );
        assert_eq!(
            Dest::parse("www2:/srv/x"),
            Dest::Remote("www2:/srv/x".into())
        );
        assert_eq!(Dest::parse("/mnt/a:b"), Dest::Local("/mnt/a:b".into()));
        assert_eq!(Dest::parse("./x:y"), Dest::Local("./x:y".into()));
    }

    #[test]
    fn rsync_command_sends_contents_with_delete_and_delayed_updates() {
        let cmd = rsync_command(Path::new("/tmp/s/tree"), "root@www2:/etc");
        let text: Vec<_> = cmd.iter().map(|a| a.to_str().unwrap()).collect();
        assert_eq!(
            text,
            [
                "rsync",
                "--archive",
                "--delete",
                "--delay-updates",
                "--itemize-changes",
                "--rsh=ssh",
                "--",
                "/tmp/s/tree/",
                "root@www2:/etc/"
            ]
        );
    }
}
