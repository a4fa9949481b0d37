//! Rooms of a class, whether they are live now, and open-house guest links.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::accounts::parse_name;
use super::classes::{require, who_in};
use super::extract::{ApiJson, ClientIp, CurrentUser};
use super::{Error, Result};
use crate::access::{decide, Action, Facts, Who};
use crate::auth::room_token::RoomClaims;
use crate::auth::token;
use crate::sfu::room::RoomKind;
use crate::state::AppState;
use crate::store::now_ms;
use crate::store::rooms::Room;

/// How long a guest's room token may be used to connect.
const GUEST_TOKEN_TTL_MS: i64 = 10 * 60 * 1000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/classes/{class_id}/rooms",
            get(list_rooms).post(create_room),
        )
        .route(
            "/api/v1/rooms/{room_id}/guest-link",
            post(create_guest_link),
        )
        .route("/api/v1/guest-token", post(guest_token))
}

#[derive(Serialize, ToSchema)]
pub struct RoomView {
    #[serde(flatten)]
    pub room: Room,
    /// A live session is on now.
    pub live: bool,
    pub participants: usize,
}

#[derive(Deserialize, ToSchema)]
pub struct CreateRoomRequest {
    /// `classroom`, `tutoring` or `open_house`.
    pub kind: String,
    pub name: String,
    /// The tutor (or teacher) who hosts a tutoring room.
    pub host_user_id: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct GuestLink {
    pub code: String,
    /// Share this link; anyone who has it may watch this open house and ask in chat.
    pub guest_url: String,
}

#[derive(Deserialize, ToSchema)]
pub struct GuestTokenRequest {
    pub code: String,
    pub display_name: String,
}

#[derive(Serialize, ToSchema)]
pub struct GuestToken {
    pub room_id: i64,
    /// Pass as `?token=` when opening `/api/v1/ws`.
    pub token: String,
    pub expires_at: i64,
}

/// The class's rooms and which are live. Every member sees them; what they may do in each is
/// decided when they join.
#[utoipa::path(get, path = "/api/v1/classes/{class_id}/rooms", tag = "rooms", params(("class_id" = i64, Path)),
    responses((status = 200, body = [RoomView]), (status = 404, body = super::error::ErrorBody)))]
pub async fn list_rooms(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(class_id): Path<i64>,
) -> Result<Json<Vec<RoomView>>> {
    let who = who_in(&state, &current.user, class_id).await?;
    if who == Who::Outsider {
        return Err(Error::NotFound);
    }
    let occupancy = state.sfu.occupancy();
    let rooms = state.store.rooms(class_id).await?;
    Ok(Json(
        rooms
            .into_iter()
            .map(|room| {
                let participants = occupancy.get(&room.id).copied().unwrap_or(0);
                RoomView {
                    live: state.sfu.live_room(room.id).is_some(),
                    participants,
                    room,
                }
            })
            .collect(),
    ))
}

/// Adds a room to the class.
#[utoipa::path(post, path = "/api/v1/classes/{class_id}/rooms", tag = "rooms", params(("class_id" = i64, Path)),
    request_body = CreateRoomRequest, responses((status = 201, body = Room), (status = 404, body = super::error::ErrorBody)))]
pub async fn create_room(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(class_id): Path<i64>,
    ApiJson(request): ApiJson<CreateRoomRequest>,
) -> Result<(StatusCode, Json<Room>)> {
    require(&state, &current.user, class_id, Action::ManageClass).await?;
    let kind = RoomKind::parse(&request.kind).ok_or_else(|| {
        Error::bad_request("invalid_kind", "kind is classroom, tutoring or open_house")
    })?;
    let name = parse_name(&request.name)?;
    if let Some(host) = request.host_user_id {
        if kind != RoomKind::Tutoring {
            return Err(Error::bad_request(
                "host_for_tutoring_only",
                "only tutoring rooms have an assigned host",
            ));
        }
        if state.store.role_in(host, class_id).await?.is_none() {
            return Err(Error::bad_request(
                "host_not_member",
                "the host must be a member of the class",
            ));
        }
    }
    let room = state
        .store
        .create_room(class_id, kind.as_str(), name.as_str(), request.host_user_id)
        .await?;
    Ok((StatusCode::CREATED, Json(room)))
}

/// Makes (or replaces) the open house's guest link; the previous link stops working.
#[utoipa::path(post, path = "/api/v1/rooms/{room_id}/guest-link", tag = "rooms", params(("room_id" = i64, Path)),
    responses((status = 201, body = GuestLink), (status = 404, body = super::error::ErrorBody)))]
pub async fn create_guest_link(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(room_id): Path<i64>,
) -> Result<(StatusCode, Json<GuestLink>)> {
    let room = state.store.room(room_id).await?.ok_or(Error::NotFound)?;
    require(&state, &current.user, room.class_id, Action::ManageClass).await?;
    if room.kind != RoomKind::OpenHouse.as_str() {
        return Err(Error::bad_request(
            "not_open_house",
            "guest links are for open-house rooms",
        ));
    }
    let code = token::new_secret();
    state
        .store
        .set_guest_code(room.id, Some(&token::hash(&code)))
        .await?;
    let mut url = state.public_url.join("guest").expect("valid path");
    url.set_fragment(Some(&code));
    Ok((
        StatusCode::CREATED,
        Json(GuestLink {
            code,
            guest_url: url.into(),
        }),
    ))
}

/// Trades a guest link's code and a display name for a short-lived room token.
#[utoipa::path(post, path = "/api/v1/guest-token", tag = "rooms", request_body = GuestTokenRequest,
    responses((status = 201, body = GuestToken), (status = 400, body = super::error::ErrorBody),
        (status = 429, body = super::error::ErrorBody)))]
pub async fn guest_token(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(request): ApiJson<GuestTokenRequest>,
) -> Result<(StatusCode, Json<GuestToken>)> {
    let key = format!("guest:{ip}");
    let attempt = state.rate_limits.invite_ip.reserve(&key)?;
    let name = parse_name(&request.display_name)?;
    let Some(room) = state
        .store
        .room_by_guest_code(&token::hash(request.code.trim()))
        .await?
    else {
        attempt.failed();
        return Err(Error::bad_request(
            "guest_link_invalid",
            "this guest link is unknown or was replaced",
        ));
    };
    drop(attempt);
    if !decide(Who::Guest, Action::WatchOpenHouse, Facts::default()).allowed() {
        return Err(Error::NotFound);
    }
    let expires_at = now_ms() + GUEST_TOKEN_TTL_MS;
    let claims = RoomClaims {
        user_id: None,
        room_id: room.id,
        class_id: room.class_id,
        display_name: format!("{} (guest)", name.as_str()),
        expires_at,
    };
    let token = state.room_tokens.issue(&claims);
    Ok((
        StatusCode::CREATED,
        Json(GuestToken {
            room_id: room.id,
            token,
            expires_at,
        }),
    ))
}
