//! Every environment variable upm reads or sets for its children, named in one place.

/// The file the wrappers append recorded root steps to (set for every phase).
pub const STEPS: &str = "UPM_STEPS";
/// The wrapper directory, first in PATH during phases; the wrappers skip it to find the real
/// tools.
pub const WRAP_DIR: &str = "UPM_WRAP_DIR";
/// Set to `1` while the install phase runs as a trial in a throwaway overlay (before the real
/// install), so a script can tell the two apart.
pub const TRIAL: &str = "UPM_TRIAL";
/// The terminal type, passed on to `upm record`'s interactive shell.
pub const TERM: &str = "TERM";
