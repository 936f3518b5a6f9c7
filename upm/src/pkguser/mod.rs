//! Package users: the Unix user (and group of the same name) each package is built and
//! installed as, a member of the `install` group, with its home in `/usr/src/<package>`.
//! This module edits the target root's passwd/group/shadow/gshadow itself, under the
//! `.pwd.lock` lock and atomically, and never builds anything.
//!
//! A package whose name is already a user or group of the system (`sudo`, `man`, `mail`)
//! gets a package user under another name, by the naming rule of `users.collision` (default:
//! `users.prefix` in front, `pkg-sudo`), or is refused; upm never writes a second line for a
//! name. Its passwd record's comment says which package it is for, so the pair is found again
//! whatever the rule says later, and removal takes out exactly the lines upm wrote.

mod files;
pub mod installdir;

use std::path::{Path, PathBuf};

use files::Table;

use crate::fsutil::NewFile;

/// The package-user settings: the id range and the install group, as DESIGN.md gives them,
/// and the naming rule for packages whose name the system already uses.
#[derive(Debug, Clone)]
pub struct Ids {
    pub install_group: String,
    pub install_gid: u32,
    pub first: u32,
    pub last: u32,
    /// What to do when a package's name is already a user or group (`users.collision`).
    pub collision: Collision,
    /// Put in front of such a package's name to name its user (`users.prefix`).
    pub prefix: String,
}

/// The naming rule for a package whose name is already a user or group of the system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Collision {
    /// Name its package user `PREFIXNAME` (`pkg-sudo`).
    Prefix,
    /// Refuse to make a package user for it.
    Refuse,
}

impl Collision {
    pub fn name(self) -> &'static str {
        match self {
            Collision::Prefix => "prefix",
            Collision::Refuse => "refuse",
        }
    }

    pub fn from_name(s: &str) -> Option<Collision> {
        match s {
            "prefix" => Some(Collision::Prefix),
            "refuse" => Some(Collision::Refuse),
            _ => None,
        }
    }
}

/// The default `users.prefix`.
pub const DEFAULT_PREFIX: &str = "pkg-";

impl Default for Ids {
    fn default() -> Self {
        Ids {
            install_group: "install".into(),
            install_gid: 9999,
            first: 10000,
            last: 19999,
            collision: Collision::Prefix,
            prefix: DEFAULT_PREFIX.into(),
        }
    }
}

/// The home of a package's user, inside the root: `/usr/src/NAME`, where its sources, build
/// tree and logs live.
pub fn home(name: &str) -> PathBuf {
    Path::new("/usr/src").join(name)
}

/// A package user as the target root's passwd knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PkgUser {
    /// The user's (and its group's) name: the package's, or by the naming rule (`pkg-sudo`).
    pub name: String,
    /// The package it builds and installs.
    pub package: String,
    pub uid: u32,
    pub gid: u32,
    /// The home directory as seen inside the root (`/usr/src/NAME`).
    pub home: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Io(#[from] crate::fsutil::PathError),
    #[error(
        "no free id left between {first} and {last} for a new package user (every one is a uid or gid in use)"
    )]
    Exhausted { first: u32, last: u32 },
    #[error(
        "user {name} already exists with uid {uid}, outside the package-user range {first}-{last}: \
         it is not a package user; pick another package name or remove that user"
    )]
    NotPackageUser {
        name: String,
        uid: u32,
        first: u32,
        last: u32,
    },
    #[error(
        "cannot create group {name} with gid {gid}: group {holder} already has that gid \
         (set another gid for the install group in etc/upm/upm.toml)"
    )]
    GidTaken {
        name: String,
        gid: u32,
        holder: String,
    },
    #[error(
        "package {package}: its name is already {taken} on this system, and `users.collision` \
         is \"refuse\" in etc/upm/upm.toml (upm never writes a second line for a name); set \
         `users.collision = \"prefix\"` there to build it as user {suggest}, or rename the package"
    )]
    NameRefused {
        package: String,
        taken: String,
        suggest: String,
    },
    #[error(
        "package {package}: no free name for its package user ({tried}); set another \
         `users.prefix` in etc/upm/upm.toml"
    )]
    NoFreeName { package: String, tried: String },
    #[error(
        "package {package}: its package user would be named {name:?}, which is not a valid user \
         name (letters, digits, '_' and '-', starting with a letter, at most 32 characters); set \
         a shorter `users.prefix` in etc/upm/upm.toml"
    )]
    BadName { package: String, name: String },
}

use crate::fsutil::io;

struct Accounts {
    passwd: Table,
    group: Table,
    shadow: Table,
    gshadow: Table,
}

