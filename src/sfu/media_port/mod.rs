//! All media of all participants on one UDP port, and ICE over TCP on the HTTPS port, so a
//! school opens one port number (TCP and UDP) and nothing else.
//!
//! The `webrtc` crate binds sockets per connection, but it takes from the application the
//! runtime that turns a bound socket into an async one (`runtime.rs`). Each connection gets a
//! runtime that hands it a virtual socket on this port instead (`socket.rs`) and drops the one
//! the crate bound. A datagram finds its connection by the ICE username of a STUN binding
//! request (the receiver's fragment, which the server chose) and from then on by its source
//! address; one from an address no check has claimed is dropped. ICE over TCP arrives on the
//! HTTPS listener and is told apart from TLS by its first bytes (`tcp.rs`).
//!
//! The receive loop runs on its own thread with its own reactor, and everything else media on
//! the port's media reactors, a connection's driver, writers and feedback on the same one (so
//! a packet goes from writer to driver without waking another thread), so a flood of media
//! never delays signalling, HTTP or the database. Each connection's inbox is
//! bounded: a connection that falls behind loses its own oldest datagrams, never the server's
//! memory.

pub mod advertise;
mod lag;
mod runtime;
mod socket;
mod stun;
pub mod tcp;

use std::collections::HashMap;
use std::fmt::Write;
use std::io::IoSliceMut;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

use bytes::Bytes;
use webrtc::runtime::{RecvMeta, UdpSockRef, UdpSocketState, BATCH_SIZE};

pub use runtime::PortRuntime;
use socket::VirtualSocket;
use tcp::IceTcpStream;

/// Media reactors: one per core of the 2-core machines schools run.
const MEDIA_THREADS: usize = 2;

/// The one media port of this process.
#[derive(Clone)]
pub struct MediaPort {
    shared: Arc<Shared>,
}

impl MediaPort {
    /// The HTTPS port ICE over TCP arrives on, when it is on.
    pub fn tcp_port(&self) -> Option<u16> {
        self.shared.tcp_port
    }

    /// Tasks alive on the media reactors, for /metrics.
    pub fn tasks(&self) -> usize {
        self.shared
            .media
            .iter()
            .map(|m| m.handle.metrics().num_alive_tasks())
            .sum()
    }

    /// How late the busiest media reactor runs (smoothed over about a second): past a few
    /// milliseconds the media plane is saturated.
    pub fn lag(&self) -> std::time::Duration {
        self.shared
            .media
            .iter()
            .map(|m| m.lag.get())
            .max()
            .unwrap_or_default()
    }
}

struct Shared {
    socket: tokio::net::UdpSocket,
    state: UdpSocketState,
    local: SocketAddr,
    /// The HTTPS port, where ICE over TCP arrives; `None` when ICE over TCP is off.
    tcp_port: Option<u16>,
    routes: Mutex<Routes>,
    counters: Counters,
    /// The media reactors; connections take turns.
    media: Vec<MediaReactor>,
    next: AtomicUsize,
}

/// A media reactor, and how late it runs.
struct MediaReactor {
    handle: tokio::runtime::Handle,
    lag: Arc<lag::Lag>,
}

impl MediaReactor {
    fn start(name: &str) -> std::io::Result<MediaReactor> {
        let handle = reactor_thread(name)?;
        let lag = Arc::new(lag::Lag::default());
        handle.spawn(lag.clone().probe());
        Ok(MediaReactor { handle, lag })
    }
}

#[derive(Default)]
struct Routes {
    /// ICE username fragment (the server's) → its connection.
    fragments: HashMap<String, Weak<Slot>>,
    /// Remote address → the connection's socket that a check from it reached.
    addrs: HashMap<SocketAddr, Weak<VirtualSocket>>,
    /// Inserts since dead entries were last swept.
    inserts: usize,
}

/// One connection's place on the port: its virtual sockets (one per local address the crate
/// asked for) and where its ICE-over-TCP streams go.
#[derive(Default)]
pub struct Slot {
    sockets: Mutex<Vec<Weak<VirtualSocket>>>,
    tcp: Mutex<Option<tokio::sync::mpsc::Sender<IceTcpStream>>>,
}

/// Counted, never logged per packet: logging is work, and drops come exactly when the
/// server has none to spare.
#[derive(Default)]
struct Counters {
    received: AtomicU64,
    sent: AtomicU64,
    /// Inbound datagrams dropped because their connection's inbox was full.
    inbox_full: AtomicU64,
    /// Inbound datagrams from addresses no connection has claimed.
    unrouted: AtomicU64,
    /// Outbound datagrams the kernel's send buffer had no room for.
    send_full: AtomicU64,
}

