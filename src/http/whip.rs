//! WHIP ingest (RFC 9725): an encoder such as OBS publishes into a classroom or open house
//! with a stream key the teacher made. The encoder joins the room as a publish-only
//! participant in the teacher's name, through the same admission, room and media code as a
//! browser; it only lacks the WebSocket.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use axum::{Json, Router};
use serde::Serialize;
use tokio::sync::mpsc;
use utoipa::ToSchema;

use super::classes::require;
use super::extract::CurrentUser;
use super::media_sessions::{until_removed, InRoom, Sessions};
use super::{Error, Result};
use crate::access::Action;
use crate::auth::token;
use crate::domain::{Candidate, RoomKind};
use crate::sfu::error::RoomError;
use crate::sfu::event::Outbox;
use crate::sfu::media::MediaError;
use crate::sfu::peer::{candidate_init, PeerMedia};
use crate::sfu::room::RoomHandle;
use crate::signal::admission::admit;
use crate::signal::entry::{enter, Client, Entered, Entry};
use crate::signal::Identity;
use crate::state::AppState;
use crate::store::rooms::Room;
use crate::store::stream_keys::StreamKey;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/rooms/{room_id}/stream-keys",
            post(create_key).get(list_keys),
        )
        .route(
            "/api/v1/rooms/{room_id}/stream-keys/{key_id}",
            delete(revoke_key),
        )
        .route("/whip/{room_id}", post(publish))
        .route("/whip/{room_id}/{resource}", delete(stop).patch(trickle))
}

/// Live WHIP publishers by resource id.
pub type WhipSessions = Sessions<WhipSession>;

pub struct WhipSession {
    room_id: i64,
    room: RoomHandle,
    participant_id: u64,
    media: PeerMedia,
}

impl InRoom for WhipSession {
    fn room_id(&self) -> i64 {
        self.room_id
    }
}

#[derive(Serialize, ToSchema)]
pub struct CreatedKey {
    #[serde(flatten)]
    pub key: StreamKey,
    /// The secret for the encoder's "Bearer token" field; shown only now.
    pub stream_key: String,
    /// The encoder's "Server" field.
    pub whip_url: String,
}

/// A room of the caller's class where they may go live, with WHIP-capable kind.
async fn live_room(state: &AppState, current: &CurrentUser, room_id: i64) -> Result<Room> {
    let room = state.store.room(room_id).await?.ok_or(Error::NotFound)?;
    require(state, &current.user, room.class_id, Action::GoLive).await?;
    if RoomKind::parse(&room.kind) == Some(RoomKind::Tutoring) {
        return Err(Error::bad_request(
            "not_broadcast",
            "WHIP publishes into classrooms and open houses",
        ));
    }
    Ok(room)
}

/// Makes a stream key for an encoder (OBS) to publish into this room as the caller.
#[utoipa::path(post, path = "/api/v1/rooms/{room_id}/stream-keys", tag = "whip", params(("room_id" = i64, Path)),
    responses((status = 201, body = CreatedKey), (status = 404, body = super::error::ErrorBody)))]
pub async fn create_key(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(room_id): Path<i64>,
) -> Result<(StatusCode, Json<CreatedKey>)> {
    let room = live_room(&state, &current, room_id).await?;
    let secret = token::new_secret();
    let key = state
        .store
        .create_stream_key(room.id, &token::hash(&secret), current.user.id)
        .await?;
    let whip_url = state
        .public_url
        .join(&format!("whip/{}", room.id))
        .expect("valid path")
        .to_string();
    Ok((
        StatusCode::CREATED,
        Json(CreatedKey {
            key,
            stream_key: secret,
            whip_url,
        }),
    ))
}

/// The room's stream keys (without their secrets).
#[utoipa::path(get, path = "/api/v1/rooms/{room_id}/stream-keys", tag = "whip", params(("room_id" = i64, Path)),
    responses((status = 200, body = [StreamKey]), (status = 404, body = super::error::ErrorBody)))]
pub async fn list_keys(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(room_id): Path<i64>,
) -> Result<Json<Vec<StreamKey>>> {
    live_room(&state, &current, room_id).await?;
    Ok(Json(state.store.stream_keys(room_id).await?))
}

/// Revokes a stream key; an encoder publishing with it keeps going until it stops, and cannot
/// start again.
#[utoipa::path(delete, path = "/api/v1/rooms/{room_id}/stream-keys/{key_id}", tag = "whip",
    params(("room_id" = i64, Path), ("key_id" = i64, Path)), responses((status = 204), (status = 404, body = super::error::ErrorBody)))]
