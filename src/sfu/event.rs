//! What the SFU tells one participant, and the queue it goes into. The SFU speaks in its own
//! terms; whoever reads the queue says it to the client: the signalling socket maps each event
//! to a wire message (`signal::events`), and a WHIP encoder or WHEP player, which has no
//! socket, reads only whether it is still wanted (`kicked`, `ended`).
//!
//! Events are queued and never waited for: the room's task tells hundreds of viewers at once
//! and must not stall behind one. A participant whose queue stays full is dropped by its
//! connection, so what a full queue loses is never needed.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use tokio::sync::mpsc;

use super::error::RoomError;
use crate::domain::{Candidate, Layer, ParticipantInfo, Quality, Target, TrackInfo};

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Someone the participant sees came in (or was there when the participant was admitted).
    ParticipantJoined(ParticipantInfo),
    /// Someone the participant sees (or the participant itself) changed: a hand, a promotion,
    /// an admission.
    ParticipantUpdated(ParticipantInfo),
    ParticipantLeft {
        participant_id: u64,
        reason: &'static str,
    },
    /// How many are here, for those who do not see the list.
    ParticipantCount(u64),
    TrackPublished(TrackInfo),
    TrackUnpublished {
        track_id: String,
        participant_id: u64,
    },
    /// The host stopped (or resumed) forwarding a track.
    TrackMuted {
        track_id: String,
        participant_id: u64,
        muted: bool,
    },
    Chat {
        participant_id: u64,
        display_name: String,
        text: String,
        /// Unix milliseconds.
        at: i64,
    },
    /// The host let the waiting participant in; the room as it is follows.
    Admitted,
    /// The host `by` started recording.
    RecordingStarted {
        by: String,
    },
    /// Recording stopped: by a host (`by`), or on its own (`by` empty), for `reason`.
    RecordingStopped {
        by: String,
        reason: &'static str,
    },
    /// The participant is out of the room; nothing follows.
    Kicked {
        reason: &'static str,
    },
    /// The live session is over; nothing follows.
    Ended {
        reason: &'static str,
    },
    /// A new offer of the subscriber connection, to be answered.
    Offer {
        sdp: String,
    },
    /// A server candidate of one of the participant's connections.
    Candidate {
        target: Target,
        candidate: Candidate,
    },
    /// What the participant's subscriber connection receives now.
    Reception {
        quality: Quality,
        /// The best layer of any track, or `off`.
        video: Layer,
        /// The link does not carry the lowest layer.
        weak: bool,
        estimate_kbps: u64,
        layers: BTreeMap<String, Layer>,
    },
    /// A request the media side answers itself (an answer, an ICE restart) is done.
    Done {
        request: u64,
    },
    /// Media work failed: for `request`, or for none (the subscriber connection could not be
    /// opened).
    Failed {
        request: Option<u64>,
        error: RoomError,
    },
}

/// A participant's queue as the SFU sees it: events go in, never waiting. Its reader may
/// queue more than events (a socket's own replies go in between, in order), so the SFU holds
/// it through this rather than as a channel of its own type.
#[derive(Clone)]
pub struct Outbox(Arc<dyn Queue>);

impl Outbox {
    pub fn new<T: From<Event> + Send + 'static>(queue: mpsc::Sender<T>) -> Outbox {
        Outbox(Arc::new(queue))
    }

    /// Queues an event; false if the queue is full or its reader gone.
    pub fn tell(&self, event: Event) -> bool {
        self.0.push(event)
    }

    /// Completes when the reader is gone (the participant left).
    pub async fn closed(&self) {
        self.0.closed().await
    }
}

trait Queue: Send + Sync {
    fn push(&self, event: Event) -> bool;
    fn closed(&self) -> BoxFuture<'_, ()>;
}

impl<T: From<Event> + Send + 'static> Queue for mpsc::Sender<T> {
    fn push(&self, event: Event) -> bool {
        self.try_send(T::from(event)).is_ok()
    }

    fn closed(&self) -> BoxFuture<'_, ()> {
        Box::pin(mpsc::Sender::closed(self))
    }
}
