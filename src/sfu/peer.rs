//! One participant's media: a publisher connection that the client offers (its camera,
//! microphone and screen come in here) and a subscriber connection that the server offers and
//! offers again whenever tracks come and go. Two connections, so neither side ever has to
//! resolve offer glare.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rtc::media_stream::MediaStreamTrack;
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionEventHandler, RTCIceCandidateInit, RTCPeerConnectionIceEvent,
    RTCPeerConnectionState, RTCSessionDescription,
};
use webrtc::rtp_transceiver::RtpSender;

use super::media::{Connection, MediaError, MediaSettings};
use super::room::{Command, PeerCommand, RoomHandle};
use super::track::{Published, Sink, SUBSCRIBER_QUEUE};
use crate::signal::error::SignalError;
use crate::signal::protocol::{Candidate, MediaKind, ServerMessage, Source, Target};

/// Counts live peer connections, so tests and metrics can see that none leak.
pub static OPEN_CONNECTIONS: AtomicU64 = AtomicU64::new(0);

/// Events from the webrtc stack, turned into messages and commands.
struct Events {
    target: Target,
    participant_id: u64,
    outbox: mpsc::Sender<ServerMessage>,
    room: RoomHandle,
    /// What the client said each of its tracks shows, keyed by its track id.
    sources: Arc<Mutex<BTreeMap<String, Source>>>,
    /// Publisher side: our track id for each of the client's track ids.
    published: Arc<Mutex<BTreeMap<String, String>>>,
    /// Subscriber side: told when the connection is up, to ask for fresh keyframes.
    connected: Option<mpsc::UnboundedSender<()>>,
    /// Told the first time the connection comes up (awaited by `drop_if_never_connected`).
    first_up: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
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
            let _ = self.outbox.try_send(ServerMessage::Candidate {
                target: self.target,
                candidate,
            });
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        tracing::debug!(participant_id = self.participant_id, target = ?self.target, %state, "connection state");
        match state {
            RTCPeerConnectionState::Connected => {
                if let Some(first_up) = self.first_up.lock().expect("first_up lock").take() {
                    let _ = first_up.send(());
                }
                if let Some(connected) = &self.connected {
                    let _ = connected.send(());
                }
            }
            // A publisher whose media is gone has left as far as the audience is concerned.
            RTCPeerConnectionState::Failed if self.target == Target::Publisher => {
                let _ = self
                    .room
                    .send(Command::Leave {
                        participant_id: self.participant_id,
                        reason: "connection_failed",
                    })
                    .await;
            }
            _ => {}
        }
    }

    async fn on_track(&self, remote: Arc<dyn TrackRemote>) {
        if self.target != Target::Publisher {
            return;
        }
        let Some(media_ssrc) = remote.ssrcs().await.first().copied() else {
            return;
        };
        let Some(codec) = remote.codec(media_ssrc).await else {
            return;
        };
        let kind = match remote.kind().await {
            RtpCodecKind::Audio => MediaKind::Audio,
            _ => MediaKind::Video,
        };
        let client_track_id = remote.track_id().await.to_string();
        let source = self
            .sources
            .lock()
            .expect("sources lock")
            .get(&client_track_id)
            .copied()
            .unwrap_or(match kind {
                MediaKind::Audio => Source::Microphone,
                MediaKind::Video => Source::Camera,
            });
        let id = format!("{}-{}", self.participant_id, short_id());
        self.published
            .lock()
            .expect("published lock")
            .insert(client_track_id.clone(), id.clone());
        let track = Published::new(
            id.clone(),
            self.participant_id,
            kind,
            source,
            codec,
            media_ssrc,
            remote,
        );
        tracing::info!(participant_id = self.participant_id, track = %id, ?kind, "track published");
        if self
            .room
            .send(Command::Published {
                track: track.clone(),
            })
            .await
            .is_err()
        {
            return;
        }
        let room = self.room.clone();
        let participant_id = self.participant_id;
        tokio::spawn(async move {
            track.forward().await;
            let _ = room
                .send(Command::Unpublished {
                    participant_id,
                    track_id: id,
                })
                .await;
        });
    }
}

