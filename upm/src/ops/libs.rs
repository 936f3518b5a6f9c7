//! Library dependencies between installed packages, from the ELF files' dynamic sections the
//! database keeps (`libs`, `db::libs`): storing a manifest's at install time, `upm depends`,
//! `upm rdepends`, `upm check --libs`, and the guard that stops a removal or an upgrade
//! taking away a soname another package's files still need.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::ctx::Ctx;
use crate::db::{Db, SonameUse};
use crate::libs::{self, SearchPath};
use crate::manifest::Entry;

use super::{Error, query};

/// Read the ELF files among `files` of package `id` and store their dynamic sections,
/// replacing what was known of those paths and of the `gone` ones. How long reading took.
pub fn store(
    db: &mut Db,
    root: &Path,
    id: i64,
    files: &[Entry],
    gone: &[PathBuf],
) -> Result<Duration, Error> {
    let scan = libs::scan(root, files);
    let paths = files
        .iter()
        .map(|e| e.path.as_path())
        .chain(gone.iter().map(PathBuf::as_path));
    db.record_libs(id, paths, &scan.files)?;
    Ok(scan.took)
}

/// One soname a package needs and who provides it.
#[derive(Debug, Clone)]
pub struct Need {
    pub soname: String,
    /// The package's files that need it.
    pub needed_by: Vec<PathBuf>,
    /// The other packages providing it (name, file).
    pub providers: Vec<(String, PathBuf)>,
    /// For a soname no package provides: where the loader finds it in the root (a file no
    /// package owns), or `None`: missing.
    pub found: Option<PathBuf>,
}

/// `upm depends PKG`: every soname its files need that it does not provide itself.
pub fn depends(ctx: &Ctx, db: &Db, name: &str) -> Result<Vec<Need>, Error> {
    let pkg = query::package(ctx, db, name)?;
    let files = db.elf_files(pkg.id)?;
    let own: BTreeSet<&str> = files
        .iter()
        .filter_map(|f| f.dynamic.soname.as_deref())
        .collect();
    let mut needs: BTreeMap<&str, Vec<&libs::ElfFile>> = BTreeMap::new();
    for f in &files {
        for n in &f.dynamic.needed {
            if !own.contains(n.as_str()) {
                needs.entry(n).or_default().push(f);
            }
        }
    }
    let search = SearchPath::of(&ctx.root);
    let mut out = Vec::new();
    for (soname, needers) in needs {
        let providers: Vec<(String, PathBuf)> = db
            .providers(soname, pkg.id)?
            .into_iter()
            .map(|u| (u.package, u.path))
            .collect();
        let found = if providers.is_empty() {
            let f = needers[0];
            search.find(soname, &f.path, f.dynamic.runpath.as_deref())
        } else {
            None
        };
        out.push(Need {
            soname: soname.to_string(),
            needed_by: needers.iter().map(|f| f.path.clone()).collect(),
            providers,
            found,
        });
    }
    Ok(out)
}

/// `upm rdepends PKG`: the other packages' files that need a soname this package provides.
pub fn rdepends(ctx: &Ctx, db: &Db, name: &str) -> Result<Vec<SonameUse>, Error> {
    let pkg = query::package(ctx, db, name)?;
    Ok(db.needers_of(pkg.id)?)
}

/// `upm check --libs`: every installed ELF file a needed soname of which the loader would not
/// find in the root.
pub fn missing(ctx: &Ctx, db: &Db, only: Option<&str>) -> Result<Vec<SonameUse>, Error> {
    let search = SearchPath::of(&ctx.root);
    let mut out = Vec::new();
    for (u, runpath) in db.all_needed()? {
        if only.is_some_and(|n| n != u.package) {
            continue;
        }
        if search
            .find(&u.soname, &u.path, runpath.as_deref())
            .is_none()
        {
            out.push(u);
        }
    }
    Ok(out)
}

/// The other packages' files that need a soname of package `id` which only `id` provides
/// among the files that stay: `keeps` are package `id`'s sonames that stay provided (an
/// upgrade's new version's), none for a removal.
pub fn still_needed(db: &Db, id: i64, keeps: &BTreeSet<String>) -> Result<Vec<SonameUse>, Error> {
    let mut out = Vec::new();
    let mut others: BTreeMap<String, bool> = BTreeMap::new();
    for u in db.needers_of(id)? {
        if keeps.contains(&u.soname) {
            continue;
        }
        let elsewhere = match others.get(&u.soname) {
            Some(b) => *b,
            None => {
                // Another package providing it too (not the needer's own copy).
                let b = db
                    .providers(&u.soname, id)?
                    .iter()
                    .any(|p| p.package != u.package);
                others.insert(u.soname.clone(), b);
                b
            }
        };
        if !elsewhere {
            out.push(u);
        }
    }
    Ok(out)
}

/// The list of dependents for an error message: "prog (/usr/bin/prog needs libz.so.1)".
pub fn list(uses: &[SonameUse]) -> String {
    uses.iter()
        .map(|u| {
            format!(
                "{} ({} needs {})",
                u.package,
                crate::pathtext::quoted(&u.path),
                u.soname
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}
