//! Signalling: typed JSON messages over one WebSocket per participant at `/api/v1/ws`,
//! authenticated by the session cookie or a guest's room token (never another kind of room
//! token) when the socket opens (the HTTP side, `http::signalling`, which hands the socket to
//! `connection.rs`), and authorized message by message (`connection.rs`), each type at a
//! bounded rate (`throttle.rs`). The protocol is in `protocol.rs` and `docs/signalling.md`;
//! the SFU's events become its messages in `events.rs`. Every client enters a room through
//! `admission.rs` (who may) and `entry.rs` (the joining), WHIP encoders and WHEP players too.

pub mod admission;
pub mod connection;
pub mod entry;
pub mod error;
pub mod events;
pub mod guests;
pub mod outgoing;
pub mod protocol;
mod requests;
pub mod throttle;

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod fuzz_messages;

use crate::auth::room_token::RoomClaims;
use crate::store::users::User;

/// Who is on the other end of a socket.
#[derive(Clone)]
pub enum Identity {
    User(User),
    Guest(RoomClaims),
}

/// Who is on the other end, and the credential they came with: a member's sign-in session (a
/// participation ends when that session does), or for a guest its room token's hash (a guest
/// the host removed cannot come back with that token).
pub struct Caller {
    pub identity: Identity,
    pub session: Option<String>,
}
