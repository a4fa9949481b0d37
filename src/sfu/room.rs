//! A live room as an actor: one task owns the participants, the published tracks and the
//! session log's order, and takes commands over a channel. Nothing else touches that state,
//! so joins, leaves and moderation never race each other.
//!
//! The actor is here (joins, leaves, tracks, the end of the session); who hears about whom is
//! `roster.rs`, what participants ask of the room and the host's moderation `moderation.rs`,
//! and how each participant stands `standing.rs`.
//!
//! A participant waiting to be admitted (tutoring rooms) is told nothing of the room and may
//! do nothing in it: no events, no chat, no media, every request refused with `not_admitted`,
//! until the host admits them and they receive the room as it is.
//!
//! A publisher who drops out (network blip, reload) keeps their tracks' slots for a grace
//! period: see `publishing.rs`.
//!
//! When the session ends everyone is told `ended` and then nothing more: the room stops
//! talking to anyone before it tidies up.

mod handle;
mod moderation;
mod publishing;
mod recording;
mod roster;
mod standing;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;

use super::error::RoomError;
use super::event::Event;
use super::event_log::{EventLog, LogEntry, Written};
use super::track::Published;
use crate::access::Who;
use crate::domain::Abilities;
use crate::recording::{Active, Recorder};
use crate::store::live_sessions::SessionEvent;
use crate::store::now_ms;
pub use handle::{Command, NewPeer, PeerCommand, Request, RoomHandle, Snapshot};
pub use moderation::CHAT_MAX_CHARS;
use roster::{Counts, Peer};
pub use standing::{RoomKind, Standing};

/// The room's settings fixed at start.
pub struct RoomSpec {
    pub room_id: i64,
    pub class_id: i64,
    pub session_id: i64,
    pub max_participants: usize,
    /// Open-house guests at once (`limits.max_guests_per_room`).
    pub max_guests: usize,
    pub recorder: Recorder,
    /// Record the session from the moment its host arrives (the room's setting).
    pub record_sessions: bool,
}

pub struct Room {
    spec: RoomSpec,
    peers: BTreeMap<u64, Peer>,
    tracks: BTreeMap<String, Arc<Published>>,
    /// Tracks whose publisher left and may come back (see `publishing.rs`).
    held: BTreeSet<String>,
    /// The room's own queue, for timers.
    me: mpsc::WeakSender<Command>,
    /// The recording in progress, if any; the room's own commands tell it of a failure.
    recording: Option<Active>,
    /// Whom the host removed from this session (see `moderation.rs`).
    removed: HashSet<String>,
    counts: Counts,
    seq: i64,
    peak: usize,
    log: EventLog,
    rx: mpsc::Receiver<Command>,
    closed: Arc<AtomicBool>,
    /// Told the room's participant count whenever it changes (for metrics).
    on_change: Arc<dyn Fn(i64, usize) + Send + Sync>,
}

impl Room {
    /// Starts the room's task.
    pub fn start(
        spec: RoomSpec,
        log: EventLog,
        on_change: Arc<dyn Fn(i64, usize) + Send + Sync>,
    ) -> RoomHandle {
        let (tx, rx) = mpsc::channel(1024);
        let closed = Arc::new(AtomicBool::new(false));
        let handle = RoomHandle {
            class_id: spec.class_id,
            tx,
            closed: closed.clone(),
        };
        let room = Room {
            spec,
            peers: BTreeMap::new(),
            tracks: BTreeMap::new(),
            held: BTreeSet::new(),
            me: handle.tx.downgrade(),
            recording: None,
            removed: HashSet::new(),
            counts: Counts::default(),
            seq: 0,
            peak: 0,
            log,
            rx,
            closed,
            on_change,
        };
        tokio::spawn(room.run());
        handle
    }

