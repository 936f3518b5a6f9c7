//! Package users: the Unix user (and group of the same name) each package is built and
//! installed as, a member of the `install` group, with its home in `/usr/src/<package>`.
//! This module edits the target root's passwd/group/shadow/gshadow itself, under the
//! `.pwd.lock` lock and atomically, and never builds anything.

mod files;
pub mod installdir;

use std::path::{Path, PathBuf};

use files::Table;

use crate::fsutil::NewFile;

/// The id ranges and the install group, as DESIGN.md gives them.
#[derive(Debug, Clone)]
pub struct Ids {
    pub install_group: String,
    pub install_gid: u32,
    pub first: u32,
    pub last: u32,
}

impl Default for Ids {
    fn default() -> Self {
        Ids {
            install_group: "install".into(),
            install_gid: 9999,
            first: 10000,
            last: 19999,
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
    pub name: String,
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
    /// The package user a recorded package was installed as.
    pub fn recorded(name: &str, uid: u32, gid: u32) -> PkgUser {
        PkgUser {
            name: name.into(),
            uid,
            gid,
            home: home(name),
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

/// Create the package user `name` in `root` (or return it if it exists): user and group of
/// that name with the lowest id in range free as both uid and gid, member of the install
/// group, home `/usr/src/NAME` owned by it. Returns the user and whether it was created.
pub fn add(root: &Path, name: &str, ids: &Ids) -> Result<(PkgUser, bool), Error> {
    let _lock = files::lock(root).map_err(io(&root.join("etc/.pwd.lock")))?;
    let mut acc = Accounts::read(root)?;
    let home = home(name);
    if let Some(f) = acc.passwd.find(name) {
        let uid = package_uid(name, f, ids)?;
        let user = PkgUser {
            name: name.into(),
            uid,
            gid: f[3].parse().unwrap_or(uid),
            home: PathBuf::from(&f[5]),
        };
        return Ok((user, false));
    }
    acc.ensure_install_group(ids)?;
    let gid = match acc.group.find(name) {
        Some(g) => g[2].parse().unwrap_or(0),
        None => 0,
    };
    let used: std::collections::HashSet<u32> = acc.passwd.ids(2).chain(acc.group.ids(2)).collect();
    let id = (ids.first..=ids.last)
        .find(|i| !used.contains(i))
        .ok_or(Error::Exhausted {
            first: ids.first,
            last: ids.last,
        })?;
    let gid = if (ids.first..=ids.last).contains(&gid) {
        gid
    } else {
        acc.group
            .push(vec![name.into(), "x".into(), id.to_string(), String::new()]);
        if acc.gshadow.exists {
            acc.gshadow
                .push(vec![name.into(), "!".into(), String::new(), String::new()]);
        }
        id
    };
    acc.passwd.push(vec![
        name.into(),
        "x".into(),
        id.to_string(),
        gid.to_string(),
        format!("upm package user for {name}"),
        home.display().to_string(),
        "/bin/bash".into(),
    ]);
    if acc.shadow.exists {
        let mut f = vec![String::new(); 9];
        f[0] = name.into();
        f[1] = "!".into();
        f[2] = days_since_epoch();
        acc.shadow.push(f);
    }
    let install = ids.install_group.clone();
    if let Some(f) = acc.group.find_mut(&install) {
        add_member(f, 3, name);
    }
    if let Some(f) = acc.gshadow.find_mut(&install) {
        add_member(f, 3, name);
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
            name: name.into(),
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

/// Remove the package user `name` (user, its own group, its membership of the install group)
/// from `root`. Refuses a user outside the package range. Whether there was one to remove.
pub fn remove(root: &Path, name: &str, ids: &Ids) -> Result<bool, Error> {
    let _lock = files::lock(root).map_err(io(&root.join("etc/.pwd.lock")))?;
    let mut acc = Accounts::read(root)?;
    let Some(f) = acc.passwd.find(name) else {
        return Ok(false);
    };
    package_uid(name, f, ids)?;
    acc.passwd.remove(name);
    acc.shadow.remove(name);
    let own_group = acc
        .group
        .find(name)
        .and_then(|g| g[2].parse::<u32>().ok())
        .is_some_and(|gid| (ids.first..=ids.last).contains(&gid));
    if own_group {
        acc.group.remove(name);
        acc.gshadow.remove(name);
    }
    for t in [&mut acc.group, &mut acc.gshadow] {
        for f in t.records_mut() {
            if f.len() == 4 {
                drop_member(f, 3, name);
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
