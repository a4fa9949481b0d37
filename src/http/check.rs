//! The connection check (`/check`): the page offers a receive-only connection for one path
//! (UDP, TCP or the relay) and the server answers with a short test stream on it
//! (`sfu::check`). It needs a signed-in person but no class: families run it before they ever
//! watch. Signed-out visitors may not, because a check holds a media connection and the
//! relay's credentials are per person; the page asks them to sign in first.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::{ApiJson, CurrentUser};
use super::whip::media_error;
use super::{Error, Result};
use crate::sfu::check::{self, CheckError, Transport};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/check/offer", post(offer))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckOffer {
    /// The page's SDP offer: one receive-only video transceiver, all its candidates gathered.
    pub sdp: String,
    /// The path to test: the answer carries only the server candidates this path uses (UDP
    /// for `udp` and `relay`, TCP for `tcp`).
    pub transport: Transport,
}

#[derive(Serialize, ToSchema)]
pub struct CheckAnswer {
    /// The SDP answer, with every server candidate of the path.
    pub sdp: String,
    /// The test stream's rate, in bits per second.
    pub bitrate_bps: u32,
    /// How long the test stream runs once the connection is up, in milliseconds.
    pub stream_ms: u64,
    /// When the server closes the connection, counted from now, in milliseconds.
    pub lifetime_ms: u64,
}

/// Starts one path of the connection check: answers the page's offer and sends a test stream
/// (VP8-shaped RTP at `bitrate_bps` for `stream_ms`) once the connection is up.
#[utoipa::path(post, path = "/api/v1/check/offer", tag = "check", request_body = CheckOffer,
    responses((status = 201, body = CheckAnswer), (status = 400, body = super::error::ErrorBody),
        (status = 409, body = super::error::ErrorBody), (status = 429, body = super::error::ErrorBody)))]
pub async fn offer(
    State(state): State<AppState>,
    current: CurrentUser,
    ApiJson(body): ApiJson<CheckOffer>,
) -> Result<(StatusCode, Json<CheckAnswer>)> {
    let slot = state.checks.take(current.user.id).ok_or(Error::TooMany {
        code: "checks_busy",
        message: "too many connection checks are running; try again in a few seconds".into(),
    })?;
    let sdp = check::start(&state.sfu.media(), body.sdp, body.transport, slot)
        .await
        .map_err(|e| match e {
            CheckError::Media(e) => media_error(e),
            CheckError::NoVideo => Error::bad_request("bad_sdp", e.to_string()),
            CheckError::NotOffered(_) => Error::conflict("transport_unavailable", e.to_string()),
        })?;
    Ok((
        StatusCode::CREATED,
        Json(CheckAnswer {
            sdp,
            bitrate_bps: check::BITRATE_BPS,
            stream_ms: check::STREAM.as_millis() as u64,
            lifetime_ms: check::LIFETIME.as_millis() as u64,
        }),
    ))
}
