//! Every environment variable upm reads or sets for its children, named in one place.

/// The file the wrappers and the shim append recorded root steps to (set for every phase).
pub const STEPS: &str = upm_rootstep::env::STEPS;
/// The shim's log, inside the root; the shim is inert without it ([`crate::shim`]).
pub const SHIM_LOG: &str = upm_rootstep::env::SHIM_LOG;
/// The shim log's descriptor handed down, `FD:DEV:INO`.
pub const SHIM_FD: &str = upm_rootstep::env::SHIM_FD;
/// Read by upm: `UPM_SHIM=0` installs without the shim (inotify and ownership only), whatever
/// `track.shim` says.
pub const SHIM_SWITCH: &str = "UPM_SHIM";
/// The dynamic loader's preload list: the shim's library.
pub const LD_PRELOAD: &str = "LD_PRELOAD";
/// The trial helper's copy of LD_PRELOAD: set for the script it runs, not for itself.
pub const TRIAL_PRELOAD: &str = "UPM_TRIAL_PRELOAD";
/// The wrapper directory, first in PATH during phases; the wrappers skip it to find the real
/// tools.
pub const WRAP_DIR: &str = "UPM_WRAP_DIR";
/// Set to `1` while the install phase runs as a trial in a throwaway overlay (before the real
/// install), so a script can tell the two apart.
pub const TRIAL: &str = "UPM_TRIAL";
/// The terminal type, passed on to `upm record`'s interactive shell.
pub const TERM: &str = "TERM";
