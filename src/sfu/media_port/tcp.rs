//! ICE over TCP on the HTTPS port. Every connection to that port is looked at before TLS: a
//! TLS client opens with a handshake record (0x16), a plain HTTP one (behind a proxy) with a
//! method name, and an ICE-TCP client with a length-framed STUN binding request (RFC 6544,
//! RFC 4571), whose USERNAME names the connection it is for. Nothing is read off the stream
//! in deciding, so whoever gets it sees it from its first byte.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum_server::accept::Accept;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Mutex};
use webrtc::runtime::{AsyncTcpListener, AsyncTcpStream};

use super::{stun, MediaPort, Slot};

/// How long a new connection may take to show its first bytes before it is handed to TLS
/// as it is (which then applies its own handshake timeout).
const FIRST_BYTES: Duration = Duration::from_secs(2);

/// Streams waiting for a connection's driver to accept them.
const BACKLOG: usize = 8;

/// The acceptor in front of TLS (or plain HTTP): takes ICE-TCP streams off to the media port.
#[derive(Clone)]
pub struct IceTcpSplit {
    pub port: MediaPort,
}

impl<S: Send + 'static> Accept<TcpStream, S> for IceTcpSplit {
    type Stream = TcpStream;
    type Service = S;
    type Future = Pin<Box<dyn Future<Output = io::Result<(TcpStream, S)>> + Send>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let port = self.port.clone();
        Box::pin(async move {
            let Some(fragment) = ice_fragment(&stream).await else {
                return Ok((stream, service));
            };
            let stream = IceTcpStream::new(stream)?;
            if port.route_tcp(stream, &fragment) {
                Err(io::Error::other("ICE over TCP: handed to the media port"))
            } else {
                Err(io::Error::other("ICE over TCP for no known connection"))
            }
        })
    }
}

/// The server's ICE username fragment, when the stream opens with a framed binding request.
async fn ice_fragment(stream: &TcpStream) -> Option<String> {
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + FIRST_BYTES;
    loop {
        let n = tokio::time::timeout_at(deadline, stream.peek(&mut buf))
            .await
            .ok()?
            .ok()?;
        if n == 0 || buf[0] == 0x16 || buf[0].is_ascii_alphabetic() {
            return None;
        }
        if n >= 22 && !stun::is_stun(&buf[2..n]) {
            return None;
        }
        let frame = 2 + u16::from_be_bytes([buf[0], buf[1]]) as usize;
        if frame > buf.len() {
            return None;
        }
        if n >= frame {
            return stun::binding_usernames(&buf[2..frame]).map(|(ours, _)| ours);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// An accepted ICE-TCP stream, as the crate's driver reads and writes it.
#[derive(Debug)]
pub struct IceTcpStream {
    read: Mutex<OwnedReadHalf>,
    write: Mutex<OwnedWriteHalf>,
    local: SocketAddr,
    peer: SocketAddr,
}

impl IceTcpStream {
    fn new(stream: TcpStream) -> io::Result<IceTcpStream> {
        let (local, peer) = (stream.local_addr()?, stream.peer_addr()?);
        stream.set_nodelay(true)?;
        let (read, write) = stream.into_split();
        Ok(IceTcpStream {
            read: Mutex::new(read),
            write: Mutex::new(write),
            local,
            peer,
        })
    }
}

impl AsyncTcpStream for IceTcpStream {
    fn read<'a, 'b>(
        &'a self,
        buf: &'b mut [u8],
    ) -> Pin<Box<dyn Future<Output = io::Result<usize>> + Send + 'b>>
    where
        'a: 'b,
    {
        Box::pin(async move { self.read.lock().await.read(buf).await })
    }

    fn write_all<'a, 'b>(
        &'a self,
        buf: &'b [u8],
    ) -> Pin<Box<dyn Future<Output = io::Result<()>> + Send + 'b>>
    where
        'a: 'b,
    {
        Box::pin(async move { self.write.lock().await.write_all(buf).await })
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }

    fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.peer)
    }
}

/// A connection's ICE-TCP "listener": the streams the split above routed to it. `local` is
/// the address the crate named the connection's TCP candidate after; streams carry it as
/// their local address, so the connection's ICE agent knows which candidate they reached.
#[derive(Debug)]
pub struct VirtualListener {
    local: SocketAddr,
    streams: Mutex<mpsc::Receiver<IceTcpStream>>,
}

impl VirtualListener {
    pub(super) fn new(slot: &Slot, local: SocketAddr) -> Arc<VirtualListener> {
        let (tx, rx) = mpsc::channel(BACKLOG);
        *slot.tcp.lock().expect("slot lock") = Some(tx);
        Arc::new(VirtualListener {
            local,
            streams: Mutex::new(rx),
        })
    }
}

impl AsyncTcpListener for VirtualListener {
    fn accept<'a>(
        &'a self,
    ) -> Pin<Box<dyn Future<Output = io::Result<(Arc<dyn AsyncTcpStream>, SocketAddr)>> + Send + 'a>>
    {
        Box::pin(async move {
            let mut stream = self.streams.lock().await.recv().await.ok_or_else(|| {
                io::Error::new(io::ErrorKind::NotConnected, "the media port closed")
            })?;
            stream.local = self.local;
            let peer = stream.peer;
            Ok((Arc::new(stream) as Arc<dyn AsyncTcpStream>, peer))
        })
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }
}