impl Accounts {
    fn read(root: &Path) -> Result<Accounts, Error> {
        let etc = root.join("etc");
        let read = |name: &str, n: usize| {
            let p = etc.join(name);
            Table::read(&p, n).map_err(io(&p))
        };
        Ok(Accounts {
            passwd: read("passwd", 7)?,
            group: read("group", 4)?,
            shadow: read("shadow", 9)?,
            gshadow: read("gshadow", 4)?,
        })
    }

    /// Write every file, groups first so no user ever names a missing group. Each keeps its
    /// owner, group and mode; a missing passwd or group is made root:root 0644, and a missing
    /// shadow file is not made (a root without one does not use shadow passwords).
    fn write(&self) -> Result<(), Error> {
        let public = Some(NewFile::root(0o644));
        for (t, new) in [
            (&self.group, public),
            (&self.gshadow, None),
            (&self.passwd, public),
            (&self.shadow, None),
        ] {
            t.write(new).map_err(io(&t.path))?;
        }
        Ok(())
    }

    fn ensure_install_group(&mut self, ids: &Ids) -> Result<u32, Error> {
        if let Some(f) = self.group.find(&ids.install_group) {
            return Ok(f[2].parse().unwrap_or(ids.install_gid));
        }
        if let Some(holder) = self
            .group
            .records()
            .find(|f| f[2] == ids.install_gid.to_string())
        {
            return Err(Error::GidTaken {
                name: ids.install_group.clone(),
                gid: ids.install_gid,
                holder: holder[0].clone(),
            });
        }
        let g = &ids.install_group;
        self.group.push(vec![
            g.clone(),
            "x".into(),
            ids.install_gid.to_string(),
            String::new(),
        ]);
        if self.gshadow.exists {
            self.gshadow
                .push(vec![g.clone(), "!".into(), String::new(), String::new()]);
        }
        Ok(ids.install_gid)
    }
}

fn add_member(f: &mut [String], idx: usize, name: &str) {
    let mut members: Vec<&str> = f[idx].split(',').filter(|m| !m.is_empty()).collect();
    if !members.contains(&name) {
        members.push(name);
    }
    f[idx] = members.join(",");
}

fn days_since_epoch() -> String {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| (d.as_secs() / 86400).to_string())
        .unwrap_or_default()
}

/// The comment of the passwd record upm writes for a package's user.
fn comment(package: &str) -> String {
    format!("upm package user for {package}")
}

/// The package a passwd comment names, when upm wrote it.
fn package_of(comment: &str) -> Option<&str> {
    comment.strip_prefix("upm package user for ")
}

/// Whether `name` can be a Unix user and group name.
fn valid_user_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && name.len() <= 32
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Who holds a name a package user might get.
enum Holder {
    /// Nobody: the name is free.
    Free,
    /// The package's own user (made by upm, an earlier upm or by hand in the id range).
    Mine(PkgUser),
    /// Someone else: "group sudo (gid 27)".
    Other(String),
}

/// How a package's user was found.
enum Found {
    Existing(PkgUser),
    /// None yet; this is the name to give it.
    New(String),
}

impl Accounts {
    fn user(f: &[String], package: &str) -> PkgUser {
        let uid = f[2].parse().unwrap_or(0);
        PkgUser {
            name: f[0].clone(),
            package: package.into(),
            uid,
            gid: f[3].parse().unwrap_or(uid),
            home: PathBuf::from(&f[5]),
        }
    }

    fn holder(&self, name: &str, package: &str, ids: &Ids) -> Holder {
        let in_range = |id: u32| (ids.first..=ids.last).contains(&id);
        if let Some(f) = self.passwd.find(name) {
            let uid: u32 = f[2].parse().unwrap_or(0);
            return match package_of(&f[4]) {
                _ if !in_range(uid) => Holder::Other(format!("user {name} (uid {uid})")),
                Some(other) if other != package => Holder::Other(format!(
                    "user {name} (uid {uid}), the package user of {other}"
                )),
                _ => Holder::Mine(Accounts::user(f, package)),
            };
        }
        // A group of the name in the id range without its user is a package user's left
        // behind; it is reused. Any other is the system's.
        if let Some(g) = self
            .group
            .records()
            .find(|g| g[0] == name && !g[2].parse().is_ok_and(in_range))
        {
            return Holder::Other(format!("group {name} (gid {})", g[2]));
        }
        if self.shadow.find(name).is_some() {
            return Holder::Other(format!("user {name} (in etc/shadow only)"));
        }
        if self.gshadow.find(name).is_some() && self.group.find(name).is_none() {
            return Holder::Other(format!("group {name} (in etc/gshadow only)"));
        }
        Holder::Free
    }