/// The client track ids (`a=msid:<stream> <track>`) of the media sections an offer sends on.
fn sending_track_ids(sdp: &str) -> std::collections::BTreeSet<String> {
    let mut ids = std::collections::BTreeSet::new();
    for section in sdp.split("\nm=").skip(1) {
        let rejected = section.split_whitespace().nth(1) == Some("0");
        let mut sends = true;
        let mut track = None;
        for line in section.lines().map(str::trim_end) {
            match line {
                "a=recvonly" | "a=inactive" => sends = false,
                _ => {
                    if let Some(msid) = line.strip_prefix("a=msid:") {
                        track = msid.split_whitespace().nth(1).map(str::to_owned);
                    }
                }
            }
        }
        if let (false, true, Some(track)) = (rejected, sends, track) {
            ids.insert(track);
        }
    }
    ids
}

/// Drops the participant when its new connection has not come up within the media connect
/// timeout: a client that joins and never completes ICE/DTLS must not hold a port. The
/// participant is told `kicked` (`media_timeout`), which closes its socket (or ends its WHIP
/// session), and the room lets it go, which closes its connections.
fn drop_if_never_connected(
    timeout: std::time::Duration,
    up: tokio::sync::oneshot::Receiver<()>,
    participant_id: u64,
    outbox: mpsc::Sender<ServerMessage>,
    room: RoomHandle,
) {
    tokio::spawn(async move {
        // Ends as soon as the connection is up, or closed, or the participant gone.
        tokio::select! {
            _ = up => return,
            _ = outbox.closed() => return,
            _ = tokio::time::sleep(timeout) => {}
        }
        tracing::info!(participant_id, "media connection never came up; dropping");
        let _ = outbox.try_send(ServerMessage::Kicked {
            reason: "media_timeout".into(),
        });
        let _ = room
            .send(Command::Leave {
                participant_id,
                reason: "media_timeout",
            })
            .await;
    });
}

fn short_id() -> String {
    format!("{:08x}", rand::random::<u32>())
}

/// A participant's two connections, driven by its signalling connection.
pub struct PeerMedia {
    participant_id: u64,
    settings: Arc<MediaSettings>,
    outbox: mpsc::Sender<ServerMessage>,
    room: RoomHandle,
    publisher: Option<Connection>,
    sources: Arc<Mutex<BTreeMap<String, Source>>>,
    published: Arc<Mutex<BTreeMap<String, String>>>,
    subscriber: mpsc::UnboundedSender<SubscriberInput>,
    subscriber_task: JoinHandle<()>,
    start: Option<tokio::sync::oneshot::Sender<()>>,
    /// The audio-only switch, shared with every sink of this participant.
    pub audio_only: Arc<AtomicBool>,
}

/// What the subscriber side is fed: the room's commands and the client's answers.
enum SubscriberInput {
    Room(PeerCommand),
    /// The client's answer and the id of its message, which the reply echoes.
    Answer(u64, String),
    Candidate(RTCIceCandidateInit),
}

impl PeerMedia {
    /// Creates the media side; returns the sender the room uses to reach it.
    pub fn new(
        participant_id: u64,
        settings: Arc<MediaSettings>,
        outbox: mpsc::Sender<ServerMessage>,
        room: RoomHandle,
    ) -> (PeerMedia, mpsc::UnboundedSender<PeerCommand>) {
        let (room_tx, mut room_rx) = mpsc::unbounded_channel::<PeerCommand>();
        let (input_tx, input_rx) = mpsc::unbounded_channel();
        // Room commands join the subscriber's single input queue, so they stay ordered with
        // the client's answers.
        let forward_input = input_tx.clone();
        tokio::spawn(async move {
            while let Some(command) = room_rx.recv().await {
                if forward_input.send(SubscriberInput::Room(command)).is_err() {
                    break;
                }
            }
        });
        let audio_only = Arc::new(AtomicBool::new(false));
        let subscriber = Subscriber {
            participant_id,
            settings: settings.clone(),
            outbox: outbox.clone(),
            room: room.clone(),
            audio_only: audio_only.clone(),
            connection: None,
            outputs: HashMap::new(),
            up: Arc::default(),
            awaiting_answer: false,
            renegotiate: false,
        };
        let (start, started) = tokio::sync::oneshot::channel();
        let subscriber_task = tokio::spawn(async move {
            if started.await.is_ok() {
                subscriber.run(input_rx).await;
            }
        });
        let media = PeerMedia {
            participant_id,
            settings,
            outbox,
            room,
            publisher: None,
            sources: Arc::default(),
            published: Arc::default(),
            subscriber: input_tx,
            subscriber_task,
            start: Some(start),
            audio_only,
        };
        (media, room_tx)
    }