pub async fn revoke_key(
    State(state): State<AppState>,
    current: CurrentUser,
    Path((room_id, key_id)): Path<(i64, i64)>,
) -> Result<StatusCode> {
    live_room(&state, &current, room_id).await?;
    match state.store.revoke_stream_key(room_id, key_id).await? {
        true => Ok(StatusCode::NO_CONTENT),
        false => Err(Error::NotFound),
    }
}

/// The stream key in `Authorization: Bearer …`, valid for this room.
async fn stream_key(state: &AppState, headers: &HeaderMap, room_id: i64) -> Result<StreamKey> {
    let invalid = || Error::Unauthenticated {
        code: "stream_key_invalid",
        message: "the stream key is unknown, revoked or for another room".into(),
    };
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(invalid)?;
    let key = state
        .store
        .stream_key_by_hash(&token::hash(bearer.trim()))
        .await?
        .ok_or_else(invalid)?;
    if key.room_id != room_id {
        return Err(invalid());
    }
    Ok(key)
}

pub(super) fn require_content_type(headers: &HeaderMap, expected: &str) -> Result<()> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with(expected) {
        return Err(Error::bad_request(
            "wrong_content_type",
            format!("send {expected}"),
        ));
    }
    Ok(())
}

/// Starts publishing: the body is the encoder's SDP offer; the answer carries every server
/// candidate. `Location` names the session for PATCH (trickle) and DELETE.
#[utoipa::path(post, path = "/whip/{room_id}", tag = "whip", params(("room_id" = i64, Path)),
    request_body(content = String, content_type = "application/sdp"),
    responses((status = 201, description = "SDP answer", content_type = "application/sdp"),
        (status = 401, body = super::error::ErrorBody), (status = 403, body = super::error::ErrorBody)))]
pub async fn publish(
    State(state): State<AppState>,
    Path(room_id): Path<i64>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    let key = stream_key(&state, &headers, room_id).await?;
    require_content_type(&headers, "application/sdp")?;
    let offer = String::from_utf8(body.to_vec())
        .map_err(|_| Error::bad_request("bad_sdp", "the offer is not text"))?;
    let room = state.store.room(room_id).await?.ok_or(Error::NotFound)?;
    let owner = match key.created_by {
        Some(id) => state.store.user_by_id(id).await?,
        None => None,
    };
    // A key whose teacher is gone publishes for nobody.
    let owner = owner.ok_or(Error::Unauthenticated {
        code: "stream_key_invalid",
        message: "the key's owner no longer exists".into(),
    })?;
    let identity = Identity::User(owner);
    let standing = admit(&state.store, &identity, &room).await?;
    if !standing.may_publish() {
        return Err(Error::forbidden(
            "not_allowed",
            "the key's owner may not go live in this room",
        ));
    }
    let (outbox, outbox_rx) = mpsc::channel(256);
    let entry = Entry {
        room: &room,
        identity: &identity,
        standing,
        // A stream key is no sign-in session: only a removal from the class (or the
        // account's end) stops the encoder, not its owner signing out.
        session: None,
        outbox: Outbox::new(outbox),
        client: Client::Encoder,
    };
    let Entered {
        room: handle,
        participant_id,
        media,
        ..
    } = enter(&state.sfu, entry).await?;
    let mut media = media.expect("an encoder has its media side");
    let answer = match media.publish_offer(offer, Default::default()).await {
        Ok(answer) => answer,
        Err(e) => {
            handle.leave(participant_id, "left").await;
            media.close().await;
            return Err(media_error(e));
        }
    };
    let resource = state.whip.insert(WhipSession {
        room_id,
        room: handle,
        participant_id,
        media,
    });
    // The encoder has no socket: the room's messages are read here, and the end of the
    // session or removal by the host ends the WHIP session too.
    tokio::spawn({
        let state = state.clone();
        let resource = resource.clone();
        async move {
            until_removed(outbox_rx).await;
            if let Some(session) = state.whip.take(&resource) {
                session.media.close().await;
            }
        }
    });
    tracing::info!(room_id, participant_id, "WHIP publisher joined");
    let response = (
        StatusCode::CREATED,
        [
            (header::CONTENT_TYPE, "application/sdp".to_owned()),
            (header::LOCATION, format!("/whip/{room_id}/{resource}")),
            (header::ETAG, format!("\"{participant_id}\"")),
        ],
        answer,
    )
        .into_response();
    Ok(with_ice_servers(&state, response, participant_id))
}

