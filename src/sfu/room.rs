//! A live room as an actor: one task owns the participants, the published tracks and the
//! session log's order, and takes commands over a channel. Nothing else touches that state,
//! so joins, leaves and moderation never race each other.
//!
//! A participant waiting to be admitted (tutoring rooms) is told nothing of the room and may
//! do nothing in it: no events, no chat, no media, every request refused with `not_admitted`,
//! until the host admits them and they receive the room as it is.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::event_log::{EventLog, LogEntry, Written};
use super::revocation::Revocation;
use super::track::Published;
use crate::access::{decide, Action, Facts, Who};
use crate::recording::{Active, Recorder, Start};
use crate::signal::error::SignalError;
use crate::signal::protocol::{Abilities, MediaKind, ParticipantInfo, ServerMessage, TrackInfo};
use crate::store::live_sessions::SessionEvent;
use crate::store::now_ms;

/// Longest chat message, in characters. (How often one may chat is limited per socket, in
/// `signal::throttle`.)
pub const CHAT_MAX_CHARS: usize = 1000;

/// The three kinds of room of ARCHITECTURE.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoomKind {
    Classroom,
    Tutoring,
    OpenHouse,
}

impl RoomKind {
    pub fn parse(text: &str) -> Option<RoomKind> {
        match text {
            "classroom" => Some(RoomKind::Classroom),
            "tutoring" => Some(RoomKind::Tutoring),
            "open_house" => Some(RoomKind::OpenHouse),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RoomKind::Classroom => "classroom",
            RoomKind::Tutoring => "tutoring",
            RoomKind::OpenHouse => "open_house",
        }
    }
}

/// How a participant stands, from which every permission in the room is decided anew.
#[derive(Debug, Clone, Copy)]
pub struct Standing {
    pub who: Who,
    pub kind: RoomKind,
    /// The tutor assigned to host this tutoring room.
    pub assigned_host: bool,
    pub promoted: bool,
    pub waiting: bool,
}

impl Standing {
    fn facts(&self) -> Facts {
        Facts {
            promoted: self.promoted,
            assigned_host: self.assigned_host,
            admitted: !self.waiting,
        }
    }

    /// May moderate: the teacher (or admin) of a broadcast, the host of a tutoring room.
    pub fn host(&self) -> bool {
        let plain = Facts {
            promoted: false,
            ..self.facts()
        };
        match self.kind {
            RoomKind::Classroom | RoomKind::OpenHouse => {
                decide(self.who, Action::GoLive, plain).allowed()
            }
            RoomKind::Tutoring => decide(self.who, Action::HostTutoring, plain).allowed(),
        }
    }

    pub fn may_publish(&self) -> bool {
        match self.kind {
            RoomKind::Classroom | RoomKind::OpenHouse => {
                decide(self.who, Action::GoLive, self.facts()).allowed()
            }
            RoomKind::Tutoring => {
                self.host() || decide(self.who, Action::JoinTutoring, self.facts()).allowed()
            }
        }
    }
}

/// What the room tells a participant's media side to do.
pub enum PeerCommand {
    Subscribe(Arc<Published>),
    Unsubscribe(String),
}

/// A participant arriving.
pub struct NewPeer {
    pub participant_id: u64,
    pub user_id: Option<i64>,
    /// The sign-in session (stored hash) it was opened with; none for guests and stream keys.
    /// Signing out of that session ends this participation.
    pub session: Option<String>,
    pub display_name: String,
    pub role: String,
    pub standing: Standing,
    pub outbox: mpsc::Sender<ServerMessage>,
    pub media: mpsc::UnboundedSender<PeerCommand>,
    /// False for publish-only participants (a WHIP encoder such as OBS): they are sent nothing.
    pub receives: bool,
}

/// The room as a newcomer sees it.
pub struct Snapshot {
    pub session_id: i64,
    pub abilities: Abilities,
    pub waiting: bool,
    pub participants: Vec<ParticipantInfo>,
    pub tracks: Vec<TrackInfo>,
    /// The session is being recorded.
    pub recording: bool,
}

/// Requests a participant makes of the room.
#[derive(Debug)]
pub enum Request {
    Chat(String),
    Hand(bool),
    MayPublish,
    Admit(u64),
    Promote(u64, bool),
    Mute(u64, MediaKind),
    Kick(u64),
    End,
    Keyframe(String),
    /// Host: start (true) or stop recording the session.
    Record(bool),
    /// Nothing but the checks every request passes (still in the room, admitted): for
    /// messages handled outside the room (answers, candidates, audio-only).
    Check,
}

