//! One participant's signalling connection: reads requests, checks each one, and has the
//! answers and the room's events written (`outgoing.rs`). A bad message gets an `error` and
//! the connection stays usable; the socket closing means leaving the room.
//!
//! Every request of a joined participant (but the media plumbing: answers, candidates) is
//! authorised anew: its sign-in session must still exist and its standing in the class must
//! be what it was at join (a removed member or a signed-out session is `kicked` and the socket
//! closes). Each message type has its own rate (`throttle.rs`); a message over it is refused
//! before anything else happens.
//!
//! Two things end a connection from this side: silence (nothing received for
//! `limits.idle_timeout_secs`: the client's network vanished; it leaves as of when it was last
//! heard) and a client that does not take its messages (its queue stays full and the socket
//! takes nothing for a second: it is dropped as `too_slow` rather than let messages pile up).

use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::admission::admit;
use super::error::SignalError;
use super::outgoing::{Close, Outgoing, Writer};
use super::protocol::{ClientMessage, ServerMessage};
use super::requests::{handle, Joined};
use super::throttle::Throttle;
use super::{Caller, Identity};
use crate::sfu::room::Command;
use crate::state::AppState;

/// Messages queued for one participant. The connection's own answers wait for room in it (a
/// client that floods requests is slowed to the pace it reads); the room's events never wait.
const OUTBOX: usize = 1024;
/// How long the queue may stay full without the socket taking a message before the client
/// counts as not reading (`too_slow`).
const STALL: Duration = Duration::from_secs(1);
/// How often the queue is looked at between messages.
const OUTBOX_CHECK: Duration = Duration::from_millis(250);

/// One socket's reading side and what it knows.
struct Connection {
    state: AppState,
    caller: Caller,
    outbox: mpsc::Sender<Outgoing>,
    joined: Option<Joined>,
    throttle: Throttle,
    /// Why the participant goes, as the room and its log are told.
    reason: &'static str,
}

/// What a received frame leads to.
enum Flow {
    Go,
    /// Stop reading; with a close to write after what is queued.
    Stop(Option<Close>),
}