    /// Lets the subscriber side begin offering; called once the client knows it has joined.
    pub fn start(&mut self) {
        if let Some(start) = self.start.take() {
            let _ = start.send(());
        }
    }

    /// Answers the client's publisher offer, creating the connection on the first one. With
    /// `all_candidates` the answer waits (briefly) for every local candidate: a WHIP client
    /// gets no trickle from the server, so they must be in the answer.
    pub async fn publish_offer(
        &mut self,
        sdp: String,
        sources: BTreeMap<String, Source>,
        all_candidates: bool,
    ) -> Result<String, MediaError> {
        self.sources.lock().expect("sources lock").extend(sources);
        if self.publisher.is_none() {
            let (first_up, up) = tokio::sync::oneshot::channel();
            let events = Events {
                target: Target::Publisher,
                participant_id: self.participant_id,
                outbox: self.outbox.clone(),
                room: self.room.clone(),
                sources: self.sources.clone(),
                published: self.published.clone(),
                connected: None,
                first_up: Mutex::new(Some(first_up)),
            };
            self.publisher = Some(self.settings.connect(Arc::new(events)).await?);
            OPEN_CONNECTIONS.fetch_add(1, Ordering::Relaxed);
            drop_if_never_connected(
                self.settings.connect_timeout,
                up,
                self.participant_id,
                self.outbox.clone(),
                self.room.clone(),
            );
        }
        let pc = &self.publisher.as_ref().expect("just made").pc;
        let sending = sending_track_ids(&sdp);
        pc.set_remote_description(
            RTCSessionDescription::offer(sdp).map_err(webrtc::error::Error::from)?,
        )
        .await?;
        // A track the client stopped sending (e.g. the end of a screen share) never ends on
        // the webrtc side: its transceiver just goes inactive. Unpublish it here.
        let stopped: Vec<String> = {
            let mut published = self.published.lock().expect("published lock");
            let gone: Vec<String> = published
                .keys()
                .filter(|client_id| !sending.contains(*client_id))
                .cloned()
                .collect();
            gone.iter().filter_map(|k| published.remove(k)).collect()
        };
        for track_id in stopped {
            let _ = self
                .room
                .send(Command::Unpublished {
                    participant_id: self.participant_id,
                    track_id,
                })
                .await;
        }
        let answer = pc.create_answer(None).await?;
        pc.set_local_description(answer).await?;
        let local = match all_candidates {
            true => super::media::gathered_description(pc).await,
            false => pc.local_description().await,
        };
        let local = local.ok_or(MediaError::WebRtc(webrtc::error::Error::Other(
            "no local description".into(),
        )))?;
        Ok(local.sdp)
    }

    /// Hands the client's answer to the subscriber side, which replies to message `id` itself:
    /// the signalling loop never waits for media work.
    pub fn subscriber_answer(&self, id: u64, sdp: String) {
        let _ = self.subscriber.send(SubscriberInput::Answer(id, sdp));
    }

    pub async fn add_candidate(
        &self,
        target: Target,
        candidate: Candidate,
    ) -> Result<(), MediaError> {
        let init = RTCIceCandidateInit {
            candidate: candidate.candidate,
            sdp_mid: candidate.sdp_mid,
            sdp_mline_index: candidate.sdp_mline_index,
            ..Default::default()
        };
        match target {
            Target::Publisher => match &self.publisher {
                Some(connection) => Ok(connection.pc.add_ice_candidate(init).await?),
                None => Ok(()),
            },
            Target::Subscriber => {
                let _ = self.subscriber.send(SubscriberInput::Candidate(init));
                Ok(())
            }
        }
    }

