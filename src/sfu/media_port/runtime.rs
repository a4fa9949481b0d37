//! The runtime each connection is built with: its tasks run on one of the port's media reactors,
//! its sockets come from the shared port, and the rest (timers, TCP) is the crate's tokio
//! runtime's.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use webrtc::runtime::{
    AsyncInterval, AsyncTcpListener, AsyncTcpStream, AsyncUdpSocket, JoinHandle, Runtime,
    TokioRuntime,
};

use super::socket::{SocketHandle, VirtualSocket};
use super::tcp::VirtualListener;
use super::{Shared, Slot};

pub struct PortRuntime {
    shared: Arc<Shared>,
    slot: Arc<Slot>,
    /// The media reactor this connection's tasks run on.
    media: tokio::runtime::Handle,
    tokio: TokioRuntime,
}

impl std::fmt::Debug for PortRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortRuntime")
            .field("port", &self.shared.local)
            .finish()
    }
}

impl PortRuntime {
    pub(super) fn new(
        shared: Arc<Shared>,
        slot: Arc<Slot>,
        media: tokio::runtime::Handle,
    ) -> PortRuntime {
        PortRuntime {
            shared,
            slot,
            media,
            tokio: TokioRuntime,
        }
    }
}

impl PortRuntime {
    /// Routes binding requests for the ICE username fragment of this connection's local
    /// description to it: call before applying each local description (an ICE restart brings
    /// a new fragment; the old one keeps working until the connection is gone).
    pub fn claim_description(&self, sdp: &str) {
        let fragment = sdp
            .lines()
            .find_map(|line| line.strip_prefix("a=ice-ufrag:"))
            .map(str::trim);
        if let Some(fragment) = fragment {
            self.shared.claim_fragment(fragment, &self.slot);
        }
    }

    /// Runs a task of this connection's media work (its writers, its feedback) on its media
    /// reactor, beside its driver.
    pub fn spawn_media<F>(&self, task: F) -> tokio::task::JoinHandle<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.media.spawn(task)
    }
}

impl Runtime for PortRuntime {
    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send>>) -> Box<dyn JoinHandle> {
        Box::new(MediaTask(self.media.spawn(future)))
    }

    fn spawn_reactor(
        &self,
        _pool_size: usize,
        future: Pin<Box<dyn Future<Output = ()> + Send>>,
    ) -> Box<dyn JoinHandle> {
        self.spawn(future)
    }

    /// The crate bound `socket` to an ephemeral port of the address it wants; the connection
    /// gets the shared port on that address instead.
    fn wrap_udp_socket(&self, socket: std::net::UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        let ip = socket.local_addr()?.ip();
        drop(socket);
        let local = SocketAddr::new(ip, self.shared.local.port());
        let socket = VirtualSocket::new(self.shared.clone(), self.slot.clone(), local);
        Ok(Arc::new(SocketHandle(socket)))
    }

    /// Likewise for ICE over TCP: streams come from the HTTPS listener (see `tcp.rs`). The
    /// crate already named the connection's TCP candidate after the listener it bound, so the
    /// streams keep that name as their local address (see `advertise.rs`).
    fn wrap_tcp_listener(
        &self,
        listener: std::net::TcpListener,
    ) -> io::Result<Arc<dyn AsyncTcpListener>> {
        let local = listener.local_addr()?;
        drop(listener);
        if self.shared.tcp_port.is_none() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "ICE over TCP is off",
            ));
        }
        Ok(VirtualListener::new(&self.slot, local))
    }

    fn connect_tcp<'a>(
        &'a self,
        remote_addr: SocketAddr,
    ) -> Pin<Box<dyn Future<Output = io::Result<Arc<dyn AsyncTcpStream>>> + Send + 'a>> {
        self.tokio.connect_tcp(remote_addr)
    }

    fn resolve_host<'a>(
        &'a self,
        host: &'a str,
    ) -> Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send + 'a>> {
        self.tokio.resolve_host(host)
    }

    fn now(&self) -> Instant {
        self.tokio.now()
    }

    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        self.tokio.sleep(duration)
    }

    fn interval(&self, period: Duration) -> Box<dyn AsyncInterval> {
        self.tokio.interval(period)
    }

    fn block_on(&self, future: Pin<Box<dyn Future<Output = ()> + '_>>) {
        self.tokio.block_on(future)
    }

    fn yield_now(&self) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        self.tokio.yield_now()
    }

    fn name(&self) -> &'static str {
        "homeroom-media-port"
    }
}

/// A task on a media reactor, as the crate holds its tasks.
struct MediaTask(tokio::task::JoinHandle<()>);

impl JoinHandle for MediaTask {
    /// A tokio task runs on when its handle is dropped.
    fn detach(&self) {}

    fn abort(&self) {
        self.0.abort();
    }

    fn is_finished(&self) -> bool {
        self.0.is_finished()
    }
}