pub async fn run(socket: WebSocket, state: AppState, caller: Caller) {
    let (sink, mut stream) = socket.split();
    let (outbox, outbox_rx) = mpsc::channel::<Outgoing>(OUTBOX);
    let mut writer = Writer::start(sink, outbox_rx);
    let idle = Duration::from_secs(state.config.limits.idle_timeout_secs);
    let mut connection = Connection {
        state,
        caller,
        outbox,
        joined: None,
        throttle: Throttle::default(),
        reason: "left",
    };
    // When the client was last heard from, as a deadline and as the time attendance records.
    let mut heard = (Instant::now(), crate::store::now_ms());
    let mut check = tokio::time::interval(OUTBOX_CHECK);
    // Since when the queue has been full without the socket taking anything.
    let mut stalled: Option<(Instant, u64)> = None;
    loop {
        tokio::select! {
            incoming = stream.next() => {
                heard = (Instant::now(), crate::store::now_ms());
                // Boxed: a request's state (a join builds peer connections) would otherwise
                // sit in every idle participant's task, about 20 KiB each.
                match Box::pin(connection.on_frame(incoming)).await {
                    Flow::Go => {}
                    Flow::Stop(close) => {
                        if let Some(close) = close {
                            writer.close(close);
                        }
                        break;
                    }
                }
            }
            // `kicked` or `ended` went out (and the close frame after it), or writing failed.
            _ = writer.finished() => break,
            _ = tokio::time::sleep_until(heard.0 + idle) => {
                connection.reason = "idle_timeout";
                writer.close(Close::new(4002, "idle timeout"));
                break;
            }
            _ = check.tick() => {
                let written = writer.written();
                stalled = match stalled {
                    _ if connection.outbox.capacity() > 0 => None,
                    Some((since, at)) if at == written => Some((since, at)),
                    _ => Some((Instant::now(), written)),
                };
                if stalled.is_some_and(|(since, _)| since.elapsed() >= STALL) {
                    connection.reason = "too_slow";
                    break;
                }
            }
        }
    }
    let Connection { joined, reason, .. } = connection;
    // The room first: it must not wait for a client that is gone.
    if let Some(joined) = &joined {
        let participant_id = joined.participant_id;
        let command = match reason {
            "idle_timeout" => Command::Vanished {
                participant_id,
                reason,
                last_heard: heard.1,
            },
            _ => Command::Leave {
                participant_id,
                reason,
            },
        };
        let _ = joined.room.send(command).await;
    }
    if reason == "too_slow" {
        tracing::info!(
            participant = joined.as_ref().map(|j| j.participant_id),
            "dropped a participant that does not read its socket"
        );
        // It does not read: a close frame would only wait behind the rest.
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

impl Connection {
    /// Queues an answer, waiting while the queue is full; false when the socket took nothing
    /// for `STALL` (the client does not read).
    async fn answer(&mut self, message: ServerMessage) -> bool {
        let queued = tokio::time::timeout(STALL, self.outbox.send(message.into())).await;
        if queued.is_err() {
            self.reason = "too_slow";
        }
        queued.is_ok()
    }

    /// Answers one frame.
    async fn on_frame(&mut self, incoming: Option<Result<Message, axum::Error>>) -> Flow {
        let limit = self.state.config.limits.max_message_bytes;
        let text = match incoming {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Binary(_))) => {
                let error = SignalError::bad("bad_json", "send JSON text messages");
                return self.refuse(None, error).await;
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => return Flow::Go,
            Some(Err(ref e)) if too_big(e) => {
                // Beyond the socket's cap the WebSocket layer will not buffer the message: the
                // only answer left is closing with 1009 (message too big).
                return Flow::Stop(Some(Close::new(1009, "message too big")));
            }
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                return Flow::Stop(Some(Close::left()))
            }
        };
        if text.len() > limit {
            let error =
                SignalError::bad("too_large", format!("messages are at most {limit} bytes"));
            return self.refuse(None, error).await;
        }
        let message = match parse(&text) {
            Ok(message) => message,
            Err((id, error)) => return self.refuse(id, error).await,
        };
        let id = message.id();
        if !self.throttle.allow(message.kind()) {
            return self
                .flow(SignalError::RateLimited.to_message(Some(id)))
                .await;
        }
        tracing::debug!(
            participant = self.joined.as_ref().map(|j| j.participant_id),
            message = message.kind(),
            id,
            "signal in"
        );
        let leaving = matches!(message, ClientMessage::Leave { .. });
        // Answers and candidates only carry the media of a participation already checked (and
        // ended at once by a revocation); checking each against the database would make a
        // room's joins wait on its pool as it fills.
        let checked = !matches!(
            message,
            ClientMessage::Leave { .. }
                | ClientMessage::Ping { .. }
                | ClientMessage::Answer { .. }
                | ClientMessage::Candidate { .. }
        );
        if checked {
            if let Err(why) = still_entitled(&self.state, &self.caller, self.joined.as_ref()).await
            {
                let error = SignalError::NotAllowed(format!("you may no longer take part ({why})"));
                self.reason = "removed";
                let _ = self.outbox.try_send(error.to_message(Some(id)).into());
                return self
                    .flow(ServerMessage::Kicked {
                        reason: why.to_owned(),
                    })
                    .await;
            }
        }
        let was_joined = self.joined.is_some();
        let caller = &self.caller;
        let result = handle(
            &self.state,
            &caller.identity,
            caller.session.as_deref(),
            &self.outbox,
            &mut self.joined,
            message,
        )
        .await;
        // A removal that raced this join is caught here rather than at the next message.
        if !was_joined && self.joined.is_some() {
            if let Err(why) = still_entitled(&self.state, &self.caller, self.joined.as_ref()).await
            {
                self.reason = "removed";
                let _ = self.outbox.try_send(
                    ServerMessage::Kicked {
                        reason: why.to_owned(),
                    }
                    .into(),
                );
            }
        }
        tracing::debug!(
            participant = self.joined.as_ref().map(|j| j.participant_id),
            id,
            "signal handled"
        );
        let flow = match result {
            Ok(Some(reply)) => self.flow(reply).await,
            Ok(None) => Flow::Go,
            Err(error) => self.flow(error.to_message(Some(id))).await,
        };
        match (flow, leaving) {
            (Flow::Go, true) => Flow::Stop(Some(Close::left())),
            (flow, _) => flow,
        }
    }

    /// Answers a message that cannot be read, within the rate for those.
    async fn refuse(&mut self, id: Option<u64>, error: SignalError) -> Flow {
        let error = match self.throttle.allow("invalid") {
            true => error,
            false => SignalError::RateLimited,
        };
        self.flow(error.to_message(id)).await
    }

    async fn flow(&mut self, message: ServerMessage) -> Flow {
        match self.answer(message).await {
            true => Flow::Go,
            false => Flow::Stop(None),
        }
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
    "answer_failed",
    "ice_restart",
    "candidate",
    "chat",
    "hand",
    "audio_only",
    "quality",
    "focus",
    "keyframe",
    "admit",
    "promote",
    "mute",
    "kick",
    "end",
    "leave",
    "start_recording",
    "stop_recording",
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
