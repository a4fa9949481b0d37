//! Rooms of a class, whether they are live now, who hosts them, and open-house guest links.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::accounts::parse_name;
use super::classes::{require, require_active, who_in};
use super::extract::{ApiJson, ClientIp, CurrentUser};
use super::{Error, Result};
use crate::access::{decide, Action, Facts, Who};
use crate::auth::room_token::{Purpose, RoomClaims};
use crate::auth::token;
use crate::domain::RoomKind;
use crate::sfu::room::Standing;
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
            "/api/v1/rooms/{room_id}",
            patch(update_room).delete(delete_room),
        )
        .route(
            "/api/v1/rooms/{room_id}/guest-link",
            post(create_guest_link),
        )
        .route("/api/v1/rooms/{room_id}", get(get_room))
        .route("/api/v1/guest-token", post(guest_token))
}

#[derive(Serialize, ToSchema)]
pub struct RoomView {
    #[serde(flatten)]
    pub room: Room,
    /// A live session is on now.
    pub live: bool,
    pub participants: usize,
    /// The assigned host's name (tutoring rooms), for the room card and for those waiting.
    pub host_name: Option<String>,
    /// Tutoring rooms: the students who (with their families) may ask to come in; empty: the
    /// role table alone decides.
    pub student_ids: Vec<i64>,
}

/// One room as its page needs it: the class it belongs to and whether the caller hosts it.
#[derive(Serialize, ToSchema)]
pub struct RoomDetail {
    #[serde(flatten)]
    pub view: RoomView,
    pub class_name: String,
    /// Opening the room starts its live session (the teacher of a broadcast, the host of a
    /// tutoring room); others wait until it is live.
    pub you_host: bool,
}

#[derive(Deserialize, ToSchema)]
pub struct UpdateRoomRequest {
    /// A new name.
    pub name: Option<String>,
    /// The tutoring room's host (a tutor or teacher of the class); `null` takes the
    /// assignment away (teachers still host), absent leaves it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>)]
    pub host_user_id: Option<Option<i64>>,
    /// Tutoring rooms: replaces the students who (with their families) may ask to come in;
    /// `[]` lets every student and family of the class ask.
    pub student_ids: Option<Vec<i64>>,
    /// Record every session of the room from the moment its host arrives.
    pub record_sessions: Option<bool>,
}

/// Tells a field sent as `null` (`Some(None)`) from one left out (`None`).
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> std::result::Result<Option<T>, D::Error> {
    T::deserialize(deserializer).map(Some)
}

#[derive(Deserialize, ToSchema)]
pub struct CreateRoomRequest {
    /// `classroom`, `tutoring` or `open_house`.
    pub kind: String,
    pub name: String,
    /// The tutor (or teacher) who hosts a tutoring room; the creator when absent, so that
    /// every tutoring room has someone whose arrival starts it.
    pub host_user_id: Option<i64>,
    /// Tutoring rooms: only these students and their families may ask to come in.
    #[serde(default)]
    pub student_ids: Vec<i64>,
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
    let mut views = Vec::new();
    for room in state.store.rooms(class_id).await? {
        views.push(room_view(&state, room).await?);
    }
    Ok(Json(views))
}

async fn room_view(state: &AppState, room: Room) -> Result<RoomView> {
    let host_name = match room.host_user_id {
        Some(id) => state.store.user_by_id(id).await?.map(|u| u.display_name),
        None => None,
    };
    Ok(RoomView {
        live: state.sfu.live_room(room.id).is_some(),
        participants: state.sfu.occupancy().get(&room.id).copied().unwrap_or(0),
        host_name,
        student_ids: state.store.room_students(room.id).await?,
        room,
    })
}

/// One room of the caller's class: its host, whether it is live, and whether the caller's
/// arrival starts it.
#[utoipa::path(get, path = "/api/v1/rooms/{room_id}", tag = "rooms", params(("room_id" = i64, Path)),
    responses((status = 200, body = RoomDetail), (status = 401, body = super::error::ErrorBody),
        (status = 404, body = super::error::ErrorBody)))]
pub async fn get_room(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(room_id): Path<i64>,
) -> Result<Json<RoomDetail>> {
    let room = state.store.room(room_id).await?.ok_or(Error::NotFound)?;
    let who = who_in(&state, &current.user, room.class_id).await?;
    if who == Who::Outsider {
        return Err(Error::NotFound);
    }
    let class = state
        .store
        .class(room.class_id)
        .await?
        .ok_or(Error::NotFound)?;
    let kind = RoomKind::parse(&room.kind).ok_or_else(|| {
        Error::Internal(anyhow::anyhow!("room {} has kind {}", room.id, room.kind))
    })?;
    let standing = Standing {
        who,
        kind,
        assigned_host: room.host_user_id == Some(current.user.id),
        promoted: false,
        waiting: false,
    };
    Ok(Json(RoomDetail {
        view: room_view(&state, room).await?,
        class_name: class.name,
        you_host: standing.host(),
    }))
}

/// Adds a room to the class.
#[utoipa::path(post, path = "/api/v1/classes/{class_id}/rooms", tag = "rooms", params(("class_id" = i64, Path)),
    request_body = CreateRoomRequest, responses((status = 201, body = Room), (status = 404, body = super::error::ErrorBody),
        (status = 409, body = super::error::ErrorBody)))]
