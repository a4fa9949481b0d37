//! A participant speaking Homeroom's signalling: one WebSocket (TLS, cookie or guest token),
//! a publisher connection sending synthetic media and a subscriber connection that answers
//! the server's offers and checks every packet it receives. Tests and the load tool use it.
//! It can restart ICE on both connections (`ice_restart`) and, for tests, stop answering
//! subscriber offers (`answering`) or connect only through a TURN relay (`connect_relayed`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use rtc::peer_connection::configuration::RTCOfferOptions;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionEventHandler, RTCPeerConnectionIceEvent, RTCSessionDescription,
};

use super::media::{
    new_pc_relayed, publisher_tracks, receive, start_sending, Inbox, Received, VideoShape,
};
use crate::config::IceServer;
use crate::sfu::peer::candidate_init;
use crate::signal::protocol::{Candidate, ClientMessage, ServerMessage, Target};

pub struct Participant {
    out: mpsc::UnboundedSender<String>,
    pending: Arc<Mutex<HashMap<u64, oneshot::Sender<ServerMessage>>>>,
    pub events: mpsc::UnboundedReceiver<ServerMessage>,
    next_id: u64,
    publisher: Arc<Mutex<Option<Arc<dyn PeerConnection>>>>,
    pub subscriber: Arc<Mutex<Option<Arc<dyn PeerConnection>>>>,
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

/// Chooses, from the ICE servers `joined` hands out, the TURN servers a relay-only
/// participant uses (e.g. only the TCP one).
pub type RelayPick = Arc<dyn Fn(&[IceServer]) -> Vec<IceServer> + Send + Sync>;

/// The picked servers once `joined` came (`None` inside: not relay-only).
type Relay = Arc<Mutex<Option<Vec<IceServer>>>>;

struct Events {
    target: Target,
    out: mpsc::UnboundedSender<String>,
    inbox: Inbox,
    remotes: Remotes,
}

/// Received tracks by track id, to send feedback (keyframe requests) on them.
type Remotes = Arc<Mutex<HashMap<String, Arc<dyn TrackRemote>>>>;

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Events {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        if let Ok(init) = event.candidate.to_json() {
            let candidate = Candidate {
                candidate: init.candidate,
                sdp_mid: init.sdp_mid,
                sdp_mline_index: init.sdp_mline_index,
            };
            let message = ClientMessage::Candidate {
                id: 0,
                target: self.target,
                candidate,
            };
            let _ = self.out.send(serde_json::to_string(&message).unwrap());
        }
    }

