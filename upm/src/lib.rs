//! upm: a source-build package manager for Linux From Scratch systems and hosts built from
//! source. Every package is built and installed as its own Unix user; upm records what was run
//! and exactly which files were installed, and replays it elsewhere.
//!
//! The library holds all logic; the `upm` binary only parses arguments and prints. Parts, in
//! the order of the data flow: [`config`] (a root's settings), [`ctree`] (the configuration
//! language), [`recipe`] (the typed view of a recipe), [`pkguser`] (package users and install
//! directories), [`source`] (archives), [`runner`] (phases as the package user), [`wrap`] (the
//! wrappers in PATH during phases), [`infodir`] (the shared info `dir` file), [`watch`] (the
//! inotify tree watcher, its own crate `upm-watch`), [`track`] (events to a manifest),
//! [`manifest`], [`db`] (sqlite), [`profile`] (what a build did, as a recipe that rebuilds it),
//! [`ops`] (init, install, remove, recover, queries), and
//! [`sandbox`] (the overlay sandbox used by tests and by `upm sandbox`). [`pathtext`] shows any
//! file name unambiguously, [`fsutil::PathError`] is every filesystem error with its path.

pub mod config;
pub mod ctree;
pub mod ctx;
pub mod db;
pub mod envvars;
pub mod fsutil;
pub mod infodir;
pub mod libs;
pub mod manifest;
pub mod ops;
pub mod pathtext;
pub mod pkguser;
pub mod printer;
pub mod profile;
pub mod recipe;
pub mod runner;
pub mod sandbox;
pub mod shim;
pub mod source;
pub mod suggest;
pub mod sys;
pub mod template;
pub mod track;
/// The tree watcher, a crate of its own (`upm-watch`) so mirrord uses it without upm.
pub use upm_watch as watch;
pub mod trial;
pub mod wrap;
