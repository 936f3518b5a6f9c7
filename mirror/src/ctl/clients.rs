//! Who is connected, for `mirrord ctl status`: each client session takes a [`Seat`] in the
//! shared [`Clients`] registry when it connects, publishes where it stands after every command
//! (its phase, the session it follows, the serial it was sent up to), and leaves when it ends.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// One connected client as last published.
#[derive(Debug, Clone)]
pub struct Client {
    pub peer: String,
    pub connected: SystemTime,
    /// `connected`, `starting`, `init` (the snapshot being sent) or `realtime`.
    pub phase: &'static str,
    pub session: Option<String>,
    /// The serial its records were sent up to.
    pub serial: Option<u64>,
}

#[derive(Default)]
pub struct Clients {
    next: AtomicU64,
    seats: Mutex<BTreeMap<u64, Client>>,
}

/// A client's place in the registry; dropping it removes the client.
pub struct Seat {
    clients: Arc<Clients>,
    id: u64,
}

impl Clients {
    pub fn new() -> Arc<Clients> {
        Arc::new(Clients::default())
    }

    /// A client connected from `peer`.
    pub fn join(self: &Arc<Self>, peer: String) -> Seat {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(
            id,
            Client {
                peer,
                connected: SystemTime::now(),
                phase: "connected",
                session: None,
                serial: None,
            },
        );
        Seat {
            clients: self.clone(),
            id,
        }
    }

    /// Every client connected now, in the order they came.
    pub fn list(&self) -> Vec<Client> {
        self.lock().values().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Client>> {
        self.seats.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Seat {
    /// Where the client stands now.
    pub fn publish(&self, phase: &'static str, session: Option<&str>, serial: Option<u64>) {
        if let Some(c) = self.clients.lock().get_mut(&self.id) {
            c.phase = phase;
            c.session = session.map(str::to_string);
            c.serial = serial;
        }
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        self.clients.lock().remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seat_publishes_and_leaves_when_dropped() {
        let clients = Clients::new();
        let a = clients.join("127.0.0.1:1000".into());
        let b = clients.join("127.0.0.1:2000".into());
        a.publish("realtime", Some("s1"), Some(42));
        let l = clients.list();
        assert_eq!(l.len(), 2);
        assert_eq!((l[0].phase, l[0].serial), ("realtime", Some(42)));
        assert_eq!((l[1].phase, l[1].serial), ("connected", None));
        drop(a);
        let l = clients.list();
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].peer, "127.0.0.1:2000");
        drop(b);
        assert!(clients.list().is_empty());
    }
}
