//! upm's end-to-end scenarios, one test binary: each runs the workspace's real binaries as a
//! user would, in the overlay sandbox, and checks what they really did. See `src/lib.rs` for
//! the harness.

mod readme_demo;
