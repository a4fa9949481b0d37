//! One participant's signalling connection: reads requests, checks each one, and writes the
//! answers and the room's events. A bad message gets an `error` and the connection stays
//! usable; the socket closing means leaving the room.
//!
//! Every request of a joined participant is authorised anew: its sign-in session must still
//! exist and its standing in the class must be what it was at join (a removed member or a
//! signed-out session is `kicked` and the socket closes). Each message type has its own rate
//! (`throttle.rs`); a message over it is refused before anything else happens.

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;

use super::admission::{admit, presentation};
use super::error::SignalError;
use super::protocol::{ClientMessage, ServerMessage};
use super::throttle::Throttle;
use super::{Caller, Identity};
use crate::access::Who;
use crate::sfu::peer::PeerMedia;
use crate::sfu::room::{Command, NewPeer, Request, RoomHandle};
use crate::state::AppState;
use crate::store::rooms::Room;

/// Messages queued for one participant before it counts as too slow and is disconnected.
const OUTBOX: usize = 1024;

/// A participant who has joined.
struct Joined {
    room: RoomHandle,
    participant_id: u64,
    media: PeerMedia,
    /// The room as stored, to authorise each later request against.
    row: Room,
    /// How the caller stood in the class at join; a change ends the participation.
    who: Who,
}

