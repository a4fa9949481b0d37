//! A UDP-to-stream bridge for the TURN tests: a TURN client that only speaks UDP (webrtc-rs's,
//! alone or inside a peer connection, which has no TURN over TCP) reaches the server's
//! TURN-over-TCP or TLS port through it. Each client address gets its own stream; messages
//! are framed as on any TURN stream (ChannelData padded to four bytes).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::mpsc;

/// Where the bridge's streams go.
#[derive(Clone)]
pub enum Upstream {
    Tcp(SocketAddr),
    /// TLS, trusting the given configuration's roots; the server is named `localhost`.
    Tls(SocketAddr, Arc<rustls::ClientConfig>),
}

pub struct Bridge {
    /// Where UDP clients send.
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
    streams: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Drop for Bridge {
    /// Closes every stream, as a client that goes away would.
    fn drop(&mut self) {
        self.task.abort();
        for task in self.streams.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

impl Bridge {
    pub async fn start(upstream: Upstream) -> Bridge {
        let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let addr = socket.local_addr().unwrap();
        let streams: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let task = tokio::spawn({
            let streams = streams.clone();
            async move {
                let mut writers: HashMap<SocketAddr, mpsc::UnboundedSender<Vec<u8>>> =
                    HashMap::new();
                let mut buf = vec![0u8; 2048];
                loop {
                    let Ok((n, client)) = socket.recv_from(&mut buf).await else {
                        return;
                    };
                    let writer = match writers.get(&client) {
                        Some(writer) => writer.clone(),
                        None => {
                            let (tx, rx) = mpsc::unbounded_channel();
                            let task = match &upstream {
                                Upstream::Tcp(server) => {
                                    let stream = TcpStream::connect(server).await.unwrap();
                                    tokio::spawn(carry(stream, rx, socket.clone(), client))
                                }
                                Upstream::Tls(server, tls) => {
                                    let stream = TcpStream::connect(server).await.unwrap();
                                    let name = rustls::pki_types::ServerName::try_from("localhost")
                                        .unwrap();
                                    let stream = tokio_rustls::TlsConnector::from(tls.clone())
                                        .connect(name, stream)
                                        .await
                                        .expect("TLS to the TURN port");
                                    tokio::spawn(carry(stream, rx, socket.clone(), client))
                                }
                            };
                            streams.lock().unwrap().push(task);
                            writers.insert(client, tx.clone());
                            tx
                        }
                    };
                    let mut frame = buf[..n].to_vec();
                    if frame[0] >> 6 == 1 {
                        frame.resize(frame.len().div_ceil(4) * 4, 0);
                    }
                    let _ = writer.send(frame);
                }
            }
        });
        Bridge {
            addr,
            task,
            streams,
        }
    }
}

/// One client's stream: datagrams from it go out framed, frames coming back go to it.
async fn carry<S: AsyncRead + AsyncWrite + Send + 'static>(
    stream: S,
    mut outgoing: mpsc::UnboundedReceiver<Vec<u8>>,
    socket: Arc<UdpSocket>,
    client: SocketAddr,
) {
    let (mut reader, mut writer) = tokio::io::split(stream);
    let writing = tokio::spawn(async move {
        while let Some(frame) = outgoing.recv().await {
            if writer.write_all(&frame).await.is_err() {
                return;
            }
        }
    });
    let mut buf = BytesMut::with_capacity(4096);
    loop {
        match reader.read_buf(&mut buf).await {
            Ok(n) if n > 0 => {}
            _ => break,
        }
        let Ok(frames) = homeroom::turn::stream::split_frames(&mut buf) else {
            break;
        };
        for frame in frames {
            let _ = socket.send_to(&frame, client).await;
        }
    }
    writing.abort();
}
