//! One connection's virtual UDP socket on the shared port: an inbox the receive loop fills,
//! and sends that go straight out of the shared socket.

use std::collections::VecDeque;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use webrtc::runtime::{AsyncUdpSocket, RecvMeta, Transmit, UdpSockRef};

use super::{stun, Shared, Slot};

/// Datagrams one connection may have waiting: about a second of a 1 Mbit/s publisher. A
/// connection whose driver falls further behind loses its oldest, which is what a late
/// packet is worth in a live class anyway.
const INBOX: usize = 256;

pub struct VirtualSocket {
    shared: Arc<Shared>,
    slot: Arc<Slot>,
    /// The shared port's number on the address the crate asked for.
    local: SocketAddr,
    inbox: Mutex<Inbox>,
}

#[derive(Default)]
struct Inbox {
    queue: VecDeque<(Bytes, SocketAddr)>,
    waker: Option<Waker>,
}

impl std::fmt::Debug for VirtualSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VirtualSocket")
            .field("local", &self.local)
            .finish()
    }
}

impl VirtualSocket {
    pub(super) fn new(shared: Arc<Shared>, slot: Arc<Slot>, local: SocketAddr) -> Arc<Self> {
        let socket = Arc::new(VirtualSocket {
            shared,
            slot: slot.clone(),
            local,
            inbox: Mutex::default(),
        });
        slot.sockets
            .lock()
            .expect("slot lock")
            .push(Arc::downgrade(&socket));
        socket
    }

    pub(super) fn local(&self) -> SocketAddr {
        self.local
    }

    /// Queues a datagram for the connection; false when the oldest had to make room.
    pub(super) fn deliver(&self, datagram: Bytes, from: SocketAddr) -> bool {
        let mut inbox = self.inbox.lock().expect("inbox lock");
        let room = inbox.queue.len() < INBOX;
        if !room {
            inbox.queue.pop_front();
        }
        inbox.queue.push_back((datagram, from));
        if let Some(waker) = inbox.waker.take() {
            waker.wake();
        }
        room
    }

    /// What the server itself sends tells the port where replies will come from: a binding
    /// request names this connection's current fragment (new after an ICE restart) and its
    /// destination will answer.
    fn learn_from(self: &Arc<Self>, datagram: &[u8], to: SocketAddr) {
        if !stun::is_stun(datagram) {
            return;
        }
        if let Some((_theirs, ours)) = stun::binding_usernames(datagram) {
            self.shared.claim_fragment(&ours, &self.slot);
            self.shared.claim_addr(to, self);
        }
    }
}

/// The crate's `AsyncUdpSocket` holds the socket behind an `Arc`; this wrapper gives the send
/// path the `Arc` it needs to claim addresses.
#[derive(Debug)]
pub struct SocketHandle(pub Arc<VirtualSocket>);

impl AsyncUdpSocket for SocketHandle {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.0.local)
    }

    fn poll_send(&self, _cx: &mut Context<'_>, transmit: &Transmit<'_>) -> Poll<io::Result<usize>> {
        let socket = &self.0;
        socket.learn_from(transmit.contents, transmit.destination);
        let shared = &socket.shared;
        // A full send buffer drops this datagram rather than queueing it: a queue here is
        // what grew without bound when viewers fell behind.
        // On a port bound to every address, a reply leaves from the address it was sent to.
        let src_ip = (shared.local.ip().is_unspecified() && !socket.local.ip().is_unspecified())
            .then(|| socket.local.ip());
        let outgoing = Transmit {
            src_ip,
            ..*transmit
        };
        match shared
            .state
            .try_send(UdpSockRef::from(&shared.socket), &outgoing)
        {
            Ok(()) => shared.counters.sent.fetch_add(1, Ordering::Relaxed),
            Err(_) => shared.counters.send_full.fetch_add(1, Ordering::Relaxed),
        };
        Poll::Ready(Ok(transmit.contents.len()))
    }

    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        let mut inbox = self.0.inbox.lock().expect("inbox lock");
        if inbox.queue.is_empty() {
            inbox.waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let mut n = 0;
        while n < bufs.len().min(meta.len()) {
            let Some((datagram, from)) = inbox.queue.pop_front() else {
                break;
            };
            let len = datagram.len().min(bufs[n].len());
            bufs[n][..len].copy_from_slice(&datagram[..len]);
            let mut m = RecvMeta::default();
            m.addr = from;
            m.len = len;
            m.stride = len.max(1);
            m.dst_ip = Some(self.0.local.ip());
            meta[n] = m;
            n += 1;
        }
        Poll::Ready(Ok(n))
    }
}