    /// The package's user, or the name to give it by the naming rule.
    fn resolve(&self, package: &str, ids: &Ids) -> Result<Found, Error> {
        let in_range = |id: u32| (ids.first..=ids.last).contains(&id);
        // The user upm made for this package, whatever the rule named it.
        if let Some(f) = self
            .passwd
            .records()
            .find(|f| package_of(&f[4]) == Some(package) && f[2].parse().is_ok_and(in_range))
        {
            return Ok(Found::Existing(Accounts::user(f, package)));
        }
        let prefixed = format!("{}{package}", ids.prefix);
        let mut names = vec![package.to_string()];
        if ids.collision == Collision::Prefix {
            names.push(prefixed.clone());
        }
        let mut taken = Vec::new();
        for name in names {
            match self.holder(&name, package, ids) {
                Holder::Mine(u) => return Ok(Found::Existing(u)),
                Holder::Free if valid_user_name(&name) => return Ok(Found::New(name)),
                Holder::Free => {
                    return Err(Error::BadName {
                        package: package.into(),
                        name,
                    });
                }
                Holder::Other(what) => taken.push(what),
            }
        }
        Err(match ids.collision {
            Collision::Refuse => Error::NameRefused {
                package: package.into(),
                taken: taken.swap_remove(0),
                suggest: prefixed,
            },
            Collision::Prefix => Error::NoFreeName {
                package: package.into(),
                tried: taken.join("; "),
            },
        })
    }
}

/// The uid of an existing passwd record, which must be in the package-user range: upm never
/// takes over or removes an ordinary user.
fn package_uid(name: &str, record: &[String], ids: &Ids) -> Result<u32, Error> {
    let uid: u32 = record[2].parse().unwrap_or(0);
    if !(ids.first..=ids.last).contains(&uid) {
        return Err(Error::NotPackageUser {
            name: name.into(),
            uid,
            first: ids.first,
            last: ids.last,
        });
    }
    Ok(uid)
}

impl PkgUser {
    /// The package user a recorded package was installed as, from the database's row (which
    /// keeps the ids, not the user's name: `name` is the package's here).
    pub fn recorded(package: &str, uid: u32, gid: u32) -> PkgUser {
        PkgUser {
            name: package.into(),
            package: package.into(),
            uid,
            gid,
            home: home(package),
        }
    }
}

/// Create the install group in `root` if it is missing; returns its gid.
pub fn ensure_install_group(root: &Path, ids: &Ids) -> Result<u32, Error> {
    let _lock = files::lock(root).map_err(io(&root.join("etc/.pwd.lock")))?;
    let mut acc = Accounts::read(root)?;
    let existed = acc.group.find(&ids.install_group).is_some();
    let gid = acc.ensure_install_group(ids)?;
    if !existed {
        acc.write()?;
    }
    Ok(gid)
}

/// The package user of `package` in `root`, if there is one.
pub fn find(root: &Path, package: &str, ids: &Ids) -> Result<Option<PkgUser>, Error> {
    match Accounts::read(root)?.resolve(package, ids) {
        Ok(Found::Existing(u)) => Ok(Some(u)),
        Ok(Found::New(_)) | Err(_) => Ok(None),
    }
}

