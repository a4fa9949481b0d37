//! Errors a signalling request can end in. Each has a stable code that clients match on;
//! `ServerMessage::Error` is built from it in one place. The codes say whose fault it is:
//! `internal` is the server's own and `node_full` its capacity (try again later, nothing to fix
//! in the request); every other code names something about the request or the caller.
//!
//! What a live room refuses (`sfu::error::RoomError`) becomes one of these in one place, here;
//! WHIP and WHEP answer it over HTTP through the same codes.

use super::protocol::ServerMessage;
use crate::sfu::error::RoomError;
use crate::sfu::room::CHAT_MAX_CHARS;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignalError {
    /// Unknown room, or a room of a class the caller is not in: the same answer for both.
    #[error("no such room")]
    RoomNotFound,
    #[error("{0}")]
    NotAllowed(String),
    #[error("this room is not live yet; it starts when the host arrives")]
    NotLive,
    #[error("join a room first")]
    NotJoined,
    /// Waiting to be admitted: nothing but `leave` and `ping` until the host lets you in.
    #[error("wait until the host admits you")]
    NotAdmitted,
    #[error("this open house has as many guests as it may take; try again later")]
    GuestsFull,
    #[error("already in a room")]
    AlreadyJoined,
    #[error("the room is full")]
    RoomFull,
    #[error("this server carries all it can right now; try again later")]
    NodeFull,
    #[error("no such participant in this room")]
    NoSuchParticipant,
    /// The host removed this account (or guest token) from the session: no way back in
    /// until the next one.
    #[error("the host removed you from this session")]
    Removed,
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("too many messages; slow down")]
    RateLimited,
    /// The server's own fault (its database, a bug): nothing in the request to fix.
    #[error("the server could not do this")]
    Internal,
}

impl SignalError {
    pub fn bad(code: &'static str, message: impl Into<String>) -> SignalError {
        SignalError::BadRequest {
            code,
            message: message.into(),
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            SignalError::RoomNotFound => "room_not_found",
            SignalError::NotAllowed(_) => "not_allowed",
            SignalError::NotLive => "not_live",
            SignalError::NotJoined => "not_joined",
            SignalError::NotAdmitted => "not_admitted",
            SignalError::GuestsFull => "guests_full",
            SignalError::AlreadyJoined => "already_joined",
            SignalError::RoomFull => "room_full",
            SignalError::NodeFull => "node_full",
            SignalError::NoSuchParticipant => "no_such_participant",
            SignalError::Removed => "removed",
            SignalError::BadRequest { code, .. } => code,
            SignalError::RateLimited => "rate_limited",
            SignalError::Internal => "internal",
        }
    }

    pub fn to_message(&self, id: Option<u64>) -> ServerMessage {
        ServerMessage::Error {
            id,
            code: self.code().to_owned(),
            message: self.to_string(),
        }
    }
}

/// A room's refusal in the words and codes of the protocol.
impl From<RoomError> for SignalError {
    fn from(e: RoomError) -> SignalError {
        match e {
            RoomError::NotLive => SignalError::NotLive,
            RoomError::RoomFull => SignalError::RoomFull,
            RoomError::GuestsFull => SignalError::GuestsFull,
            RoomError::NodeFull => SignalError::NodeFull,
            RoomError::Removed => SignalError::Removed,
            RoomError::NotJoined => SignalError::NotJoined,
            RoomError::NotAdmitted => SignalError::NotAdmitted,
            RoomError::NoSuchParticipant => SignalError::NoSuchParticipant,
            RoomError::NotAllowed(message) => SignalError::NotAllowed(message),
            RoomError::EmptyMessage => SignalError::bad("empty_message", "the message is empty"),
            RoomError::MessageTooLong => SignalError::bad(
                "message_too_long",
                format!("at most {CHAT_MAX_CHARS} characters"),
            ),
            RoomError::RecordingRefused(message) => SignalError::bad("recording_refused", message),
            RoomError::BadSdp(message) => SignalError::bad("bad_sdp", message),
            RoomError::Internal => SignalError::Internal,
        }
    }
}
