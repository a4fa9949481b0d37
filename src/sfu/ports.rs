//! The UDP ports media sockets are taken from. The `webrtc` crate binds one socket per peer
//! connection, so a configured range is handed out port by port and taken back on close.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use crate::config::PortRange;

#[derive(Clone)]
pub struct PortPool {
    free: Arc<Mutex<BTreeSet<u16>>>,
}

/// A port on loan; it goes back to the pool when dropped.
pub struct PortLease {
    pub port: u16,
    pool: PortPool,
}

impl Drop for PortLease {
    fn drop(&mut self) {
        self.pool
            .free
            .lock()
            .expect("port pool lock")
            .insert(self.port);
    }
}

impl PortPool {
    pub fn new(range: PortRange) -> PortPool {
        PortPool {
            free: Arc::new(Mutex::new((range.low..=range.high).collect())),
        }
    }

    /// Takes a free port that can actually be bound right now (for UDP, and for TCP too when
    /// ICE over TCP is on); ports something else holds are skipped and stay in the pool.
    pub fn take(&self, ip: std::net::IpAddr, tcp_too: bool) -> Option<PortLease> {
        let mut free = self.free.lock().expect("port pool lock");
        let candidates: Vec<u16> = free.iter().copied().collect();
        for port in candidates {
            let udp = std::net::UdpSocket::bind((ip, port)).is_ok();
            if udp && (!tcp_too || std::net::TcpListener::bind((ip, port)).is_ok()) {
                free.remove(&port);
                return Some(PortLease {
                    port,
                    pool: self.clone(),
                });
            }
        }
        None
    }

    pub fn available(&self) -> usize {
        self.free.lock().expect("port pool lock").len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_return_and_busy_ports_are_skipped() {
        let busy = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = busy.local_addr().unwrap().port();
        let pool = PortPool::new(PortRange {
            low: port,
            high: port.saturating_add(1),
        });
        let ip = "127.0.0.1".parse().unwrap();
        let lease = pool.take(ip, false).expect("the second port is free");
        assert_eq!(lease.port, port + 1);
        assert!(pool.take(ip, false).is_none());
        drop(lease);
        assert_eq!(pool.available(), 2);
    }
}
