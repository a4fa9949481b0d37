//! A participant's subscriber connection: the server offers the room's tracks and offers again
//! whenever they change, one offer at a time.
//!
//! An offer the client does not answer within `limits.subscriber_answer_timeout_secs`, or
//! whose answer the client reports it could not make (`answer_failed`), is rolled back and
//! made afresh, so one lost message never wedges a viewer. `ice_restart` makes the next offer
//! (at once, or after the answer in flight) with new ICE credentials on the same connection:
//! the participant, its tracks and its attendance stay. A track's packets are written only
//! once an answer to an offer that carried it has been applied.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rtc::peer_connection::configuration::RTCOfferOptions;
use tokio::sync::mpsc;
use tokio::time::Instant;
use webrtc::peer_connection::{RTCIceCandidateInit, RTCSessionDescription};

use super::error::RoomError;
use super::event::{Event, Outbox};
use super::media::{Connection, Direction, MediaError, MediaSettings};
use super::output::Output;
use super::peer::OPEN_CONNECTIONS;
use super::peer_events::{drop_if_never_connected, Events};
use super::quality::reception::Reception;
use super::room::{PeerCommand, RoomHandle};
use super::sdp::{first_mid, with_msid_semantic};
use super::track::Published;
use crate::domain::Target;

/// What the subscriber side is fed: the room's commands and the client's messages.
pub(crate) enum SubscriberInput {
    Room(PeerCommand),
    /// The client's answer and the id of its message, which the reply echoes.
    Answer(u64, String),
    AnswerFailed(u64),
    IceRestart(u64),
    Candidate(RTCIceCandidateInit),
}

pub(crate) struct Subscriber {
    participant_id: u64,
    settings: Arc<MediaSettings>,
    outbox: Outbox,
    room: RoomHandle,
    reception: Arc<Reception>,
    connection: Option<(Connection, Arc<Events>)>,
    outputs: HashMap<String, Output>,
    /// The connection is up (DTLS done): packets written before would only be dropped.
    up: Arc<AtomicBool>,
    /// Offers made so far; the one in flight, if any, and when it is given up.
    offers: u64,
    awaiting: Option<(u64, Instant)>,
    renegotiate: bool,
    restart_ice: bool,
    /// Client candidates that came before the answer, for after it.
    pending_candidates: Vec<RTCIceCandidateInit>,
}

impl Subscriber {
    pub(crate) fn new(
        participant_id: u64,
        settings: Arc<MediaSettings>,
        outbox: Outbox,
        room: RoomHandle,
        reception: Arc<Reception>,
    ) -> Subscriber {
        Subscriber {
            participant_id,
            settings,
            outbox,
            room,
            reception,
            connection: None,
            outputs: HashMap::new(),
            up: Arc::default(),
            offers: 0,
            awaiting: None,
            renegotiate: false,
            restart_ice: false,
            pending_candidates: Vec::new(),
        }
    }

    /// Runs for as long as the participant is in the room, mostly idle: the steps it awaits
    /// are boxed, so an idle viewer's task holds a few hundred bytes, not the largest step's
    /// state (about 20 KiB of the webrtc crate's futures, for every viewer).
    pub(crate) async fn run(mut self, mut input: mpsc::UnboundedReceiver<SubscriberInput>) {
        let (connected_tx, mut connected_rx) = mpsc::unbounded_channel();
        let _quality = self.reception.start(Some(self.outbox.clone()));
        loop {
            let deadline = self.awaiting.map(|(_, at)| at);
            tokio::select! {
                item = input.recv() => {
                    let Some(item) = item else { break };
                    let mut changed = false;
                    // Take everything queued: one offer for a burst of track changes.
                    let mut next = Some(item);
                    while let Some(item) = next {
                        changed |= Box::pin(self.handle(item, &connected_tx)).await;
                        next = input.try_recv().ok();
                    }
                    if changed || (self.renegotiate && self.awaiting.is_none()) {
                        Box::pin(self.negotiate()).await;
                    }
                }
                Some(()) = connected_rx.recv() => {
                    self.up.store(true, Ordering::Relaxed);
                }
                _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                    tracing::info!(participant_id = self.participant_id, "subscriber offer unanswered; offering again");
                    Box::pin(self.rollback()).await;
                    Box::pin(self.negotiate()).await;
                }
            }
        }
        for (_, output) in self.outputs.drain() {
            output.detach(self.participant_id);
        }
        if let Some((connection, _)) = self.connection.take() {
            let _ = connection.pc.close().await;
            OPEN_CONNECTIONS.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// One input; true when the tracks changed and a new offer is due.
    async fn handle(
        &mut self,
        item: SubscriberInput,
        connected: &mpsc::UnboundedSender<()>,
    ) -> bool {
        match item {
            SubscriberInput::Room(PeerCommand::Subscribe(track)) => {
                return self.subscribe(track, connected).await
            }
            SubscriberInput::Room(PeerCommand::Unsubscribe(track_id)) => {
                return self.unsubscribe(&track_id).await
            }
            SubscriberInput::Answer(id, sdp) => {
                let reply = match self.apply_answer(sdp).await {
                    Ok(()) => {
                        for candidate in std::mem::take(&mut self.pending_candidates) {
                            self.add_candidate(candidate).await;
                        }
                        Event::Done { request: id }
                    }
                    Err(e) => Event::Failed {
                        request: Some(id),
                        error: RoomError::BadSdp(format!("the answer was refused: {e}")),
                    },
                };
                self.outbox.tell(reply);
            }
            SubscriberInput::AnswerFailed(id) => {
                self.outbox.tell(Event::Done { request: id });
                self.rollback().await;
                self.renegotiate = self.connection.is_some();
            }
            SubscriberInput::IceRestart(id) => {
                self.outbox.tell(Event::Done { request: id });
                // After the answer to an offer in flight, if any: an answer is not tied to its
                // offer on the wire, so that offer is not rolled back under the client.
                if self.connection.is_some() {
                    self.restart_ice = true;
                    self.renegotiate = true;
                }
            }
            SubscriberInput::Candidate(candidate) => match self.awaiting {
                Some(_) => self.pending_candidates.push(candidate),
                None => self.add_candidate(candidate).await,
            },
        }
        false
    }

    async fn add_candidate(&self, candidate: RTCIceCandidateInit) {
        if let Some((connection, _)) = &self.connection {
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
            let mut events = Events::new(
                Target::Subscriber,
                self.participant_id,
                self.outbox.clone(),
                self.room.clone(),
                first_up,
            );
            events.connected = Some(connected.clone());
            let events = Arc::new(events);
            let connection = self
                .settings
                .connect(events.clone(), Direction::Sends)
                .await?;
            if let Some(bandwidth) = &connection.bandwidth {
                self.reception.set_bandwidth(bandwidth.clone());
            }
            OPEN_CONNECTIONS.fetch_add(1, Ordering::Relaxed);
            self.connection = Some((connection, events));
            drop_if_never_connected(
                self.settings.connect_timeout,
                up,
                self.participant_id,
                self.outbox.clone(),
                self.room.clone(),
            );
        }
        Ok(&self.connection.as_ref().expect("just made").0)
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
        if let Err(e) = self.connection(connected).await {
            tracing::warn!(error = %e, "cannot open a subscriber connection");
            self.outbox.tell(Event::Failed {
                request: None,
                error: e.into(),
            });
            return false;
        }
        let (connection, _) = self.connection.as_ref().expect("just opened");
        let output = Output::attach(
            connection,
            published.clone(),
            self.participant_id,
            &self.reception,
            self.up.clone(),
        )
        .await;
        match output {
            Ok(output) => {
                self.outputs.insert(published.id.clone(), output);
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, track = %published.id, "cannot add a track for a subscriber");
                false
            }
        }
    }

