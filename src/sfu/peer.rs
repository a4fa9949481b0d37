//! One participant's media: a publisher connection that the client offers (its camera,
//! microphone and screen come in here) and a subscriber connection that the server offers and
//! offers again whenever tracks come and go (`subscriber.rs`). Two connections, so neither
//! side ever has to resolve offer glare.
//!
//! Events of both connections arrive here: candidates go out with the first media section's
//! mid (a subscriber's only after the offer they belong to), a track coming in is placed by
//! the room, and a connection that fails ends the participation (`connection_failed`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionEventHandler, RTCIceCandidateInit, RTCPeerConnectionIceEvent,
    RTCPeerConnectionState, RTCSessionDescription,
};

use super::media::{Connection, MediaError, MediaSettings};
use super::room::{Command, PeerCommand, RoomHandle};
use super::sdp::{check_offer, first_mid, sending_track_ids};
use super::subscriber::{Subscriber, SubscriberInput};
use super::track::Incoming;
use crate::signal::protocol::{Candidate, MediaKind, ServerMessage, Source, Target};

/// Counts live peer connections, so tests and metrics can see that none leak.
pub static OPEN_CONNECTIONS: AtomicU64 = AtomicU64::new(0);

/// Server candidates on their way to the client. Each carries the mid of the first media
/// section (the WebRTC crate leaves it empty); while held, they wait, so a subscriber
/// candidate never arrives before the offer it belongs to.
pub(crate) struct Candidates {
    target: Target,
    outbox: mpsc::Sender<ServerMessage>,
    state: Mutex<(Option<String>, Option<Vec<Candidate>>)>,
}

impl Candidates {
    /// Held until the first `release`.
    fn new(target: Target, outbox: mpsc::Sender<ServerMessage>) -> Candidates {
        Candidates {
            target,
            outbox,
            state: Mutex::new((None, Some(Vec::new()))),
        }
    }

    fn send(&self, candidate: Candidate) {
        let _ = self.outbox.try_send(ServerMessage::Candidate {
            target: self.target,
            candidate,
        });
    }

    fn push(&self, mut candidate: Candidate) {
        let mut state = self.state.lock().expect("candidates lock");
        let (mid, held) = &mut *state;
        candidate.sdp_mid = mid.clone();
        candidate.sdp_mline_index = Some(0);
        match held {
            Some(held) => held.push(candidate),
            None => self.send(candidate),
        }
    }

    /// Holds candidates from now on (a new offer is being made).
    pub(crate) fn hold(&self) {
        self.state
            .lock()
            .expect("candidates lock")
            .1
            .get_or_insert_with(Vec::new);
    }

    /// Sends what was held, with `mid`, and whatever comes next at once.
    pub(crate) fn release(&self, mid: Option<String>) {
        let mut state = self.state.lock().expect("candidates lock");
        if mid.is_some() {
            state.0 = mid;
        }
        for mut candidate in state.1.take().unwrap_or_default() {
            candidate.sdp_mid = state.0.clone();
            self.send(candidate);
        }
    }
}

/// Events from the webrtc stack, turned into messages and commands.
pub(crate) struct Events {
    pub(crate) target: Target,
    pub(crate) participant_id: u64,
    pub(crate) outbox: mpsc::Sender<ServerMessage>,
    pub(crate) room: RoomHandle,
    pub(crate) candidates: Candidates,
    /// What the client said each of its tracks shows, keyed by its track id.
    pub(crate) sources: Arc<Mutex<BTreeMap<String, Source>>>,
    /// Publisher side: our track id for each of the client's track ids.
    pub(crate) published: Arc<Mutex<BTreeMap<String, String>>>,
    /// Subscriber side: told when the connection is up, so writers may start.
    pub(crate) connected: Option<mpsc::UnboundedSender<()>>,
    /// Told the first time the connection comes up (awaited by `drop_if_never_connected`).
    pub(crate) first_up: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
}