pub async fn create_room(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(class_id): Path<i64>,
    ApiJson(request): ApiJson<CreateRoomRequest>,
) -> Result<(StatusCode, Json<Room>)> {
    require(&state, &current.user, class_id, Action::ManageClass).await?;
    require_active(&state, class_id).await?;
    let kind = RoomKind::parse(&request.kind).ok_or_else(|| {
        Error::bad_request("invalid_kind", "kind is classroom, tutoring or open_house")
    })?;
    let name = parse_name(&request.name)?;
    let host = match kind {
        RoomKind::Tutoring => Some(request.host_user_id.unwrap_or(current.user.id)),
        _ if request.host_user_id.is_some() => {
            return Err(Error::bad_request(
                "host_for_tutoring_only",
                "only tutoring rooms have an assigned host",
            ))
        }
        _ => None,
    };
    if let Some(host) = host {
        // An admin outside the class may host the rooms they make.
        if !(host == current.user.id && current.user.is_admin()) {
            check_host(&state, class_id, kind, host).await?;
        }
    }
    check_students(&state, class_id, kind, &request.student_ids).await?;
    let room = state
        .store
        .create_room(class_id, kind.as_str(), name.as_str(), host)
        .await?;
    state
        .store
        .set_room_students(room.id, &request.student_ids)
        .await?;
    Ok((StatusCode::CREATED, Json(room)))
}

/// A tutoring room's assigned host is a tutor or a teacher of its class.
async fn check_host(state: &AppState, class_id: i64, kind: RoomKind, host: i64) -> Result<()> {
    if kind != RoomKind::Tutoring {
        return Err(Error::bad_request(
            "host_for_tutoring_only",
            "only tutoring rooms have an assigned host",
        ));
    }
    let Some(role) = state.store.role_in(host, class_id).await? else {
        return Err(Error::bad_request(
            "host_not_member",
            "the host must be a member of the class",
        ));
    };
    let assigned = Facts {
        assigned_host: true,
        ..Facts::default()
    };
    // A family or student as host would leave the room with nobody able to open it.
    match decide(Who::Member(role), Action::HostTutoring, assigned).allowed() {
        true => Ok(()),
        false => Err(Error::bad_request(
            "host_cannot_host",
            "the host of a tutoring room is a tutor or teacher of the class",
        )),
    }
}

/// A tutoring room's list names students of its class.
async fn check_students(
    state: &AppState,
    class_id: i64,
    kind: RoomKind,
    students: &[i64],
) -> Result<()> {
    if students.is_empty() {
        return Ok(());
    }
    if kind != RoomKind::Tutoring {
        return Err(Error::bad_request(
            "students_for_tutoring_only",
            "only tutoring rooms list the students who may come in",
        ));
    }
    for id in students {
        if state.store.student(class_id, *id).await?.is_none() {
            return Err(Error::bad_request(
                "unknown_student",
                "no student with that id in this class",
            ));
        }
    }
    Ok(())
}

/// Renames a room, changes the tutoring room's host, or who may ask to come in.
#[utoipa::path(patch, path = "/api/v1/rooms/{room_id}", tag = "rooms", params(("room_id" = i64, Path)),
    request_body = UpdateRoomRequest, responses((status = 200, body = Room), (status = 400, body = super::error::ErrorBody),
        (status = 403, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
pub async fn update_room(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(room_id): Path<i64>,
    ApiJson(request): ApiJson<UpdateRoomRequest>,
) -> Result<Json<Room>> {
    let room = state.store.room(room_id).await?.ok_or(Error::NotFound)?;
    require(&state, &current.user, room.class_id, Action::ManageClass).await?;
    let kind = RoomKind::parse(&room.kind).ok_or(Error::NotFound)?;
    let name = match &request.name {
        Some(name) => parse_name(name)?.as_str().to_owned(),
        None => room.name.clone(),
    };
    let host = match request.host_user_id {
        Some(Some(host)) => {
            check_host(&state, room.class_id, kind, host).await?;
            Some(host)
        }
        Some(None) => None,
        None => room.host_user_id,
    };
    if let Some(students) = &request.student_ids {
        check_students(&state, room.class_id, kind, students).await?;
    }
    state.store.update_room(room.id, &name, host).await?;
    if let Some(students) = &request.student_ids {
        state.store.set_room_students(room.id, students).await?;
    }
    if let Some(on) = request.record_sessions {
        state.store.set_room_recording(room.id, on).await?;
    }
    Ok(Json(
        state.store.room(room.id).await?.ok_or(Error::NotFound)?,
    ))
}

/// Deletes a room that is not live; the logs of its past sessions stay in the timeline.
#[utoipa::path(delete, path = "/api/v1/rooms/{room_id}", tag = "rooms", params(("room_id" = i64, Path)),
    responses((status = 204), (status = 403, body = super::error::ErrorBody),
        (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
pub async fn delete_room(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(room_id): Path<i64>,
) -> Result<StatusCode> {
    let room = state.store.room(room_id).await?.ok_or(Error::NotFound)?;
    require(&state, &current.user, room.class_id, Action::ManageClass).await?;
    if state.sfu.live_room(room.id).is_some() {
        return Err(Error::conflict(
            "room_live",
            "the room is live; end the session first",
        ));
    }
    state.store.delete_room(room.id).await?;
    Ok(StatusCode::NO_CONTENT)
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
    // Good for this open house's signalling only.
    let claims = RoomClaims {
        purpose: Purpose::Guest,
        user_id: None,
        room_id: room.id,
        class_id: room.class_id,
        display_name: format!("{} (guest)", name.as_str()),
        expires_at,
        session: None,
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
