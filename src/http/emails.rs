//! Emailing the links people are handed (`crate::notify` sends): an invitation's join link to
//! a family, a password link to its account's own address. Without SMTP both answer
//! `409 email_off` and links are handed over as before.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use serde::Deserialize;
use utoipa::ToSchema;

use super::classes::require;
use super::extract::{ApiJson, CurrentUser};
use super::{Error, Result};
use crate::access::Action;
use crate::auth::token;
use crate::notify::email::{parse_address, Email};
use crate::state::AppState;
use crate::store::now_ms;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/classes/{class_id}/invites/email",
            post(email_invite),
        )
        .route("/api/v1/password-resets/email", post(email_reset))
}

#[derive(Deserialize, ToSchema)]
pub struct ResetEmail {
    /// The secret after `#` in the `reset_url` the caller was given.
    pub token: String,
}

#[derive(Deserialize, ToSchema)]
pub struct InviteEmail {
    /// The invite code as created (only its creator has it).
    pub code: String,
    pub email: String,
}

/// Emails a usable invite's link to a family (when SMTP is configured).
#[utoipa::path(post, path = "/api/v1/classes/{class_id}/invites/email", tag = "invites",
    params(("class_id" = i64, Path)), request_body = InviteEmail,
    responses((status = 202), (status = 400, body = super::error::ErrorBody),
        (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
pub async fn email_invite(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(class_id): Path<i64>,
    ApiJson(request): ApiJson<InviteEmail>,
) -> Result<StatusCode> {
    require(&state, &current.user, class_id, Action::CreateInvite).await?;
    let to = parse_address(&request.email)
        .ok_or_else(|| Error::bad_request("bad_email", "this is not an email address"))?;
    email_on(&state)?;
    let code = token::normalize_code(&request.code).ok_or(Error::NotFound)?;
    let invite = state
        .store
        .invite_by_code(&token::hash(&code))
        .await?
        .filter(|i| i.class_id == class_id && i.problem(now_ms()).is_none())
        .ok_or(Error::NotFound)?;
    let class = state.store.class(class_id).await?.ok_or(Error::NotFound)?;
    let link = super::invites::join_url(&state, &code);
    let email = Email {
        subject: format!("Join {} on Homeroom", class.name),
        text: format!(
            "Hello,\n\n{} invites you to join {} on Homeroom, where the class shares its \
             updates and goes live.\n\nOpen this link to join:\n{link}\n\nThe link is personal: \
             please do not pass it on.\n",
            current.user.display_name, class.name
        ),
        stop_url: None,
        stop_post_url: None,
    };
    let dedupe = format!("invite:{}:{to}", invite.id);
    state.notify.email_to(None, &to, &dedupe, &email).await?;
    tracing::info!(
        invite_id = invite.id,
        class_id,
        "invitation queued for email"
    );
    Ok(StatusCode::ACCEPTED)
}

fn email_on(state: &AppState) -> Result<()> {
    match state.notify.email_enabled() {
        true => Ok(()),
        false => Err(Error::conflict(
            "email_off",
            "this server does not send email; hand the link over instead",
        )),
    }
}

/// Emails a reset link the caller made (`POST /api/v1/users/{id}/password-reset`) to the
/// account's own address. Only its maker may: whoever else holds the secret could use it.
#[utoipa::path(post, path = "/api/v1/password-resets/email", tag = "accounts",
    request_body = ResetEmail, responses((status = 202), (status = 404, body = super::error::ErrorBody),
        (status = 409, body = super::error::ErrorBody)))]
pub async fn email_reset(
    State(state): State<AppState>,
    current: CurrentUser,
    ApiJson(request): ApiJson<ResetEmail>,
) -> Result<StatusCode> {
    email_on(&state)?;
    let (user_id, _) = state
        .store
        .open_password_reset(&token::hash(request.token.trim()))
        .await?
        .filter(|(_, made_by)| *made_by == Some(current.user.id))
        .ok_or(Error::NotFound)?;
    let user = state
        .store
        .user_by_id(user_id)
        .await?
        .ok_or(Error::NotFound)?;
    let to = user
        .email
        .as_deref()
        .and_then(parse_address)
        .ok_or_else(|| {
            Error::conflict(
                "no_email",
                "this account has no email address; hand the link over",
            )
        })?;
    let mut link = state.public_url.join("reset").expect("a valid path");
    link.set_fragment(Some(request.token.trim()));
    let email = Email {
        subject: "Choose your Homeroom password".into(),
        text: format!(
            "Hello {},\n\n{} made you a link to choose a new password for Homeroom (login: {}).\n\n\
             Open it within 72 hours:\n{link}\n\nIf you did not expect this, ignore this email.\n",
            user.display_name, current.user.display_name, user.login
        ),
        stop_url: None,
        stop_post_url: None,
    };
    let dedupe = format!("reset:{}", token::hash(request.token.trim()));
    state
        .notify
        .email_to(Some(user.id), &to, &dedupe, &email)
        .await?;
    tracing::info!(user_id, "password link queued for email");
    Ok(StatusCode::ACCEPTED)
}
