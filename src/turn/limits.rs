//! How many relay allocations exist, whose they are, and the figures `/metrics` shows.
//!
//! The `turn` crate keeps allocations per listener and has no limits of its own, so the gate
//! (`gate.rs`) books them here: an authenticated Allocate request is booked as pending (and
//! refused when its user, or the server, is at the limit), the server's success answer makes
//! it live, and the crate's close notice (expiry, refresh to zero, deletion) ends it.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A pending Allocate whose answer never came is forgotten after this long.
const PENDING_FOR: Duration = Duration::from_secs(10);

/// How a client reached the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

/// The client's side of an allocation: transport, our listener's address, the client's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Flow {
    pub transport: Transport,
    pub local: SocketAddr,
    pub remote: SocketAddr,
}

/// Why an allocation is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverLimit {
    User,
    Total,
}

#[derive(Default)]
struct Book {
    live: HashMap<Flow, String>,
    /// Transaction id → (flow, username, when).
    pending: HashMap<[u8; 12], (Flow, String, Instant)>,
}

pub struct Allocations {
    max_total: usize,
    max_per_user: usize,
    book: Mutex<Book>,
    /// Payload bytes relayed, both directions.
    pub relayed_bytes: AtomicU64,
    refusals: Mutex<BTreeMap<&'static str, u64>>,
}

impl Allocations {
    pub fn new(max_total: usize, max_per_user: usize) -> Allocations {
        Allocations {
            max_total,
            max_per_user,
            book: Mutex::default(),
            relayed_bytes: AtomicU64::new(0),
            refusals: Mutex::default(),
        }
    }

    /// Books an authenticated Allocate request, or says which limit it would pass. A flow
    /// that already holds an allocation is left to the server (it answers 437).
    pub fn request(
        &self,
        transaction: [u8; 12],
        flow: Flow,
        username: &str,
    ) -> Result<(), OverLimit> {
        let mut book = self.book.lock().expect("allocations lock");
        let now = Instant::now();
        book.pending
            .retain(|_, (_, _, at)| now.duration_since(*at) < PENDING_FOR);
        if book.live.contains_key(&flow) {
            return Ok(());
        }
        let others = |f: &Flow| *f != flow;
        let mut flows: Vec<(&Flow, &str)> = book
            .live
            .iter()
            .map(|(f, u)| (f, u.as_str()))
            .chain(
                book.pending
                    .iter()
                    .filter(|(t, _)| **t != transaction)
                    .map(|(_, (f, u, _))| (f, u.as_str())),
            )
            .filter(|(f, _)| others(f))
            .collect();
        flows.sort_by_key(|(f, _)| (f.transport, f.local, f.remote));
        flows.dedup_by_key(|(f, _)| **f);
        // Per user, not per credential: a fresh credential (a later expiry) is the same user.
        let user = who(username);
        if flows.iter().filter(|(_, u)| who(u) == user).count() >= self.max_per_user {
            return Err(OverLimit::User);
        }
        if flows.len() >= self.max_total {
            return Err(OverLimit::Total);
        }
        book.pending
            .insert(transaction, (flow, username.to_owned(), now));
        Ok(())
    }

    /// The server answered the Allocate `transaction`: with success it is live.
    pub fn answered(&self, transaction: [u8; 12], success: bool) {
        let mut book = self.book.lock().expect("allocations lock");
        if let Some((flow, username, _)) = book.pending.remove(&transaction) {
            if success {
                book.live.insert(flow, username);
            }
        }
    }

    /// The server closed the allocation of the client at `remote` on listener `local`.
    pub fn closed(&self, local: SocketAddr, remote: SocketAddr, username: &str) {
        let mut book = self.book.lock().expect("allocations lock");
        let flow = book
            .live
            .iter()
            .find(|(f, u)| f.local == local && f.remote == remote && u.as_str() == username)
            .map(|(f, _)| *f);
        if let Some(flow) = flow {
            book.live.remove(&flow);
        }
    }

    /// The username of the allocation on `flow`, when that user has no other allocation: a
    /// TCP client that hung up can then have its allocation deleted at once.
    pub fn sole_user_of(&self, flow: Flow) -> Option<String> {
        let book = self.book.lock().expect("allocations lock");
        let username = book.live.get(&flow)?;
        let theirs = book.live.values().filter(|u| *u == username).count();
        (theirs == 1).then(|| username.clone())
    }

    pub fn live(&self) -> usize {
        self.book.lock().expect("allocations lock").live.len()
    }

    pub fn refuse(&self, reason: &'static str) {
        *self
            .refusals
            .lock()
            .expect("refusals lock")
            .entry(reason)
            .or_default() += 1;
    }

    pub fn refusals(&self) -> BTreeMap<&'static str, u64> {
        self.refusals.lock().expect("refusals lock").clone()
    }

    pub fn relayed(&self, bytes: usize) {
        self.relayed_bytes
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }
}

/// The user a credential was minted for: its username without the expiry.
fn who(username: &str) -> &str {
    username.split_once(':').map_or(username, |(_, who)| who)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(port: u16) -> Flow {
        Flow {
            transport: Transport::Udp,
            local: "127.0.0.1:3478".parse().unwrap(),
            remote: SocketAddr::new("127.0.0.1".parse().unwrap(), port),
        }
    }

    #[test]
    fn per_user_and_total_limits() {
        let allocations = Allocations::new(3, 2);
        for (i, port) in [1000u16, 1001].into_iter().enumerate() {
            allocations.request([i as u8; 12], flow(port), "a").unwrap();
            allocations.answered([i as u8; 12], true);
        }
        assert_eq!(
            allocations.request([9; 12], flow(1002), "a"),
            Err(OverLimit::User)
        );
        allocations.request([3; 12], flow(1003), "b").unwrap();
        // b's request is pending: it counts.
        assert_eq!(
            allocations.request([4; 12], flow(1004), "c"),
            Err(OverLimit::Total)
        );
        allocations.answered([3; 12], false);
        allocations.request([4; 12], flow(1004), "c").unwrap();
        // A retransmission of the same request is not a second allocation.
        allocations.request([4; 12], flow(1004), "c").unwrap();
        allocations.answered([4; 12], true);
        assert_eq!(allocations.live(), 3);
        allocations.closed(flow(1000).local, flow(1000).remote, "a");
        assert_eq!(allocations.live(), 2);
        allocations.request([5; 12], flow(1005), "a").unwrap();
        assert_eq!(allocations.sole_user_of(flow(1004)), Some("c".into()));
        assert_eq!(allocations.sole_user_of(flow(1000)), None);
    }

    #[test]
    fn fresh_credentials_count_as_the_same_user() {
        let allocations = Allocations::new(10, 1);
        allocations.request([1; 12], flow(1000), "100:u7").unwrap();
        allocations.answered([1; 12], true);
        assert_eq!(
            allocations.request([2; 12], flow(1001), "200:u7"),
            Err(OverLimit::User)
        );
        allocations.request([3; 12], flow(1002), "200:u8").unwrap();
    }
}
