//! WHEP playback: any standard player watches a live classroom or open house. The player
//! offers (receive-only), so the server answers with the room's tracks as they are when it
//! arrives; it joins the room as a viewer through the same admission as the browser app.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Serialize;
use tokio::sync::mpsc;
use utoipa::ToSchema;
use webrtc::peer_connection::{
    PeerConnectionEventHandler, RTCPeerConnectionState, RTCSessionDescription,
};

use super::classes::{require, who_in};
use super::extract::{CurrentUser, MaybeUser};
use super::media_sessions::{until_removed, InRoom, Sessions};
use super::signalling::caller_from_token;
use super::whip::{media_error, parse_sdpfrag, require_content_type, with_ice_servers};
use super::{Error, Result};
use crate::access::{Action, Who};
use crate::auth::room_token::{Purpose, RoomClaims};
use crate::domain::MediaKind;
use crate::domain::RoomKind;
use crate::sfu::event::Outbox;
use crate::sfu::media::{Connection, Direction, MediaError};
use crate::sfu::output::Output;
use crate::sfu::peer::candidate_init;
use crate::sfu::quality::reception::{Reception, Running};
use crate::sfu::room::RoomHandle;
use crate::signal::admission::admit;
use crate::signal::entry::{enter, Client, Entered, Entry};
use crate::signal::{Caller, Identity};
use crate::state::AppState;
use crate::store::now_ms;

/// How long a viewer token may be used to start playback.
const VIEWER_TOKEN_TTL_MS: i64 = 10 * 60 * 1000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/rooms/{room_id}/viewer-token", post(viewer_token))
        .route("/whep/{room_id}", post(play))
        .route(
            "/whep/{room_id}/{resource}",
            axum::routing::delete(stop).patch(trickle),
        )
}

/// Live WHEP viewers by resource id.
pub type WhepSessions = Sessions<WhepSession>;

pub struct WhepSession {
    room_id: i64,
    room: RoomHandle,
    participant_id: u64,
    connection: Connection,
    outputs: Vec<Output>,
    /// Its quality loop (a player always gets auto); stops with the session.
    _quality: Running,
}

impl InRoom for WhepSession {
    fn room_id(&self) -> i64 {
        self.room_id
    }
}

impl WhepSession {
    async fn close(self) {
        for output in &self.outputs {
            output.detach(self.participant_id);
        }
        self.room.leave(self.participant_id, "left").await;
        let _ = self.connection.pc.close().await;
    }
}

#[derive(Serialize, ToSchema)]
pub struct ViewerToken {
    /// For `Authorization: Bearer …` on the WHEP URL (players cannot send cookies).
    pub token: String,
    pub whep_url: String,
    pub expires_at: i64,
}

/// The watch action for a broadcast room, or a refusal for tutoring rooms.
fn watch_action(kind: &str) -> Result<Action> {
    match RoomKind::parse(kind) {
        Some(RoomKind::Classroom) => Ok(Action::WatchClassroom),
        Some(RoomKind::OpenHouse) => Ok(Action::WatchOpenHouse),
        _ => Err(Error::bad_request(
            "not_broadcast",
            "WHEP plays classrooms and open houses",
        )),
    }
}

/// A short-lived token with which a standard WHEP player watches this one room as the caller.
/// It is good for nothing else (not the signalling socket, not another room), and it dies with
/// the session that made it.
#[utoipa::path(post, path = "/api/v1/rooms/{room_id}/viewer-token", tag = "whep", params(("room_id" = i64, Path)),
    responses((status = 201, body = ViewerToken), (status = 400, body = super::error::ErrorBody),
        (status = 401, body = super::error::ErrorBody), (status = 403, body = super::error::ErrorBody),
        (status = 404, body = super::error::ErrorBody)))]