    async fn unsubscribe(&mut self, track_id: &str) -> bool {
        let Some(output) = self.outputs.remove(track_id) else {
            return false;
        };
        output.detach(self.participant_id);
        if let Some((connection, _)) = &self.connection {
            if let Err(e) = connection.pc.remove_track(&output.sender).await {
                tracing::debug!(error = %e, "remove_track");
            }
        }
        true
    }

    /// Sends an offer now, or remembers to once the client answers the one in flight.
    async fn negotiate(&mut self) {
        if self.awaiting.is_some() {
            self.renegotiate = true;
            return;
        }
        let Some((connection, events)) = &self.connection else {
            return;
        };
        let pc = &connection.pc;
        events.candidates.hold();
        let options = RTCOfferOptions {
            ice_restart: self.restart_ice,
        };
        let offer = match pc.create_offer(Some(options)).await {
            Ok(offer) => offer,
            Err(e) => {
                tracing::warn!(error = %e, "cannot make a subscriber offer");
                return;
            }
        };
        if let Err(e) = connection.set_local_description(offer).await {
            tracing::warn!(error = %e, "cannot apply the subscriber offer");
            return;
        }
        let Some(local) = connection.local_sdp().await else {
            return;
        };
        self.offers += 1;
        let timeout = self.settings.answer_timeout;
        self.awaiting = Some((self.offers, Instant::now() + timeout));
        self.renegotiate = false;
        self.restart_ice = false;
        for output in self.outputs.values_mut() {
            output.offered_in.get_or_insert(self.offers);
        }
        let mid = first_mid(&local);
        // An offer lost to a full outbox is made again when its answer is overdue.
        self.outbox.tell(Event::Offer {
            sdp: with_msid_semantic(local),
        });
        events.candidates.release(mid);
    }

    /// Gives up the offer in flight (the client never answered it, or could not).
    async fn rollback(&mut self) {
        let Some((offer, _)) = self.awaiting.take() else {
            return;
        };
        self.pending_candidates.clear();
        if let Some((connection, _)) = &self.connection {
            let rolled_back = match RTCSessionDescription::rollback(None) {
                Ok(rollback) => connection
                    .set_local_description(rollback)
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            if let Err(e) = rolled_back {
                tracing::warn!(error = %e, "cannot roll back a subscriber offer");
            }
        }
        for output in self.outputs.values_mut() {
            if output.offered_in == Some(offer) && !output.announced() {
                output.offered_in = None;
            }
        }
    }

    async fn apply_answer(&mut self, sdp: String) -> Result<(), String> {
        let (offer, _) = self
            .awaiting
            .ok_or("no subscriber offer is waiting for an answer")?;
        let (connection, _) = self.connection.as_ref().ok_or("no subscriber connection")?;
        let answer = RTCSessionDescription::answer(sdp).map_err(|e| e.to_string())?;
        connection
            .pc
            .set_remote_description(answer)
            .await
            .map_err(|e| e.to_string())?;
        self.awaiting = None;
        // Tracks this answer covers may now be written to.
        for output in self.outputs.values() {
            if output.offered_in.is_some_and(|n| n <= offer) {
                output.resolve_payload_type().await;
            }
        }
        Ok(())
    }
}
