//! mirrord / fs_mirror end to end: the real binaries, real directories, a real TCP socket on
//! 127.0.0.1 port 0. Nothing waits a fixed time for correctness: every wait polls its condition
//! with a deadline.

mod client_faults;
mod ctl;
mod delta;
mod faults;
mod harness;
mod lag;
mod protocol;
mod refetch;
mod refuse;
mod reuse;
mod rotate;
mod tunnel;
mod workload;