pub async fn run(socket: WebSocket, state: AppState, caller: Caller) {
    let (mut sink, mut stream) = socket.split();
    let (outbox, mut outbox_rx) = mpsc::channel::<ServerMessage>(OUTBOX);
    let mut joined: Option<Joined> = None;
    let mut throttle = Throttle::default();
    let mut close_code = None;
    let limit = state.config.limits.max_message_bytes;
    loop {
        tokio::select! {
            incoming = stream.next() => {
                let text = match incoming {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Binary(_))) => {
                        if throttle.allow("invalid") {
                            let _ = outbox.try_send(SignalError::bad("bad_json", "send JSON text messages").to_message(None));
                        }
                        continue;
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Err(ref e)) if too_big(e) => {
                        // Beyond the socket's cap the WebSocket layer will not buffer the
                        // message: the only answer left is closing with 1009 (message too big).
                        close_code = Some(1009);
                        break;
                    }
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                };
                if text.len() > limit {
                    if throttle.allow("invalid") {
                        let _ = outbox.try_send(SignalError::bad("too_large", format!("messages are at most {limit} bytes")).to_message(None));
                    }
                    continue;
                }
                let message = match parse(&text) {
                    Ok(message) => message,
                    Err((id, error)) => {
                        let reply = match throttle.allow("invalid") {
                            true => error,
                            false => SignalError::RateLimited,
                        };
                        let _ = outbox.try_send(reply.to_message(id));
                        continue;
                    }
                };
                let id = message.id();
                if !throttle.allow(message.kind()) {
                    let _ = outbox.try_send(SignalError::RateLimited.to_message(Some(id)));
                    continue;
                }
                tracing::debug!(participant = joined.as_ref().map(|j| j.participant_id), message = message.kind(), id, "signal in");
                let leaving = matches!(message, ClientMessage::Leave { .. });
                let checked = !matches!(message, ClientMessage::Leave { .. } | ClientMessage::Ping { .. });
                if checked {
                    if let Err(reason) = still_entitled(&state, &caller, joined.as_ref()).await {
                        let _ = outbox.try_send(SignalError::NotAllowed(format!("you may no longer take part ({reason})")).to_message(Some(id)));
                        let _ = outbox.try_send(ServerMessage::Kicked { reason: reason.to_owned() });
                        continue;
                    }
                }
                let was_joined = joined.is_some();
                let result = handle(&state, &caller.identity, caller.session.as_deref(), &outbox, &mut joined, message).await;
                // A removal that raced this join is caught here rather than at the next message.
                if !was_joined && joined.is_some() {
                    if let Err(reason) = still_entitled(&state, &caller, joined.as_ref()).await {
                        let _ = outbox.try_send(ServerMessage::Kicked { reason: reason.to_owned() });
                    }
                }
                tracing::debug!(participant = joined.as_ref().map(|j| j.participant_id), id, "signal handled");
                match result {
                    Ok(Some(reply)) => { let _ = outbox.try_send(reply); }
                    Ok(None) => {}
                    Err(error) => { let _ = outbox.try_send(error.to_message(Some(id))); }
                }
                if leaving {
                    break;
                }
            }
            Some(message) = outbox_rx.recv() => {
                let last = matches!(message, ServerMessage::Kicked { .. } | ServerMessage::Ended { .. });
                let json = serde_json::to_string(&message).expect("server messages serialize");
                if sink.send(Message::Text(json.into())).await.is_err() || last {
                    break;
                }
            }
        }
    }
    // Say what is still queued (e.g. the answer to `leave`), then go.
    while let Ok(message) = outbox_rx.try_recv() {
        let json = serde_json::to_string(&message).expect("server messages serialize");
        if sink.send(Message::Text(json.into())).await.is_err() {
            break;
        }
    }
    // A proper close handshake: closing the TCP connection with the client's late messages
    // unread would make the kernel reset it, and the client could lose our last replies.
    match close_code {
        Some(code) => {
            let frame = CloseFrame {
                code,
                reason: "message too big".into(),
            };
            let _ = sink.send(Message::Close(Some(frame))).await;
        }
        None => {
            let _ = sink.close().await;
        }
    }
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), async {
        while let Some(Ok(message)) = stream.next().await {
            if matches!(message, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
    if let Some(joined) = joined {
        let _ = joined
            .room
            .send(Command::Leave {
                participant_id: joined.participant_id,
                reason: "left",
            })
            .await;
        joined.media.close().await;
    }
}

/// Whether a read failed because the message was over the socket's cap. axum's WebSocket runs
/// on another major version of tungstenite than the one this crate can name, so its
/// `CapacityError::MessageTooLong` is recognised by its message ("Message too long: …").
fn too_big(error: &axum::Error) -> bool {
    let source: &(dyn std::error::Error + 'static) = error;
    let mut next = Some(source);
    while let Some(e) = next {
        if e.to_string().contains("Message too long") {
            return true;
        }
        next = e.source();
    }
    false
}

/// Whether the caller may still take part, checked before each request: the sign-in session
/// it came with still exists, and (once joined) its standing in the room's class is the one it
/// joined with. Otherwise, the reason it is being let go.
async fn still_entitled(
    state: &AppState,
    caller: &Caller,
    joined: Option<&Joined>,
) -> Result<(), &'static str> {
    let Identity::User(user) = &caller.identity else {
        // A guest's token was checked at connect; its room at join.
        return Ok(());
    };
    let current = match &caller.session {
        Some(session) => match state.store.session_user(session).await {
            Ok(Some((current, _))) if current.id == user.id => current,
            Ok(_) => return Err("signed_out"),
            Err(_) => return Err("internal"),
        },
        None => user.clone(),
    };
    let Some(joined) = joined else {
        return Ok(());
    };
    match admit(&state.store, &Identity::User(current), &joined.row).await {
        Ok(standing) if standing.who == joined.who => Ok(()),
        Ok(_) => Err("role_changed"),
        Err(SignalError::Internal) => Err("internal"),
        Err(_) => Err("removed_from_class"),
    }
}

/// The `type`s a client may send (docs/signalling.md, "Client → server").
pub(super) const KNOWN_TYPES: &[&str] = &[
    "join",
    "offer",
    "answer",
    "candidate",
    "chat",
    "hand",
    "audio_only",
    "keyframe",
    "admit",
    "promote",
    "mute",
    "kick",
    "end",
    "start_recording",
    "stop_recording",
    "leave",
    "ping",
];

/// Reads one message: malformed JSON, an unknown type and bad fields are told apart.
pub(super) fn parse(text: &str) -> Result<ClientMessage, (Option<u64>, SignalError)> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        (
            None,
            SignalError::bad("bad_json", format!("not valid JSON: {e}")),
        )
    })?;
    let id = value.get("id").and_then(|v| v.as_u64());
    let Some(kind) = value
        .get("type")
        .and_then(|t| t.as_str())
        .map(str::to_owned)
    else {
        return Err((
            id,
            SignalError::bad("bad_json", "a message is an object with a \"type\""),
        ));
    };
    if !KNOWN_TYPES.contains(&kind.as_str()) {
        return Err((
            id,
            SignalError::bad("unknown_type", format!("unknown message type {kind:?}")),
        ));
    }
    serde_json::from_value(value)
        .map_err(|e| (id, SignalError::bad("bad_message", format!("{kind}: {e}"))))
}

