//! Which recipe `upm upgrade NAME` builds, and how versions compare.

use std::path::{Path, PathBuf};

use crate::ctx::Ctx;
use crate::db::{self, Db};
use crate::fsutil::on_host;
use crate::pathtext::quoted;

use super::super::Error;

/// `upm upgrade NAME [RECIPE]`: the recipe to upgrade an installed package with. RECIPE (a
/// file, or a name in the recipe directories) when given; else the first of: `NAME` in the
/// recipe directories, `/usr/src/NAME/NAME.toml`, the newest profile
/// `/usr/src/NAME/NAME-VERSION.profile.toml` — whose version differs from the installed one
/// (a profile's must be newer).
pub fn find_recipe(ctx: &Ctx, name: &str, given: Option<&str>) -> Result<PathBuf, Error> {
    let db = Db::open_read(&ctx.root)?;
    let pkg = db
        .package(name)?
        .filter(|p| p.state == db::State::Installed)
        .ok_or_else(|| Error::NotInstalled { name: name.into() })?;
    let named = |path: &Path| -> Result<crate::recipe::Recipe, Error> {
        let r = crate::recipe::load(path)?.recipe;
        if r.package.name != name {
            return Err(Error::UpgradeOtherPackage {
                name: name.into(),
                recipe: quoted(path).to_string(),
                other: r.package.name,
            });
        }
        Ok(r)
    };
    if let Some(g) = given {
        let path = crate::ops::install::find_recipe(ctx, &ctx.cfg, g)?;
        named(&path)?;
        return Ok(path);
    }
    let mut searched = Vec::new();
    let mut candidates = Vec::new();
    if let Ok(p) = crate::ops::install::find_recipe(ctx, &ctx.cfg, name) {
        candidates.push((p, false));
    }
    searched.extend(ctx.cfg.recipe_dirs.iter().map(|d| d.display().to_string()));
    let home = crate::pkguser::home(name);
    searched.push(home.display().to_string());
    let home = on_host(&ctx.root, &home);
    candidates.push((home.join(format!("{name}.toml")), false));
    let mut profiles: Vec<(String, PathBuf)> = std::fs::read_dir(&home)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let f = e.file_name().to_string_lossy().into_owned();
            let v = f
                .strip_prefix(&format!("{name}-"))?
                .strip_suffix(".profile.toml")?;
            Some((v.to_string(), e.path()))
        })
        .collect();
    profiles.sort_by(|a, b| version_cmp(&b.0, &a.0));
    candidates.extend(profiles.into_iter().map(|(_, p)| (p, true)));
    for (path, newer) in candidates {
        if !path.is_file() {
            continue;
        }
        let Ok(r) = named(&path) else { continue };
        let v = &r.package.version;
        if *v != pkg.version
            && (!newer || version_cmp(v, &pkg.version) == std::cmp::Ordering::Greater)
        {
            return Ok(path);
        }
    }
    Err(Error::NoNewerRecipe {
        name: name.into(),
        version: pkg.version,
        searched: searched.join(", "),
    })
}

/// Compare two version strings the way people read them: runs of digits as numbers, other
/// runs as text (`1.10` after `1.9`, `2.0rc1` before `2.0.1`).
pub fn version_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    fn parts(s: &str) -> Vec<(bool, String)> {
        let mut out: Vec<(bool, String)> = Vec::new();
        for c in s.chars() {
            let digit = c.is_ascii_digit();
            if !c.is_ascii_alphanumeric() {
                out.push((false, String::new()));
                continue;
            }
            match out.last_mut() {
                Some((d, run)) if *d == digit && !run.is_empty() => run.push(c),
                _ => out.push((digit, c.to_string())),
            }
        }
        out.retain(|(_, r)| !r.is_empty());
        out
    }
    let (pa, pb) = (parts(a), parts(b));
    for (x, y) in pa.iter().zip(&pb) {
        let o = match (x.0, y.0) {
            (true, true) => {
                let (nx, ny) = (x.1.trim_start_matches('0'), y.1.trim_start_matches('0'));
                nx.len().cmp(&ny.len()).then_with(|| nx.cmp(ny))
            }
            _ => x.1.cmp(&y.1),
        };
        if o != std::cmp::Ordering::Equal {
            return o;
        }
    }
    pa.len().cmp(&pb.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering::*;

    #[test]
    fn versions_compare_as_people_read_them() {
        assert_eq!(version_cmp("1.10", "1.9"), Greater);
        assert_eq!(version_cmp("1.3.1", "1.3"), Greater);
        assert_eq!(version_cmp("2", "2"), Equal);
        assert_eq!(version_cmp("5.4.1", "5.6.0"), Less);
        assert_eq!(version_cmp("1.02", "1.2"), Equal);
    }

    #[test]
    fn row_names_cannot_be_package_names() {
        assert!(!crate::recipe::valid_name(&super::super::row_name(
            "zlib", "1.3"
        )));
    }
}