impl MediaPort {
    /// Binds the port and starts its receive loop on a thread of its own, and the media
    /// reactors on theirs. ICE over TCP, when on, arrives on the HTTPS port `tcp_port`.
    pub fn bind(addr: SocketAddr, tcp_port: Option<u16>) -> std::io::Result<MediaPort> {
        let media = (0..MEDIA_THREADS)
            .map(|i| MediaReactor::start(&format!("homeroom-media{i}")))
            .collect::<std::io::Result<Vec<_>>>()?;
        let port = reactor_thread("homeroom-port")?;
        // The socket registers with the reactor whose context it is made in.
        let shared = Arc::new({
            let _port = port.enter();
            Shared::bind(addr, tcp_port, media)?
        });
        port.spawn(shared.clone().receive());
        Ok(MediaPort { shared })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local
    }

    /// A runtime for one new connection. Its datagrams reach it once its local description
    /// is claimed ([`PortRuntime::claim_description`]).
    pub fn runtime(&self) -> Arc<PortRuntime> {
        let turn = self.shared.next.fetch_add(1, Ordering::Relaxed);
        let media = self.shared.media[turn % self.shared.media.len()]
            .handle
            .clone();
        Arc::new(PortRuntime::new(self.shared.clone(), Arc::default(), media))
    }

    /// Hands an accepted ICE-over-TCP stream to the connection its first binding request
    /// names; false when none does.
    pub fn route_tcp(&self, stream: IceTcpStream, fragment: &str) -> bool {
        let slot = self.shared.slot(fragment);
        let sender = slot.and_then(|slot| slot.tcp.lock().expect("slot lock").clone());
        sender.is_some_and(|sender| sender.try_send(stream).is_ok())
    }

    /// The port's counters in the Prometheus text format.
    pub fn render_metrics(&self) -> String {
        let c = &self.shared.counters;
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, value: &AtomicU64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                value.load(Ordering::Relaxed)
            );
        };
        counter(
            "homeroom_media_datagrams_received_total",
            "Datagrams received on the media port.",
            &c.received,
        );
        counter(
            "homeroom_media_datagrams_sent_total",
            "Datagrams sent from the media port.",
            &c.sent,
        );
        let _ = writeln!(
            out,
            "# HELP homeroom_media_datagrams_dropped_total Datagrams dropped on the media port, by reason.\n\
             # TYPE homeroom_media_datagrams_dropped_total counter"
        );
        for (reason, value) in [
            ("inbox_full", &c.inbox_full),
            ("unrouted", &c.unrouted),
            ("send_buffer_full", &c.send_full),
        ] {
            let _ = writeln!(
                out,
                "homeroom_media_datagrams_dropped_total{{reason=\"{reason}\"}} {}",
                value.load(Ordering::Relaxed)
            );
        }
        out
    }
}

impl Shared {
    fn bind(
        addr: SocketAddr,
        tcp_port: Option<u16>,
        media: Vec<MediaReactor>,
    ) -> std::io::Result<Shared> {
        let std_socket = std::net::UdpSocket::bind(addr)?;
        // Room for bursts: a keyframe for a few hundred viewers leaves in one go.
        let sock = socket2::SockRef::from(&std_socket);
        let _ = sock.set_send_buffer_size(4 << 20);
        let _ = sock.set_recv_buffer_size(4 << 20);
        std_socket.set_nonblocking(true)?;
        let socket = tokio::net::UdpSocket::from_std(std_socket)?;
        let state = UdpSocketState::new(UdpSockRef::from(&socket))?;
        Ok(Shared {
            local: socket.local_addr()?,
            tcp_port,
            socket,
            state,
            routes: Mutex::default(),
            counters: Counters::default(),
            media,
            next: AtomicUsize::new(0),
        })
    }

    fn slot(&self, fragment: &str) -> Option<Arc<Slot>> {
        let routes = self.routes.lock().expect("routes lock");
        routes.fragments.get(fragment).and_then(Weak::upgrade)
    }

    /// Routes binding requests naming `fragment` to `slot`: the fragment given when the
    /// connection was made, and any that an ICE restart gives it later.
    fn claim_fragment(&self, fragment: &str, slot: &Arc<Slot>) {
        let mut routes = self.routes.lock().expect("routes lock");
        let known = routes.fragments.get(fragment).and_then(Weak::upgrade);
        if known.is_some_and(|known| Arc::ptr_eq(&known, slot)) {
            return;
        }
        routes
            .fragments
            .insert(fragment.to_owned(), Arc::downgrade(slot));
        routes.swept();
    }

