//! Tracks coming and going. A publisher who drops out (network blip, reload) keeps their
//! tracks' slots for `RECONNECT_GRACE`: subscribers keep the tracks on their connections, and
//! when the same person publishes the same kind of track again the slot is fed from it
//! (`Published::rebind`), with no new offer for anyone. The session log says `unpublish` at the
//! leave and `publish` at the return; `track_unpublished` goes out only if they do not come back.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::{Command, Peer, PeerCommand, Room};
use crate::sfu::event::Event;
use crate::sfu::track::{new_track_id, Incoming, Published};

/// How long a departed publisher's tracks wait for them to come back.
const RECONNECT_GRACE: Duration = Duration::from_secs(10);

impl Room {
    /// A participant's own tracks, but not those held for its return.
    pub(super) fn tracks_of(&self, participant_id: u64) -> Vec<String> {
        self.tracks
            .values()
            .filter(|t| t.participant_id() == participant_id && !self.held.contains(&t.id))
            .map(|t| t.id.clone())
            .collect()
    }

    /// The tracks a newcomer is offered: all but its own, held for its return.
    pub(super) fn tracks_for<'a>(
        &'a self,
        peer: &'a Peer,
    ) -> impl Iterator<Item = &'a Arc<Published>> {
        self.tracks.values().filter(move |t| {
            !(self.held.contains(&t.id) && t.user_id.is_some() && t.user_id == peer.user_id)
        })
    }

    /// A track came in on a publisher connection: the slot to feed and the generation to
    /// forward, or nothing if the participant may not publish.
    pub(super) fn published(&mut self, incoming: Incoming) -> Option<(Arc<Published>, u32)> {
        let participant_id = incoming.participant_id;
        let peer = self.peers.get(&participant_id)?;
        if !peer.standing.may_publish() {
            return None;
        }
        let user_id = peer.user_id;
        let muted = peer.muted.contains(&incoming.kind);
        let returning = self
            .tracks
            .values()
            .find(|t| self.held.contains(&t.id) && t.fits(user_id, &incoming))
            .cloned();
        let (track, generation, new) = match returning {
            // The same person is back: their slot is fed again, on every subscriber's
            // connection as it is.
            Some(track) => {
                self.held.remove(&track.id);
                let generation = track.rebind(incoming);
                (track, generation, false)
            }
            None => {
                let track = Published::new(new_track_id(participant_id), user_id, incoming);
                (track, 0, true)
            }
        };
        // A participant the host muted stays muted when it publishes again.
        if muted {
            track.muted.store(true, Ordering::Relaxed);
        }
        self.log(
            Some(participant_id),
            "publish",
            serde_json::json!({"track_id": track.id, "kind": track.kind, "source": track.source}),
        );
        // Announced before any subscriber offer can carry it.
        self.broadcast(Event::TrackPublished(track.info()), None);
        if new {
            for (id, peer) in &self.peers {
                if *id != participant_id && peer.subscribes() {
                    let _ = peer.media.send(PeerCommand::Subscribe(track.clone()));
                }
            }
            if let Some(recording) = &self.recording {
                recording.add_track(&track, &self.peers[&participant_id].display_name);
            }
            self.tracks.insert(track.id.clone(), track.clone());
        }
        Some((track, generation))
    }

    /// Keeps a departed publisher's track for `RECONNECT_GRACE`; it is logged as unpublished
    /// now, and announced as such only if nobody takes it back.
    pub(super) fn hold(&mut self, participant_id: u64, track_id: String) {
        self.log(
            Some(participant_id),
            "unpublish",
            serde_json::json!({"track_id": track_id}),
        );
        self.held.insert(track_id.clone());
        let me = self.me.clone();
        tokio::spawn(async move {
            tokio::time::sleep(RECONNECT_GRACE).await;
            if let Some(room) = me.upgrade() {
                let _ = room
                    .send(Command::ReleaseHeld {
                        participant_id,
                        track_id,
                    })
                    .await;
            }
        });
    }

    pub(super) fn release_held(&mut self, participant_id: u64, track_id: &str) {
        let still_theirs = self
            .tracks
            .get(track_id)
            .is_some_and(|t| t.participant_id() == participant_id);
        if still_theirs && self.held.remove(track_id) {
            self.tracks.remove(track_id);
            self.announce_unpublished(participant_id, track_id);
        }
    }

    pub(super) fn unpublished(&mut self, participant_id: u64, track_id: &str) {
        // Only its current publisher ends a track (not the old input of a rebound slot).
        let current = self
            .tracks
            .get(track_id)
            .is_some_and(|t| t.participant_id() == participant_id && !self.held.contains(track_id));
        if !current {
            return;
        }
        self.tracks.remove(track_id);
        self.log(
            Some(participant_id),
            "unpublish",
            serde_json::json!({"track_id": track_id}),
        );
        self.announce_unpublished(participant_id, track_id);
    }

    fn announce_unpublished(&self, participant_id: u64, track_id: &str) {
        for peer in self.peers.values() {
            let _ = peer
                .media
                .send(PeerCommand::Unsubscribe(track_id.to_owned()));
        }
        self.broadcast(
            Event::TrackUnpublished {
                track_id: track_id.to_owned(),
                participant_id,
            },
            None,
        );
    }
}
