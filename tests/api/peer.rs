//! A headless WebRTC participant for tests: our signalling over a real WebSocket (TLS,
//! cookie or guest token), a real webrtc-rs publisher sending synthetic VP8 and Opus whose
//! payloads carry a sequence number and a checksum, and a subscriber that checks every packet.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use homeroom::signal::protocol::{Candidate, ClientMessage, ServerMessage, Target};
use rtc::media_stream::MediaStreamTrack;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::media_stream::Track;
use webrtc::peer_connection::{
    register_default_interceptors, MediaEngine, PeerConnection, PeerConnectionBuilder,
    PeerConnectionEventHandler, RTCIceCandidateInit, RTCPeerConnectionIceEvent,
    RTCSessionDescription, Registry, SettingEngineBuilder,
};

use crate::helpers::TestApp;

/// What one received track delivered.
#[derive(Debug, Default, Clone)]
pub struct Received {
    pub kind: String,
    pub packets: u64,
    pub intact: u64,
    /// Sequence numbers written into payloads by the test publisher, seen at least once.
    pub distinct: std::collections::BTreeSet<u32>,
}

/// Receive-side statistics, by track id.
pub type Inbox = Arc<Mutex<HashMap<String, Received>>>;

pub struct TestPeer {
    out: mpsc::UnboundedSender<String>,
    pending: Arc<Mutex<HashMap<u64, oneshot::Sender<ServerMessage>>>>,
    pub events: mpsc::UnboundedReceiver<ServerMessage>,
    next_id: u64,
    publisher: Arc<Mutex<Option<Arc<dyn PeerConnection>>>>,
    pub subscriber: Arc<Mutex<Option<Arc<dyn PeerConnection>>>>,
    pub inbox: Inbox,
    /// When each keyframe request reached this peer's publisher.
    pub plis: Arc<Mutex<Vec<Instant>>>,
    /// Packets sent per kind by this peer's publisher.
    pub sent: Arc<[AtomicU64; 2]>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    pub participant_id: u64,
    reader: tokio::task::JoinHandle<()>,
}

/// A payload: 4 bytes of sequence number, 4 of checksum over the rest, then filler.
pub fn make_payload(seq: u32, len: usize) -> Vec<u8> {
    let mut payload = vec![0u8; len.max(16)];
    for (i, b) in payload.iter_mut().enumerate().skip(8) {
        *b = (seq as usize).wrapping_mul(31).wrapping_add(i) as u8;
    }
    payload[..4].copy_from_slice(&seq.to_be_bytes());
    let sum = checksum(&payload[8..]);
    payload[4..8].copy_from_slice(&sum.to_be_bytes());
    payload
}

fn checksum(bytes: &[u8]) -> u32 {
    bytes
        .iter()
        .fold(2166136261u32, |h, b| (h ^ *b as u32).wrapping_mul(16777619))
}

/// The sequence number of an intact payload.
pub fn check_payload(payload: &[u8]) -> Option<u32> {
    if payload.len() < 16 {
        return None;
    }
    let seq = u32::from_be_bytes(payload[..4].try_into().unwrap());
    let sum = u32::from_be_bytes(payload[4..8].try_into().unwrap());
    (checksum(&payload[8..]) == sum).then_some(seq)
}

struct Events {
    target: Target,
    out: mpsc::UnboundedSender<String>,
    inbox: Inbox,
}

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
        let kind = format!("{:?}", remote.kind().await).to_lowercase();
        self.inbox
            .lock()
            .unwrap()
            .entry(track_id.clone())
            .or_default()
            .kind = kind;
        let inbox = self.inbox.clone();
        tokio::spawn(async move {
            while let Some(event) = remote.poll().await {
                if let TrackRemoteEvent::OnRtpPacket(packet) = event {
                    let mut inbox = inbox.lock().unwrap();
                    let entry = inbox.entry(track_id.clone()).or_default();
                    entry.packets += 1;
                    if let Some(seq) = check_payload(&packet.payload) {
                        entry.intact += 1;
                        entry.distinct.insert(seq);
                    }
                }
            }
        });
    }
}

async fn new_pc(handler: Arc<dyn PeerConnectionEventHandler>) -> Arc<dyn PeerConnection> {
    let mut media = MediaEngine::default();
    media.register_default_codecs().unwrap();
    let registry = homeroom::sfu::keyframe_requests::register(
        register_default_interceptors(Registry::new(), &mut media).unwrap(),
    );
    let settings = SettingEngineBuilder::new()
        .with_include_loopback_candidate(true)
        .build();
    Arc::new(
        PeerConnectionBuilder::new()
            .with_media_engine(media)
            .with_interceptor_registry(registry)
            .with_setting_engine(settings)
            .with_handler(handler)
            .with_udp_addrs(vec!["127.0.0.1:0"])
            .build()
            .await
            .unwrap(),
    )
}

