//! Making applied batches durable off the applying thread: after a batch is carried out, its
//! serial is handed to a syncer thread, which syncs the mirror's filesystem (`syncfs`) and only
//! then writes the serial into `sn`. The next batch is applied meanwhile, so a slow disk delays
//! the resume point, never the copies. The resume point never runs ahead of what is on disk.

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};

use crate::client::sn::Sn;
use crate::error::{Error, Result, io};

#[derive(Default)]
struct State {
    want: Option<(String, u64)>,
    failed: Option<String>,
    stop: bool,
}

pub struct Durable {
    shared: Arc<(Mutex<State>, Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Durable {
    /// `fs`: the mirror directory whose filesystem is synced first (none when nothing but
    /// `sn` is written, as in report mode).
    pub fn start(sn: Arc<Mutex<Sn>>, fs: Option<PathBuf>) -> Durable {
        let shared: Arc<(Mutex<State>, Condvar)> = Arc::default();
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("fs_mirror-sync".into())
            .spawn(move || {
                let (lock, cv) = &*s;
                loop {
                    let want = {
                        let mut st = lock.lock().unwrap_or_else(|e| e.into_inner());
                        while st.want.is_none() && !st.stop {
                            st = cv.wait(st).unwrap_or_else(|e| e.into_inner());
                        }
                        if st.stop && st.want.is_none() {
                            return;
                        }
                        st.want.take()
                    };
                    let Some((session, serial)) = want else {
                        continue;
                    };
                    let r = (|| -> Result<()> {
                        if let Some(dir) = &fs {
                            let d = std::fs::File::open(dir).map_err(io(dir))?;
                            nix::unistd::syncfs(&d).map_err(|e| io(dir)(e.into()))?;
                        }
                        sn.lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .write(&session, serial)
                    })();
                    if let Err(e) = r {
                        lock.lock().unwrap_or_else(|e| e.into_inner()).failed = Some(e.to_string());
                    }
                }
            })
            .expect("a thread");
        Durable {
            shared,
            thread: Some(thread),
        }
    }

    /// Make everything carried out so far durable, then record `serial` as the resume point;
    /// an earlier failure to do so is returned now.
    pub fn submit(&self, session: &str, serial: u64) -> Result<()> {
        let (lock, cv) = &*self.shared;
        let mut st = lock.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = st.failed.take() {
            return Err(Error::Io {
                path: "sn".into(),
                source: std::io::Error::other(f),
            });
        }
        st.want = Some((session.to_string(), serial));
        cv.notify_one();
        Ok(())
    }
}

impl Drop for Durable {
    /// The last resume point is written before the client goes.
    fn drop(&mut self) {
        let (lock, cv) = &*self.shared;
        lock.lock().unwrap_or_else(|e| e.into_inner()).stop = true;
        cv.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
