//! One participant's signalling connection: reads requests, checks each one, and has the
//! answers and the room's events written (`outgoing.rs`). A bad message gets an `error` and
//! the connection stays usable; the socket closing means leaving the room.
//!
//! Every request of a joined participant is authorised anew: its sign-in session must still
//! exist and its standing in the class must be what it was at join (a removed member or a
//! signed-out session is `kicked` and the socket closes). Each message type has its own rate
//! (`throttle.rs`); a message over it is refused before anything else happens.
//!
//! Two things end a connection from this side: silence (nothing received for
//! `limits.idle_timeout_secs`: the client's network vanished; it leaves as of when it was last
//! heard) and a client that does not take its messages (its outbox is full: it is dropped as
//! `too_slow` rather than let the room's messages pile up).

use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::admission::admit;
use super::error::SignalError;
use super::outgoing::{Close, Writer};
use super::protocol::{ClientMessage, ServerMessage};
use super::requests::{handle, Joined};
use super::throttle::Throttle;
use super::{Caller, Identity};
use crate::sfu::room::Command;
use crate::state::AppState;

/// Messages queued for one participant; a full queue means the client stopped reading, and it
/// is disconnected (`too_slow`).
const OUTBOX: usize = 1024;
/// How often the outbox is looked at between messages.
const OUTBOX_CHECK: Duration = Duration::from_millis(250);

pub async fn run(socket: WebSocket, state: AppState, caller: Caller) {
    let (sink, mut stream) = socket.split();
    let (outbox, outbox_rx) = mpsc::channel::<ServerMessage>(OUTBOX);
    let mut writer = Writer::start(sink, outbox_rx);
    let mut joined: Option<Joined> = None;
    let mut throttle = Throttle::default();
    let limit = state.config.limits.max_message_bytes;
    let idle = Duration::from_secs(state.config.limits.idle_timeout_secs);
    // When the client was last heard from, as a deadline and as the time attendance records.
    let mut heard = (Instant::now(), crate::store::now_ms());
    let mut check = tokio::time::interval(OUTBOX_CHECK);
    // Why the participant goes, as the room and its log are told.
    let mut reason = "left";
    loop {
        tokio::select! {
            incoming = stream.next() => {
                heard = (Instant::now(), crate::store::now_ms());
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
                        writer.close(Close::new(1009, "message too big"));
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
                        if outbox.capacity() == 0 {
                            reason = "too_slow";
                            break;
                        }
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
                    if let Err(why) = still_entitled(&state, &caller, joined.as_ref()).await {
                        let _ = outbox.try_send(SignalError::NotAllowed(format!("you may no longer take part ({why})")).to_message(Some(id)));
                        let _ = outbox.try_send(ServerMessage::Kicked { reason: why.to_owned() });
                        reason = "removed";
                        continue;
                    }
                }
                let was_joined = joined.is_some();
                let result = handle(&state, &caller.identity, caller.session.as_deref(), &outbox, &mut joined, message).await;
                // A removal that raced this join is caught here rather than at the next message.
                if !was_joined && joined.is_some() {
                    if let Err(why) = still_entitled(&state, &caller, joined.as_ref()).await {
                        let _ = outbox.try_send(ServerMessage::Kicked { reason: why.to_owned() });
                        reason = "removed";
                    }
                }
                tracing::debug!(participant = joined.as_ref().map(|j| j.participant_id), id, "signal handled");
                match result {
                    Ok(Some(reply)) => { let _ = outbox.try_send(reply); }
                    Ok(None) => {}
                    Err(error) => { let _ = outbox.try_send(error.to_message(Some(id))); }
                }
                if leaving {
                    writer.close(Close::left());
                    break;
                }
            }
            // `kicked` or `ended` went out (and the close frame after it), or writing failed.
            _ = writer.finished() => break,
            _ = tokio::time::sleep_until(heard.0 + idle) => {
                reason = "idle_timeout";
                writer.close(Close::new(4002, "idle timeout"));
                break;
            }
            _ = check.tick() => {
                if outbox.capacity() == 0 {
                    reason = "too_slow";
                    break;
                }
            }
        }
    }
    let (silent, slow) = (reason == "idle_timeout", reason == "too_slow");
    // The room first: it must not wait for a client that is gone.
    if let Some(joined) = &joined {
        let participant_id = joined.participant_id;
        let command = match silent {
            true => Command::Vanished {
                participant_id,
                reason,
                last_heard: heard.1,
            },
            false => Command::Leave {
                participant_id,
                reason,
            },
        };
        let _ = joined.room.send(command).await;
    }
    if slow {
        tracing::info!(
            participant = joined.as_ref().map(|j| j.participant_id),
            "dropped a participant that does not read its socket"
        );
        // It does not read: the close frame (4003) would only wait behind the rest.
        writer.abort();
    } else {
        writer.finish(Duration::from_secs(2)).await;
        // A proper close handshake: closing the TCP connection with the client's late messages
        // unread would make the kernel reset it, and the client could lose our last replies.
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            while let Some(Ok(message)) = stream.next().await {
                if matches!(message, Message::Close(_)) {
                    break;
                }
            }
        })
        .await;
    }
    if let Some(joined) = joined {
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
pub const KNOWN_TYPES: &[&str] = &[
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