    /// Closes both connections; their ports return to the pool.
    pub async fn close(mut self) {
        // A subscriber side that never started is waiting for this; dropping it ends it.
        self.start.take();
        if let Some(publisher) = self.publisher.take() {
            let _ = publisher.pc.close().await;
            OPEN_CONNECTIONS.fetch_sub(1, Ordering::Relaxed);
        }
        drop(self.subscriber);
        let _ = self.subscriber_task.await;
    }
}

/// One forwarded track on the subscriber connection.
pub(crate) struct Output {
    sender: Arc<dyn RtpSender>,
    pub(crate) published: Arc<Published>,
    /// The payload type the subscriber's connection negotiated for this codec (0: not yet).
    payload_type: Arc<AtomicU16>,
    tasks: [JoinHandle<()>; 2],
}

impl Output {
    /// Adds `published` to a connection that `participant_id` receives on: a local track of its
    /// own SSRC, a writer fed by a bounded queue (written once `up`), and RTCP feedback reading.
    pub(crate) async fn attach(
        pc: &Arc<dyn PeerConnection>,
        published: Arc<Published>,
        participant_id: u64,
        audio_only: Arc<AtomicBool>,
        up: Arc<AtomicBool>,
    ) -> Result<Output, webrtc::error::Error> {
        let ssrc: u32 = rand::random();
        let kind = match published.kind {
            MediaKind::Audio => RtpCodecKind::Audio,
            MediaKind::Video => RtpCodecKind::Video,
        };
        let local = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
            published.participant_id.to_string(),
            published.id.clone(),
            published.id.clone(),
            kind,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(ssrc),
                    ..Default::default()
                },
                codec: published.codec.clone(),
                ..Default::default()
            }],
        )));
        let sender = pc.add_track(local.clone() as Arc<dyn TrackLocal>).await?;
        let (tx, rx) = mpsc::channel(SUBSCRIBER_QUEUE);
        let payload_type = Arc::new(AtomicU16::new(0));
        let writer = tokio::spawn(write_packets(
            rx,
            local.clone(),
            ssrc,
            payload_type.clone(),
            up,
        ));
        let feedback = tokio::spawn(read_feedback(local, published.clone()));
        published.add_sink(Arc::new(Sink::new(participant_id, tx, audio_only)));
        Ok(Output {
            sender,
            published,
            payload_type,
            tasks: [writer, feedback],
        })
    }

    /// After negotiation: learns the payload type this connection chose for the codec, and
    /// asks for a keyframe so the picture starts.
    pub(crate) async fn resolve_payload_type(&self) {
        if self.payload_type.load(Ordering::Relaxed) != 0 {
            return;
        }
        if let Ok(parameters) = self.sender.get_parameters().await {
            let mime = &self.published.codec.mime_type;
            if let Some(codec) = parameters
                .rtp_parameters
                .codecs
                .iter()
                .find(|c| c.rtp_codec.mime_type.eq_ignore_ascii_case(mime))
            {
                self.payload_type
                    .store(codec.payload_type as u16, Ordering::Relaxed);
                self.published.request_keyframe();
            }
        }
    }

    /// Stops forwarding to this participant.
    pub(crate) fn detach(&self, participant_id: u64) {
        self.published.remove_sink(participant_id);
        self.tasks.iter().for_each(JoinHandle::abort);
    }
}

struct Subscriber {
    participant_id: u64,
    settings: Arc<MediaSettings>,
    outbox: mpsc::Sender<ServerMessage>,
    room: RoomHandle,
    audio_only: Arc<AtomicBool>,
    connection: Option<Connection>,
    outputs: HashMap<String, Output>,
    /// The connection is up (DTLS done): packets written before would only be dropped.
    up: Arc<AtomicBool>,
    awaiting_answer: bool,
    renegotiate: bool,
}

