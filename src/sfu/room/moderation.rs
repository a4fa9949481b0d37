//! What participants ask of the room: chat, hands, and the host's moderation (admit, promote,
//! mute and unmute, remove, end), and the removals a revocation orders.
//!
//! A participant the host removes may not come back to this session: the room remembers the
//! account (or, for a guest, the room token) and refuses its next `join` with `removed`. A
//! guest link is shared freely, so a removed guest who asks for a new token gets in again
//! unless the host replaces the link.

use std::sync::atomic::Ordering;

use super::roster::Peer;
use super::{PeerCommand, Request, Room};
use crate::domain::RoomKind;
use crate::domain::{MediaKind, TrackInfo};
use crate::sfu::error::RoomError;
use crate::sfu::event::Event;
use crate::sfu::event_log::Written;
use crate::sfu::revocation::Revocation;
use crate::store::now_ms;

/// Longest chat message, in characters. (How often one may chat is limited per socket, by
/// the signalling.)
pub const CHAT_MAX_CHARS: usize = 1000;

/// What a removal is remembered by: the account, or for a guest the room token it came with.
pub(super) fn removal_key(peer_user: Option<i64>, session: Option<&str>) -> Option<String> {
    match (peer_user, session) {
        (Some(user_id), _) => Some(format!("user:{user_id}")),
        (None, Some(credential)) => Some(format!("token:{credential}")),
        (None, None) => None,
    }
}

impl Room {
    pub(super) fn request(
        &mut self,
        participant_id: u64,
        request: Request,
    ) -> Result<Option<Written>, RoomError> {
        let peer = self
            .peers
            .get_mut(&participant_id)
            .ok_or(RoomError::NotJoined)?;
        if peer.standing.waiting {
            return Err(RoomError::NotAdmitted);
        }
        let host = peer.standing.host();
        let not_host = || RoomError::NotAllowed("only the host may do this".into());
        let moderates = !matches!(
            request,
            Request::Chat(_)
                | Request::Hand(_)
                | Request::MayPublish
                | Request::Keyframe(_)
                | Request::Check
        );
        if moderates && !host {
            return Err(not_host());
        }
        match request {
            Request::Chat(text) => return self.chat(participant_id, text).map(Some),
            Request::Hand(raised) => {
                peer.hand_raised = raised;
                let detail = serde_json::json!({"raised": raised});
                self.updated(participant_id, participant_id, "hand", detail);
            }
            Request::MayPublish => {
                if !peer.standing.may_publish() {
                    return Err(RoomError::NotAllowed(
                        "your role in this room does not allow publishing".into(),
                    ));
                }
            }
            Request::Keyframe(track_id) => {
                if let Some(track) = self.tracks.get(&track_id) {
                    track.request_keyframe();
                }
            }
            Request::Admit(target) => self.admit(participant_id, target)?,
            Request::Promote(target, presenter) => {
                if peer.standing.kind == RoomKind::Tutoring {
                    return Err(not_host());
                }
                self.promote(participant_id, target, presenter)?
            }
            Request::Mute(target, kind, muted) => self.mute(participant_id, target, kind, muted)?,
            Request::Kick(target) => {
                let peer = self
                    .peers
                    .get(&target)
                    .ok_or(RoomError::NoSuchParticipant)?;
                peer.tell(Event::Kicked {
                    reason: "removed by the host",
                });
                if let Some(key) = removal_key(peer.user_id, peer.session.as_deref()) {
                    self.removed.insert(key);
                }
                self.log(
                    Some(participant_id),
                    "kick",
                    serde_json::json!({"participant_id": target}),
                );
                self.leave(target, "kicked", None);
            }
            Request::End => {
                self.log(Some(participant_id), "end", serde_json::json!({}));
            }
            Request::Record(on) => self.record(participant_id, on)?,
            Request::Check => {}
        }
        Ok(None)
    }

    fn chat(&mut self, participant_id: u64, text: String) -> Result<Written, RoomError> {
        let text = text.trim().to_owned();
        if text.is_empty() {
            return Err(RoomError::EmptyMessage);
        }
        if text.chars().count() > CHAT_MAX_CHARS {
            return Err(RoomError::MessageTooLong);
        }
        let display_name = self.peers[&participant_id].display_name.clone();
        let written = self.log_durable(
            Some(participant_id),
            "chat",
            serde_json::json!({"text": text}),
        );
        self.broadcast(
            Event::Chat {
                participant_id,
                display_name,
                text,
                at: now_ms(),
            },
            None,
        );
        Ok(written)
    }

