//! Profiles: what was done to build a package, written after every install (and every
//! `upm record` commit) to `/usr/src/PKG/PKG-VERSION.profile.toml` and into the database.
//!
//! A profile is the recipe as its user wrote it (templates merged, `${...}` references kept)
//! followed by a `[profile]` branch of recorded data: the commands actually run per phase
//! (expanded script, working directory, exit status, duration), the environment, host facts,
//! timings, the root steps applied and refused, the source archive used, and the manifest
//! (owners as `package`/`root`/`install`, never raw ids). The file's `recorded = ["profile"]`
//! tells the configuration loader that branch is data: read literally, never inherited. So a
//! profile **is a recipe** (`upm install FILE.profile.toml` rebuilds the package) and **a
//! template** (`inherit` it and change `package.version` and `source.*`).
//!
//! The text is deterministic — stable key order, manifest sorted by path, no timestamps — so
//! profiles diff well in git; [`diff`] compares two of them. [`write`] regenerates a package's
//! profile from the database at any time; [`record_inputs`] stores what only an install knows.

pub mod archive;
pub mod binhost;
mod diff;
mod host;
pub mod hostfile;
pub mod keys;
mod render;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::ctree::{Tree, Value};
use crate::ctx::Ctx;
use crate::db::{self, Db, Origin, ProfileRow};
use crate::fsutil::{NewFile, io, on_host};
use crate::manifest::Entry;
use crate::pathtext::{quoted, text};
use crate::pkguser;

pub use diff::{Change, Diff, FileChange, diff};
pub use host::{Host, facts};
pub use render::{parse, render};

/// The branch of a profile that holds its recorded data.
pub const BRANCH: &str = "profile";
/// The format of the recorded data this upm writes.
pub const FORMAT: i64 = 1;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Db(#[from] db::Error),
    #[error(transparent)]
    Io(#[from] crate::fsutil::PathError),
    #[error(transparent)]
    Tree(#[from] crate::ctree::Error),
    #[error("{name} is not installed (`upm list` shows what is)")]
    NotInstalled { name: String },
    #[error(
        "{name} has no profile: it was installed by a upm that did not record profiles; \
         `upm remove {name}` and install it again to get one"
    )]
    NoProfile { name: String },
    #[error(
        "{}: not a profile ({why}); a profile is the file upm writes as \
         /usr/src/PKG/PKG-VERSION.profile.toml (`upm profile path PKG`)",
        quoted(path)
    )]
    NotProfile { path: PathBuf, why: String },
    #[error("the profile inputs of {name} in the database are damaged: {why}")]
    Damaged { name: String, why: String },
}

/// The source archive a build used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Archive {
    /// Its file name.
    pub file: String,
    pub sha256: String,
}

/// Where a build's time went, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Timings {
    /// Unpacking and the phases before the install phase.
    pub build_ms: u64,
    /// The trial run of the install phase.
    pub trial_ms: u64,
    /// From the trial to the last database write.
    pub install_ms: u64,
    /// The whole install.
    pub total_ms: u64,
}

/// One command run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Command {
    pub phase: String,
    pub origin: Origin,
    /// `package` (the package user) or `root`.
    pub user: String,
    pub cwd: String,
    pub command: String,
    pub status: Option<i32>,
    pub duration_ms: Option<i64>,
}

/// A root step recorded during the install, and whether upm applied it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    pub step: String,
    pub arg: String,
    pub path: String,
    pub applied: bool,
    pub note: Option<String>,
}

/// One manifest entry, with owners named as they are on every host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct File {
    pub path: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub mode: u32,
    /// `package`, `root`, or `#UID` for anyone else.
    pub owner: String,
    /// `package`, `root`, `install`, or `#GID`.
    pub group: String,
    pub size: Option<u64>,
    pub sha256: Option<String>,
    pub target: Option<String>,
}