pub async fn viewer_token(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(room_id): Path<i64>,
) -> Result<(StatusCode, Json<ViewerToken>)> {
    let room = state.store.room(room_id).await?.ok_or(Error::NotFound)?;
    // Whether the room exists for the caller is settled before what kind of room it is.
    if who_in(&state, &current.user, room.class_id).await? == Who::Outsider {
        return Err(Error::NotFound);
    }
    require(
        &state,
        &current.user,
        room.class_id,
        watch_action(&room.kind)?,
    )
    .await?;
    let expires_at = now_ms() + VIEWER_TOKEN_TTL_MS;
    let claims = RoomClaims {
        purpose: Purpose::Viewer,
        room_id,
        user_id: Some(current.user.id),
        class_id: room.class_id,
        display_name: current.user.display_name.clone(),
        expires_at,
        session: Some(current.session_hash.clone()),
    };
    let whep_url = state
        .public_url
        .join(&format!("whep/{room_id}"))
        .expect("valid path")
        .to_string();
    Ok((
        StatusCode::CREATED,
        Json(ViewerToken {
            token: state.room_tokens.issue(&claims),
            whep_url,
            expires_at,
        }),
    ))
}

/// The player, by a viewer token made for this room or by session cookie (with CSRF).
async fn viewer(
    state: &AppState,
    headers: &HeaderMap,
    user: Option<CurrentUser>,
    room_id: i64,
) -> Result<Caller> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match (bearer, user) {
        (Some(token), _) => {
            caller_from_token(state, token.trim(), Purpose::Viewer, Some(room_id)).await
        }
        (None, Some(current)) => Ok(Caller {
            identity: Identity::User(current.user),
            session: Some(current.session_hash),
        }),
        (None, None) => Err(Error::Unauthorized),
    }
}

/// Marks the connection up (so writers start) and leaves the room when it fails.
struct ViewerEvents {
    up: Arc<AtomicBool>,
    room: RoomHandle,
    participant_id: u64,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for ViewerEvents {
    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        match state {
            RTCPeerConnectionState::Connected => self.up.store(true, Ordering::Relaxed),
            RTCPeerConnectionState::Failed => {
                self.room
                    .leave(self.participant_id, "connection_failed")
                    .await;
            }
            _ => {}
        }
    }
}

/// Starts playback: the body is the player's SDP offer; the answer carries the room's current
/// audio and video (the camera before a screen share) and every server candidate.
#[utoipa::path(post, path = "/whep/{room_id}", tag = "whep", params(("room_id" = i64, Path)),
    request_body(content = String, content_type = "application/sdp"),
    responses((status = 201, description = "SDP answer", content_type = "application/sdp"),
        (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody),
        (status = 403, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody),
        (status = 409, body = super::error::ErrorBody), (status = 410, body = super::error::ErrorBody)))]
pub async fn play(
    State(state): State<AppState>,
    Path(room_id): Path<i64>,
    MaybeUser(user): MaybeUser,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    let Caller { identity, session } = viewer(&state, &headers, user, room_id).await?;
    require_content_type(&headers, "application/sdp")?;
    let offer = String::from_utf8(body.to_vec())
        .map_err(|_| Error::bad_request("bad_sdp", "the offer is not text"))?;
    let room = state.store.room(room_id).await?.ok_or(Error::NotFound)?;
    // Outsiders learn nothing of the room, not even its kind: admission (404) comes first.
    let standing = admit(&state.store, &identity, &room).await?;
    watch_action(&room.kind)?;
    let (outbox, outbox_rx) = mpsc::channel(256);
    let entry = Entry {
        room: &room,
        identity: &identity,
        standing,
        session,
        outbox: Outbox::new(outbox),
        client: Client::Player,
    };
    let Entered {
        room: handle,
        participant_id,
        ..
    } = enter(&state.sfu, entry).await?;
    let answer = match answer(&state, &handle, participant_id, offer).await {
        Ok(answered) => answered,
        Err(e) => {
            handle.leave(participant_id, "left").await;
            return Err(e);
        }
    };
    let (sdp, connection, outputs, quality, up) = answer;
    let resource = state.whep.insert(WhepSession {
        room_id,
        room: handle,
        participant_id,
        connection,
        outputs,
        _quality: quality,
    });
    tokio::spawn({
        let state = state.clone();
        let resource = resource.clone();
        async move {
            until_removed(outbox_rx).await;
            if let Some(session) = state.whep.take(&resource) {
                session.close().await;
            }
        }
    });
    // A player that never completes its connection must not hold a port.
    tokio::spawn({
        let state = state.clone();
        let resource = resource.clone();
        let timeout = state.sfu.media().connect_timeout;
        async move {
            tokio::time::sleep(timeout).await;
            if !up.load(Ordering::Relaxed) {
                if let Some(session) = state.whep.take(&resource) {
                    tracing::info!(room_id, "WHEP player never connected; dropping");
                    session.close().await;
                }
            }
        }
    });
    let response = (
        StatusCode::CREATED,
        [
            (header::CONTENT_TYPE, "application/sdp".to_owned()),
            (header::LOCATION, format!("/whep/{room_id}/{resource}")),
        ],
        sdp,
    )
        .into_response();
    Ok(with_ice_servers(&state, response, participant_id))
}

