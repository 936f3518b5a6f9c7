//! Thread priority: the client's background work (removing replaced files) yields the CPU to
//! the thread applying records.

/// Give the calling thread the lowest scheduling priority (nice 19). Best effort: a refusal
/// changes nothing but speed.
pub fn lowest() {
    let tid = nix::unistd::gettid().as_raw();
    // SAFETY: setpriority(2) takes plain integers and touches no memory of ours; on Linux,
    // PRIO_PROCESS with a thread ID sets that one thread's nice value.
    unsafe {
        nix::libc::setpriority(nix::libc::PRIO_PROCESS, tid as nix::libc::id_t, 19);
    }
}
