//! The last committed serial, shared between the monitor (which publishes it after each
//! commit) and the client sessions blocked in `NEXT` (which wait for it to pass theirs).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, SystemTime};

/// How many recent commits keep their time (for a client's lag in seconds).
const TIMES: usize = 4096;

pub struct Head {
    serial: Mutex<u64>,
    /// No MOVE or DELETE was logged after this serial (set before its commit, so never too
    /// low for what a reader of the log can see).
    moved: AtomicU64,
    changed: Condvar,
    /// The head after each recent commit, and when.
    times: Mutex<VecDeque<(u64, SystemTime)>>,
}

impl Head {
    pub fn new(serial: u64) -> Head {
        Head {
            serial: Mutex::new(serial),
            // What came before this start is not known: every serial before takes the long way.
            moved: AtomicU64::new(serial),
            changed: Condvar::new(),
            times: Mutex::default(),
        }
    }

    /// When the first record after `serial` was committed (the oldest a client standing at
    /// `serial` lacks); none when nothing came after it. Past the commits remembered, the
    /// oldest remembered.
    pub fn committed_after(&self, serial: u64) -> Option<SystemTime> {
        let times = self.times.lock().unwrap_or_else(|e| e.into_inner());
        times.iter().find(|(s, _)| *s > serial).map(|(_, t)| *t)
    }

    /// A MOVE or DELETE is about to be committed at `serial`.
    pub fn moving(&self, serial: u64) {
        self.moved.fetch_max(serial, Ordering::SeqCst);
    }

    /// No MOVE or DELETE is in the log after this serial.
    pub fn moved(&self) -> u64 {
        self.moved.load(Ordering::SeqCst)
    }

    pub fn get(&self) -> u64 {
        *self.serial.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn publish(&self, serial: u64) {
        let mut s = self.serial.lock().unwrap_or_else(|e| e.into_inner());
        if serial > *s {
            *s = serial;
            self.changed.notify_all();
            let mut times = self.times.lock().unwrap_or_else(|e| e.into_inner());
            if times.len() == TIMES {
                times.pop_front();
            }
            times.push_back((serial, SystemTime::now()));
        }
    }

    /// Wait until the head passes `serial` or `timeout` ends; the head then.
    pub fn wait_beyond(&self, serial: u64, timeout: Duration) -> u64 {
        let s = self.serial.lock().unwrap_or_else(|e| e.into_inner());
        let (s, _) = self
            .changed
            .wait_timeout_while(s, timeout, |s| *s <= serial)
            .unwrap_or_else(|e| e.into_inner());
        *s
    }
}

/// A server's stop switch: [`Shutdown::trigger`] makes `server::run` return and every session
/// close at its next wake-up.
#[derive(Clone, Default)]
pub struct Shutdown {
    inner: std::sync::Arc<ShutdownInner>,
}

#[derive(Default)]
struct ShutdownInner {
    set: std::sync::atomic::AtomicBool,
    wake: Mutex<Option<std::net::SocketAddr>>,
}

impl Shutdown {
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    pub fn is_set(&self) -> bool {
        self.inner.set.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Where the server listens, to wake its `accept` when triggered.
    pub(crate) fn listening_on(&self, addr: std::net::SocketAddr) {
        *self.inner.wake.lock().unwrap_or_else(|e| e.into_inner()) = Some(addr);
    }

    pub fn trigger(&self) {
        self.inner
            .set
            .store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(a) = *self.inner.wake.lock().unwrap_or_else(|e| e.into_inner()) {
            // Connecting wakes the accept loop, which then sees the switch.
            let _ = std::net::TcpStream::connect_timeout(&a, Duration::from_secs(1));
        }
    }
}