/// How a test peer signs in to the socket.
pub enum Credential<'a> {
    Cookie(&'a str),
    Token(&'a str),
}

impl TestPeer {
    /// Opens the signalling socket.
    pub async fn connect(app: &TestApp, credential: Credential<'_>) -> TestPeer {
        let ws_base = app.base.replacen("https://", "wss://", 1);
        let url = match credential {
            Credential::Token(token) => format!("{ws_base}/api/v1/ws?token={token}"),
            Credential::Cookie(_) => format!("{ws_base}/api/v1/ws"),
        };
        let mut request = url.into_client_request().unwrap();
        if let Credential::Cookie(cookie) = credential {
            request.headers_mut().insert(
                "cookie",
                format!("homeroom_session={cookie}").parse().unwrap(),
            );
        }
        let pem = std::fs::read(app.workspace.path().join("certs/self-signed.crt")).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
            roots.add(cert.unwrap()).unwrap();
        }
        let _ = rustls::crypto::ring::default_provider().install_default();
        let tls = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = tokio_tungstenite::Connector::Rustls(Arc::new(tls));
        let (socket, _) =
            tokio_tungstenite::connect_async_tls_with_config(request, None, false, Some(connector))
                .await
                .expect("signalling socket");
        let (mut sink, mut stream) = socket.split();
        let (out, mut out_rx) = mpsc::unbounded_channel::<String>();
        let (events_tx, events) = mpsc::unbounded_channel();
        let pending: Arc<Mutex<HashMap<u64, oneshot::Sender<ServerMessage>>>> = Arc::default();
        let subscriber: Arc<Mutex<Option<Arc<dyn PeerConnection>>>> = Arc::default();
        let publisher: Arc<Mutex<Option<Arc<dyn PeerConnection>>>> = Arc::default();
        let inbox: Inbox = Arc::default();
        tokio::spawn(async move {
            while let Some(text) = out_rx.recv().await {
                if sink.send(Message::Text(text.into())).await.is_err() {
                    break;
                }
            }
            let _ = sink.close().await;
        });
        // Offers are answered in order by their own task, so reading never waits on media work.
        let (offers_tx, mut offers_rx) = mpsc::unbounded_channel::<String>();
        let negotiator = tokio::spawn({
            let subscriber = subscriber.clone();
            let out = out.clone();
            let inbox = inbox.clone();
            async move {
                while let Some(sdp) = offers_rx.recv().await {
                    let existing = subscriber.lock().unwrap().clone();
                    let pc = match existing {
                        Some(pc) => pc,
                        None => {
                            let handler = Arc::new(Events {
                                target: Target::Subscriber,
                                out: out.clone(),
                                inbox: inbox.clone(),
                            });
                            let pc = new_pc(handler).await;
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
                                            let _ = pc.add_ice_candidate(to_init(candidate)).await;
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
        TestPeer {
            out,
            pending,
            events,
            next_id: 1,
            publisher,
            subscriber,
            inbox,
            plis: Arc::default(),
            sent: Arc::new([AtomicU64::new(0), AtomicU64::new(0)]),
            tasks: vec![negotiator],
            participant_id: 0,
            reader,
        }
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

    /// Publishes synthetic VP8 video (30 fps, `packets_per_frame` packets of ~1000 bytes) and
    /// Opus audio (50 packets/s of 100 bytes). Returns the server's reply to the offer.
    pub async fn publish(&mut self) -> ServerMessage {
        let handler = Arc::new(Events {
            target: Target::Publisher,
            out: self.out.clone(),
            inbox: Arc::default(),
        });
        let pc = new_pc(handler).await;
        let video = local_track("video/VP8", 90000, 0, RtpCodecKind::Video);
        let audio = local_track("audio/opus", 48000, 2, RtpCodecKind::Audio);
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
        let sent = self.sent.clone();
        self.tasks.push(tokio::spawn(send_media(
            video.clone(),
            video_pt,
            90000 / 30,
            Duration::from_millis(33),
            3,
            1000,
            sent.clone(),
            1,
        )));
        self.tasks.push(tokio::spawn(send_media(
            audio,
            audio_pt,
            960,
            Duration::from_millis(20),
            1,
            100,
            sent,
            0,
        )));
        let plis = self.plis.clone();
        self.tasks.push(tokio::spawn(async move {
            while let Some(TrackLocalEvent::OnRtcpPacket(_)) = video.poll().await {
                plis.lock().unwrap().push(Instant::now());
            }
        }));
        reply
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

fn to_init(candidate: Candidate) -> RTCIceCandidateInit {
    RTCIceCandidateInit {
        candidate: candidate.candidate,
        sdp_mid: candidate.sdp_mid,
        sdp_mline_index: candidate.sdp_mline_index,
        ..Default::default()
    }
}

fn local_track(
    mime: &str,
    clock_rate: u32,
    channels: u16,
    kind: RtpCodecKind,
) -> Arc<TrackLocalStaticRTP> {
    let ssrc: u32 = rand::random();
    let codec = RTCRtpCodec {
        mime_type: mime.into(),
        clock_rate,
        channels,
        ..Default::default()
    };
    Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
        format!("stream-{ssrc}"),
        format!("track-{ssrc}"),
        format!("track-{ssrc}"),
        kind,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                ..Default::default()
            },
            codec,
            ..Default::default()
        }],
    )))
}

/// Sends frames of `per_frame` packets every `interval`; the last packet of a frame has the
/// marker bit, and timestamps advance by `ticks` per frame.
#[allow(clippy::too_many_arguments)]
async fn send_media(
    track: Arc<TrackLocalStaticRTP>,
    payload_type: u8,
    ticks: u32,
    interval: Duration,
    per_frame: usize,
    size: usize,
    sent: Arc<[AtomicU64; 2]>,
    slot: usize,
) {
    let ssrc = track.ssrcs().await.first().copied().unwrap();
    let mut tick = tokio::time::interval(interval);
    let (mut seq, mut timestamp, mut counter) =
        (rand::random::<u16>(), rand::random::<u32>(), 0u32);
    loop {
        tick.tick().await;
        for i in 0..per_frame {
            let packet = rtp::Packet {
                header: rtp::header::Header {
                    version: 2,
                    payload_type,
                    sequence_number: seq,
                    timestamp,
                    ssrc,
                    marker: i + 1 == per_frame,
                    ..Default::default()
                },
                payload: make_payload(counter, size).into(),
            };
            seq = seq.wrapping_add(1);
            counter += 1;
            if track.write_rtp(packet).await.is_ok() {
                sent[slot].fetch_add(1, Ordering::Relaxed);
            }
        }
        timestamp = timestamp.wrapping_add(ticks);
    }
}
