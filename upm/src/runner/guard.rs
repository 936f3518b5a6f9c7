//! The phase guard: a small process (upm itself, invoked as `upm-phase-guard`) that outlives
//! upm to end what a phase left running. The phase's shell dies with upm (its parent-death
//! signal), but the compilers and copies it started do not; so before a phase starts, upm
//! starts a guard reading a pipe only upm writes. upm tells it the phase's process group, and
//! when the pipe closes — the phase ended, or upm died, even by `kill -9` — the guard kills
//! that group (unless upm says it already did) and every process of the package user still
//! running in the root. upm waits for it after each phase, so nothing of a phase outlives it.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The name the guard is invoked as.
pub const NAME: &str = "upm-phase-guard";

/// The running guard of one phase; dropping it ends the phase's leftovers and waits.
pub struct Guard {
    tell: Option<std::fs::File>,
    child: Child,
}

impl Guard {
    /// Start the guard of a phase running as `uid` in `root`.
    pub fn start(root: &Path, uid: u32) -> std::io::Result<Guard> {
        let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        let mut cmd = Command::new("/proc/self/exe");
        cmd.arg0(NAME)
            .arg(root)
            .arg(uid.to_string())
            .env_clear()
            .stdin(Stdio::from(read))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            // Its own group: a Ctrl-C on upm's terminal must not reach it.
            .process_group(0);
        let child = cmd.spawn()?;
        Ok(Guard {
            tell: Some(std::fs::File::from(write)),
            child,
        })
    }

    /// The phase started, as process group `pgid`.
    pub fn started(&mut self, pgid: u32) {
        self.say(&format!("pgid {pgid}\n"));
    }

    /// The phase's group was ended by upm and its leader reaped: the guard must not kill that
    /// group id any more (it may be another process's by now).
    pub fn group_ended(&mut self) {
        self.say("ended\n");
    }

    fn say(&mut self, line: &str) {
        if let Some(f) = &mut self.tell {
            // A guard that died cannot be helped here; the next upm ends what is left.
            let _ = f.write_all(line.as_bytes());
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        drop(self.tell.take());
        let _ = self.child.wait();
    }
}

/// If this process was invoked as the guard, act as it and return the exit code.
pub fn dispatch() -> Option<i32> {
    let argv0 = std::env::args_os().next()?;
    if Path::new(&argv0).file_name()? != NAME {
        return None;
    }
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    Some(run(&args))
}

fn run(args: &[OsString]) -> i32 {
    use nix::sys::signal::{SigHandler, Signal, signal};
    let (Some(root), Some(uid)) = (
        args.first().map(PathBuf::from),
        args.get(1)
            .and_then(|u| u.to_str())
            .and_then(|u| u.parse::<u32>().ok()),
    ) else {
        eprintln!("{NAME}: usage: {NAME} ROOT UID (started by upm, not by hand)");
        return 2;
    };
    for s in [
        Signal::SIGHUP,
        Signal::SIGINT,
        Signal::SIGQUIT,
        Signal::SIGTERM,
    ] {
        // SAFETY: ignoring a signal installs no handler code; nothing else runs yet.
        let _ = unsafe { signal(s, SigHandler::SigIgn) };
    }
    // Everything upm says, until it closes the pipe (or dies).
    let mut said = String::new();
    let _ = std::io::stdin().read_to_string(&mut said);
    let mut pgid = None;
    for line in said.lines() {
        match line.split_once(' ') {
            Some(("pgid", n)) => pgid = n.parse::<u32>().ok(),
            _ if line == "ended" => pgid = None,
            _ => {}
        }
    }
    if let Some(g) = pgid {
        super::os::end_group(g);
    }
    if uid != 0 && crate::sys::kill_user_processes(&root, uid).is_err() {
        eprintln!(
            "{NAME}: cannot look for processes of uid {uid} in {}",
            root.display()
        );
        return 1;
    }
    0
}