    async fn on_track(&self, remote: Arc<dyn TrackRemote>) {
        let track_id = remote.track_id().await.to_string();
        self.remotes
            .lock()
            .unwrap()
            .insert(track_id, remote.clone());
        tokio::spawn(receive(remote, self.inbox.clone()));
    }
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
        let relay: Relay = Arc::default();
        let ws_base = base.replacen("https://", "wss://", 1);
        let url = match credential {
            Credential::Token(token) => format!("{ws_base}/api/v1/ws?token={token}"),
            Credential::Cookie(_) => format!("{ws_base}/api/v1/ws"),
        };
        let mut request = url.into_client_request().map_err(|e| e.to_string())?;
        if let Credential::Cookie(cookie) = credential {
            request.headers_mut().insert(
                "cookie",
                format!("homeroom_session={cookie}").parse().unwrap(),
            );
        }
        let connector = tokio_tungstenite::Connector::Rustls(tls);
        let (socket, _) =
            tokio_tungstenite::connect_async_tls_with_config(request, None, false, Some(connector))
                .await
                .map_err(|e| format!("signalling socket: {e}"))?;
        let (mut sink, mut stream) = socket.split();
        let (out, mut out_rx) = mpsc::unbounded_channel::<String>();
        let (events_tx, events) = mpsc::unbounded_channel();
        let pending: Arc<Mutex<HashMap<u64, oneshot::Sender<ServerMessage>>>> = Arc::default();
        let subscriber: Arc<Mutex<Option<Arc<dyn PeerConnection>>>> = Arc::default();
        let publisher: Arc<Mutex<Option<Arc<dyn PeerConnection>>>> = Arc::default();
        let inbox: Inbox = Arc::default();
        let remotes: Remotes = Arc::default();
        tokio::spawn(async move {
            while let Some(text) = out_rx.recv().await {
                if sink.send(Message::Text(text.into())).await.is_err() {
                    break;
                }
            }
            let _ = sink.close().await;
        });
        // A ping every 10 s, as the pages send: the server closes a socket silent for 30 s.
        let keepalive = tokio::spawn({
            let out = out.clone();
            async move {
                let mut every = tokio::time::interval(Duration::from_secs(10));
                every.tick().await;
                loop {
                    every.tick().await;
                    let ping = serde_json::to_string(&ClientMessage::Ping { id: 0 }).unwrap();
                    if out.send(ping).is_err() {
                        break;
                    }
                }
            }
        });
        // Offers are answered in order by their own task, so reading never waits on media work.
        let (offers_tx, mut offers_rx) = mpsc::unbounded_channel::<String>();
        let bind = bind.to_owned();
        let offers: Arc<Mutex<Vec<String>>> = Arc::default();
        let answering = Arc::new(AtomicBool::new(true));
        let negotiator = tokio::spawn({
            let relay = relay.clone();
            let subscriber = subscriber.clone();
            let remotes = remotes.clone();
            let bind = bind.clone();
            let out = out.clone();
            let inbox = inbox.clone();
            let offers = offers.clone();
            let answering = answering.clone();
            async move {
                while let Some(sdp) = offers_rx.recv().await {
                    offers.lock().unwrap().push(sdp.clone());
                    if !answering.load(Ordering::Relaxed) {
                        continue;
                    }
                    let existing = subscriber.lock().unwrap().clone();
                    let pc = match existing {
                        Some(pc) => pc,
                        None => {
                            let handler = Arc::new(Events {
                                target: Target::Subscriber,
                                out: out.clone(),
                                inbox: inbox.clone(),
                                remotes: remotes.clone(),
                            });
                            let servers = relay.lock().unwrap().clone();
                            let pc = new_pc_relayed(handler, &bind, servers).await;
                            *subscriber.lock().unwrap() = Some(pc.clone());
                            pc
                        }
                    };
                    pc.set_remote_description(RTCSessionDescription::offer(sdp).unwrap())
                        .await
                        .unwrap();
                    let answer = pc.create_answer(None).await.unwrap();
                    pc.set_local_description(answer).await.unwrap();
                    let sdp = pc.local_description().await.unwrap().sdp;
                    let _ = out.send(
                        serde_json::to_string(&ClientMessage::Answer { id: 0, sdp }).unwrap(),
                    );
                }
            }
        });
        let reader = tokio::spawn({
            let relay = relay.clone();
            let pending = pending.clone();
            let subscriber = subscriber.clone();
            let publisher = publisher.clone();
            async move {
                loop {
                    let message = match stream.next().await {
                        Some(Ok(message)) => message,
                        Some(Err(_)) | None => break,
                    };
                    let Message::Text(text) = message else {
                        continue;
                    };
                    let message: ServerMessage =
                        serde_json::from_str(&text).expect("server speaks the protocol");
                    // Before any offer is read: the subscriber connection needs the servers.
                    if let (ServerMessage::Joined { ice_servers, .. }, Some(pick)) =
                        (&message, &pick)
                    {
                        *relay.lock().unwrap() = Some(pick(ice_servers));
                    }
                    let id = match &message {
                        ServerMessage::Joined { id, .. }
                        | ServerMessage::Answer { id, .. }
                        | ServerMessage::Ok { id }
                        | ServerMessage::Pong { id } => Some(*id),
                        ServerMessage::Error { id, .. } => *id,
                        _ => None,
                    };
                    if let Some(waiter) = id.and_then(|id| pending.lock().unwrap().remove(&id)) {
                        let _ = waiter.send(message);
                        continue;
                    }
                    match message {
                        ServerMessage::Offer { sdp } => {
                            let _ = offers_tx.send(sdp);
                        }
                        ServerMessage::Candidate { target, candidate } => {
                            let pc = match target {
                                Target::Subscriber => subscriber.lock().unwrap().clone(),
                                Target::Publisher => publisher.lock().unwrap().clone(),
                            };
                            if let Some(pc) = pc {
                                // The answer may still be being applied; candidates wait for it.
                                tokio::spawn(async move {
                                    for _ in 0..200 {
                                        if pc.remote_description().await.is_some() {
                                            let _ = pc
                                                .add_ice_candidate(candidate_init(candidate))
                                                .await;
                                            return;
                                        }
                                        tokio::time::sleep(Duration::from_millis(10)).await;
                                    }
                                });
                            }
                        }
                        other => {
                            let _ = events_tx.send(other);
                        }
                    }
                }
            }
        });
        Ok(Participant {
            out,
            pending,
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

    /// Sends a request and waits for the reply that echoes its id.
    pub async fn request(&mut self, make: impl FnOnce(u64) -> ClientMessage) -> ServerMessage {
        let id = self.next_id;
        self.next_id += 1;
        let (tx, rx) = oneshot::channel();
        self.pending.lock().unwrap().insert(id, tx);
        let text = serde_json::to_string(&make(id)).unwrap();
        self.send_raw(&text);
        let summary: String = text.chars().take(80).collect();
        match tokio::time::timeout(Duration::from_secs(10), rx).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(_)) => panic!("the socket closed before answering {summary}"),
            Err(_) => panic!(
                "no reply within 10 s to {summary} (participant {})",
                self.participant_id
            ),
        }
    }

