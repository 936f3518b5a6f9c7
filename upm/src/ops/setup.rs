//! Shared pieces of install, remove and recovery: the wrapper directory, the phase environment,
//! the watch rules of a root, ending a package user's stray processes, and naming the owner of
//! a path for messages.

use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::db::Db;
use crate::envvars;
use crate::fsutil::on_host;
use crate::pkguser::{Names, PkgUser};
use crate::watch::Rules;

use super::{Error, io};

/// The wrapper directory inside a root.
pub const WRAP_DIR: &str = "/var/lib/upm/wrap";

/// Make the wrapper directory of `root`: one symlink per wrapped tool to the upm binary. When
/// the root is not `/`, the binary is copied in, since phases run chrooted.
pub fn wrappers(root: &Path) -> Result<PathBuf, Error> {
    let dir = on_host(root, Path::new(WRAP_DIR));
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    let exe = std::env::current_exe().map_err(io(Path::new("/proc/self/exe")))?;
    let target = if root == Path::new("/") {
        exe
    } else {
        let copy = dir.join("upm");
        let same = match (std::fs::metadata(&exe), std::fs::metadata(&copy)) {
            (Ok(a), Ok(b)) => a.len() == b.len() && a.modified().ok() <= b.modified().ok(),
            _ => false,
        };
        if !same {
            let tmp = dir.join(".upm.new");
            std::fs::copy(&exe, &tmp).map_err(io(&tmp))?;
            std::fs::rename(&tmp, &copy).map_err(io(&copy))?;
        }
        PathBuf::from("upm")
    };
    for name in crate::wrap::NAMES {
        let link = dir.join(name);
        if std::fs::read_link(&link).ok().as_ref() == Some(&target) {
            continue;
        }
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&target, &link).map_err(io(&link))?;
    }
    Ok(PathBuf::from(WRAP_DIR))
}

/// The complete environment of a phase.
pub fn environment(user: &PkgUser, jobs: u32, extra: &[(String, String)]) -> Vec<(String, String)> {
    let home = user.home.display().to_string();
    let mut env = vec![
        ("HOME".to_string(), home.clone()),
        ("USER".to_string(), user.name.clone()),
        ("LOGNAME".to_string(), user.name.clone()),
        ("SHELL".to_string(), "/bin/sh".to_string()),
        (
            "PATH".to_string(),
            format!("{WRAP_DIR}:/usr/bin:/bin:/usr/sbin:/sbin:/usr/local/bin"),
        ),
        ("LC_ALL".to_string(), "POSIX".to_string()),
        ("MAKEFLAGS".to_string(), format!("-j{jobs}")),
        (envvars::STEPS.to_string(), format!("{home}/.upm/steps")),
        (envvars::WRAP_DIR.to_string(), WRAP_DIR.to_string()),
    ];
    for (k, v) in extra {
        match env.iter_mut().find(|(n, _)| n == k) {
            Some(slot) => slot.1 = v.clone(),
            None => env.push((k.clone(), v.clone())),
        }
    }
    env
}

/// The watcher's rules for a root: its tracked trees, as paths inside the root.
pub fn inside_rules(cfg: &Config) -> Rules {
    Rules {
        roots: cfg.track_roots.clone(),
        exclude: cfg.track_exclude.clone(),
        writer: None,
    }
}

/// The same rules as this process sees the root (for the watcher).
pub fn watch_rules(root: &Path, cfg: &Config) -> Rules {
    inside_rules(cfg).map_paths(|p| on_host(root, p))
}

/// End every process still running as the package user in this root (a build left behind by
/// a killed upm). A package user runs nothing but its package's build, so all of them can go;
/// processes of the same uid chrooted elsewhere (another root) are left alone.
pub fn end_processes(root: &Path, user: &PkgUser) -> Result<(), Error> {
    crate::sys::kill_user_processes(root, user.uid).map_err(io(Path::new("/proc")))?;
    Ok(())
}

/// Who owns `path`, for messages: "package zlib (uid 10001)", "package user x (uid 10002)",
/// "root (uid 0), not a package".
pub fn owner_of(db: &Db, names: &Names, path: &Path, uid: u32) -> (String, String) {
    if let Ok(owners) = db.owners(path)
        && let Some(first) = owners.first()
    {
        return (
            format!("package {first} (uid {uid})"),
            format!("{first} (`upm remove {first}`)"),
        );
    }
    match names.user_name(uid) {
        Some(n) if uid != 0 => (
            format!("package user {n} (uid {uid})"),
            format!("package {n}"),
        ),
        Some(n) => (
            format!("{n} (uid {uid}), not a package upm installed"),
            format!("the file (it is the base system's, owned by {n})"),
        ),
        None => (format!("uid {uid}"), format!("the file of uid {uid}")),
    }
}

/// Quote words for `sh`: each in single quotes, a quote inside as `'\''`.
pub fn sh_quote_all(words: &[String]) -> String {
    words
        .iter()
        .map(|w| format!("'{}'", w.replace('\'', "'\\''")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Run a command as root in `root` (for root steps undone on removal), its output in `log`.
pub fn run_root_command(root: &Path, script: &str, log: &Path) -> Result<bool, Error> {
    let env = [
        (
            "PATH".to_string(),
            "/usr/bin:/bin:/usr/sbin:/sbin".to_string(),
        ),
        ("LC_ALL".to_string(), "POSIX".to_string()),
    ];
    let ran = crate::runner::run(
        &crate::runner::Job {
            label: "root".into(),
            script,
            who: crate::runner::Identity {
                uid: 0,
                gid: 0,
                groups: [0],
            },
            root,
            cwd: Path::new("/"),
            env: &env,
            log,
            shell: None,
        },
        &crate::runner::Progress::new(false, true),
    )?;
    Ok(ran.success())
}