    /// Lets a waiting participant in: it is told the room as it is now, then media follows.
    fn admit(&mut self, host_id: u64, target: u64) -> Result<(), RoomError> {
        let peer = self
            .peers
            .get_mut(&target)
            .ok_or(RoomError::NoSuchParticipant)?;
        if !peer.standing.waiting {
            return Ok(());
        }
        peer.standing.waiting = false;
        let peer = &self.peers[&target];
        peer.tell(Event::Admitted);
        if peer.sees_roster() {
            for participant in self.visible_to(peer, target) {
                peer.tell(Event::ParticipantJoined(participant));
            }
        } else {
            peer.tell(Event::ParticipantCount(self.participant_count()));
        }
        for track in self.tracks.values() {
            peer.tell(Event::TrackPublished(track.info()));
            if peer.receives {
                let _ = peer.media.send(PeerCommand::Subscribe(track.clone()));
            }
        }
        let detail = serde_json::json!({"participant_id": target});
        self.updated(host_id, target, "admit", detail);
        Ok(())
    }

    fn promote(&mut self, host_id: u64, target: u64, presenter: bool) -> Result<(), RoomError> {
        let peer = self
            .peers
            .get_mut(&target)
            .ok_or(RoomError::NoSuchParticipant)?;
        peer.standing.promoted = presenter;
        let detail = serde_json::json!({"participant_id": target, "presenter": presenter});
        self.updated(host_id, target, "promote", detail);
        if !presenter {
            for track_id in self.tracks_of(target) {
                self.unpublished(target, &track_id);
            }
        }
        Ok(())
    }

    /// Stops (or resumes) forwarding a participant's audio or video, now and for whatever it
    /// publishes later, until the host says otherwise.
    fn mute(
        &mut self,
        host_id: u64,
        target: u64,
        kind: MediaKind,
        muted: bool,
    ) -> Result<(), RoomError> {
        let peer = self
            .peers
            .get_mut(&target)
            .ok_or(RoomError::NoSuchParticipant)?;
        peer.muted.retain(|k| *k != kind);
        if muted {
            peer.muted.push(kind);
        }
        let changed: Vec<TrackInfo> = self
            .tracks
            .values()
            .filter(|t| t.participant_id() == target && t.kind == kind)
            .filter(|t| t.muted.swap(muted, Ordering::Relaxed) != muted)
            .map(|t| {
                // Video resumes at a keyframe: ask for one now rather than wait.
                if !muted {
                    t.request_keyframe();
                }
                t.info()
            })
            .collect();
        self.log(
            Some(host_id),
            "mute",
            serde_json::json!({"participant_id": target, "kind": kind, "muted": muted}),
        );
        for track in changed {
            self.broadcast(
                Event::TrackMuted {
                    track_id: track.track_id,
                    participant_id: target,
                    muted,
                },
                None,
            );
        }
        Ok(())
    }

    /// Logs what `actor` changed of `subject` and tells those who see `subject`, and `subject`.
    fn updated(&mut self, actor: u64, subject: u64, kind: &'static str, detail: serde_json::Value) {
        self.log(Some(actor), kind, detail);
        if let Some(peer) = self.peers.get(&subject) {
            let participant = peer.info(subject);
            self.announce(subject, Event::ParticipantUpdated(participant), true);
        }
    }

    /// Drops the participants a revocation reaches: each is told why (its socket closes, a
    /// WHIP or WHEP session ends) and its tracks and subscriptions stop now.
    pub(super) fn revoke(&mut self, revocation: &Revocation) {
        let class_id = self.spec.class_id;
        let reached: Vec<u64> = self
            .peers
            .iter()
            .filter(|(_, p)| revocation.reaches(class_id, p.user_id, p.session.as_deref()))
            .map(|(id, _)| *id)
            .collect();
        for id in reached {
            if let Some(peer) = self.peers.get(&id) {
                peer.tell(Event::Kicked {
                    reason: revocation.reason,
                });
            }
            self.log(
                Some(id),
                "kick",
                serde_json::json!({"participant_id": id, "reason": revocation.reason}),
            );
            self.leave(id, "removed", None);
        }
    }

    /// Whether a newcomer was removed from this session by its host.
    pub(super) fn was_removed(&self, peer: &Peer) -> bool {
        removal_key(peer.user_id, peer.session.as_deref())
            .is_some_and(|key| self.removed.contains(&key))
    }
}
