//! Signalling: typed JSON messages over one WebSocket per participant at `/api/v1/ws`,
//! authenticated by the session cookie or a guest's room token, and authorized message by
//! message (`connection.rs`). The protocol is in `protocol.rs` and `docs/signalling.md`.

pub mod admission;
pub mod connection;
pub mod error;
pub mod protocol;

#[cfg(test)]
mod fuzz;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

use crate::auth::room_token::RoomClaims;
use crate::http::extract::MaybeUser;
use crate::http::Error;
use crate::state::AppState;
use crate::store::users::User;

/// Who is on the other end of a socket.
#[derive(Clone)]
pub enum Identity {
    User(User),
    Guest(RoomClaims),
}

/// Who a room token stands for: the member it was issued to, or a guest.
pub async fn identity_from_token(state: &AppState, token: &str) -> Result<Identity, Error> {
    let invalid = || {
        Error::gone(
            "token_invalid",
            "the room token is unknown or expired; open the link again",
        )
    };
    let claims = state
        .room_tokens
        .verify(token, crate::store::now_ms())
        .ok_or_else(invalid)?;
    match claims.user_id {
        Some(id) => Ok(Identity::User(
            state.store.user_by_id(id).await?.ok_or_else(invalid)?,
        )),
        None => Ok(Identity::Guest(claims)),
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
    let identity = match (user, query.token) {
        (_, Some(token)) => identity_from_token(&state, &token).await?,
        (Some(current), None) => Identity::User(current.user),
        (None, None) => return Err(Error::Unauthorized),
    };
    // Who is asking is settled before whether they asked properly.
    let ws = ws.map_err(|r| Error::bad_request("not_websocket", r.body_text()))?;
    let limit = state.config.limits.max_message_bytes;
    // The socket takes somewhat more than the limit so that an oversized message can be
    // answered with a clear error instead of a dropped connection.
    Ok(ws
        .max_message_size(limit * 16)
        .on_upgrade(move |socket| connection::run(socket, state, identity)))
}
