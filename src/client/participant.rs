//! A participant speaking Homeroom's signalling: one WebSocket (TLS, cookie or guest token),
//! a publisher connection sending synthetic media and a subscriber connection that answers
//! the server's offers and checks every packet it receives. Tests and the load tool use it.
//! It can restart ICE on both connections (`ice_restart`) and, for tests, stop answering
//! subscriber offers (`answering`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use rtc::peer_connection::configuration::RTCOfferOptions;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Error as WsError;
use webrtc::peer_connection::RTCSessionDescription;

use super::errors::{ConnectError, RequestError};
use super::media::{new_pc_relayed, Throttle, VideoShape};
use super::publish::{Counters, Tracks, Video};
use super::receive::{tallies, Inbox, Received, Tally};
pub use super::signalling::RelayPick;
use super::signalling::{
    spawn_keepalive, spawn_writer, to_text, Connection, Events, Negotiator, Pending, Reader, Relay,
    Remotes,
};
use crate::signal::protocol::{ClientMessage, Quality, ServerMessage, Target};

pub struct Participant {
    out: mpsc::UnboundedSender<String>,
    pending: Pending,
    /// Set by the reader when the socket has ended.
    closed: Arc<AtomicBool>,
    pub events: mpsc::UnboundedReceiver<ServerMessage>,
    next_id: u64,
    publisher: Connection,
    pub subscriber: Connection,
    pub inbox: Inbox,
    remotes: Remotes,
    /// When each keyframe request reached this peer's publisher.
    pub plis: Arc<Mutex<Vec<Instant>>>,
    /// Packets sent per kind by this peer's publisher.
    pub sent: Arc<[AtomicU64; 2]>,
    /// Subscriber offers received, answered or not.
    pub offers: Arc<Mutex<Vec<String>>>,
    /// Whether subscriber offers are answered (a test may play a client that never does).
    pub answering: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    pub participant_id: u64,
    reader: tokio::task::JoinHandle<()>,
    /// Local address media sockets bind to.
    bind: String,
    /// Relay-only: the TURN servers both connections use, picked from `joined`.
    relay: Relay,
}

