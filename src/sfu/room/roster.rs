//! Who in a live room hears about whom. Hosts get the participant list: every join, update
//! and leave, with names. Everyone else (families, students, open-house guests) gets only
//! how many people are here, at most once a second, so a join costs a message to each host
//! and, however fast people arrive, one count per second to the rest: never a message to every
//! socket per join. In a tutoring room (at most 8 people, each let in by the host, all on
//! camera together) the admitted participants see each other too.
//!
//! A participant waiting to be admitted hears nothing of the room. Everyone is told of their
//! own changes (a hand, a promotion) so their page can follow.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::standing::Standing;
use super::{PeerCommand, Room};
use crate::domain::MediaKind;
use crate::domain::ParticipantInfo;
use crate::domain::RoomKind;
use crate::sfu::event::{Event, Outbox};

/// Counts go out at most this often.
pub const COUNT_INTERVAL: Duration = Duration::from_secs(1);

pub(super) struct Peer {
    pub(super) user_id: Option<i64>,
    /// The credential it came with (see `NewPeer::session`).
    pub(super) session: Option<String>,
    pub(super) display_name: String,
    pub(super) role: String,
    pub(super) standing: Standing,
    pub(super) hand_raised: bool,
    /// When it joined (unix ms): a leave is never logged before it.
    pub(super) joined_at: i64,
    /// Kinds the host muted; what this participant publishes later starts muted too.
    pub(super) muted: Vec<MediaKind>,
    pub(super) outbox: Outbox,
    pub(super) media: mpsc::UnboundedSender<PeerCommand>,
    pub(super) receives: bool,
}

impl Peer {
    /// Whether tracks should be forwarded to this participant now.
    pub(super) fn subscribes(&self) -> bool {
        self.receives && !self.standing.waiting
    }

    pub(super) fn info(&self, participant_id: u64) -> ParticipantInfo {
        ParticipantInfo {
            participant_id,
            display_name: self.display_name.clone(),
            role: self.role.clone(),
            host: self.standing.host(),
            presenter: self.standing.promoted,
            hand_raised: self.hand_raised,
            waiting: self.standing.waiting,
        }
    }

    /// Queues an event and never waits (see `Outbox`).
    pub(super) fn tell(&self, event: Event) {
        self.outbox.tell(event);
    }

    /// Gets the participant list rather than a count.
    pub(super) fn sees_roster(&self) -> bool {
        self.receives
            && !self.standing.waiting
            && (self.standing.host() || self.standing.kind == RoomKind::Tutoring)
    }

    /// Whether this participant is told who `subject` is.
    pub(super) fn sees(&self, subject: &Peer) -> bool {
        self.sees_roster() && (self.standing.host() || !subject.standing.waiting)
    }

    /// Gets counts: admitted, receiving, and not given the list.
    fn gets_counts(&self) -> bool {
        self.receives && !self.standing.waiting && !self.sees_roster()
    }
}

/// When the participant count was last sent, and when it is due again after a change.
#[derive(Default)]
pub(super) struct Counts {
    last_sent: Option<Instant>,
    pub(super) due: Option<Instant>,
}

impl Room {
    /// Tells every admitted participant (tracks, chat); those waiting hear nothing.
    pub(super) fn broadcast(&self, event: Event, except: Option<u64>) {
        for (id, peer) in &self.peers {
            if Some(*id) != except && !peer.standing.waiting {
                peer.tell(event.clone());
            }
        }
    }

    /// Tells those who see `subject_id` (and `subject_id` itself when `to_self`) an event
    /// about it.
    pub(super) fn announce(&self, subject_id: u64, event: Event, to_self: bool) {
        let Some(subject) = self.peers.get(&subject_id) else {
            return;
        };
        for (id, peer) in &self.peers {
            let own = *id == subject_id;
            if (own && to_self) || (!own && peer.sees(subject)) {
                peer.tell(event.clone());
            }
        }
    }

    /// Tells the list viewers who saw `gone` that it left (it is no longer in the room).
    pub(super) fn announce_left(&self, participant_id: u64, gone: &Peer, reason: &'static str) {
        for peer in self.peers.values().filter(|p| p.sees(gone)) {
            peer.tell(Event::ParticipantLeft {
                participant_id,
                reason,
            });
        }
    }

    /// What a participant is told of the others when they join or are admitted.
    pub(super) fn visible_to(&self, viewer: &Peer, except: u64) -> Vec<ParticipantInfo> {
        self.peers
            .iter()
            .filter(|(id, p)| **id != except && viewer.sees(p))
            .map(|(id, p)| p.info(*id))
            .collect()
    }

    pub(super) fn participant_count(&self) -> u64 {
        self.peers.len() as u64
    }

    /// The number of people changed: it goes out now if none went out in the last second,
    /// else once that second is over (with whatever the number is then). A newcomer
    /// (`except`) has the number in its `joined`, which must come first.
    pub(super) fn count_changed(&mut self, except: Option<u64>) {
        if self.counts.due.is_some() {
            return;
        }
        let now = Instant::now();
        match self.counts.last_sent {
            Some(last) if now < last + COUNT_INTERVAL => {
                self.counts.due = Some(last + COUNT_INTERVAL)
            }
            _ => self.send_count(except),
        }
    }

    /// Sends the count to everyone who gets counts.
    pub(super) fn send_count(&mut self, except: Option<u64>) {
        self.counts.due = None;
        self.counts.last_sent = Some(Instant::now());
        let count = self.participant_count();
        for (id, peer) in &self.peers {
            if Some(*id) != except && peer.gets_counts() {
                peer.tell(Event::ParticipantCount(count));
            }
        }
    }
}