/// A profile: the recipe as written, and what the build recorded.
#[derive(Debug, Clone, Serialize)]
pub struct Profile {
    pub name: String,
    pub version: String,
    /// [`recipe_hash`] of the recipe and the archive used (`None` in profiles of installs made
    /// before upm recorded it).
    pub recipe_hash: Option<String>,
    /// The recipe as written: templates merged, references kept.
    #[serde(serialize_with = "tree_map")]
    pub recipe: Tree,
    pub source: Option<Archive>,
    pub host: Host,
    #[serde(serialize_with = "pairs_map")]
    pub env: Vec<(String, String)>,
    pub timings: Timings,
    pub commands: Vec<Command>,
    pub root_steps: Vec<Step>,
    pub manifest: Vec<File>,
}

fn tree_map<S: serde::Serializer>(t: &Tree, s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(t.entries().iter().map(|e| (e.key.to_string(), &e.value)))
}

fn pairs_map<S: serde::Serializer>(p: &[(String, String)], s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(p.iter().map(|(k, v)| (k, v)))
}

/// The recipe hash: what says two builds were made from the same recipe and source, so a
/// binary archive of one may stand in for the other (the binary host is searched by it; replay
/// skips a package installed with the same one). The sha256 (hex) of the recipe as written —
/// templates merged, `${...}` references kept, as a profile stores it, without a profile's
/// recorded data — in its TOML text, and of the source archive's sha256 (`-` when there is
/// none). Command-line `--set` values are part of the recipe as written.
pub fn recipe_hash(recipe: &Tree, source_sha256: Option<&str>) -> String {
    use sha2::{Digest, Sha256};
    let part =
        recipe.without(|k| k.first() == Some(BRANCH) || k.first() == Some(crate::ctree::RECORDED));
    let mut h = Sha256::new();
    h.update(b"upm recipe hash v1\n");
    h.update(part.to_toml().as_bytes());
    h.update(b"\nsource ");
    h.update(source_sha256.unwrap_or("-").as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Where a package's profile lives, inside the root.
pub fn path_for(name: &str, version: &str) -> PathBuf {
    pkguser::home(name).join(format!("{name}-{version}.profile.toml"))
}

/// What only the install knows, stored for [`write`]: the recipe as written, the archive it
/// actually used (whatever the recipe's `source.file` says: `--source`, a directory search),
/// the phases' environment and this host's facts.
pub fn record_inputs(
    ctx: &Ctx,
    db: &Db,
    id: i64,
    written: &Tree,
    archive: Option<&Path>,
    env: &[(String, String)],
) -> Result<(), Error> {
    let (source_file, source_sha256) = match archive {
        Some(a) => (
            Some(
                a.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            ),
            Some(crate::manifest::sha256_file(a).map_err(io(a))?),
        ),
        None => (None, None),
    };
    let host = facts(&ctx.root);
    let hash = recipe_hash(written, source_sha256.as_deref());
    db.set_profile_inputs(
        id,
        &ProfileRow {
            recipe: written.to_toml(),
            source_file,
            source_sha256,
            env: serde_json::to_string(env).expect("pairs serialize"),
            host: serde_json::to_string(&host).expect("host serializes"),
            timings: serde_json::to_string(&Timings::default()).expect("timings serialize"),
            path: None,
            text: None,
            recipe_hash: Some(hash),
        },
    )?;
    Ok(())
}

/// Store an install's timings for its profile.
pub fn record_timings(db: &Db, id: i64, t: &Timings) -> Result<(), Error> {
    db.set_profile_timings(id, &serde_json::to_string(t).expect("timings serialize"))?;
    Ok(())
}

/// A package's profile, made from the database.
pub fn from_db(db: &Db, name: &str, install_gid: u32) -> Result<Profile, Error> {
    let pkg = db.package(name)?.ok_or_else(|| Error::NotInstalled {
        name: name.to_string(),
    })?;
    let row = db.profile(pkg.id)?.ok_or_else(|| Error::NoProfile {
        name: name.to_string(),
    })?;
    let damaged = |why: String| Error::Damaged {
        name: name.to_string(),
        why,
    };
    let mut recipe = crate::ctree::parse_str(
        &row.recipe,
        crate::ctree::Syntax::Toml,
        Path::new("<recipe in the database>"),
    )?;
    let env: Vec<(String, String)> =
        serde_json::from_str(&row.env).map_err(|e| damaged(format!("env: {e}")))?;
    let host: Host = serde_json::from_str(&row.host).map_err(|e| damaged(format!("host: {e}")))?;
    let timings: Timings =
        serde_json::from_str(&row.timings).map_err(|e| damaged(format!("timings: {e}")))?;
    let rows = db.commands(pkg.id)?;
    fold_recorded(&mut recipe, &rows, &pkg.version);
    let commands = rows
        .into_iter()
        .map(|c| Command {
            user: if c.user == "root" {
                "root".into()
            } else {
                "package".into()
            },
            phase: c.phase,
            origin: c.origin,
            cwd: text(&c.cwd),
            command: c.command,
            status: c.status,
            duration_ms: c.duration_ms,
        })
        .collect();
    let root_steps = db
        .root_steps(pkg.id)?
        .into_iter()
        .map(|s| Step {
            step: s.step,
            arg: s.arg,
            path: text(&s.path),
            applied: s.applied,
            note: s.note,
        })
        .collect();
    let mut manifest: Vec<File> = db
        .files(pkg.id)?
        .iter()
        .map(|e| file_of(e, pkg.uid, pkg.gid, install_gid))
        .collect();
    manifest.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Profile {
        name: pkg.name,
        version: pkg.version,
        recipe_hash: row.recipe_hash,
        recipe,
        source: match (row.source_file, row.source_sha256) {
            (Some(file), Some(sha256)) => Some(Archive { file, sha256 }),
            _ => None,
        },
        host,
        env,
        timings,
        commands,
        root_steps,
        manifest,
    })
}

/// A manifest entry with its owners named (`package`, `root`, `install`), not numbered.
pub(crate) fn file_of(e: &Entry, uid: u32, gid: u32, install_gid: u32) -> File {
    let owner = match e.uid {
        u if u == uid => "package".to_string(),
        0 => "root".to_string(),
        u => format!("#{u}"),
    };
    let group = match e.gid {
        g if g == gid => "package".to_string(),
        0 => "root".to_string(),
        g if g == install_gid => "install".to_string(),
        g => format!("#{g}"),
    };
    let file = e.kind == crate::fsutil::FileKind::File;
    File {
        path: text(&e.path),
        kind: e.kind.name().to_string(),
        mode: e.mode & 0o7777,
        owner,
        group,
        size: file.then_some(e.size),
        sha256: e.sha256.clone(),
        target: e.target.as_deref().map(text),
    }
}

/// Commands entered in `upm record` that succeeded become part of the recipe: appended to the
/// script of their phase (`install` when the phase is not one of the recipe's), with a `cd`
/// where the working directory changes, `$` written as `$$` where it would start a reference,
/// and the version as `${package.version}` (see [`crate::ops::record::phases`]). So the
/// profile of a recorded package rebuilds it like any other, and is a template.
fn fold_recorded(recipe: &mut Tree, commands: &[db::CommandRow], version: &str) {
    let lines: Vec<crate::ops::record::phases::Line<'_>> = commands
        .iter()
        .filter(|c| c.origin == Origin::Record)
        .map(|c| crate::ops::record::phases::Line {
            phase: crate::recipe::Phase::from_name(&c.phase)
                .unwrap_or(crate::recipe::Phase::Install),
            cwd: &c.cwd,
            line: &c.command,
            status: c.status.unwrap_or(1),
        })
        .collect();
    for (phase, script) in crate::ops::record::phases::scripts(&lines, version) {
        let key = crate::ctree::Key::new(vec!["phases".into(), phase.name().into()]);
        let before = match recipe.get(&key) {
            Some(Value::Str(s)) if !s.trim().is_empty() => format!("{}\n", s.trim_end()),
            _ => String::new(),
        };
        recipe.insert(crate::ctree::Entry {
            key,
            value: Value::Str(format!("{before}{script}")),
            loc: crate::ctree::Loc::none(),
            literal: false,
        });
    }
}

/// Regenerate a package's profile from the database: write it (atomically, owned by the
/// package user like the rest of its home) to `/usr/src/PKG/PKG-VERSION.profile.toml` and
/// store its text in the database. Returns the path inside the root.
pub fn write(ctx: &Ctx, db: &Db, name: &str) -> Result<PathBuf, Error> {
    let profile = from_db(db, name, ctx.cfg.ids.install_gid)?;
    let pkg = db.package(name)?.ok_or_else(|| Error::NotInstalled {
        name: name.to_string(),
    })?;
    let text = render(&profile);
    let inside = path_for(&profile.name, &profile.version);
    let host = on_host(&ctx.root, &inside);
    if let Some(dir) = host.parent() {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    crate::fsutil::write_atomic_new(
        &host,
        text.as_bytes(),
        NewFile {
            mode: 0o644,
            uid: pkg.uid,
            gid: pkg.gid,
        },
    )
    .map_err(io(&host))?;
    db.set_profile_text(pkg.id, &inside.display().to_string(), &text)?;
    Ok(inside)
}

/// The recipe hash of an installed package: as recorded, or (for an install recorded before
/// upm stored it) computed from the recipe and archive its profile records.
pub fn hash_of(db: &Db, name: &str) -> Result<String, Error> {
    let pkg = db.package(name)?.ok_or_else(|| Error::NotInstalled {
        name: name.to_string(),
    })?;
    let row = db.profile(pkg.id)?.ok_or_else(|| Error::NoProfile {
        name: name.to_string(),
    })?;
    if let Some(h) = row.recipe_hash {
        return Ok(h);
    }
    let recipe = crate::ctree::parse_str(
        &row.recipe,
        crate::ctree::Syntax::Toml,
        Path::new("<recipe in the database>"),
    )?;
    Ok(recipe_hash(&recipe, row.source_sha256.as_deref()))
}

/// The profile text of an installed package, as last written.
pub fn text_of(db: &Db, name: &str) -> Result<(PathBuf, String), Error> {
    let pkg = db.package(name)?.ok_or_else(|| Error::NotInstalled {
        name: name.to_string(),
    })?;
    match db.profile(pkg.id)? {
        Some(ProfileRow {
            path: Some(path),
            text: Some(text),
            ..
        }) => Ok((PathBuf::from(path), text)),
        _ => Err(Error::NoProfile {
            name: name.to_string(),
        }),
    }
}

/// Read a profile file.
pub fn read_file(path: &Path) -> Result<Profile, Error> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    let text = String::from_utf8(bytes).map_err(|_| Error::NotProfile {
        path: path.to_path_buf(),
        why: "not UTF-8 text".into(),
    })?;
    parse(&text, path)
}

/// A profile named on the command line: a file (a path that exists, or ends in `.toml`), else
/// an installed package's.
pub fn load(ctx: &Ctx, spec: &str) -> Result<(PathBuf, Profile), Error> {
    let p = Path::new(spec);
    if p.is_file() || spec.ends_with(".toml") {
        return Ok((p.to_path_buf(), read_file(p)?));
    }
    let db = Db::open_read(&ctx.root)?;
    let (path, text) = text_of(&db, spec)?;
    let profile = parse(&text, &path)?;
    Ok((path, profile))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{CommandRow, NewCommand, NewInstall, Outcome, State};
    use crate::fsutil::FileKind;

    #[test]
    fn written_twice_the_same_bytes_and_read_back() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().to_path_buf();
        let ctx = Ctx::new(
            crate::printer::Printer::new(false),
            root.clone(),
            crate::config::Config::defaults(root.join(crate::config::FILE)),
        );
        let mut db = Db::open(&root, true).unwrap();
        let (uid, gid) = (
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        );
        let id = db
            .begin(&NewInstall {
                name: "hello",
                version: "2.10",
                description: None,
                uid,
                gid,
                recipe_path: "hello.toml",
                recipe: "",
            })
            .unwrap();
        let written = crate::ctree::parse_str(
            "[package]\nname = \"hello\"\nversion = \"2.10\"\n[phases]\n\
             install = \"make DESTDIR=${vars.d} install\"\n[vars]\nd = \"\"\n",
            crate::ctree::Syntax::Toml,
            Path::new("hello.toml"),
        )
        .unwrap();
        let archive = d.path().join("hello-2.10.tar.gz");
        std::fs::write(&archive, b"not really").unwrap();
        let env = [("HOME".to_string(), "/usr/src/hello".to_string())];
        record_inputs(&ctx, &db, id, &written, Some(&archive), &env).unwrap();
        let seq = db
            .command_started(
                id,
                &NewCommand {
                    phase: "install",
                    origin: Origin::Recipe,
                    user: "hello",
                    cwd: Path::new("/usr/src/hello/build/hello-2.10"),
                    command: "make DESTDIR= install",
                },
            )
            .unwrap();
        db.command_finished(id, seq, 0, 321).unwrap();
        let entry = |p: &str, kind, mode, target: Option<&str>| Entry {
            path: p.into(),
            kind,
            mode,
            uid,
            gid,
            size: 5,
            mtime: 1,
            sha256: (kind == FileKind::File).then(|| "ab".repeat(32)),
            target: target.map(PathBuf::from),
            shared: false,
        };
        let files = [
            entry("/usr/bin/hello", FileKind::File, 0o755, None),
            entry("/usr/bin/hi", FileKind::Symlink, 0o777, Some("hello")),
        ];
        db.record(
            id,
            &Outcome {
                files: &files,
                gone: &[],
                steps: &[],
                reports: &[],
                state: State::Installed,
                stage: None,
                error: None,
            },
        )
        .unwrap();

        let inside = write(&ctx, &db, "hello").unwrap();
        assert_eq!(inside, Path::new("/usr/src/hello/hello-2.10.profile.toml"));
        let host = on_host(&root, &inside);
        let first = std::fs::read(&host).unwrap();
        write(&ctx, &db, "hello").unwrap();
        assert_eq!(
            std::fs::read(&host).unwrap(),
            first,
            "written twice, the same bytes"
        );
        let (_, stored) = text_of(&db, "hello").unwrap();
        assert_eq!(stored.as_bytes(), first.as_slice());

        let p = read_file(&host).unwrap();
        assert_eq!(p.source.as_ref().unwrap().file, "hello-2.10.tar.gz");
        // The recipe hash is stored, and the profile's own recipe part hashes the same (so a
        // rebuild from the profile finds the same archives on a binary host).
        let sha = &p.source.as_ref().unwrap().sha256;
        let hash = recipe_hash(&written, Some(sha));
        assert_eq!(p.recipe_hash.as_deref(), Some(hash.as_str()));
        assert_eq!(recipe_hash(&p.recipe, Some(sha)), hash);
        assert_ne!(recipe_hash(&written, None), hash);
        assert_eq!(hash_of(&db, "hello").unwrap(), hash);
        assert_eq!(p.commands[0].duration_ms, Some(321));
        assert_eq!(p.manifest[1].target.as_deref(), Some("hello"));
        assert_eq!(p.manifest[0].owner, "package");
        let text = String::from_utf8(first).unwrap();
        assert!(
            text.contains("install = \"make DESTDIR=${vars.d} install\""),
            "{text}"
        );
        assert!(!text.contains("mtime"), "{text}");
    }

    #[test]
    fn recorded_commands_join_their_phase() {
        let mut t = crate::ctree::parse_str(
            "[phases]\ninstall = \"make install\"\n",
            crate::ctree::Syntax::Toml,
            Path::new("t.toml"),
        )
        .unwrap();
        let row = |seq, phase: &str, cwd: &str, command: &str, status| CommandRow {
            seq,
            phase: phase.into(),
            origin: Origin::Record,
            user: "x".into(),
            cwd: cwd.into(),
            command: command.into(),
            status,
            started: 0,
            duration_ms: Some(1),
        };
        fold_recorded(
            &mut t,
            &[
                row(1, "install", "/usr/src/x/build", "echo $HOME > f", Some(0)),
                row(2, "install", "/usr/src/x/build", "false", Some(1)),
                row(3, "record", "/usr/src/x", "touch g-1.2.3", Some(0)),
            ],
            "1.2.3",
        );
        assert_eq!(
            t.get_str("phases.install"),
            Some(&Value::Str(
                "make install\ncd /usr/src/x/build\necho $$HOME > f\ncd /usr/src/x\ntouch g-${package.version}\n"
                    .into()
            ))
        );
    }
}
