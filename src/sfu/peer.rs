//! One participant's media: a publisher connection that the client offers (its camera,
//! microphone and screen come in here) and a subscriber connection that the server offers and
//! offers again whenever tracks come and go (`subscriber.rs`). Two connections, so neither
//! side ever has to resolve offer glare. Their events are handled in `peer_events.rs`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use webrtc::peer_connection::{PeerConnection, RTCIceCandidateInit, RTCSessionDescription};

use super::event::Outbox;
use super::media::{Connection, Direction, MediaError, MediaSettings, AUDIO_LEVEL_URI};
use super::peer_events::{drop_if_never_connected, Events};
use super::quality::reception::Reception;
use super::room::{Command, PeerCommand, RoomHandle};
use super::sdp::{audio_extension_id, check_offer, first_mid, sending_track_ids, with_audio_ptime};
use super::subscriber::{Subscriber, SubscriberInput};
use crate::domain::{Candidate, Source, Target};

/// Counts live peer connections, so tests and metrics can see that none leak.
pub static OPEN_CONNECTIONS: AtomicU64 = AtomicU64::new(0);

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
    outbox: Outbox,
    room: RoomHandle,
    publisher: Option<(Connection, Arc<Events>)>,
    sources: Arc<Mutex<BTreeMap<String, Source>>>,
    published: Arc<Mutex<BTreeMap<String, String>>>,
    subscriber: mpsc::UnboundedSender<SubscriberInput>,
    subscriber_task: JoinHandle<()>,
    start: Option<tokio::sync::oneshot::Sender<()>>,
    /// What this participant receives (quality, focus), shared with its outputs.
    pub reception: Arc<Reception>,
    /// Publisher candidates that came before their offer was applied.
    early_candidates: Mutex<Vec<RTCIceCandidateInit>>,
}

/// Early candidates kept per participant; a client has a handful.
const EARLY_CANDIDATES: usize = 32;

impl PeerMedia {
    /// Creates the media side; returns the sender the room uses to reach it.
    pub fn new(
        participant_id: u64,
        settings: Arc<MediaSettings>,
        outbox: Outbox,
        room: RoomHandle,
        tiles: bool,
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
        let reception = Reception::new(tiles);
        let subscriber = Subscriber::new(
            participant_id,
            settings.clone(),
            outbox.clone(),
            room.clone(),
            reception.clone(),
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
            reception,
            early_candidates: Mutex::default(),
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
    /// offer with new ICE credentials restarts ICE on the same connection. The answer carries
    /// the server's candidates (all on the one media port, gathered at once): a trickled
    /// candidate can reach the client before the answer it belongs to, and a WHIP client gets
    /// no trickle at all.
    pub async fn publish_offer(
        &mut self,
        sdp: String,
        sources: BTreeMap<String, Source>,
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
            let connection = self
                .settings
                .connect(events.clone(), Direction::Receives)
                .await?;
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
        events.audio_level.store(
            audio_extension_id(&sdp, AUDIO_LEVEL_URI).unwrap_or(0),
            Ordering::Relaxed,
        );
        pc.set_remote_description(offer)
            .await
            .map_err(MediaError::refused)?;
        let early = std::mem::take(&mut *self.early_candidates.lock().expect("candidates lock"));
        for candidate in early {
            if let Err(e) = pc.add_ice_candidate(candidate).await {
                tracing::debug!(error = %e, "an early publisher candidate was refused");
            }
        }
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
        connection.set_local_description(answer).await?;
        events.candidates.release(first_mid(&sdp));
        let local = connection.gathered_sdp().await;
        let local = local.ok_or(MediaError::WebRtc(webrtc::error::Error::Other(
            "no local description".into(),
        )))?;
        Ok(with_audio_ptime(local))
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
                Some(pc) if pc.remote_description().await.is_some() => pc
                    .add_ice_candidate(init)
                    .await
                    .map_err(|e| MediaError::Refused(format!("the candidate was refused: {e}"))),
                // Sent before the offer it belongs to was handled: kept until it is.
                _ => {
                    let mut early = self.early_candidates.lock().expect("candidates lock");
                    if early.len() < EARLY_CANDIDATES {
                        early.push(init);
                    }
                    Ok(())
                }
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
