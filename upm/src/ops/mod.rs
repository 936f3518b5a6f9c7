//! The operations behind the commands, each in its own file: setting up a root (`init`,
//! install directories), installing, removing, recovering interrupted installs, and the
//! queries. They tie the parts together — recipe, pkguser, source, runner, watch, track, db —
//! and hold no parsing or printing of their own beyond what goes through the printer.

pub mod configs;
pub mod export;
mod guard;
pub mod import;
pub mod init;
pub mod install;
pub mod libs;
pub mod query;
pub mod record;
pub mod recover;
pub mod remove;
pub mod replay;
mod rootsteps;
mod setup;
pub mod takeover;
pub mod upgrade;

use crate::pathtext::quoted;
use std::path::PathBuf;

/// Why an operation failed. Each variant says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] crate::config::Error),
    #[error(transparent)]
    Recipe(#[from] crate::recipe::Error),
    #[error(transparent)]
    Db(#[from] crate::db::Error),
    #[error(transparent)]
    User(#[from] crate::pkguser::Error),
    #[error(transparent)]
    Source(#[from] crate::source::Error),
    #[error(transparent)]
    Run(#[from] crate::runner::Error),
    #[error(transparent)]
    Io(#[from] crate::fsutil::PathError),
    #[error(transparent)]
    Trial(#[from] crate::trial::Error),
    #[error(transparent)]
    Profile(#[from] crate::profile::Error),
    #[error(transparent)]
    Archive(#[from] crate::profile::archive::Error),
    #[error(transparent)]
    Keys(#[from] crate::profile::keys::Error),
    #[error(transparent)]
    Binhost(#[from] crate::profile::binhost::Error),
    #[error("cannot export {name}: it is {state}, not installed; `upm install` it again first")]
    NotExportable { name: String, state: &'static str },
    #[error(
        "cannot export {name}: {path} is owned by {owner}, neither the package user nor root, \
         which another host cannot map; give it back to the package (`upm check {name}`)"
    )]
    ForeignOwner {
        name: String,
        path: String,
        owner: String,
    },
    #[error(
        "{what}: {path} is outside the trees upm tracks in this root (track.roots in {settings}), \
         or one of its system files; refused, nothing was written"
    )]
    OutsideTracked {
        what: String,
        path: String,
        settings: String,
    },
    #[error(
        "{what}: {path} lies under {link}, a symlink in this root (to {target}); an archive's \
         paths are real directories as the build recorded them; refused, nothing was written"
    )]
    UnderSymlink {
        what: String,
        path: String,
        link: String,
        target: String,
    },
    #[error(
        "{what}: its profile is for {found}, its manifest for {name}; refused, nothing was written"
    )]
    ProfileMismatch {
        what: String,
        name: String,
        found: String,
    },
    #[error(
        "cannot install {name}: it would replace {path}, which belongs to {owner}; nothing was \
         changed. Remove {owner_short} first, or change {name}'s recipe not to install that file"
    )]
    WouldReplace {
        name: String,
        path: String,
        owner: String,
        owner_short: String,
    },
    #[error(
        "cannot install {name}: it would replace {path} (uid {uid}), which no package owns, and \
         install.replace is \"none\" in {settings}; nothing was changed. Set it to \"unowned\" to \
         let packages take over such files (the originals are kept for `upm remove --restore`)"
    )]
    WouldReplaceUnowned {
        name: String,
        path: String,
        uid: u32,
        settings: String,
    },
    #[error(
        "cannot install {name}: it would replace {path}, a {kind}, which upm does not take over; nothing was changed"
    )]
    CannotTakeOver {
        name: String,
        path: String,
        kind: &'static str,
    },
    #[error(
        "cannot install {name}: it writes into {dir}, which its package user cannot write: {why}; nothing was changed"
    )]
    DirNotWritable {
        name: String,
        dir: String,
        why: String,
    },
    #[error(
        "cannot install {name}: it writes {path}, outside the trees upm tracks, into {dir}, which its \
         package user cannot write; nothing was changed. Add the tree to track.roots in {settings} \
         (upm then records the path and makes {dir} an install directory), or change the recipe \
         not to write there"
    )]
    UntrackedWrite {
        name: String,
        path: String,
        dir: String,
        settings: String,
    },
    #[error("cannot watch the install: {0}{hint}", hint = watch_hint(.0))]
    Watch(#[from] crate::watch::Error),
    #[error(
        "{name} {version} is already installed; `upm remove {name}` removes it (`upm install \
         --reinstall` builds it again over itself)"
    )]
    AlreadyInstalled { name: String, version: String },
    #[error(
        "cannot upgrade {name} to {version}: {count} file(s) of other packages need a library only \
         the installed version provides: {list}; the upgrade was undone and {name} is as it was. \
         Rebuild them against the new version first, or pass --force (the old library files are \
         then kept until `upm remove --stale-libs {name}`)"
    )]
    UpgradeSonameNeeded {
        name: String,
        version: String,
        count: usize,
        list: String,
    },
    #[error("cannot upgrade {name} with {recipe}: it is a recipe for {other}")]
    UpgradeOtherPackage {
        name: String,
        recipe: String,
        other: String,
    },
    #[error(
        "no newer recipe for {name} (installed: {version}); looked in {searched}: give one, \
         `upm upgrade {name} RECIPE`"
    )]
    NoNewerRecipe {
        name: String,
        version: String,
        searched: String,
    },
    #[error("{name} is not installed (`upm list` shows what is)")]
    NotInstalled { name: String },
    #[error(
        "the {phase} phase of {name} failed with status {status}; its log is {log}; the last lines:\n{tail}"
    )]
    PhaseFailed {
        name: String,
        phase: String,
        status: i32,
        log: String,
        tail: String,
    },
    #[error(
        "cannot replace {path}: it belongs to {owner}; the install of {name} stopped and was \
         undone, and {path} is intact{advice}"
    )]
    Conflict {
        name: String,
        path: String,
        owner: String,
        /// What to do, when upm is sure (". Remove …"), else empty.
        advice: String,
    },
    #[error(
        "cannot remove {name}: {count} file(s) of other packages need a library only it provides: \
         {list}; nothing was changed. Rebuild or remove them first, or pass --force"
    )]
    SonameNeeded {
        name: String,
        count: usize,
        list: String,
    },
    #[error(
        "cannot record {name:?}: not a valid package name (a letter or `_`, then letters, digits, `_` or `-`; at most 32)"
    )]
    RecordName { name: String },
    #[error(
        "cannot record {name}: it is not installed yet; say which version you build with \
         `upm record {name} --version VERSION`"
    )]
    RecordNeedsVersion { name: String },
    #[error(
        "cannot record {name} {given}: {name} {installed} is installed; record into it without \
         --version, or `upm remove {name}` first"
    )]
    RecordVersion {
        name: String,
        installed: String,
        given: String,
    },
    #[error(
        "cannot record {name}: its last install is {state}; `upm install` it again or `upm remove {name}` first"
    )]
    RecordNotInstalled { name: String, state: String },
    #[error(
        "the recorded command of {name} failed with status {status}; it was rolled back ({removed} \
         path(s) it made removed); its log is {log}; the last lines:\n{tail}"
    )]
    RecordFailed {
        name: String,
        status: i32,
        log: String,
        removed: usize,
        tail: String,
    },
    #[error(transparent)]
    Cycle(#[from] replay::Cycle),
    #[error(
        "no replay to continue: the last one finished (or none was started); start one with `upm replay DIR`"
    )]
    ReplayNothing,
    #[error(
        "nothing to replay: give a directory of recipes or profiles, a host profile or recipe files"
    )]
    ReplayEmpty,
    #[error("{name} is not part of this replay; its packages are: {known}")]
    ReplayUnknown { name: String, known: String },
    #[error("{name} is given twice: {} and {}", quoted(a), quoted(b))]
    ReplayTwice {
        name: String,
        a: PathBuf,
        b: PathBuf,
    },
    #[error("{}: {why}", quoted(path))]
    ReplayInput { path: PathBuf, why: String },
    #[error("no recipe {name:?}: not a file, and not found in {}", searched.iter().map(|p| quoted(p).to_string()).collect::<Vec<_>>().join(", "))]
    NoRecipe {
        name: String,
        searched: Vec<PathBuf>,
    },
}

/// What upm's settings can do about a watcher error.
fn watch_hint(e: &crate::watch::Error) -> &'static str {
    match e {
        crate::watch::Error::Limit { .. } => {
            " (the watched trees are track.roots minus track.exclude in etc/upm/upm.toml)"
        }
        _ => "",
    }
}

pub(crate) use crate::fsutil::io;