/// Create the package user of `package` in `root` (or return it if it exists): a user and
/// group named after the package (or by the naming rule when the name is taken), with the
/// lowest id in range free as both uid and gid, member of the install group, home
/// `/usr/src/PACKAGE` owned by it. Returns the user and whether it was created.
pub fn add(root: &Path, package: &str, ids: &Ids) -> Result<(PkgUser, bool), Error> {
    let _lock = files::lock(root).map_err(io(&root.join("etc/.pwd.lock")))?;
    let mut acc = Accounts::read(root)?;
    let name = match acc.resolve(package, ids)? {
        Found::Existing(u) => return Ok((u, false)),
        Found::New(name) => name,
    };
    let home = home(package);
    acc.ensure_install_group(ids)?;
    // Only a group in the id range can be here (see `holder`): a package user's left behind.
    let gid = acc.group.find(&name).and_then(|g| g[2].parse::<u32>().ok());
    let used: std::collections::HashSet<u32> = acc.passwd.ids(2).chain(acc.group.ids(2)).collect();
    let id = (ids.first..=ids.last)
        .find(|i| !used.contains(i))
        .ok_or(Error::Exhausted {
            first: ids.first,
            last: ids.last,
        })?;
    let gid = match gid {
        Some(gid) => gid,
        None => {
            acc.group.push(vec![
                name.clone(),
                "x".into(),
                id.to_string(),
                String::new(),
            ]);
            if acc.gshadow.exists {
                acc.gshadow
                    .push(vec![name.clone(), "!".into(), String::new(), String::new()]);
            }
            id
        }
    };
    acc.passwd.push(vec![
        name.clone(),
        "x".into(),
        id.to_string(),
        gid.to_string(),
        comment(package),
        home.display().to_string(),
        "/bin/bash".into(),
    ]);
    if acc.shadow.exists {
        let mut f = vec![String::new(); 9];
        f[0] = name.clone();
        f[1] = "!".into();
        f[2] = days_since_epoch();
        acc.shadow.push(f);
    }
    let install = ids.install_group.clone();
    if let Some(f) = acc.group.find_mut(&install) {
        add_member(f, 3, &name);
    }
    if let Some(f) = acc.gshadow.find_mut(&install) {
        add_member(f, 3, &name);
    }
    acc.write()?;
    let dir = crate::fsutil::on_host(root, &home);
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    nix::unistd::chown(
        &dir,
        Some(nix::unistd::Uid::from_raw(id)),
        Some(nix::unistd::Gid::from_raw(gid)),
    )
    .map_err(|e| io(&dir)(e.into()))?;
    Ok((
        PkgUser {
            name,
            package: package.into(),
            uid: id,
            gid,
            home,
        },
        true,
    ))
}

/// Every package user of `root` (users whose uid is in the package range), by uid.
pub fn list(root: &Path, ids: &Ids) -> Result<Vec<PkgUser>, Error> {
    let acc = Accounts::read(root)?;
    let mut out: Vec<PkgUser> = acc
        .passwd
        .records()
        .filter_map(|f| {
            let uid: u32 = f[2].parse().ok()?;
            (ids.first..=ids.last).contains(&uid).then(|| PkgUser {
                name: f[0].clone(),
                package: package_of(&f[4]).unwrap_or(&f[0]).to_string(),
                uid,
                gid: f[3].parse().unwrap_or(uid),
                home: PathBuf::from(&f[5]),
            })
        })
        .collect();
    out.sort_by_key(|u| u.uid);
    Ok(out)
}

fn drop_member(f: &mut [String], idx: usize, name: &str) {
    let members: Vec<&str> = f[idx]
        .split(',')
        .filter(|m| !m.is_empty() && *m != name)
        .collect();
    f[idx] = members.join(",");
}

/// Remove the package user of `package` from `root`; whether there was one to remove.
pub fn remove(root: &Path, package: &str, ids: &Ids) -> Result<bool, Error> {
    match find(root, package, ids)? {
        Some(u) => remove_user(root, &u, ids),
        None => Ok(false),
    }
}

/// Remove a package user (found by its uid, which the database keeps): its passwd and shadow
/// lines, its own group's lines (the group of its name and gid, never another group of the
/// same name) and its membership of other groups — exactly the lines upm wrote. Refuses a
/// user outside the package range. Whether there was one to remove.
pub fn remove_user(root: &Path, user: &PkgUser, ids: &Ids) -> Result<bool, Error> {
    let _lock = files::lock(root).map_err(io(&root.join("etc/.pwd.lock")))?;
    let mut acc = Accounts::read(root)?;
    let Some(f) = acc
        .passwd
        .records()
        .find(|f| f[2].parse() == Ok(user.uid))
        .cloned()
    else {
        return Ok(false);
    };
    let name = f[0].clone();
    package_uid(&name, &f, ids)?;
    acc.passwd.remove_first(|r| r == f.as_slice());
    acc.shadow.remove_last(&name);
    let gid = user.gid.to_string();
    if (ids.first..=ids.last).contains(&user.gid)
        && acc.group.remove_first(|g| g[0] == name && g[2] == gid)
    {
        acc.gshadow.remove_last(&name);
    }
    for t in [&mut acc.group, &mut acc.gshadow] {
        for f in t.records_mut() {
            if f.len() == 4 {
                drop_member(f, 3, &name);
            }
        }
    }
    // Users first, so no group is ever missing for a user that names it.
    for t in [&acc.passwd, &acc.shadow, &acc.group, &acc.gshadow] {
        t.write(None).map_err(io(&t.path))?;
    }
    Ok(true)
}

/// Names and ids of the target root's users and groups, read from its own passwd and group
/// (not the host's, which may be another system altogether).
#[derive(Debug, Clone, Default)]
pub struct Names {
    users: Vec<(String, u32, u32)>,
    groups: Vec<(String, u32)>,
}

