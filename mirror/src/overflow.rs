//! What mirrord does about the kernel's limits: the inotify event queue (an overflow loses
//! events; the monitor rescans, and [`Overflows`] spaces rescans out when overflows repeat and
//! says which sysctl to raise, to what) and the number of watches (one per directory:
//! [`watch_limit`] turns the kernel's refusal, or `--max-watches`, into an error that says how
//! many the trees need).

use std::path::Path;
use std::time::{Duration, Instant};

use upm_watch::Rules;

use crate::error::Error;

/// Overflows this close to the end of the last rescan count as repeated.
const REPEAT_WINDOW: Duration = Duration::from_secs(10);
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// A value under `/proc/sys/fs/inotify/`.
pub fn inotify_sysctl(name: &str) -> Option<u64> {
    std::fs::read_to_string(Path::new("/proc/sys/fs/inotify").join(name))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The backoff between rescans: none for an overflow after a quiet spell, then 1 s doubling
/// up to 60 s while overflows follow rescans closely (a rescan in a storm of changes would
/// only overflow again; watchman's rescan loop is the warning).
#[derive(Default)]
pub struct Overflows {
    last_end: Option<Instant>,
    backoff: Duration,
    /// Overflows seen since start.
    pub count: u64,
}

impl Overflows {
    /// How long to wait before the rescan of an overflow at `now`.
    pub fn wait(&mut self, now: Instant) -> Duration {
        self.count += 1;
        let repeated = self
            .last_end
            .is_some_and(|end| now.saturating_duration_since(end) < REPEAT_WINDOW);
        self.backoff = if repeated {
            (self.backoff * 2).clamp(FIRST_BACKOFF, MAX_BACKOFF)
        } else {
            Duration::ZERO
        };
        self.backoff
    }

    /// Say what happened and wait out the backoff.
    pub fn before_rescan(&mut self) {
        let wait = self.wait(Instant::now());
        let queued = inotify_sysctl("max_queued_events")
            .map_or_else(|| "unknown".to_string(), |n| n.to_string());
        eprintln!(
            "mirrord: the kernel's inotify event queue overflowed (fs.inotify.max_queued_events \
             = {queued}): events were lost; rescanning the watched trees against the snapshot \
             (only the differences are logged)"
        );
        if !wait.is_zero() {
            eprintln!(
                "mirrord: overflow {} came right after the last rescan; waiting {}s before \
                 rescanning (backoff)",
                self.count,
                wait.as_secs()
            );
            std::thread::sleep(wait);
        }
    }

    /// The rescan is done: it logged `logged` records in `took`.
    pub fn after_rescan(&mut self, logged: u64, took: Duration) {
        self.last_end = Some(Instant::now());
        let now = inotify_sysctl("max_queued_events").unwrap_or(16_384);
        eprintln!(
            "mirrord: rescan done in {:.2}s: {logged} records logged; to keep up with bursts \
             like this one raise the queue: sysctl -w fs.inotify.max_queued_events={} (keep it \
             in /etc/sysctl.d/)",
            took.as_secs_f64(),
            suggest_queue(now, logged)
        );
    }
}

/// What to set `max_queued_events` to after an overflow that lost at least `changes`
/// changes (each is several events: create, write, close), with `now` in force.
pub fn suggest_queue(now: u64, changes: u64) -> u64 {
    (now.saturating_mul(4))
        .max(changes.saturating_mul(4))
        .next_power_of_two()
}

/// The error for trees that need more watches than allowed: by the kernel
/// (`fs.inotify.max_user_watches`, `max_flag` none) or by `--max-watches`.
pub fn watch_limit(rules: &Rules, max_flag: Option<u64>) -> Error {
    let need = upm_watch::writable_dirs(rules).len() as u64;
    let kernel = inotify_sysctl("max_user_watches");
    let shown = kernel.map_or_else(|| "unknown".into(), |k| k.to_string());
    let suggest = (need + need / 4 + 1024).next_power_of_two();
    let limit = match max_flag {
        Some(m) => format!("--max-watches is {m} (fs.inotify.max_user_watches is {shown})"),
        None => format!(
            "fs.inotify.max_user_watches is {shown} (other programs' watches count against it too)"
        ),
    };
    Error::Watches(format!(
        "the watched trees hold {need} directories, one inotify watch each, but {limit}; \
         raise it (sysctl -w fs.inotify.max_user_watches={suggest}, kept in /etc/sysctl.d/, \
         and --max-watches {suggest} if given), or exclude subtrees (fs_info -a x:PATH)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rescans_back_off_while_overflows_repeat_and_not_after_a_quiet_spell() {
        let mut o = Overflows::default();
        let t0 = Instant::now();
        assert_eq!(o.wait(t0), Duration::ZERO);
        let mut at = t0;
        let mut waits = Vec::new();
        for _ in 0..9 {
            o.last_end = Some(at);
            at += Duration::from_secs(1);
            waits.push(o.wait(at).as_secs());
        }
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        // Quiet for longer than the window: the next overflow is rescanned at once.
        o.last_end = Some(at);
        assert_eq!(o.wait(at + REPEAT_WINDOW * 2), Duration::ZERO);
        assert_eq!(o.count, 11);
    }

    #[test]
    fn the_queue_suggestion_is_above_both_the_limit_and_the_burst() {
        assert_eq!(suggest_queue(16_384, 100), 65_536);
        assert_eq!(suggest_queue(16_384, 40_000), 262_144);
        assert!(suggest_queue(0, 0) >= 1);
    }
}
