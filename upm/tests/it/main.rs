//! upm's integration tests: one test binary driving the real `upm` binary against real files,
//! a real overlay sandbox and (later) real packages. See `harness.rs` for the helpers.

mod harness;

mod binpkg;
mod book;
mod cli;
mod ctree;
mod faults;
mod holes;
mod install;
mod libs;
mod names;
mod pkgnames;
mod profile;
mod recipe;
mod record;
mod replay;
mod sandbox;
mod shell;
mod shim;
mod source;
mod takeover;
mod template;
mod upgrade;
mod user;