    /// Sends any text, valid or not; an error reply then arrives as an event.
    pub fn send_raw(&self, text: &str) {
        self.out.send(text.to_owned()).expect("socket open");
    }

    pub async fn join(&mut self, room_id: i64) -> ServerMessage {
        let reply = self.request(|id| ClientMessage::Join { id, room_id }).await;
        if let ServerMessage::Joined { participant_id, .. } = &reply {
            self.participant_id = *participant_id;
        }
        reply
    }

    /// Publishes synthetic VP8 video of the given shape and Opus audio (50 packets/s of 100
    /// bytes). Returns the server's reply to the offer.
    pub async fn publish(&mut self) -> ServerMessage {
        self.publish_shaped(VideoShape::default()).await
    }

    pub async fn publish_shaped(&mut self, shape: VideoShape) -> ServerMessage {
        let handler = Arc::new(Events {
            target: Target::Publisher,
            out: self.out.clone(),
            inbox: Arc::default(),
            remotes: Arc::default(),
        });
        let servers = self.relay.lock().unwrap().clone();
        let pc = new_pc_relayed(handler, &self.bind, servers).await;
        let (video, audio) = publisher_tracks();
        let video_sender = pc
            .add_track(video.clone() as Arc<dyn TrackLocal>)
            .await
            .unwrap();
        let audio_sender = pc
            .add_track(audio.clone() as Arc<dyn TrackLocal>)
            .await
            .unwrap();
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
        let video_pt = video_sender
            .get_parameters()
            .await
            .unwrap()
            .rtp_parameters
            .codecs[0]
            .payload_type;
        let audio_pt = audio_sender
            .get_parameters()
            .await
            .unwrap()
            .rtp_parameters
            .codecs[0]
            .payload_type;
        self.tasks.extend(start_sending(
            video,
            video_pt,
            audio,
            audio_pt,
            shape,
            self.sent.clone(),
            self.plis.clone(),
        ));
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

    /// The publisher connection, once `publish` made it.
    pub fn publisher_connection(&self) -> Option<Arc<dyn PeerConnection>> {
        self.publisher.lock().unwrap().clone()
    }

    pub fn received(&self) -> HashMap<String, Received> {
        self.inbox.lock().unwrap().clone()
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
}
