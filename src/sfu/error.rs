//! What a live room refuses, in the SFU's own terms. The signalling (`signal::error`) and the
//! HTTP API (WHIP, WHEP) turn each into the code and words their clients read; the texts here
//! are for the server's logs.

use super::room::CHAT_MAX_CHARS;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoomError {
    /// No live session: the host has not arrived, or the session just ended.
    #[error("the room has no live session")]
    NotLive,
    #[error("the room has as many participants as it may")]
    RoomFull,
    #[error("the open house has as many guests as it may")]
    GuestsFull,
    /// The node carries as many rooms or participants as it may: its capacity, not the
    /// request's fault.
    #[error("the node carries as many as it may")]
    NodeFull,
    /// The host removed this account (or guest token) from the session.
    #[error("removed from this session by the host")]
    Removed,
    #[error("not a participant of the room")]
    NotJoined,
    /// Waiting to be admitted: nothing is asked of the room until the host lets them in.
    #[error("waiting to be admitted")]
    NotAdmitted,
    #[error("no such participant in the room")]
    NoSuchParticipant,
    /// The participant's standing does not allow it; the text says what.
    #[error("{0}")]
    NotAllowed(String),
    #[error("the chat message is empty")]
    EmptyMessage,
    #[error("a chat message has at most {CHAT_MAX_CHARS} characters")]
    MessageTooLong,
    /// The recorder would not start (disk full, recording off); the text says why.
    #[error("{0}")]
    RecordingRefused(String),
    /// A session description the client sent could not be applied; the text says why.
    #[error("{0}")]
    BadSdp(String),
    /// The server's own fault (its database, the WebRTC stack), already logged.
    #[error("the room could not do this")]
    Internal,
}