impl Names {
    pub fn read(root: &Path) -> Result<Names, Error> {
        let etc = root.join("etc");
        let passwd = Table::read(&etc.join("passwd"), 7).map_err(io(&etc.join("passwd")))?;
        let group = Table::read(&etc.join("group"), 4).map_err(io(&etc.join("group")))?;
        Ok(Names {
            users: passwd
                .records()
                .filter_map(|f| Some((f[0].clone(), f[2].parse().ok()?, f[3].parse().ok()?)))
                .collect(),
            groups: group
                .records()
                .filter_map(|f| Some((f[0].clone(), f[2].parse().ok()?)))
                .collect(),
        })
    }

    pub fn user_name(&self, uid: u32) -> Option<&str> {
        self.users.iter().find(|u| u.1 == uid).map(|u| u.0.as_str())
    }

    /// A user's uid and primary gid, by name or number.
    pub fn user(&self, spec: &str) -> Option<(u32, u32)> {
        match spec.parse::<u32>() {
            Ok(n) => Some(
                self.users
                    .iter()
                    .find(|u| u.1 == n)
                    .map_or((n, n), |u| (u.1, u.2)),
            ),
            Err(_) => self.users.iter().find(|u| u.0 == spec).map(|u| (u.1, u.2)),
        }
    }

    /// A group's gid, by name or number.
    pub fn group(&self, spec: &str) -> Option<u32> {
        match spec.parse::<u32>() {
            Ok(n) => Some(n),
            Err(_) => self.groups.iter().find(|g| g.0 == spec).map(|g| g.1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accounts(passwd: &str, group: &str) -> (tempfile::TempDir, Accounts) {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("etc")).unwrap();
        std::fs::write(d.path().join("etc/passwd"), passwd).unwrap();
        std::fs::write(d.path().join("etc/group"), group).unwrap();
        let acc = Accounts::read(d.path()).unwrap();
        (d, acc)
    }

    fn new_name(acc: &Accounts, package: &str, ids: &Ids) -> String {
        match acc.resolve(package, ids).unwrap() {
            Found::New(n) => n,
            Found::Existing(u) => panic!("expected a new user, found {u:?}"),
        }
    }

    #[test]
    fn a_name_the_system_uses_gets_the_prefix_or_is_refused() {
        let (_d, acc) = accounts(
            "root:x:0:0:root:/root:/bin/bash\nmail:x:8:8:mail:/var/mail:/bin/false\n",
            "root:x:0:\nsudo:x:27:\nmail:x:8:\n",
        );
        let ids = Ids::default();
        assert_eq!(new_name(&acc, "zlib", &ids), "zlib");
        assert_eq!(new_name(&acc, "sudo", &ids), "pkg-sudo");
        assert_eq!(new_name(&acc, "mail", &ids), "pkg-mail");
        let refuse = Ids {
            collision: Collision::Refuse,
            ..Ids::default()
        };
        let e = acc.resolve("sudo", &refuse).err().unwrap().to_string();
        assert!(
            e.contains("group sudo (gid 27)") && e.contains("pkg-sudo"),
            "{e}"
        );
        let long = Ids {
            prefix: "x".repeat(30),
            ..Ids::default()
        };
        assert!(matches!(
            acc.resolve("sudo", &long),
            Err(Error::BadName { .. })
        ));
    }

    #[test]
    fn an_existing_package_user_is_found_by_its_comment_or_its_name() {
        let (_d, acc) = accounts(
            "pkg-sudo:x:10001:10001:upm package user for sudo:/usr/src/sudo:/bin/bash\n\
             zlib:x:10002:10002:upm package user for zlib:/usr/src/zlib:/bin/bash\n\
             byhand:x:10003:10003::/usr/src/byhand:/bin/bash\n\
             pkg-x:x:10004:10004:upm package user for other:/usr/src/other:/bin/bash\n",
            "sudo:x:27:\nx:x:50:\n",
        );
        let ids = Ids {
            prefix: "p-".into(),
            ..Ids::default()
        };
        for (package, user) in [("sudo", "pkg-sudo"), ("zlib", "zlib"), ("byhand", "byhand")] {
            match acc.resolve(package, &ids).unwrap() {
                Found::Existing(u) => {
                    assert_eq!((u.name.as_str(), u.package.as_str()), (user, package))
                }
                Found::New(n) => panic!("{package}: new user {n}"),
            }
        }
        // A name that is another package's user is not taken over.
        let ids = Ids::default();
        let e = acc.resolve("x", &ids).err().unwrap().to_string();
        assert!(e.contains("the package user of other"), "{e}");
    }
}
