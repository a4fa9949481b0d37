//! Entering a live room, one way for every client: a participant's socket, a WHIP encoder, a
//! WHEP player. Admission (`admission.rs`) has settled who may come in and as what; this finds
//! the live room, numbers the newcomer, gives it its media side and joins it, leaving nothing
//! behind when the room refuses.

use tokio::sync::mpsc;

use super::admission::presentation;
use super::Identity;
use crate::domain::RoomKind;
use crate::sfu::error::RoomError;
use crate::sfu::event::Outbox;
use crate::sfu::peer::PeerMedia;
use crate::sfu::room::{NewPeer, RoomHandle, Snapshot, Standing};
use crate::sfu::Sfu;
use crate::store::rooms::Room;

/// What kind of client comes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    /// A participant's socket: it publishes and receives, and the room renegotiates with it.
    Socket,
    /// A WHIP encoder (OBS): it publishes in its owner's name and is sent nothing.
    Encoder,
    /// A WHEP player: it receives what is live when it comes, cannot be renegotiated, and
    /// never starts a session.
    Player,
}

/// Someone admitted to a room, about to enter it.
pub struct Entry<'a> {
    pub room: &'a Room,
    pub identity: &'a Identity,
    pub standing: Standing,
    /// The credential it came with (`NewPeer::session`).
    pub session: Option<String>,
    /// Where the room's events for it go.
    pub outbox: Outbox,
    pub client: Client,
}

/// A participant in the room.
pub struct Entered {
    pub room: RoomHandle,
    pub participant_id: u64,
    pub snapshot: Snapshot,
    /// Its peer connections; none for a player, whose one connection its handler builds.
    pub media: Option<PeerMedia>,
}

pub async fn enter(sfu: &Sfu, entry: Entry<'_>) -> Result<Entered, RoomError> {
    let Entry {
        room,
        identity,
        standing,
        session,
        outbox,
        client,
    } = entry;
    let user_id = match identity {
        Identity::User(user) => Some(user.id),
        Identity::Guest(_) => None,
    };
    let handle = match client {
        Client::Player => {
            let handle = sfu.live_room(room.id).ok_or(RoomError::NotLive)?;
            sfu.admit(false)?;
            handle
        }
        Client::Socket | Client::Encoder => sfu.room_for(room, user_id, standing.host()).await?,
    };
    let participant_id = sfu.next_participant_id();
    let (media, media_tx) = match client {
        // Nothing to renegotiate: the room's commands for its media side go nowhere.
        Client::Player => (None, mpsc::unbounded_channel().0),
        Client::Socket | Client::Encoder => {
            let tiles =
                client == Client::Socket && RoomKind::parse(&room.kind) == Some(RoomKind::Tutoring);
            let (media, media_tx) = PeerMedia::new(
                participant_id,
                sfu.media(),
                outbox.clone(),
                handle.clone(),
                tiles,
            );
            (Some(media), media_tx)
        }
    };
    let (name, role) = presentation(identity, &standing);
    let peer = NewPeer {
        participant_id,
        user_id,
        session,
        display_name: match client {
            Client::Encoder => format!("{name} (encoder)"),
            Client::Socket | Client::Player => name,
        },
        role,
        standing,
        outbox,
        media: media_tx,
        receives: client == Client::Socket,
    };
    match handle.join(peer).await {
        Ok(snapshot) => Ok(Entered {
            room: handle,
            participant_id,
            snapshot,
            media,
        }),
        Err(e) => {
            if let Some(media) = media {
                media.close().await;
            }
            Err(e)
        }
    }
}