pub enum Command {
    Join {
        peer: NewPeer,
        reply: oneshot::Sender<Result<Snapshot, SignalError>>,
    },
    Leave {
        participant_id: u64,
        reason: &'static str,
    },
    Published {
        track: Arc<Published>,
    },
    Unpublished {
        participant_id: u64,
        track_id: String,
    },
    Request {
        participant_id: u64,
        request: Request,
        reply: oneshot::Sender<Result<Option<Written>, SignalError>>,
    },
    /// Some participants lost their right to be here (see `revocation.rs`).
    Revoke(Revocation),
    /// The tracks published now (for WHEP viewers, who take what is there when they arrive).
    Tracks {
        reply: oneshot::Sender<Vec<Arc<Published>>>,
    },
    /// The recording stopped on its own (the disk filled).
    RecordingFailed(&'static str),
    /// The node is shutting down.
    Close,
}

#[derive(Clone)]
pub struct RoomHandle {
    /// The class the room belongs to, so a revocation reaches only its class's rooms.
    pub class_id: i64,
    tx: mpsc::Sender<Command>,
    /// Set when the room's task has ended; a new one must be started for the next session.
    closed: Arc<AtomicBool>,
}

impl RoomHandle {
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire) || self.tx.is_closed()
    }

    /// Waits until the room's task has stopped taking commands: the session is over (and
    /// `is_closed` already says so).
    pub async fn ended(&self) {
        self.tx.closed().await
    }

    pub async fn send(&self, command: Command) -> Result<(), SignalError> {
        self.tx
            .send(command)
            .await
            .map_err(|_| SignalError::NotLive)
    }

    pub async fn join(&self, peer: NewPeer) -> Result<Snapshot, SignalError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Join { peer, reply }).await?;
        answer.await.map_err(|_| SignalError::NotLive)?
    }

    pub async fn tracks(&self) -> Result<Vec<Arc<Published>>, SignalError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Tracks { reply }).await?;
        answer.await.map_err(|_| SignalError::NotLive)
    }

    /// Asks the room; a chat answers with the pending write of its session event, which the
    /// caller awaits before acknowledging.
    pub async fn request(
        &self,
        participant_id: u64,
        request: Request,
    ) -> Result<Option<Written>, SignalError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Request {
            participant_id,
            request,
            reply,
        })
        .await?;
        answer.await.map_err(|_| SignalError::NotLive)?
    }
}

struct Peer {
    user_id: Option<i64>,
    session: Option<String>,
    display_name: String,
    role: String,
    standing: Standing,
    hand_raised: bool,
    outbox: mpsc::Sender<ServerMessage>,
    media: mpsc::UnboundedSender<PeerCommand>,
    receives: bool,
}

impl Peer {
    /// Whether tracks should be forwarded to this participant now.
    fn subscribes(&self) -> bool {
        self.receives && !self.standing.waiting
    }
}

