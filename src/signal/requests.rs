//! What each request does once it has passed the connection's checks (rate, standing): `join`
//! enters a room, media messages go to the participant's peer connections, and the rest is
//! asked of the room's task.

use tokio::sync::mpsc;

use super::admission::admit;
use super::entry::{enter, Client, Entered, Entry};
use super::error::SignalError;
use super::outgoing::Outgoing;
use super::protocol::{ClientMessage, ServerMessage};
use super::Identity;
use crate::access::Who;
use crate::domain::Quality;
use crate::sfu::error::RoomError;
use crate::sfu::event::{Event, Outbox};
use crate::sfu::peer::PeerMedia;
use crate::sfu::room::{Request, RoomHandle};
use crate::state::AppState;
use crate::store::rooms::Room;

/// A participant who has joined.
pub(super) struct Joined {
    pub(super) room: RoomHandle,
    pub(super) participant_id: u64,
    pub(super) media: PeerMedia,
    /// The room as stored, to authorise each later request against.
    pub(super) row: Room,
    /// How the caller stood in the class at join; a change ends the participation.
    pub(super) who: Who,
}

pub(super) async fn handle(
    state: &AppState,
    identity: &Identity,
    session: Option<&str>,
    outbox: &mpsc::Sender<Outgoing>,
    joined: &mut Option<Joined>,
    message: ClientMessage,
) -> Result<Option<ServerMessage>, SignalError> {
    if let ClientMessage::Join { id, room_id } = message {
        if joined.is_some() {
            return Err(SignalError::AlreadyJoined);
        }
        let (mut entered, reply) = join(state, identity, session, outbox, id, room_id).await?;
        // `joined` goes out before the first subscriber offer can.
        let _ = outbox.try_send(reply.into());
        entered.media.start();
        *joined = Some(entered);
        return Ok(None);
    }
    if let ClientMessage::Ping { id } = message {
        return Ok(Some(ServerMessage::Pong { id }));
    }
    let id = message.id();
    let Joined {
        room,
        participant_id,
        media,
        ..
    } = joined.as_mut().ok_or(SignalError::NotJoined)?;
    let participant_id = *participant_id;
    let ask = |request| room.request(participant_id, request);
    // Handled here, outside the room: the room still says whether they may be sent at all
    // (someone waiting to be admitted may not).
    if matches!(
        message,
        ClientMessage::Answer { .. }
            | ClientMessage::AnswerFailed { .. }
            | ClientMessage::IceRestart { .. }
            | ClientMessage::Candidate { .. }
            | ClientMessage::AudioOnly { .. }
            | ClientMessage::Quality { .. }
            | ClientMessage::Focus { .. }
    ) {
        ask(Request::Check).await?;
    }
    match message {
        ClientMessage::Offer { sdp, sources, .. } => {
            ask(Request::MayPublish).await?;
            let sdp = media
                .publish_offer(sdp, sources)
                .await
                .map_err(RoomError::from)?;
            return Ok(Some(ServerMessage::Answer { id, sdp }));
        }
        ClientMessage::Answer { sdp, .. } => {
            media.subscriber_answer(id, sdp);
            return Ok(None);
        }
        ClientMessage::AnswerFailed { reason, .. } => {
            tracing::info!(
                participant_id,
                reason = reason.as_deref().unwrap_or(""),
                "client could not answer"
            );
            media.subscriber_answer_failed(id);
            return Ok(None);
        }
        ClientMessage::IceRestart { .. } => {
            media.ice_restart(id);
            return Ok(None);
        }
        ClientMessage::Candidate {
            target, candidate, ..
        } => {
            media
                .add_candidate(target, candidate)
                .await
                .map_err(|e| SignalError::bad("bad_candidate", e.to_string()))?;
        }
        ClientMessage::Chat { text, .. } => {
            // `ok` only once the message is in the session log: what was acknowledged
            // survives a crash. The socket goes on meanwhile.
            if let Some(written) = ask(Request::Chat(text)).await? {
                let outbox = outbox.clone();
                tokio::spawn(async move {
                    let reply = match written.await {
                        Ok(true) => ServerMessage::Ok { id },
                        _ => SignalError::Internal.to_message(Some(id)),
                    };
                    let _ = outbox.send(reply.into()).await;
                });
                return Ok(None);
            }
        }
        ClientMessage::Hand { raised, .. } => {
            ask(Request::Hand(raised)).await?;
        }
        ClientMessage::AudioOnly { enabled, .. } => {
            media.reception.choose(match enabled {
                true => Quality::AudioOnly,
                false => Quality::Auto,
            });
        }
        ClientMessage::Quality { quality, .. } => media.reception.choose(quality),
        ClientMessage::Focus { track_id, .. } => {
            if !media.reception.focus(track_id) {
                return Err(SignalError::bad(
                    "unknown_track",
                    "no such video among what you receive",
                ));
            }
        }
        ClientMessage::Keyframe { track_id, .. } => {
            ask(Request::Keyframe(track_id)).await?;
        }
        ClientMessage::Admit {
            participant_id: target,
            ..
        } => {
            ask(Request::Admit(target)).await?;
        }
        ClientMessage::Promote {
            participant_id: target,
            presenter,
            ..
        } => {
            ask(Request::Promote(target, presenter)).await?;
        }
        ClientMessage::Mute {
            participant_id: target,
            kind,
            muted,
            ..
        } => {
            ask(Request::Mute(target, kind, muted)).await?;
        }
        ClientMessage::Kick {
            participant_id: target,
            ..
        } => {
            ask(Request::Kick(target)).await?;
        }
        ClientMessage::End { .. } => {
            ask(Request::End).await?;
            // The `ok` to `end` comes before `ended`, which is the socket's last message (the
            // room tells everyone else).
            let _ = outbox.try_send(ServerMessage::Ok { id }.into());
            let _ = outbox.try_send(
                Event::Ended {
                    reason: "ended_by_host",
                }
                .into(),
            );
            return Ok(None);
        }
        ClientMessage::StartRecording { .. } => {
            ask(Request::Record(true)).await?;
        }
        ClientMessage::StopRecording { .. } => {
            ask(Request::Record(false)).await?;
        }
        ClientMessage::Leave { .. } => {}
        ClientMessage::Join { .. } | ClientMessage::Ping { .. } => unreachable!("handled above"),
    }
    Ok(Some(ServerMessage::Ok { id }))
}