async fn handle(
    state: &AppState,
    identity: &Identity,
    session: Option<&str>,
    outbox: &mpsc::Sender<ServerMessage>,
    joined: &mut Option<Joined>,
    message: ClientMessage,
) -> Result<Option<ServerMessage>, SignalError> {
    if let ClientMessage::Join { id, room_id } = message {
        if joined.is_some() {
            return Err(SignalError::AlreadyJoined);
        }
        let (mut entered, reply) = join(state, identity, session, outbox, id, room_id).await?;
        // `joined` goes out before the first subscriber offer can.
        let _ = outbox.try_send(reply);
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
            | ClientMessage::Candidate { .. }
            | ClientMessage::AudioOnly { .. }
    ) {
        ask(Request::Check).await?;
    }
    match message {
        ClientMessage::Offer { sdp, sources, .. } => {
            ask(Request::MayPublish).await?;
            let sdp = media
                .publish_offer(sdp, sources, false)
                .await
                .map_err(|e| SignalError::bad("bad_sdp", format!("the offer was refused: {e}")))?;
            return Ok(Some(ServerMessage::Answer { id, sdp }));
        }
        ClientMessage::Answer { sdp, .. } => {
            media.subscriber_answer(id, sdp);
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
                    let _ = outbox.send(reply).await;
                });
                return Ok(None);
            }
        }
        ClientMessage::Hand { raised, .. } => {
            ask(Request::Hand(raised)).await?;
        }
        ClientMessage::AudioOnly { enabled, .. } => {
            media
                .audio_only
                .store(enabled, std::sync::atomic::Ordering::Relaxed);
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
            ..
        } => {
            ask(Request::Mute(target, kind)).await?;
        }
        ClientMessage::Kick {
            participant_id: target,
            ..
        } => {
            ask(Request::Kick(target)).await?;
        }
        ClientMessage::End { .. } => {
            ask(Request::End).await?;
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
    outbox: &mpsc::Sender<ServerMessage>,
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
    let user_id = match identity {
        Identity::User(user) => Some(user.id),
        Identity::Guest(_) => None,
    };
    let handle = state.sfu.room_for(&room, user_id, standing.host()).await?;
    let participant_id = state.sfu.next_participant_id();
    let (media, media_tx) = PeerMedia::new(
        participant_id,
        state.sfu.media(),
        outbox.clone(),
        handle.clone(),
    );
    let (display_name, role) = presentation(identity, &standing);
    let peer = NewPeer {
        participant_id,
        user_id,
        session: session.map(str::to_owned),
        display_name,
        role,
        standing,
        outbox: outbox.clone(),
        media: media_tx,
        receives: true,
    };
    let snapshot = match handle.join(peer).await {
        Ok(snapshot) => snapshot,
        Err(e) => {
            media.close().await;
            return Err(e);
        }
    };
    let reply = ServerMessage::Joined {
        id,
        participant_id,
        room_id: room.id,
        room_kind: room.kind.clone(),
        room_name: room.name.clone(),
        session_id: snapshot.session_id,
        abilities: snapshot.abilities,
        waiting: snapshot.waiting,
        ice_servers: state.config.media.ice_servers.clone(),
        participants: snapshot.participants,
        tracks: snapshot.tracks,
        recording: snapshot.recording,
    };
    Ok((
        Joined {
            room: handle,
            participant_id,
            media,
            row: room,
            who: standing.who,
        },
        reply,
    ))
}