    async fn run(mut self) {
        let mut end_reason = "empty";
        // The host who ended the session hears `ended` from its own connection, after the
        // `ok` to its `end`.
        let mut ended_by = None;
        loop {
            let due = self.counts.due;
            let command = tokio::select! {
                command = self.rx.recv() => match command {
                    Some(command) => command,
                    None => break,
                },
                _ = tokio::time::sleep_until(due.unwrap_or_else(tokio::time::Instant::now)), if due.is_some() => {
                    self.send_count(None);
                    continue;
                }
            };
            match command {
                Command::Join { peer, reply } => {
                    let _ = reply.send(self.join(peer));
                }
                Command::Leave {
                    participant_id,
                    reason,
                } => self.leave(participant_id, reason, None),
                Command::Vanished {
                    participant_id,
                    reason,
                    last_heard,
                } => self.leave(participant_id, reason, Some(last_heard)),
                Command::Published { incoming, reply } => {
                    let _ = reply.send(self.published(incoming));
                }
                Command::ReleaseHeld {
                    participant_id,
                    track_id,
                } => self.release_held(participant_id, &track_id),
                Command::Unpublished {
                    participant_id,
                    track_id,
                } => self.unpublished(participant_id, &track_id),
                Command::Request {
                    participant_id,
                    request,
                    reply,
                } => {
                    let ended = matches!(request, Request::End);
                    let result = self.request(participant_id, request);
                    let ok = result.is_ok();
                    let _ = reply.send(result);
                    if ended && ok {
                        end_reason = "ended_by_host";
                        ended_by = Some(participant_id);
                        break;
                    }
                }
                Command::Tracks { reply } => {
                    let _ = reply.send(self.tracks.values().cloned().collect());
                }
                Command::Revoke(revocation) => self.revoke(&revocation),
                Command::RecordingFailed(reason) => self.recording_stopped(None, reason),
                Command::Close => {
                    end_reason = "server_shutdown";
                    break;
                }
            }
            if self.peers.is_empty() {
                break;
            }
        }
        self.close(end_reason, ended_by);
    }

    fn log(&mut self, participant_id: Option<u64>, kind: &'static str, detail: serde_json::Value) {
        let event = self.event(participant_id, kind, detail);
        self.log.send(LogEntry::Event(event));
    }

    /// Logs an event whose writing someone waits for (an acknowledged chat message).
    fn log_durable(
        &mut self,
        participant_id: Option<u64>,
        kind: &'static str,
        detail: serde_json::Value,
    ) -> Written {
        let event = self.event(participant_id, kind, detail);
        self.log.send_durable(event)
    }

    fn event(
        &mut self,
        participant_id: Option<u64>,
        kind: &'static str,
        detail: serde_json::Value,
    ) -> SessionEvent {
        let (user_id, actor_name) = match participant_id.and_then(|id| self.peers.get(&id)) {
            Some(peer) => (peer.user_id, peer.display_name.clone()),
            None => (None, String::new()),
        };
        self.seq += 1;
        SessionEvent {
            session_id: self.spec.session_id,
            seq: self.seq,
            at: now_ms(),
            user_id,
            actor_name,
            kind,
            detail: detail.to_string(),
        }
    }

    fn join(&mut self, new: NewPeer) -> Result<Snapshot, RoomError> {
        if self.peers.len() >= self.spec.max_participants {
            return Err(RoomError::RoomFull);
        }
        if new.standing.who == Who::Guest {
            let guests = self
                .peers
                .values()
                .filter(|p| p.standing.who == Who::Guest)
                .count();
            if guests >= self.spec.max_guests {
                return Err(RoomError::GuestsFull);
            }
        }
        let id = new.participant_id;
        let peer = Peer {
            user_id: new.user_id,
            session: new.session,
            display_name: new.display_name,
            role: new.role,
            standing: new.standing,
            hand_raised: false,
            joined_at: now_ms(),
            muted: Vec::new(),
            outbox: new.outbox,
            media: new.media,
            receives: new.receives,
        };
        if self.was_removed(&peer) {
            return Err(RoomError::Removed);
        }
        let waiting = peer.standing.waiting;
        let abilities = Abilities {
            publish: peer.standing.may_publish(),
            host: peer.standing.host(),
            chat: true,
        };
        // Someone waiting sees the room only once admitted; only list viewers see who is here.
        let participants = match peer.sees_roster() {
            true => self.visible_to(&peer, id),
            false => Vec::new(),
        };
        let tracks = match waiting {
            true => Vec::new(),
            false => self.tracks_for(&peer).map(|t| t.info()).collect(),
        };
        if peer.subscribes() {
            for track in self.tracks_for(&peer) {
                let _ = peer.media.send(PeerCommand::Subscribe(track.clone()));
            }
        }
        self.peers.insert(id, peer);
        self.peak = self.peak.max(self.peers.len());
        (self.on_change)(self.spec.room_id, self.peers.len());
        let event = self.event(
            Some(id),
            "join",
            serde_json::json!({"participant_id": id, "waiting": waiting}),
        );
        if let Some(peer) = self.peers.get_mut(&id) {
            peer.joined_at = event.at;
        }
        self.log.send(LogEntry::Event(event));
        let info = self.peers[&id].info(id);
        self.announce(id, Event::ParticipantJoined(info), false);
        self.count_changed(Some(id));
        if self.spec.record_sessions && abilities.host && self.recording.is_none() {
            if let Err(e) = self.record(id, true) {
                tracing::warn!(error = %e, "the room records every session, but not this one");
            }
        }
        Ok(Snapshot {
            session_id: self.spec.session_id,
            abilities,
            waiting,
            participants,
            participant_count: self.participant_count(),
            tracks,
            recording: self.recording.is_some(),
        })
    }