impl Subscriber {
    async fn run(mut self, mut input: mpsc::UnboundedReceiver<SubscriberInput>) {
        let (connected_tx, mut connected_rx) = mpsc::unbounded_channel();
        let mut pending_candidates = Vec::new();
        loop {
            tokio::select! {
                item = input.recv() => {
                    let Some(item) = item else { break };
                    let mut changed = false;
                    // Take everything queued: one offer for a burst of track changes.
                    let mut next = Some(item);
                    while let Some(item) = next {
                        match item {
                            SubscriberInput::Room(PeerCommand::Subscribe(track)) => {
                                changed |= self.subscribe(track, &connected_tx).await;
                            }
                            SubscriberInput::Room(PeerCommand::Unsubscribe(track_id)) => {
                                changed |= self.unsubscribe(&track_id).await;
                            }
                            SubscriberInput::Answer(id, sdp) => {
                                let reply = match self.apply_answer(sdp).await {
                                    Ok(()) => {
                                        for candidate in pending_candidates.drain(..) {
                                            self.add_candidate(candidate).await;
                                        }
                                        ServerMessage::Ok { id }
                                    }
                                    Err(e) => SignalError::bad("bad_sdp", format!("the answer was refused: {e}")).to_message(Some(id)),
                                };
                                let _ = self.outbox.try_send(reply);
                            }
                            SubscriberInput::Candidate(candidate) => {
                                if self.awaiting_answer { pending_candidates.push(candidate) } else { self.add_candidate(candidate).await }
                            }
                        }
                        next = input.try_recv().ok();
                    }
                    if changed || (self.renegotiate && !self.awaiting_answer) {
                        self.negotiate().await;
                    }
                }
                Some(()) = connected_rx.recv() => {
                    self.up.store(true, Ordering::Relaxed);
                    for output in self.outputs.values() {
                        output.published.request_keyframe();
                    }
                }
            }
        }
        for (_, output) in self.outputs.drain() {
            output.detach(self.participant_id);
        }
        if let Some(connection) = self.connection.take() {
            let _ = connection.pc.close().await;
            OPEN_CONNECTIONS.fetch_sub(1, Ordering::Relaxed);
        }
    }

    async fn add_candidate(&self, candidate: RTCIceCandidateInit) {
        if let Some(connection) = &self.connection {
            if let Err(e) = connection.pc.add_ice_candidate(candidate).await {
                tracing::debug!(error = %e, "subscriber candidate refused");
            }
        }
    }

    async fn connection(
        &mut self,
        connected: &mpsc::UnboundedSender<()>,
    ) -> Result<&Connection, MediaError> {
        if self.connection.is_none() {
            let (first_up, up) = tokio::sync::oneshot::channel();
            let events = Events {
                target: Target::Subscriber,
                participant_id: self.participant_id,
                outbox: self.outbox.clone(),
                room: self.room.clone(),
                sources: Arc::default(),
                published: Arc::default(),
                connected: Some(connected.clone()),
                first_up: Mutex::new(Some(first_up)),
            };
            self.connection = Some(self.settings.connect(Arc::new(events)).await?);
            OPEN_CONNECTIONS.fetch_add(1, Ordering::Relaxed);
            drop_if_never_connected(
                self.settings.connect_timeout,
                up,
                self.participant_id,
                self.outbox.clone(),
                self.room.clone(),
            );
        }
        Ok(self.connection.as_ref().expect("just made"))
    }

    /// Adds a track to the subscriber connection and starts its writer; true if added.
    async fn subscribe(
        &mut self,
        published: Arc<Published>,
        connected: &mpsc::UnboundedSender<()>,
    ) -> bool {
        if self.outputs.contains_key(&published.id) {
            return false;
        }
        let pc = match self.connection(connected).await {
            Ok(connection) => connection.pc.clone(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot open a subscriber connection");
                let _ = self.outbox.try_send(ServerMessage::Error {
                    id: None,
                    code: "media_unavailable".into(),
                    message: e.to_string(),
                });
                return false;
            }
        };
        let output = Output::attach(
            &pc,
            published.clone(),
            self.participant_id,
            self.audio_only.clone(),
            self.up.clone(),
        )
        .await;
        match output {
            Ok(output) => {
                self.outputs.insert(published.id.clone(), output);
            }
            Err(e) => {
                tracing::warn!(error = %e, track = %published.id, "cannot add a track for a subscriber");
                return false;
            }
        }
        true
    }

