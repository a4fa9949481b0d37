//! Relay sockets: one UDP socket per allocation, from `turn.relay_ports` (or any free port),
//! on a local address the SFU reaches directly. Each one only sends to and hears from this
//! server's own media ports (`peers.rs`), counts what it relays, and is listed in the SFU's
//! set of relay addresses while it lives, so a connection whose remote end is one of them
//! counts as relayed in `/metrics`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use async_trait::async_trait;
use tokio::net::UdpSocket;
use turn::relay::RelayAddressGenerator;
use webrtc_util::Conn;

use super::limits::Allocations;
use super::peers::OwnAddresses;
use crate::config::PortRange;
use crate::sfu::paths::RelayAddresses;

/// Random ports tried in the range before an allocation fails.
const TRIES: usize = 16;

pub struct RelayPorts {
    pub ip: IpAddr,
    pub ports: Option<PortRange>,
    pub own: OwnAddresses,
    pub allocations: Arc<Allocations>,
    pub relays: Arc<RelayAddresses>,
}

impl RelayPorts {
    async fn bind(&self) -> std::io::Result<UdpSocket> {
        let Some(range) = self.ports else {
            return UdpSocket::bind(SocketAddr::new(self.ip, 0)).await;
        };
        let mut last = std::io::Error::other("no relay port tried");
        for _ in 0..TRIES {
            let port = rand::Rng::gen_range(&mut rand::thread_rng(), range.low..=range.high);
            match UdpSocket::bind(SocketAddr::new(self.ip, port)).await {
                Ok(socket) => return Ok(socket),
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

#[async_trait]
impl RelayAddressGenerator for RelayPorts {
    fn validate(&self) -> Result<(), turn::Error> {
        Ok(())
    }

    /// A relay socket; the requested port (EVEN-PORT reservations) is not honoured.
    async fn allocate_conn(
        &self,
        use_ipv4: bool,
        _requested_port: u16,
    ) -> Result<(Arc<dyn Conn + Send + Sync>, SocketAddr), turn::Error> {
        if use_ipv4 != self.ip.is_ipv4() {
            return Err(turn::Error::Other("address family not offered".into()));
        }
        let socket = self.bind().await?;
        let addr = socket.local_addr()?;
        self.relays.insert(addr);
        let conn = RelayConn {
            socket,
            addr,
            own: self.own.clone(),
            allocations: self.allocations.clone(),
            relays: self.relays.clone(),
        };
        Ok((Arc::new(conn), addr))
    }
}

/// One allocation's relay socket.
struct RelayConn {
    socket: UdpSocket,
    addr: SocketAddr,
    own: OwnAddresses,
    allocations: Arc<Allocations>,
    relays: Arc<RelayAddresses>,
}

impl Drop for RelayConn {
    fn drop(&mut self) {
        self.relays.remove(self.addr);
    }
}

#[async_trait]
impl Conn for RelayConn {
    async fn connect(&self, _addr: SocketAddr) -> webrtc_util::Result<()> {
        Err(webrtc_util::Error::Other(
            "a relay socket is not connected".into(),
        ))
    }

    async fn recv(&self, _buf: &mut [u8]) -> webrtc_util::Result<usize> {
        Err(webrtc_util::Error::Other(
            "a relay socket is not connected".into(),
        ))
    }

    /// Packets from anyone but our own media ports are dropped here, before the server even
    /// looks for a permission.
    async fn recv_from(&self, buf: &mut [u8]) -> webrtc_util::Result<(usize, SocketAddr)> {
        loop {
            let (n, source) = self.socket.recv_from(buf).await?;
            let source = self.own.shown_to_client(source);
            if self.own.allows(source) {
                self.allocations.relayed(n);
                return Ok((n, source));
            }
        }
    }

    async fn send(&self, _buf: &[u8]) -> webrtc_util::Result<usize> {
        Err(webrtc_util::Error::Other(
            "a relay socket is not connected".into(),
        ))
    }

    async fn send_to(&self, buf: &[u8], target: SocketAddr) -> webrtc_util::Result<usize> {
        if !self.own.allows(target) {
            self.allocations.refuse("peer_not_allowed");
            return Err(webrtc_util::Error::Other(format!(
                "{target} is not one of this server's media addresses"
            )));
        }
        let n = self.socket.send_to(buf, self.own.to_local(target)).await?;
        self.allocations.relayed(n);
        Ok(n)
    }

    fn local_addr(&self) -> webrtc_util::Result<SocketAddr> {
        Ok(self.addr)
    }

    fn remote_addr(&self) -> Option<SocketAddr> {
        None
    }

    async fn close(&self) -> webrtc_util::Result<()> {
        self.relays.remove(self.addr);
        Ok(())
    }

    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
        self
    }
}