    /// Someone leaves: their tracks stop, and those who see the list are told. `at` is when
    /// they actually left, when that was before now (a client that went silent).
    fn leave(&mut self, participant_id: u64, reason: &'static str, at: Option<i64>) {
        if !self.peers.contains_key(&participant_id) {
            return;
        }
        let may_return = matches!(reason, "left" | "connection_failed" | "media_timeout");
        for track_id in self.tracks_of(participant_id) {
            match may_return {
                true => self.hold(participant_id, track_id),
                false => self.unpublished(participant_id, &track_id),
            }
        }
        for track in self.tracks.values() {
            track.remove_sink(participant_id);
        }
        let mut event = self.event(
            Some(participant_id),
            "leave",
            serde_json::json!({"reason": reason}),
        );
        if let Some(at) = at {
            event.at = at.clamp(self.peers[&participant_id].joined_at, event.at);
        }
        self.log.send(LogEntry::Event(event));
        let Some(gone) = self.peers.remove(&participant_id) else {
            return;
        };
        (self.on_change)(self.spec.room_id, self.peers.len());
        self.announce_left(participant_id, &gone, reason);
        self.count_changed(None);
    }

    /// Ends the session: everyone (but the host who ended it, whose connection says it after
    /// its `ok`) is told `ended`, and then nothing more; tracks stop, each leave is logged and
    /// the session row is closed.
    fn close(mut self, reason: &'static str, ended_by: Option<u64>) {
        self.closed.store(true, Ordering::Release);
        self.rx.close();
        if let Some(recording) = self.recording.take() {
            recording.stop(None, "session_ended");
            self.log(
                None,
                "recording_stopped",
                serde_json::json!({"reason": "session_ended"}),
            );
        }
        for (id, peer) in &self.peers {
            if Some(*id) != ended_by {
                peer.tell(Event::Ended { reason });
            }
        }
        // Media stops as it does when each leaves, but no one is told anything more.
        let ids: Vec<u64> = self.peers.keys().copied().collect();
        for id in ids {
            for track_id in self.tracks_of(id) {
                self.tracks.remove(&track_id);
                self.log(
                    Some(id),
                    "unpublish",
                    serde_json::json!({"track_id": track_id}),
                );
                for peer in self.peers.values() {
                    let _ = peer.media.send(PeerCommand::Unsubscribe(track_id.clone()));
                }
            }
            for track in self.tracks.values() {
                track.remove_sink(id);
            }
            self.log(Some(id), "leave", serde_json::json!({"reason": reason}));
        }
        self.peers.clear();
        self.log.send(LogEntry::End {
            session_id: self.spec.session_id,
            reason: reason.to_owned(),
            peak: self.peak as i64,
        });
        (self.on_change)(self.spec.room_id, 0);
        tracing::info!(
            room_id = self.spec.room_id,
            session_id = self.spec.session_id,
            reason,
            "live session ended"
        );
    }
}
