//! What can be asked of a live room: its handle, the commands its task takes, and the
//! participant arriving and the room as it sees it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::standing::Standing;
use crate::domain::{Abilities, MediaKind, ParticipantInfo, TrackInfo};
use crate::sfu::error::RoomError;
use crate::sfu::event::Outbox;
use crate::sfu::event_log::Written;
use crate::sfu::revocation::Revocation;
use crate::sfu::track::{Incoming, Published};

/// What the room tells a participant's media side to do.
pub enum PeerCommand {
    Subscribe(Arc<Published>),
    Unsubscribe(String),
}

/// A participant arriving.
pub struct NewPeer {
    pub participant_id: u64,
    pub user_id: Option<i64>,
    /// The credential it was opened with: the sign-in session's stored hash (signing out of
    /// it ends this participation), or a guest's room-token hash (a guest the host removed
    /// cannot come back with it); none for stream keys.
    pub session: Option<String>,
    pub display_name: String,
    pub role: String,
    pub standing: Standing,
    pub outbox: Outbox,
    pub media: mpsc::UnboundedSender<PeerCommand>,
    /// False for publish-only participants (a WHIP encoder such as OBS): they are sent nothing.
    pub receives: bool,
}

/// The room as a newcomer sees it.
pub struct Snapshot {
    pub session_id: i64,
    pub abilities: Abilities,
    pub waiting: bool,
    /// Who is here, for those who see the list (hosts); empty for everyone else.
    pub participants: Vec<ParticipantInfo>,
    /// How many are here, the newcomer included.
    pub participant_count: u64,
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
    /// Host: mute (true) or unmute a participant's audio or video.
    Mute(u64, MediaKind, bool),
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
        reply: oneshot::Sender<Result<Snapshot, RoomError>>,
    },
    Leave {
        participant_id: u64,
        reason: &'static str,
    },
    /// A participant that went silent (`reason`) left; `last_heard` (unix ms) is when it was
    /// last heard from, the time attendance records.
    Vanished {
        participant_id: u64,
        reason: &'static str,
        last_heard: i64,
    },
    /// A track came in on a publisher connection; the reply is the slot to feed and the
    /// generation to forward, or nothing if the participant may not publish.
    Published {
        incoming: Incoming,
        reply: oneshot::Sender<Option<(Arc<Published>, u32)>>,
    },
    /// The grace for a departed publisher's track is over.
    ReleaseHeld {
        participant_id: u64,
        track_id: String,
    },
    Unpublished {
        participant_id: u64,
        track_id: String,
    },
    Request {
        participant_id: u64,
        request: Request,
        reply: oneshot::Sender<Result<Option<Written>, RoomError>>,
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
    pub(super) tx: mpsc::Sender<Command>,
    /// Set when the room's task has ended; a new one must be started for the next session.
    pub(super) closed: Arc<AtomicBool>,
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

    pub async fn send(&self, command: Command) -> Result<(), RoomError> {
        self.tx.send(command).await.map_err(|_| RoomError::NotLive)
    }

    /// Tells the room a participant is gone (nothing to do if the room already ended).
    pub async fn leave(&self, participant_id: u64, reason: &'static str) {
        let _ = self
            .send(Command::Leave {
                participant_id,
                reason,
            })
            .await;
    }

    pub async fn join(&self, peer: NewPeer) -> Result<Snapshot, RoomError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Join { peer, reply }).await?;
        answer.await.map_err(|_| RoomError::NotLive)?
    }

    pub async fn tracks(&self) -> Result<Vec<Arc<Published>>, RoomError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Tracks { reply }).await?;
        answer.await.map_err(|_| RoomError::NotLive)
    }

    /// Asks the room; a chat answers with the pending write of its session event, which the
    /// caller awaits before acknowledging.
    pub async fn request(
        &self,
        participant_id: u64,
        request: Request,
    ) -> Result<Option<Written>, RoomError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Request {
            participant_id,
            request,
            reply,
        })
        .await?;
        answer.await.map_err(|_| RoomError::NotLive)?
    }
}
