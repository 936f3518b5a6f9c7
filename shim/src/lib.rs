//! upm's LD_PRELOAD shim. Loaded into every process of an install phase (its trial run too),
//! of a recipe's root commands and of `upm record`, it
//!
//! - logs each successful file-changing call (open for writing, rename, link, symlink, mkdir,
//!   unlink, rmdir, chmod, chown, truncate, mknod, utimensat, …) with the absolute path it
//!   resolved to, one record per `write(2)` to the log upm handed it ([`log`], records in the
//!   format of `upm-rootstep`);
//! - turns what a package user may not do into recorded root steps, returning success
//!   ([`steps`]): a chown/chgrp to another owner, setuid/setgid bits (stripped from the mode
//!   until upm applies the step), device nodes, and a chmod of an install directory it does not
//!   own (a no-op when the mode asked is already granted).
//!
//! It is inert when `UPM_SHIM_LOG` is absent, looks each real symbol up once ([`real`]),
//! allocates nothing in its hooks (stack buffers and atomics only, so a `vfork` child or a
//! signal handler may call them), preserves `errno`, and never lets a panic cross the C
//! boundary: a hook whose own work fails falls back to the plain real call.
//!
//! It cannot see statically linked programs, or setuid programs (the loader drops LD_PRELOAD
//! for them): upm's inotify watcher covers those, and the PATH wrappers still turn a static
//! `install`/`chown` into root steps.

#![allow(clippy::missing_safety_doc)]

#[cfg(not(test))]
mod hooks;
pub mod log;
pub mod real;
pub mod resolve;
pub mod steps;