/// Adds the ICE servers (the built-in relay with a credential for this participant) as
/// `Link` headers, for an encoder or player that could not reach the media ports directly
/// and restarts ICE through a relay.
pub(super) fn with_ice_servers(
    state: &AppState,
    mut response: Response,
    participant_id: u64,
) -> Response {
    let (servers, _) = crate::turn::ice_servers(state, &format!("p{participant_id}"));
    for (name, value) in super::ice_servers::link_headers(&servers) {
        if let Ok(value) = header::HeaderValue::from_str(&value) {
            response.headers_mut().append(name, value);
        }
    }
    response
}

/// Trickled candidates from the encoder (`application/trickle-ice-sdpfrag`).
#[utoipa::path(patch, path = "/whip/{room_id}/{resource}", tag = "whip", params(("room_id" = i64, Path), ("resource" = String, Path)),
    request_body(content = String, content_type = "application/trickle-ice-sdpfrag"),
    responses((status = 204), (status = 404, body = super::error::ErrorBody)))]
pub async fn trickle(
    State(state): State<AppState>,
    Path((room_id, resource)): Path<(i64, String)>,
    headers: HeaderMap,
    body: String,
) -> Result<StatusCode> {
    stream_key(&state, &headers, room_id).await?;
    require_content_type(&headers, "application/trickle-ice-sdpfrag")?;
    // Only read: a session ended meanwhile (DELETE, the end of the live session) stays ended.
    let pc = state
        .whip
        .read_in(room_id, &resource, |s| s.media.publisher_connection())
        .flatten()
        .ok_or(Error::NotFound)?;
    for candidate in parse_sdpfrag(&body) {
        if let Err(e) = pc.add_ice_candidate(candidate_init(candidate)).await {
            tracing::debug!(error = %e, "WHIP candidate refused");
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Stops publishing.
#[utoipa::path(delete, path = "/whip/{room_id}/{resource}", tag = "whip", params(("room_id" = i64, Path), ("resource" = String, Path)),
    responses((status = 200), (status = 404, body = super::error::ErrorBody)))]
pub async fn stop(
    State(state): State<AppState>,
    Path((room_id, resource)): Path<(i64, String)>,
    headers: HeaderMap,
) -> Result<StatusCode> {
    stream_key(&state, &headers, room_id).await?;
    let session = state
        .whip
        .take_in(room_id, &resource)
        .ok_or(Error::NotFound)?;
    session.room.leave(session.participant_id, "left").await;
    session.media.close().await;
    Ok(StatusCode::OK)
}

/// A media failure as an HTTP answer: the client's offer (400 `bad_sdp`) or the server's own
/// (`internal`).
pub(super) fn media_error(e: MediaError) -> Error {
    match e {
        MediaError::Refused(message) => Error::bad_request("bad_sdp", message),
        other => RoomError::from(other).into(),
    }
}

/// The candidates of a trickle-ice-sdpfrag body, each with the `a=mid` that precedes it.
pub(super) fn parse_sdpfrag(body: &str) -> Vec<Candidate> {
    let mut mid = None;
    let mut candidates = Vec::new();
    for line in body.lines().map(str::trim) {
        if let Some(value) = line.strip_prefix("a=mid:") {
            mid = Some(value.to_owned());
        } else if let Some(candidate) = line.strip_prefix("a=") {
            if candidate.starts_with("candidate:") {
                candidates.push(Candidate {
                    candidate: candidate.to_owned(),
                    sdp_mid: mid.clone(),
                    sdp_mline_index: None,
                });
            }
        }
    }
    candidates
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdpfrag_candidates_keep_their_mid() {
        let frag = "a=ice-ufrag:abcd\r\na=ice-pwd:efgh\r\nm=audio 9 RTP/AVP 0\r\na=mid:0\r\n\
                    a=candidate:1 1 udp 2130706431 192.0.2.1 50000 typ host\r\na=end-of-candidates\r\n";
        let candidates = parse_sdpfrag(frag);
        assert_eq!(candidates.len(), 1);
        assert_eq!(candidates[0].sdp_mid.as_deref(), Some("0"));
        assert!(candidates[0].candidate.starts_with("candidate:1 1 udp"));
    }
}