/// How a participant signs in to the socket.
pub enum Credential<'a> {
    Cookie(&'a str),
    Token(&'a str),
}

impl Participant {
    /// Opens the signalling socket of the server at `base` (https://host:port).
    pub async fn connect(
        base: &str,
        tls: Arc<rustls::ClientConfig>,
        credential: Credential<'_>,
        bind: &str,
    ) -> Result<Participant, String> {
        Participant::connect_relayed(base, tls, credential, bind, None).await
    }

    /// Like `connect`; with `pick`, both connections gather only relay candidates, on the
    /// TURN servers `pick` chooses from those in `joined`.
    pub async fn connect_relayed(
        base: &str,
        tls: Arc<rustls::ClientConfig>,
        credential: Credential<'_>,
        bind: &str,
        pick: Option<RelayPick>,
    ) -> Result<Participant, String> {
        Participant::open_relayed(base, tls, credential, bind, pick, None)
            .await
            .map_err(|e| e.to_string())
    }

    /// `connect`, telling a refused upgrade (its HTTP status) from a failed connection.
    pub async fn open(
        base: &str,
        tls: Arc<rustls::ClientConfig>,
        credential: Credential<'_>,
        bind: &str,
    ) -> Result<Participant, ConnectError> {
        Participant::open_relayed(base, tls, credential, bind, None, None).await
    }

    /// `open`, the socket's TCP connection made to `via` rather than to the URL's host (TLS
    /// still checks the URL's name): a client in a network namespace reaches the server at
    /// the host's end of the veth pair.
    pub async fn open_via(
        base: &str,
        tls: Arc<rustls::ClientConfig>,
        credential: Credential<'_>,
        bind: &str,
        via: SocketAddr,
    ) -> Result<Participant, ConnectError> {
        Participant::open_relayed(base, tls, credential, bind, None, Some(via)).await
    }

    async fn open_relayed(
        base: &str,
        tls: Arc<rustls::ClientConfig>,
        credential: Credential<'_>,
        bind: &str,
        pick: Option<RelayPick>,
        via: Option<SocketAddr>,
    ) -> Result<Participant, ConnectError> {
        let relay: Relay = Arc::default();
        let ws_base = base.replacen("https://", "wss://", 1);
        let url = match credential {
            Credential::Token(token) => format!("{ws_base}/api/v1/ws?token={token}"),
            Credential::Cookie(_) => format!("{ws_base}/api/v1/ws"),
        };
        let failed = |e: &dyn std::fmt::Display| ConnectError::Failed(e.to_string());
        let mut request = url.into_client_request().map_err(|e| failed(&e))?;
        if let Credential::Cookie(cookie) = credential {
            let value = format!("homeroom_session={cookie}")
                .parse()
                .map_err(|e| failed(&e))?;
            request.headers_mut().insert("cookie", value);
        }
        let connector = Some(tokio_tungstenite::Connector::Rustls(tls));
        let opened = match via {
            None => {
                tokio_tungstenite::connect_async_tls_with_config(request, None, false, connector)
                    .await
            }
            Some(via) => {
                let tcp = tokio::net::TcpStream::connect(via)
                    .await
                    .map_err(|e| failed(&e))?;
                tokio_tungstenite::client_async_tls_with_config(request, tcp, None, connector).await
            }
        };
        let (socket, _) = opened.map_err(|e| match e {
            WsError::Http(response) => ConnectError::Refused {
                status: response.status().as_u16(),
            },
            other => failed(&other),
        })?;
        let (sink, stream) = socket.split();
        let (out, out_rx) = mpsc::unbounded_channel::<String>();
        let (events_tx, events) = mpsc::unbounded_channel();
        let pending: Pending = Arc::default();
        let subscriber: Connection = Arc::default();
        let publisher: Connection = Arc::default();
        let inbox: Inbox = Arc::default();
        let remotes: Remotes = Arc::default();
        let closed = Arc::new(AtomicBool::new(false));
        spawn_writer(sink, out_rx);
        let keepalive = spawn_keepalive(out.clone());
        let (offers_tx, offers_rx) = mpsc::unbounded_channel::<String>();
        let bind = bind.to_owned();
        let offers: Arc<Mutex<Vec<String>>> = Arc::default();
        let answering = Arc::new(AtomicBool::new(true));
        let negotiator = Negotiator {
            relay: relay.clone(),
            subscriber: subscriber.clone(),
            remotes: remotes.clone(),
            bind: bind.clone(),
            out: out.clone(),
            inbox: inbox.clone(),
            offers: offers.clone(),
            answering: answering.clone(),
        }
        .spawn(offers_rx);
        let reader = Reader {
            relay: relay.clone(),
            pick,
            pending: pending.clone(),
            closed: closed.clone(),
            subscriber: subscriber.clone(),
            publisher: publisher.clone(),
            offers: offers_tx,
            events: events_tx,
        }
        .spawn(stream);
        Ok(Participant {
            out,
            pending,
            closed,
            events,
            next_id: 1,
            publisher,
            subscriber,
            inbox,
            remotes,
            plis: Arc::default(),
            sent: Arc::new([AtomicU64::new(0), AtomicU64::new(0)]),
            offers,
            answering,
            tasks: vec![negotiator, keepalive],
            participant_id: 0,
            reader,
            bind,
            relay,
        })
    }

    /// Sends a request and waits for the reply that echoes its id; panics without one
    /// within 10 s (tests).
    pub async fn request(&mut self, make: impl FnOnce(u64) -> ClientMessage) -> ServerMessage {
        let mut summary = String::new();
        let reply = self
            .try_request(
                |id| {
                    let message = make(id);
                    summary = to_text(&message).chars().take(80).collect();
                    message
                },
                Duration::from_secs(10),
            )
            .await;
        match reply {
            Ok(reply) => reply,
            Err(RequestError::Closed) => panic!("the socket closed before answering {summary}"),
            Err(RequestError::Timeout) => panic!(
                "no reply within 10 s to {summary} (participant {})",
                self.participant_id
            ),
        }
    }

    /// Sends a request and waits at most `within` for the reply that echoes its id.
    pub async fn try_request(
        &mut self,
        make: impl FnOnce(u64) -> ClientMessage,
        within: Duration,
    ) -> Result<ServerMessage, RequestError> {
        let id = self.next_id;
        self.next_id += 1;
        let (tx, rx) = oneshot::channel();
        self.pending.lock().unwrap().insert(id, tx);
        // The reader marks the socket closed before it lets go of the waiters: a request made
        // after that sees the mark.
        if self.closed.load(Ordering::SeqCst) || self.out.send(to_text(&make(id))).is_err() {
            self.pending.lock().unwrap().remove(&id);
            return Err(RequestError::Closed);
        }
        match tokio::time::timeout(within, rx).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(_)) => Err(RequestError::Closed),
            Err(_) => {
                self.pending.lock().unwrap().remove(&id);
                Err(RequestError::Timeout)
            }
        }
    }

    /// Sends any text, valid or not; an error reply then arrives as an event.
    pub fn send_raw(&self, text: &str) {
        self.out.send(text.to_owned()).expect("socket open");
    }

    pub async fn join(&mut self, room_id: i64) -> ServerMessage {
        let reply = self.request(|id| ClientMessage::Join { id, room_id }).await;
        self.note_joined(&reply);
        reply
    }

    /// `join`, waiting at most `within` for the reply.
    pub async fn try_join(
        &mut self,
        room_id: i64,
        within: Duration,
    ) -> Result<ServerMessage, RequestError> {
        let reply = self
            .try_request(|id| ClientMessage::Join { id, room_id }, within)
            .await?;
        self.note_joined(&reply);
        Ok(reply)
    }

    fn note_joined(&mut self, reply: &ServerMessage) {
        if let ServerMessage::Joined { participant_id, .. } = reply {
            self.participant_id = *participant_id;
        }
    }

    /// Publishes synthetic VP8 video of the default shape and Opus audio (50 packets/s of 100
    /// bytes). Returns the server's reply to the offer.
    pub async fn publish(&mut self) -> ServerMessage {
        self.publish_shaped(VideoShape::default()).await
    }

    pub async fn publish_shaped(&mut self, shape: VideoShape) -> ServerMessage {
        self.publish_throttled(shape.into(), Throttle::default())
            .await
    }

    /// Publishes the video as three simulcast layers (`simulcast.rs`), and audio.
    pub async fn publish_simulcast(&mut self) -> ServerMessage {
        self.publish_throttled(Video::Simulcast, Throttle::default())
            .await
    }

    /// Publishes `video` and audio at the pace `throttle` sets (full, or a trickle until
    /// released).
    pub async fn publish_throttled(&mut self, video: Video, throttle: Throttle) -> ServerMessage {
        let handler = Arc::new(Events {
            target: Target::Publisher,
            out: self.out.clone(),
            inbox: Arc::default(),
            remotes: Arc::default(),
        });
        let servers = self.relay.lock().unwrap().clone();
        let pc = new_pc_relayed(handler, &self.bind, servers)
            .await
            .expect("a peer connection for publishing");
        let tracks = Tracks::add_to(&pc, video).await.expect("tracks to publish");
        let offer = pc.create_offer(None).await.unwrap();
        pc.set_local_description(offer).await.unwrap();
        let sdp = pc.local_description().await.unwrap().sdp;
        *self.publisher.lock().unwrap() = Some(pc.clone());
        let reply = self
            .request(|id| ClientMessage::Offer {
                id,
                sdp,
                sources: Default::default(),
            })
            .await;
        let ServerMessage::Answer { sdp, .. } = &reply else {
            return reply;
        };
        pc.set_remote_description(RTCSessionDescription::answer(sdp.clone()).unwrap())
            .await
            .unwrap();
        let counters = Counters {
            throttle,
            sent: self.sent.clone(),
            plis: self.plis.clone(),
        };
        let tasks = tracks
            .start(&pc, counters)
            .await
            .expect("the negotiated tracks start");
        self.tasks.extend(tasks);
        reply
    }

    /// Restarts ICE on both connections, as a browser does after a network change: the
    /// publisher re-offers with new credentials, and the server is asked to re-offer the
    /// subscriber connection (answered as any offer). Returns the replies to both requests.
    pub async fn ice_restart(&mut self) -> (Option<ServerMessage>, ServerMessage) {
        let publisher = self.publisher.lock().unwrap().clone();
        let mut published = None;
        if let Some(pc) = publisher {
            let options = RTCOfferOptions { ice_restart: true };
            let offer = pc.create_offer(Some(options)).await.unwrap();
            pc.set_local_description(offer).await.unwrap();
            let sdp = pc.local_description().await.unwrap().sdp;
            let reply = self
                .request(|id| ClientMessage::Offer {
                    id,
                    sdp,
                    sources: Default::default(),
                })
                .await;
            if let ServerMessage::Answer { sdp, .. } = &reply {
                pc.set_remote_description(RTCSessionDescription::answer(sdp.clone()).unwrap())
                    .await
                    .unwrap();
            }
            published = Some(reply);
        }
        let subscribed = self.request(|id| ClientMessage::IceRestart { id }).await;
        (published, subscribed)
    }

    /// The next event matching `want`, skipping others, within `timeout`.
    pub async fn wait_for(
        &mut self,
        timeout: Duration,
        mut want: impl FnMut(&ServerMessage) -> bool,
    ) -> Option<ServerMessage> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(event)) if want(&event) => return Some(event),
                Ok(Some(_)) => continue,
                _ => return None,
            }
        }
    }

    /// Chooses what video this connection receives (docs/signalling.md, "Simulcast and
    /// quality"); the server answers `ok`, then tells what arrives with a `reception` event.
    pub async fn set_quality(&mut self, quality: Quality) -> ServerMessage {
        self.request(|id| ClientMessage::Quality { id, quality })
            .await
    }

    /// Sends a keyframe request (PLI) for a received track, as a browser does after a loss.
    pub async fn request_keyframe(&self, track_id: &str) -> Result<(), String> {
        let remote = self
            .remotes
            .lock()
            .unwrap()
            .get(track_id)
            .cloned()
            .ok_or("no such received track")?;
        let media_ssrc = *remote
            .ssrcs()
            .await
            .first()
            .ok_or("the track has no SSRC")?;
        let pli = rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication {
            sender_ssrc: 0,
            media_ssrc,
        };
        remote
            .write_rtcp(vec![Box::new(pli)])
            .await
            .map_err(|e| e.to_string())
    }

    pub fn publisher_connection(&self) -> Option<Arc<dyn webrtc::peer_connection::PeerConnection>> {
        self.publisher.lock().unwrap().clone()
    }

    pub fn received(&self) -> HashMap<String, Received> {
        self.inbox.lock().unwrap().clone()
    }

    /// The counts of every received track, without copying what was seen: cheap enough to
    /// take for hundreds of participants every second.
    pub fn tallies(&self) -> Vec<Tally> {
        tallies(&self.inbox)
    }

    /// Drops everything at once, as a crashing browser would: no `leave`, no close handshake.
    pub async fn vanish(mut self) {
        for task in self.tasks.drain(..) {
            task.abort();
        }
        self.reader.abort();
        let publisher = self.publisher.lock().unwrap().take();
        if let Some(pc) = publisher {
            let _ = pc.close().await;
        }
        let subscriber = self.subscriber.lock().unwrap().take();
        if let Some(pc) = subscriber {
            let _ = pc.close().await;
        }
    }

    /// Leaves politely and closes everything.
    pub async fn leave(mut self) {
        let _ = self.request(|id| ClientMessage::Leave { id }).await;
        self.vanish().await;
    }

    /// Leaves politely, waiting at most `within` for the server's reply (it may have let
    /// this participant go already), and closes everything.
    pub async fn quit(mut self, within: Duration) {
        let _ = self
            .try_request(|id| ClientMessage::Leave { id }, within)
            .await;
        self.vanish().await;
    }
}