    /// Datagrams from `remote` go to `socket` from now on.
    fn claim_addr(&self, remote: SocketAddr, socket: &Arc<VirtualSocket>) {
        let mut routes = self.routes.lock().expect("routes lock");
        let known = routes.addrs.get(&remote).and_then(Weak::upgrade);
        if known.is_some_and(|known| Arc::ptr_eq(&known, socket)) {
            return;
        }
        routes.addrs.insert(remote, Arc::downgrade(socket));
        routes.swept();
    }

    /// Reads batches of datagrams and routes each; runs for the life of the process.
    async fn receive(self: Arc<Self>) {
        let mut storage = vec![[0u8; 2048]; BATCH_SIZE];
        let mut meta = vec![RecvMeta::default(); BATCH_SIZE];
        loop {
            if self.socket.readable().await.is_err() {
                continue;
            }
            let mut bufs: Vec<IoSliceMut<'_>> =
                storage.iter_mut().map(|b| IoSliceMut::new(b)).collect();
            let n = match self.socket.try_io(tokio::io::Interest::READABLE, || {
                self.state
                    .recv(UdpSockRef::from(&self.socket), &mut bufs, &mut meta)
            }) {
                Ok(n) => n,
                // WouldBlock, and the ICMP errors a socket serving many peers sees.
                Err(_) => continue,
            };
            drop(bufs);
            for (buf, meta) in storage.iter().zip(&meta).take(n) {
                let stride = meta.stride.max(1);
                for datagram in buf[..meta.len].chunks(stride) {
                    self.route(datagram, meta.addr, meta.dst_ip);
                }
            }
        }
    }

    fn route(&self, datagram: &[u8], from: SocketAddr, to: Option<IpAddr>) {
        self.counters.received.fetch_add(1, Ordering::Relaxed);
        let socket = match stun::binding_usernames(datagram) {
            Some((ours, _theirs)) => {
                let slot = self.slot(&ours);
                let socket = slot.as_ref().and_then(|slot| slot.socket_for(to));
                tracing::trace!(%from, ours, slot = slot.is_some(), socket = socket.is_some(), "binding request");
                if let Some(socket) = &socket {
                    self.claim_addr(from, socket);
                }
                socket
            }
            None => None,
        };
        let socket = socket.or_else(|| {
            let routes = self.routes.lock().expect("routes lock");
            routes.addrs.get(&from).and_then(Weak::upgrade)
        });
        match socket {
            Some(socket) => {
                if !socket.deliver(Bytes::copy_from_slice(datagram), from) {
                    self.counters.inbox_full.fetch_add(1, Ordering::Relaxed);
                }
            }
            None => {
                self.counters.unrouted.fetch_add(1, Ordering::Relaxed);
                tracing::trace!(%from, stun = stun::is_stun(datagram), "unrouted datagram");
            }
        }
    }
}

impl Routes {
    /// Now and then, forgets the routes of connections that are gone.
    fn swept(&mut self) {
        self.inserts += 1;
        if self.inserts >= 256 {
            self.inserts = 0;
            self.fragments.retain(|_, slot| slot.strong_count() > 0);
            self.addrs.retain(|_, socket| socket.strong_count() > 0);
        }
    }
}

impl Slot {
    /// The connection's socket on the local address a datagram was sent to, or its first.
    fn socket_for(&self, to: Option<IpAddr>) -> Option<Arc<VirtualSocket>> {
        let sockets = self.sockets.lock().expect("slot lock");
        let live = || sockets.iter().filter_map(Weak::upgrade);
        live()
            .find(|s| Some(s.local().ip()) == to)
            .or_else(|| live().next())
    }
}

/// A single-thread runtime on a thread of its own that runs for the life of the process (a
/// runtime may not be dropped where async code runs), and its handle.
fn reactor_thread(name: &str) -> std::io::Result<tokio::runtime::Handle> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(reactor) => {
                    let _ = tx.send(Ok(reactor.handle().clone()));
                    reactor.block_on(std::future::pending::<()>());
                }
                Err(e) => drop(tx.send(Err(e))),
            }
        })?;
    rx.recv()
        .map_err(|_| std::io::Error::other("a media reactor ended"))?
}
