//! The progress display of running phases: on a terminal an indicatif spinner with the phase,
//! the time spent and the last line of its log; otherwise a plain line when each phase ends.

use std::path::Path;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use super::Ran;

pub struct Progress {
    tty: bool,
    quiet: bool,
}

impl Progress {
    /// `tty`: draw a live display (stderr is a terminal); `quiet`: print nothing (JSON mode).
    pub fn new(tty: bool, quiet: bool) -> Progress {
        Progress {
            tty: tty && !quiet,
            quiet,
        }
    }

    /// Wait for child `pid` to end (left unreaped), drawing the live display meanwhile when on
    /// a terminal.
    pub fn wait(&self, label: &str, pid: u32, log: &Path) -> std::io::Result<()> {
        if !self.tty {
            return super::os::exited(pid, true).map(drop);
        }
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {prefix:.bold} [{elapsed}] {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_prefix(label.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        loop {
            if super::os::exited(pid, false)? {
                break;
            }
            if let Some(line) = super::last_line(log) {
                bar.set_message(line);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bar.finish_and_clear();
        Ok(())
    }

    /// Say how a phase ended.
    pub fn done(&self, label: &str, ran: &Ran) {
        if self.quiet {
            return;
        }
        let outcome = if ran.success() {
            "ok".to_string()
        } else {
            format!("FAILED (status {})", ran.status)
        };
        eprintln!(
            "upm: {label}: {outcome} ({:.1} s)",
            ran.duration.as_secs_f64()
        );
    }
}