/// Builds the viewer's connection and answers the offer with the room's current tracks.
async fn answer(
    state: &AppState,
    room: &RoomHandle,
    participant_id: u64,
    offer: String,
) -> Result<(String, Connection, Vec<Output>, Running, Arc<AtomicBool>)> {
    let bad_sdp = |e: webrtc::error::Error| media_error(MediaError::refused(e));
    let internal = |e: webrtc::error::Error| media_error(MediaError::WebRtc(e));
    let up = Arc::new(AtomicBool::new(false));
    let events = ViewerEvents {
        up: up.clone(),
        room: room.clone(),
        participant_id,
    };
    let connection = state
        .sfu
        .media()
        .connect(Arc::new(events), Direction::Sends)
        .await
        .map_err(media_error)?;
    let reception = Reception::new(false);
    if let Some(bandwidth) = &connection.bandwidth {
        reception.set_bandwidth(bandwidth.clone());
    }
    let pc = connection.pc.clone();
    let description = RTCSessionDescription::offer(offer).map_err(bad_sdp)?;
    pc.set_remote_description(description)
        .await
        .map_err(bad_sdp)?;
    let mut tracks = room.tracks().await?;
    // Camera before screen, so a one-video player shows the teacher.
    tracks.sort_by_key(|t| t.source != crate::domain::Source::Camera);
    let mut outputs = Vec::new();
    for kind in [MediaKind::Audio, MediaKind::Video] {
        if let Some(track) = tracks.iter().find(|t| t.kind == kind) {
            let output = Output::attach(
                &connection,
                track.clone(),
                participant_id,
                &reception,
                up.clone(),
            )
            .await
            .map_err(internal)?;
            outputs.push(output);
        }
    }
    let answer = pc.create_answer(None).await.map_err(internal)?;
    connection
        .set_local_description(answer)
        .await
        .map_err(internal)?;
    let local = connection
        .gathered_sdp()
        .await
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("no answer")))?;
    for output in &outputs {
        output.resolve_payload_type().await;
    }
    Ok((local, connection, outputs, reception.start(None), up))
}

/// Trickled candidates from the player.
#[utoipa::path(patch, path = "/whep/{room_id}/{resource}", tag = "whep", params(("room_id" = i64, Path), ("resource" = String, Path)),
    request_body(content = String, content_type = "application/trickle-ice-sdpfrag"),
    responses((status = 204), (status = 404, body = super::error::ErrorBody)))]
pub async fn trickle(
    State(state): State<AppState>,
    Path((room_id, resource)): Path<(i64, String)>,
    headers: HeaderMap,
    body: String,
) -> Result<StatusCode> {
    require_content_type(&headers, "application/trickle-ice-sdpfrag")?;
    let pc = state
        .whep
        .read_in(room_id, &resource, |s| s.connection.pc.clone())
        .ok_or(Error::NotFound)?;
    for candidate in parse_sdpfrag(&body) {
        if let Err(e) = pc.add_ice_candidate(candidate_init(candidate)).await {
            tracing::debug!(error = %e, "WHEP candidate refused");
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Stops playback. The resource id is the secret that names the session.
#[utoipa::path(delete, path = "/whep/{room_id}/{resource}", tag = "whep", params(("room_id" = i64, Path), ("resource" = String, Path)),
    responses((status = 200), (status = 404, body = super::error::ErrorBody)))]
pub async fn stop(
    State(state): State<AppState>,
    Path((room_id, resource)): Path<(i64, String)>,
) -> Result<StatusCode> {
    let session = state
        .whep
        .take_in(room_id, &resource)
        .ok_or(Error::NotFound)?;
    session.close().await;
    Ok(StatusCode::OK)
}