    async fn unsubscribe(&mut self, track_id: &str) -> bool {
        let Some(output) = self.outputs.remove(track_id) else {
            return false;
        };
        output.detach(self.participant_id);
        if let Some(connection) = &self.connection {
            if let Err(e) = connection.pc.remove_track(&output.sender).await {
                tracing::debug!(error = %e, "remove_track");
            }
        }
        true
    }

    /// Sends an offer now, or remembers to once the client answers the one in flight.
    async fn negotiate(&mut self) {
        if self.awaiting_answer {
            self.renegotiate = true;
            return;
        }
        let Some(connection) = &self.connection else {
            return;
        };
        let pc = &connection.pc;
        let offer = match pc.create_offer(None).await {
            Ok(offer) => offer,
            Err(e) => {
                tracing::warn!(error = %e, "cannot make a subscriber offer");
                return;
            }
        };
        if let Err(e) = pc.set_local_description(offer).await {
            tracing::warn!(error = %e, "cannot apply the subscriber offer");
            return;
        }
        let Some(local) = pc.local_description().await else {
            return;
        };
        self.awaiting_answer = true;
        self.renegotiate = false;
        let _ = self
            .outbox
            .try_send(ServerMessage::Offer { sdp: local.sdp });
    }

    async fn apply_answer(&mut self, sdp: String) -> Result<(), String> {
        if !self.awaiting_answer {
            return Err("no subscriber offer is waiting for an answer".into());
        }
        let connection = self.connection.as_ref().ok_or("no subscriber connection")?;
        let answer = RTCSessionDescription::answer(sdp).map_err(|e| e.to_string())?;
        connection
            .pc
            .set_remote_description(answer)
            .await
            .map_err(|e| e.to_string())?;
        self.awaiting_answer = false;
        // Now the payload type of each codec on this connection is known.
        for output in self.outputs.values() {
            output.resolve_payload_type().await;
        }
        Ok(())
    }
}

/// Writes one subscriber's packets of one track with its own SSRC and payload type (the
/// forwarder already stripped the publisher's header extensions).
pub(crate) async fn write_packets(
    mut rx: mpsc::Receiver<rtp::Packet>,
    local: Arc<TrackLocalStaticRTP>,
    ssrc: u32,
    payload_type: Arc<AtomicU16>,
    up: Arc<AtomicBool>,
) {
    while let Some(mut packet) = rx.recv().await {
        let pt = payload_type.load(Ordering::Relaxed);
        if pt == 0 || !up.load(Ordering::Relaxed) {
            continue;
        }
        packet.header.ssrc = ssrc;
        packet.header.payload_type = pt as u8;
        if local.write_rtp(packet).await.is_err() {
            break;
        }
    }
}

/// Reads the subscriber's RTCP for this track: a PLI or FIR asks the publisher for a keyframe.
pub(crate) async fn read_feedback(local: Arc<TrackLocalStaticRTP>, published: Arc<Published>) {
    while let Some(TrackLocalEvent::OnRtcpPacket(packets)) = local.poll().await {
        let wants_keyframe = packets.iter().any(|p| {
            let any = p.as_any();
            any.downcast_ref::<PictureLossIndication>().is_some()
                || any.downcast_ref::<FullIntraRequest>().is_some()
        });
        if wants_keyframe {
            published.request_keyframe();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::sending_track_ids;

    #[test]
    fn only_sending_sections_count() {
        let sdp = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
            m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=sendonly\r\na=msid:s mic\r\n\
            m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\na=msid:s cam\r\n\
            m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:2\r\na=inactive\r\na=msid:s screen\r\n\
            m=video 0 UDP/TLS/RTP/SAVPF 96\r\na=mid:3\r\na=sendonly\r\na=msid:s gone\r\n";
        let ids: Vec<String> = sending_track_ids(sdp).into_iter().collect();
        assert_eq!(ids, ["cam", "mic"]);
    }
}