impl Peer {
    fn info(&self, participant_id: u64) -> ParticipantInfo {
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

    /// Queues a message; a participant too slow to take its messages is dropped by its own
    /// connection (the queue is large), never waited for.
    fn tell(&self, message: ServerMessage) {
        let _ = self.outbox.try_send(message);
    }
}

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
    seq: i64,
    peak: usize,
    log: EventLog,
    rx: mpsc::Receiver<Command>,
    closed: Arc<AtomicBool>,
    /// The recording in progress, if any; the room's own commands tell it of a failure.
    recording: Option<Active>,
    commands: mpsc::WeakSender<Command>,
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
            seq: 0,
            peak: 0,
            log,
            recording: None,
            commands: handle.tx.downgrade(),
            rx,
            closed,
            on_change,
        };
        tokio::spawn(room.run());
        handle
    }

    async fn run(mut self) {
        let mut end_reason = "empty";
        while let Some(command) = self.rx.recv().await {
            match command {
                Command::Join { peer, reply } => {
                    let _ = reply.send(self.join(peer));
                }
                Command::Leave {
                    participant_id,
                    reason,
                } => self.leave(participant_id, reason),
                Command::Published { track } => self.published(track),
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
        self.close(end_reason);
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

    /// Tells every admitted participant; those still waiting hear nothing of the room.
    fn broadcast(&self, message: ServerMessage, except: Option<u64>) {
        for (id, peer) in &self.peers {
            if Some(*id) != except && !peer.standing.waiting {
                peer.tell(message.clone());
            }
        }
    }

    fn join(&mut self, new: NewPeer) -> Result<Snapshot, SignalError> {
        if self.peers.len() >= self.spec.max_participants {
            return Err(SignalError::RoomFull);
        }
        if new.standing.who == Who::Guest {
            let guests = self
                .peers
                .values()
                .filter(|p| p.standing.who == Who::Guest)
                .count();
            if guests >= self.spec.max_guests {
                return Err(SignalError::GuestsFull);
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
            outbox: new.outbox,
            media: new.media,
            receives: new.receives,
        };
        let info = peer.info(id);
        let waiting = peer.standing.waiting;
        let abilities = Abilities {
            publish: peer.standing.may_publish(),
            host: peer.standing.host(),
            chat: true,
        };
        // Someone waiting sees the room only once admitted.
        let mut snapshot = Snapshot {
            session_id: self.spec.session_id,
            abilities,
            waiting,
            participants: match waiting {
                true => Vec::new(),
                false => self.peers.iter().map(|(pid, p)| p.info(*pid)).collect(),
            },
            tracks: match waiting {
                true => Vec::new(),
                false => self.tracks.values().map(|t| t.info()).collect(),
            },
            recording: self.recording.is_some(),
        };
        if peer.subscribes() {
            for track in self.tracks.values() {
                let _ = peer.media.send(PeerCommand::Subscribe(track.clone()));
            }
        }
        let host = peer.standing.host();
        self.peers.insert(id, peer);
        self.peak = self.peak.max(self.peers.len());
        if self.spec.record_sessions && host && self.recording.is_none() {
            if let Err(e) = self.record(id, true) {
                tracing::warn!(error = %e, "the room records every session, but not this one");
            }
            snapshot.recording = self.recording.is_some();
        }
        (self.on_change)(self.spec.room_id, self.peers.len());
        self.log(
            Some(id),
            "join",
            serde_json::json!({"participant_id": id, "waiting": waiting}),
        );
        self.broadcast(
            ServerMessage::ParticipantJoined { participant: info },
            Some(id),
        );
        Ok(snapshot)
    }

    fn leave(&mut self, participant_id: u64, reason: &'static str) {
        if !self.peers.contains_key(&participant_id) {
            return;
        }
        let theirs: Vec<String> = self
            .tracks
            .values()
            .filter(|t| t.participant_id == participant_id)
            .map(|t| t.id.clone())
            .collect();
        for track_id in theirs {
            self.unpublished(participant_id, &track_id);
        }
        for track in self.tracks.values() {
            track.remove_sink(participant_id);
        }
        self.log(
            Some(participant_id),
            "leave",
            serde_json::json!({"reason": reason}),
        );
        self.peers.remove(&participant_id);
        (self.on_change)(self.spec.room_id, self.peers.len());
        self.broadcast(
            ServerMessage::ParticipantLeft {
                participant_id,
                reason: reason.to_owned(),
            },
            None,
        );
    }

    /// Drops the participants a revocation reaches: each is told why (its socket closes, a
    /// WHIP or WHEP session ends) and its tracks and subscriptions stop now.
    fn revoke(&mut self, revocation: &Revocation) {
        let class_id = self.spec.class_id;
        let reached: Vec<u64> = self
            .peers
            .iter()
            .filter(|(_, p)| revocation.reaches(class_id, p.user_id, p.session.as_deref()))
            .map(|(id, _)| *id)
            .collect();
        for id in reached {
            if let Some(peer) = self.peers.get(&id) {
                peer.tell(ServerMessage::Kicked {
                    reason: revocation.reason.to_owned(),
                });
            }
            self.log(
                Some(id),
                "kick",
                serde_json::json!({"participant_id": id, "reason": revocation.reason}),
            );
            self.leave(id, "removed");
        }
    }

    fn published(&mut self, track: Arc<Published>) {
        let Some(peer) = self.peers.get(&track.participant_id) else {
            return;
        };
        if !peer.standing.may_publish() {
            return;
        }
        self.log(
            Some(track.participant_id),
            "publish",
            serde_json::json!({"track_id": track.id, "kind": track.kind, "source": track.source}),
        );
        if let Some(recording) = &self.recording {
            let publisher = &self.peers[&track.participant_id];
            recording.add_track(&track, &publisher.display_name);
        }
        for (id, peer) in &self.peers {
            if *id != track.participant_id && peer.subscribes() {
                let _ = peer.media.send(PeerCommand::Subscribe(track.clone()));
            }
        }
        self.broadcast(
            ServerMessage::TrackPublished {
                track: track.info(),
            },
            None,
        );
        self.tracks.insert(track.id.clone(), track);
    }

    fn unpublished(&mut self, participant_id: u64, track_id: &str) {
        if self.tracks.remove(track_id).is_none() {
            return;
        }
        self.log(
            Some(participant_id),
            "unpublish",
            serde_json::json!({"track_id": track_id}),
        );
        for peer in self.peers.values() {
            let _ = peer
                .media
                .send(PeerCommand::Unsubscribe(track_id.to_owned()));
        }
        self.broadcast(
            ServerMessage::TrackUnpublished {
                track_id: track_id.to_owned(),
                participant_id,
            },
            None,
        );
    }

    fn request(
        &mut self,
        participant_id: u64,
        request: Request,
    ) -> Result<Option<Written>, SignalError> {
        let peer = self
            .peers
            .get_mut(&participant_id)
            .ok_or(SignalError::NotJoined)?;
        if peer.standing.waiting {
            return Err(SignalError::NotAdmitted);
        }
        let host = peer.standing.host();
        let not_host = || SignalError::NotAllowed("only the host may do this".into());
        match request {
            Request::Chat(text) => {
                let text = text.trim().to_owned();
                if text.is_empty() {
                    return Err(SignalError::bad("empty_message", "the message is empty"));
                }
                if text.chars().count() > CHAT_MAX_CHARS {
                    return Err(SignalError::bad(
                        "message_too_long",
                        format!("at most {CHAT_MAX_CHARS} characters"),
                    ));
                }
                let display_name = peer.display_name.clone();
                let written = self.log_durable(
                    Some(participant_id),
                    "chat",
                    serde_json::json!({"text": text}),
                );
                self.broadcast(
                    ServerMessage::Chat {
                        participant_id,
                        display_name,
                        text,
                        at: now_ms(),
                    },
                    None,
                );
                return Ok(Some(written));
            }
            Request::Hand(raised) => {
                peer.hand_raised = raised;
                let info = peer.info(participant_id);
                self.log(
                    Some(participant_id),
                    "hand",
                    serde_json::json!({"raised": raised}),
                );
                self.broadcast(
                    ServerMessage::ParticipantUpdated { participant: info },
                    None,
                );
            }
            Request::MayPublish => {
                if !peer.standing.may_publish() {
                    return Err(SignalError::NotAllowed(
                        "your role in this room does not allow publishing".into(),
                    ));
                }
            }
            Request::Keyframe(track_id) => {
                if let Some(track) = self.tracks.get(&track_id) {
                    track.request_keyframe();
                }
            }
            Request::Admit(target) => {
                if !host {
                    return Err(not_host());
                }
                let peer = self
                    .peers
                    .get_mut(&target)
                    .ok_or(SignalError::NoSuchParticipant)?;
                if !peer.standing.waiting {
                    return Ok(None);
                }
                peer.standing.waiting = false;
                let peer = &self.peers[&target];
                // Now the room as it is: who is here and what they publish.
                peer.tell(ServerMessage::Admitted);
                for (id, other) in self.peers.iter().filter(|(id, _)| **id != target) {
                    peer.tell(ServerMessage::ParticipantJoined {
                        participant: other.info(*id),
                    });
                }
                for track in self.tracks.values() {
                    peer.tell(ServerMessage::TrackPublished {
                        track: track.info(),
                    });
                    if peer.receives {
                        let _ = peer.media.send(PeerCommand::Subscribe(track.clone()));
                    }
                }
                let info = peer.info(target);
                self.log(
                    Some(participant_id),
                    "admit",
                    serde_json::json!({"participant_id": target}),
                );
                self.broadcast(
                    ServerMessage::ParticipantUpdated { participant: info },
                    None,
                );
            }
            Request::Promote(target, presenter) => {
                if !host
                    || self.peers.get(&participant_id).map(|p| p.standing.kind)
                        == Some(RoomKind::Tutoring)
                {
                    return Err(not_host());
                }
                let peer = self
                    .peers
                    .get_mut(&target)
                    .ok_or(SignalError::NoSuchParticipant)?;
                peer.standing.promoted = presenter;
                let info = peer.info(target);
                self.log(
                    Some(participant_id),
                    "promote",
                    serde_json::json!({"participant_id": target, "presenter": presenter}),
                );
                self.broadcast(
                    ServerMessage::ParticipantUpdated { participant: info },
                    None,
                );
                if !presenter {
                    let theirs: Vec<String> = self
                        .tracks
                        .values()
                        .filter(|t| t.participant_id == target)
                        .map(|t| t.id.clone())
                        .collect();
                    for track_id in theirs {
                        self.unpublished(target, &track_id);
                    }
                }
            }
            Request::Mute(target, kind) => {
                if !host {
                    return Err(not_host());
                }
                if !self.peers.contains_key(&target) {
                    return Err(SignalError::NoSuchParticipant);
                }
                let muted: Vec<TrackInfo> = self
                    .tracks
                    .values()
                    .filter(|t| t.participant_id == target && t.kind == kind)
                    .map(|t| {
                        t.muted.store(true, Ordering::Relaxed);
                        t.info()
                    })
                    .collect();
                self.log(
                    Some(participant_id),
                    "mute",
                    serde_json::json!({"participant_id": target, "kind": kind}),
                );
                for track in muted {
                    self.broadcast(
                        ServerMessage::TrackMuted {
                            track_id: track.track_id,
                            participant_id: target,
                            muted: true,
                        },
                        None,
                    );
                }
            }
            Request::Kick(target) => {
                if !host {
                    return Err(not_host());
                }
                let peer = self
                    .peers
                    .get(&target)
                    .ok_or(SignalError::NoSuchParticipant)?;
                peer.tell(ServerMessage::Kicked {
                    reason: "removed by the host".into(),
                });
                self.log(
                    Some(participant_id),
                    "kick",
                    serde_json::json!({"participant_id": target}),
                );
                self.leave(target, "kicked");
            }
            Request::End => {
                if !host {
                    return Err(not_host());
                }
                self.log(Some(participant_id), "end", serde_json::json!({}));
            }
            Request::Record(on) => {
                if !host {
                    return Err(not_host());
                }
                self.record(participant_id, on)?;
            }
            Request::Check => {}
        }
        Ok(None)
    }

    /// Starts or stops recording; everyone admitted is told, and the log says who did it.
    fn record(&mut self, participant_id: u64, on: bool) -> Result<(), SignalError> {
        let peer = &self.peers[&participant_id];
        let name = peer.display_name.clone();
        if !on {
            if let Some(recording) = self.recording.take() {
                recording.stop(Some(name.clone()), "stopped");
                self.recording_stopped(Some(participant_id), "stopped");
            }
            return Ok(());
        }
        if self.recording.is_some() {
            return Ok(());
        }
        let start = Start {
            session_id: self.spec.session_id,
            user_id: peer.user_id,
            name: name.clone(),
        };
        let commands = self.commands.clone();
        let on_failure = Box::new(move |reason| {
            if let Some(tx) = commands.upgrade() {
                let _ = tx.try_send(Command::RecordingFailed(reason));
            }
        });
        let recording = self.spec.recorder.start(start, on_failure).map_err(|e| {
            tracing::warn!(error = %e, "recording refused");
            SignalError::bad("recording_refused", e.to_string())
        })?;
        for track in self.tracks.values() {
            let publisher = self.peers.get(&track.participant_id);
            recording.add_track(track, publisher.map_or("", |p| p.display_name.as_str()));
        }
        self.recording = Some(recording);
        self.log(
            Some(participant_id),
            "recording_started",
            serde_json::json!({}),
        );
        self.broadcast(
            ServerMessage::Recording {
                recording: true,
                by: name,
                reason: None,
            },
            None,
        );
        Ok(())
    }

    /// Tells the room the recording stopped (by the host, or on its own).
    fn recording_stopped(&mut self, participant_id: Option<u64>, reason: &'static str) {
        self.recording = None;
        let by = participant_id
            .and_then(|id| self.peers.get(&id))
            .map(|p| p.display_name.clone())
            .unwrap_or_default();
        self.log(
            participant_id,
            "recording_stopped",
            serde_json::json!({"reason": reason}),
        );
        self.broadcast(
            ServerMessage::Recording {
                recording: false,
                by,
                reason: Some(reason.to_owned()),
            },
            None,
        );
    }

    /// Ends the session: everyone is told, tracks stop, the session row is closed.
    fn close(mut self, reason: &'static str) {
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
        let ids: Vec<u64> = self.peers.keys().copied().collect();
        for id in ids {
            if let Some(peer) = self.peers.get(&id) {
                peer.tell(ServerMessage::Ended {
                    reason: reason.to_owned(),
                });
            }
            self.leave(id, reason);
        }
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
