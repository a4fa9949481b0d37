//! TURN over TCP and over TLS, for networks that block UDP. The `turn` crate's server reads
//! datagrams from a socket; this module makes every accepted stream look like one: STUN
//! messages and ChannelData are self-delimiting on a stream (RFC 8656 section 12.5: a STUN
//! message's length is in its header, ChannelData is padded to four bytes), so each one read
//! is handed to the server as a datagram from the client's address, and what the server
//! sends to that address is written to its stream. Relaying itself stays UDP (RFC 8656).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use webrtc_util::Conn;

/// The largest message accepted from a stream; the server reads datagrams of 1,500 bytes.
const MAX_FRAME: usize = 1500;
/// A client must say something this soon after connecting (and finish TLS in it).
const FIRST_WORDS: Duration = Duration::from_secs(10);
/// A stream silent this long is closed (allocations are refreshed well within it).
const IDLE: Duration = Duration::from_secs(600);
/// Messages queued towards one client; past it they are dropped, as UDP would drop them.
const QUEUE: usize = 256;

type Writers = Mutex<HashMap<SocketAddr, mpsc::Sender<Vec<u8>>>>;

/// Bytes on a TURN stream that are neither STUN nor ChannelData, or a frame too large.
#[derive(Debug, thiserror::Error)]
#[error("not a STUN message or ChannelData of at most {MAX_FRAME} bytes")]
pub struct BadFrame;

/// All streams of one listener, as one datagram socket for the server.
pub struct StreamConn {
    local: SocketAddr,
    incoming: tokio::sync::Mutex<mpsc::Receiver<(Vec<u8>, SocketAddr)>>,
    incoming_tx: mpsc::Sender<(Vec<u8>, SocketAddr)>,
    writers: Writers,
    open: AtomicUsize,
}

impl StreamConn {
    pub fn new(local: SocketAddr) -> Arc<StreamConn> {
        let (incoming_tx, incoming) = mpsc::channel(1024);
        Arc::new(StreamConn {
            local,
            incoming: tokio::sync::Mutex::new(incoming),
            incoming_tx,
            writers: Mutex::default(),
            open: AtomicUsize::new(0),
        })
    }

    /// Accepts streams until the listener fails, at most `max_open` at once; each client that
    /// hangs up is reported on `hung_up` (its allocation can then go).
    pub fn serve(
        self: &Arc<Self>,
        listener: TcpListener,
        tls: Option<TlsAcceptor>,
        max_open: usize,
        hung_up: mpsc::UnboundedSender<SocketAddr>,
    ) -> tokio::task::JoinHandle<()> {
        let conn = self.clone();
        tokio::spawn(async move {
            loop {
                let (stream, peer) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        tracing::debug!(error = %e, "TURN stream accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                if conn.open.load(Ordering::Relaxed) >= max_open {
                    tracing::warn!("TURN stream refused: too many open");
                    continue;
                }
                let _ = stream.set_nodelay(true);
                conn.open.fetch_add(1, Ordering::Relaxed);
                let conn = conn.clone();
                let tls = tls.clone();
                let hung_up = hung_up.clone();
                tokio::spawn(async move {
                    match tls {
                        None => conn.carry(stream, peer).await,
                        Some(acceptor) => {
                            match tokio::time::timeout(FIRST_WORDS, acceptor.accept(stream)).await {
                                Ok(Ok(stream)) => conn.carry(stream, peer).await,
                                _ => tracing::debug!(%peer, "TURN TLS handshake failed"),
                            }
                        }
                    }
                    conn.open.fetch_sub(1, Ordering::Relaxed);
                    let _ = hung_up.send(peer);
                });
            }
        })
    }

    /// Carries one client's stream until it ends or breaks the framing.
    async fn carry<S>(&self, stream: S, peer: SocketAddr)
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (mut reader, mut writer) = tokio::io::split(stream);
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(QUEUE);
        self.writers.lock().expect("writers lock").insert(peer, tx);
        let writing = tokio::spawn(async move {
            while let Some(frame) = rx.recv().await {
                if writer.write_all(&frame).await.is_err() {
                    break;
                }
            }
            let _ = writer.shutdown().await;
        });
        let mut buf = BytesMut::with_capacity(4096);
        let mut wait = FIRST_WORDS;
        'reading: loop {
            loop {
                match frame_length(&buf) {
                    Err(BadFrame) => break 'reading,
                    Ok(Some(len)) if buf.len() >= len => {
                        let frame = buf.split_to(len).to_vec();
                        if self.incoming_tx.send((frame, peer)).await.is_err() {
                            break 'reading;
                        }
                    }
                    Ok(_) => break,
                }
            }
            match tokio::time::timeout(wait, reader.read_buf(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => wait = IDLE,
                _ => break,
            }
        }
        self.writers.lock().expect("writers lock").remove(&peer);
        writing.abort();
    }
}

