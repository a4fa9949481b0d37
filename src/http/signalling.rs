//! The door of the signalling socket, `/api/v1/ws`: who is calling (the session cookie, or a
//! guest's room token and never another kind), from a page of this server, within the guest
//! sockets its address may hold; then the socket is `signal::connection`'s. Also who a room
//! token stands for, which WHEP players are asked the same way.

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

use super::extract::{ClientIp, MaybeUser};
use super::Error;
use crate::auth::room_token::Purpose;
use crate::signal::{connection, Caller, Identity};
use crate::state::AppState;

/// Who a room token made for `purpose` (and, when given, for `room_id`) stands for: the member
/// whose still-open session it was issued from, or a guest. A token made for anything else is
/// refused as if it did not exist.
pub(super) async fn caller_from_token(
    state: &AppState,
    token: &str,
    purpose: Purpose,
    room_id: Option<i64>,
) -> Result<Caller, Error> {
    let invalid = || {
        Error::gone(
            "token_invalid",
            "the room token is unknown, expired or not for this; open the link again",
        )
    };
    let claims = state
        .room_tokens
        .verify(token, purpose, room_id, crate::store::now_ms())
        .ok_or_else(invalid)?;
    match (claims.user_id, claims.session.clone()) {
        (Some(id), Some(session)) => {
            let (user, _) = state
                .store
                .session_user(&session)
                .await?
                .filter(|(user, _)| user.id == id)
                .ok_or_else(invalid)?;
            Ok(Caller {
                identity: Identity::User(user),
                session: Some(session),
            })
        }
        (None, None) => Ok(Caller {
            identity: Identity::Guest(claims),
            session: Some(crate::auth::token::hash(token)),
        }),
        _ => Err(invalid()),
    }
}

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/ws", get(upgrade))
}

#[derive(Deserialize)]
struct WsQuery {
    /// A guest's room token (browsers cannot set headers on a WebSocket).
    token: Option<String>,
}

async fn upgrade(
    State(state): State<AppState>,
    MaybeUser(user): MaybeUser,
    ClientIp(ip): ClientIp,
    Query(query): Query<WsQuery>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, Error> {
    // Cookies ride along on cross-site WebSocket handshakes in some browsers; only pages of
    // this server may open one with them.
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        let same = url::Url::parse(origin).ok().is_some_and(|o| {
            let origin_host = match o.port() {
                Some(port) => format!("{}:{port}", o.host_str().unwrap_or("")),
                None => o.host_str().unwrap_or("").to_owned(),
            };
            origin_host == host
        });
        if !same {
            return Err(Error::forbidden(
                "bad_origin",
                "this page may not open a signalling connection",
            ));
        }
    }
    // Only a guest token opens a socket: a viewer token is for its WHEP player alone.
    let caller = match (user, query.token) {
        (_, Some(token)) => caller_from_token(&state, &token, Purpose::Guest, None).await?,
        (Some(current), None) => Caller {
            identity: Identity::User(current.user),
            session: Some(current.session_hash),
        },
        (None, None) => return Err(Error::Unauthorized),
    };
    let guest_slot = match caller.identity {
        Identity::Guest(_) => Some(state.guest_slots.take(ip).ok_or(Error::TooMany {
            code: "too_many_guests",
            message: "too many guest connections from this address".into(),
        })?),
        Identity::User(_) => None,
    };
    // Who is asking is settled before whether they asked properly.
    let ws = ws.map_err(|r| Error::bad_request("not_websocket", r.body_text()))?;
    let limit = socket_limit(state.config.limits.max_message_bytes);
    Ok(ws
        .read_buffer_size(READ_BUFFER)
        .max_message_size(limit)
        .max_frame_size(limit)
        .on_upgrade(move |socket| async move {
            connection::run(socket, state, caller).await;
            drop(guest_slot);
        }))
}

/// What a socket's read buffer starts at: signalling messages are small, and the layer's
/// default (128 KiB, allocated when the socket opens) was a fifth of an idle viewer's memory
/// (docs/performance.md); a larger message grows the buffer as it comes.
const READ_BUFFER: usize = 4 * 1024;

/// The most the socket reads of one message: the message limit and a margin of an eighth, so
/// that a message somewhat over the limit is answered `too_large` and the socket stays open.
/// Past this, the WebSocket layer refuses to buffer it and the socket closes with 1009.
fn socket_limit(max_message_bytes: usize) -> usize {
    max_message_bytes + max_message_bytes / 8
}