impl Events {
    pub(crate) fn new(
        target: Target,
        participant_id: u64,
        outbox: mpsc::Sender<ServerMessage>,
        room: RoomHandle,
        first_up: tokio::sync::oneshot::Sender<()>,
    ) -> Events {
        Events {
            target,
            participant_id,
            candidates: Candidates::new(target, outbox.clone()),
            outbox,
            room,
            sources: Arc::default(),
            published: Arc::default(),
            connected: None,
            first_up: Mutex::new(Some(first_up)),
        }
    }
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Events {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        if let Ok(init) = event.candidate.to_json() {
            self.candidates.push(Candidate {
                candidate: init.candidate,
                sdp_mid: None,
                sdp_mline_index: None,
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
            // ICE gave up (an ICE restart did not come in time): the participant is gone, and
            // its attendance ends now rather than when its socket finally drops.
            RTCPeerConnectionState::Failed => {
                tracing::info!(participant_id = self.participant_id, target = ?self.target, "media connection failed");
                let _ = self.outbox.try_send(ServerMessage::Kicked {
                    reason: "connection_failed".into(),
                });
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
        let incoming = Incoming {
            participant_id: self.participant_id,
            kind,
            source,
            codec,
            media_ssrc,
            remote,
        };
        let (reply, placed) = tokio::sync::oneshot::channel();
        if self
            .room
            .send(Command::Published { incoming, reply })
            .await
            .is_err()
        {
            return;
        }
        // A refused track (the participant may not publish) is not forwarded at all.
        let Ok(Some((track, generation))) = placed.await else {
            tracing::info!(participant_id = self.participant_id, "track refused");
            return;
        };
        self.published
            .lock()
            .expect("published lock")
            .insert(client_track_id, track.id.clone());
        tracing::info!(participant_id = self.participant_id, track = %track.id, ?kind, generation, "track published");
        let room = self.room.clone();
        let participant_id = self.participant_id;
        tokio::spawn(async move {
            let track_id = track.id.clone();
            if track.forward(generation).await {
                let _ = room
                    .send(Command::Unpublished {
                        participant_id,
                        track_id,
                    })
                    .await;
            }
        });
    }
}

/// Drops the participant when its new connection has not come up within the media connect
/// timeout: a client that joins and never completes ICE/DTLS must not hold a port. The
/// participant is told `kicked` (`media_timeout`), which closes its socket (or ends its WHIP
/// session), and the room lets it go, which closes its connections.
pub(crate) fn drop_if_never_connected(
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

/// A client's candidate as the WebRTC crate takes it.
pub fn candidate_init(candidate: Candidate) -> RTCIceCandidateInit {
    RTCIceCandidateInit {
        candidate: candidate.candidate,
        sdp_mid: candidate.sdp_mid,
        sdp_mline_index: candidate.sdp_mline_index,
        ..Default::default()
    }
}

/// A participant's two connections, driven by its signalling connection.
pub struct PeerMedia {
    participant_id: u64,
    settings: Arc<MediaSettings>,
    outbox: mpsc::Sender<ServerMessage>,
    room: RoomHandle,
    publisher: Option<(Connection, Arc<Events>)>,
    sources: Arc<Mutex<BTreeMap<String, Source>>>,
    published: Arc<Mutex<BTreeMap<String, String>>>,
    subscriber: mpsc::UnboundedSender<SubscriberInput>,
    subscriber_task: JoinHandle<()>,
    start: Option<tokio::sync::oneshot::Sender<()>>,
    /// The audio-only switch, shared with every sink of this participant.
    pub audio_only: Arc<AtomicBool>,
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
        let subscriber = Subscriber::new(
            participant_id,
            settings.clone(),
            outbox.clone(),
            room.clone(),
            audio_only.clone(),
        );
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

    /// Answers the client's publisher offer, creating the connection on the first one. An
    /// offer with new ICE credentials restarts ICE on the same connection. With
    /// `all_candidates` the answer waits (briefly) for every local candidate: a WHIP client
    /// gets no trickle from the server, so they must be in the answer.
    pub async fn publish_offer(
        &mut self,
        sdp: String,
        sources: BTreeMap<String, Source>,
        all_candidates: bool,
    ) -> Result<String, MediaError> {
        check_offer(&sdp).map_err(MediaError::refused)?;
        let offer = RTCSessionDescription::offer(sdp.clone()).map_err(MediaError::refused)?;
        self.sources.lock().expect("sources lock").extend(sources);
        if self.publisher.is_none() {
            let (first_up, up) = tokio::sync::oneshot::channel();
            let mut events = Events::new(
                Target::Publisher,
                self.participant_id,
                self.outbox.clone(),
                self.room.clone(),
                first_up,
            );
            events.sources = self.sources.clone();
            events.published = self.published.clone();
            let events = Arc::new(events);
            let connection = self.settings.connect(events.clone()).await?;
            OPEN_CONNECTIONS.fetch_add(1, Ordering::Relaxed);
            self.publisher = Some((connection, events));
            drop_if_never_connected(
                self.settings.connect_timeout,
                up,
                self.participant_id,
                self.outbox.clone(),
                self.room.clone(),
            );
        }
        let (connection, events) = self.publisher.as_ref().expect("just made");
        let pc = &connection.pc;
        let sending = sending_track_ids(&sdp);
        pc.set_remote_description(offer)
            .await
            .map_err(MediaError::refused)?;
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
        events.candidates.release(first_mid(&sdp));
        let local = match all_candidates {
            true => super::media::gathered_description(pc).await,
            false => pc.local_description().await,
        };
        let local = local.ok_or(MediaError::WebRtc(webrtc::error::Error::Other(
            "no local description".into(),
        )))?;
        Ok(local.sdp)
    }

    /// The publisher connection, for candidates trickled over HTTP (WHIP).
    pub fn publisher_connection(&self) -> Option<Arc<dyn PeerConnection>> {
        self.publisher.as_ref().map(|(c, _)| c.pc.clone())
    }

    /// Hands the client's answer to the subscriber side, which replies to message `id` itself:
    /// the signalling loop never waits for media work.
    pub fn subscriber_answer(&self, id: u64, sdp: String) {
        let _ = self.subscriber.send(SubscriberInput::Answer(id, sdp));
    }

    /// The client could not apply the last subscriber offer: roll it back, offer afresh.
    pub fn subscriber_answer_failed(&self, id: u64) {
        let _ = self.subscriber.send(SubscriberInput::AnswerFailed(id));
    }

    /// The client's network changed: restart ICE on the subscriber connection (a new offer
    /// with new credentials). The publisher side restarts when the client re-offers.
    pub fn ice_restart(&self, id: u64) {
        let _ = self.subscriber.send(SubscriberInput::IceRestart(id));
    }

    pub async fn add_candidate(
        &self,
        target: Target,
        candidate: Candidate,
    ) -> Result<(), MediaError> {
        let init = candidate_init(candidate);
        match target {
            Target::Publisher => match self.publisher_connection() {
                Some(pc) => pc
                    .add_ice_candidate(init)
                    .await
                    .map_err(MediaError::refused),
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
        if let Some((publisher, _)) = self.publisher.take() {
            let _ = publisher.pc.close().await;
            OPEN_CONNECTIONS.fetch_sub(1, Ordering::Relaxed);
        }
        drop(self.subscriber);
        let _ = self.subscriber_task.await;
    }
}