/// The length of the frame at the start of `buf`: `Ok(None)` until its header is in,
/// `Err` when it is neither STUN nor ChannelData (or too large): the stream is then closed.
fn frame_length(buf: &[u8]) -> Result<Option<usize>, BadFrame> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = u16::from_be_bytes([buf[2], buf[3]]) as usize;
    let frame = match buf[0] >> 6 {
        0 => 20 + len,
        1 => 4 + len.div_ceil(4) * 4,
        _ => return Err(BadFrame),
    };
    match frame <= MAX_FRAME {
        true => Ok(Some(frame)),
        false => Err(BadFrame),
    }
}

#[async_trait]
impl Conn for StreamConn {
    async fn connect(&self, _addr: SocketAddr) -> webrtc_util::Result<()> {
        Err(webrtc_util::Error::Other("not a connected socket".into()))
    }

    async fn recv(&self, _buf: &mut [u8]) -> webrtc_util::Result<usize> {
        Err(webrtc_util::Error::Other("not a connected socket".into()))
    }

    async fn recv_from(&self, buf: &mut [u8]) -> webrtc_util::Result<(usize, SocketAddr)> {
        let mut incoming = self.incoming.lock().await;
        loop {
            let (frame, peer) = incoming
                .recv()
                .await
                .ok_or(webrtc_util::Error::ErrBufferClosed)?;
            if frame.len() <= buf.len() {
                buf[..frame.len()].copy_from_slice(&frame);
                return Ok((frame.len(), peer));
            }
        }
    }

    async fn send(&self, _buf: &[u8]) -> webrtc_util::Result<usize> {
        Err(webrtc_util::Error::Other("not a connected socket".into()))
    }

    /// Queues the message for the client's stream, padding ChannelData to four bytes; a
    /// client that is gone, or too slow, loses it as a datagram would be lost.
    async fn send_to(&self, buf: &[u8], target: SocketAddr) -> webrtc_util::Result<usize> {
        let writer = self
            .writers
            .lock()
            .expect("writers lock")
            .get(&target)
            .cloned();
        if let Some(writer) = writer {
            let mut frame = buf.to_vec();
            if frame.first().is_some_and(|b| b >> 6 == 1) {
                frame.resize(frame.len().div_ceil(4) * 4, 0);
            }
            let _ = writer.try_send(frame);
        }
        Ok(buf.len())
    }

    fn local_addr(&self) -> webrtc_util::Result<SocketAddr> {
        Ok(self.local)
    }

    fn remote_addr(&self) -> Option<SocketAddr> {
        None
    }

    async fn close(&self) -> webrtc_util::Result<()> {
        Ok(())
    }

    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
        self
    }
}

/// Splits a byte stream into the frames `frame_length` finds; for clients (tests, the
/// connection check) that speak TURN over a stream.
pub fn split_frames(buf: &mut BytesMut) -> Result<Vec<Vec<u8>>, BadFrame> {
    let mut frames = Vec::new();
    while let Some(len) = frame_length(buf)? {
        if buf.len() < len {
            break;
        }
        let mut frame = buf.split_to(len);
        // ChannelData's padding is not part of it.
        if frame[0] >> 6 == 1 {
            let data = u16::from_be_bytes([frame[2], frame[3]]) as usize;
            frame.truncate(4 + data);
        }
        frames.push(frame.to_vec());
    }
    Ok(frames)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_found_by_their_length() {
        let mut stream = BytesMut::new();
        // A STUN header with 4 bytes of attributes, then ChannelData of 5 bytes padded to 8.
        stream.extend_from_slice(&[0x00, 0x01, 0x00, 0x04]);
        stream.extend_from_slice(&[0x21, 0x12, 0xA4, 0x42]);
        stream.extend_from_slice(&[0; 12]);
        stream.extend_from_slice(&[0, 0, 0, 0]);
        stream.extend_from_slice(&[0x40, 0x00, 0x00, 0x05, 1, 2, 3, 4, 5, 0, 0, 0]);
        stream.extend_from_slice(&[0x40, 0x00]);
        let frames = split_frames(&mut stream).unwrap();
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].len(), 24);
        assert_eq!(frames[1], vec![0x40, 0x00, 0x00, 0x05, 1, 2, 3, 4, 5]);
        assert_eq!(stream.len(), 2);
        assert!(split_frames(&mut BytesMut::from(&[0xC0u8, 0, 0, 0][..])).is_err());
    }
}