/// Admits the caller to the room, starting its live session if they are its host.
async fn join(
    state: &AppState,
    identity: &Identity,
    session: Option<&str>,
    outbox: &mpsc::Sender<Outgoing>,
    id: u64,
    room_id: i64,
) -> Result<(Joined, ServerMessage), SignalError> {
    let room = state
        .store
        .room(room_id)
        .await
        .map_err(|_| SignalError::Internal)?
        .ok_or(SignalError::RoomNotFound)?;
    let standing = admit(&state.store, identity, &room).await?;
    let who = standing.who;
    let entry = Entry {
        room: &room,
        identity,
        standing,
        session: session.map(str::to_owned),
        outbox: Outbox::new(outbox.clone()),
        client: Client::Socket,
    };
    let Entered {
        room: handle,
        participant_id,
        snapshot,
        media,
    } = enter(&state.sfu, entry).await?;
    let media = media.expect("a socket's participant has its media side");
    let reply = ServerMessage::Joined {
        id,
        participant_id,
        room_id: room.id,
        room_kind: room.kind.clone(),
        room_name: room.name.clone(),
        session_id: snapshot.session_id,
        abilities: snapshot.abilities,
        waiting: snapshot.waiting,
        ice_servers: crate::turn::ice_servers(state, &format!("p{participant_id}")).0,
        participants: snapshot.participants,
        participant_count: snapshot.participant_count,
        tracks: snapshot.tracks,
        recording: snapshot.recording,
    };
    Ok((
        Joined {
            room: handle,
            participant_id,
            media,
            row: room,
            who,
        },
        reply,
    ))
}
