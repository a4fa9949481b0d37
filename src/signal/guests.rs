//! How many guest sockets each IP address holds open. A guest link is shared freely and a
//! guest token costs nothing, so without this bound one machine could open sockets until the
//! node's media ports are gone. (Guests per room are bounded by the room itself.)

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

pub struct GuestSlots {
    max_per_ip: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One guest socket's place; it is given back when the socket ends (this drops).
pub struct GuestSlot {
    slots: Arc<GuestSlots>,
    ip: IpAddr,
}

impl GuestSlots {
    pub fn new(max_per_ip: usize) -> GuestSlots {
        GuestSlots {
            max_per_ip,
            open: Mutex::default(),
        }
    }

    /// A place for one more guest socket from `ip`, if it has fewer than the limit open.
    pub fn take(self: &Arc<Self>, ip: IpAddr) -> Option<GuestSlot> {
        let mut open = self.open.lock().expect("guest slots lock");
        let count = open.entry(ip).or_insert(0);
        if *count >= self.max_per_ip {
            return None;
        }
        *count += 1;
        Some(GuestSlot {
            slots: self.clone(),
            ip,
        })
    }
}

impl Drop for GuestSlot {
    fn drop(&mut self) {
        let mut open = self.slots.open.lock().expect("guest slots lock");
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_bounded_per_ip_and_given_back() {
        let slots = Arc::new(GuestSlots::new(2));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let first = slots.take(a).unwrap();
        let _second = slots.take(a).unwrap();
        assert!(slots.take(a).is_none());
        assert!(slots.take(b).is_some(), "another address has its own");
        drop(first);
        assert!(slots.take(a).is_some(), "given back when the socket ends");
    }
}
