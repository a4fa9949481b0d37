//! Accounts: the first admin's set-up, signing in and out, passwords and reset links, and the
//! admin's list of users, the accounts they make and deactivate.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::{
    clear_cookie_header, session_cookie_header, ApiJson, ClientIp, CurrentUser, MaybeUser,
};
use super::{Error, Result};
use crate::access::{decide_reset, Grant, Role};
use crate::auth::token;
use crate::names::{DisplayName, Login};
use crate::sfu::revocation::{Reach, Revocation};
use crate::state::AppState;
use crate::store::classes::MyClass;
use crate::store::users::{NewUser, User};
use crate::store::{is_unique_violation, Store};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/setup", post(setup))
        .route(
            "/api/v1/session",
            get(session_status).post(sign_in).delete(sign_out),
        )
        .route("/api/v1/me", get(me))
        .route("/api/v1/me/password", put(change_password))
        .route("/api/v1/users", get(list_users).post(create_user))
        .route("/api/v1/users/{id}/password-reset", post(create_reset))
        .route("/api/v1/users/{id}/deactivate", post(deactivate))
        .route("/api/v1/users/{id}/reactivate", post(reactivate))
        .route("/api/v1/password-reset", post(use_reset))
}

#[derive(Serialize, ToSchema)]
pub struct UserView {
    pub id: i64,
    pub login: String,
    pub display_name: String,
    pub email: Option<String>,
    pub is_admin: bool,
    /// `teacher` or `tutor` when an admin made the account for that.
    pub staff_role: Option<String>,
    /// A deactivated account keeps its history but cannot sign in.
    pub deactivated: bool,
}

impl From<User> for UserView {
    fn from(u: User) -> Self {
        UserView {
            is_admin: u.is_admin(),
            deactivated: !u.is_active(),
            staff_role: u.staff_role,
            id: u.id,
            login: u.login,
            display_name: u.display_name,
            email: u.email,
        }
    }
}

/// The signed-in user, the token to send as `X-CSRF-Token` on every change, and their classes.
#[derive(Serialize, ToSchema)]
pub struct Me {
    pub user: UserView,
    pub csrf_token: String,
    pub classes: Vec<MyClass>,
}

/// Whether anyone is signed in, and if so what `/api/v1/me` says (its fields, present only
/// when signed in). Spelled out rather than a flattened `Option<Me>`, which the API document
/// cannot describe truthfully.
#[derive(Serialize, ToSchema)]
pub struct SessionStatus {
    pub signed_in: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<UserView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csrf_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub classes: Option<Vec<MyClass>>,
}

#[derive(Deserialize, ToSchema)]
pub struct SetupRequest {
    /// The secret after `#` in the set-up link printed at start.
    pub secret: String,
    pub login: String,
    pub display_name: String,
    pub password: String,
}

#[derive(Deserialize, ToSchema)]
pub struct SignInRequest {
    pub login: String,
    pub password: String,
}

#[derive(Deserialize, ToSchema)]
pub struct ChangePasswordRequest {
    pub current_password: String,
    pub new_password: String,
}

#[derive(Deserialize, ToSchema)]
pub struct CreateUserRequest {
    pub login: String,
    pub display_name: String,
    pub email: Option<String>,
    #[serde(default)]
    pub is_admin: bool,
    /// What the account is for: `teacher`, `tutor` or `admin` (the same as `is_admin`).
    pub role: Option<String>,
}

/// A new account, with the link its owner opens to choose a password.
#[derive(Serialize, ToSchema)]
pub struct CreatedUser {
    pub user: UserView,
    pub set_password_url: String,
}

#[derive(Serialize, ToSchema)]
pub struct ResetLink {
    pub reset_url: String,
    pub expires_at: i64,
}

#[derive(Deserialize, ToSchema)]
pub struct UseResetRequest {
    /// The secret after `#` in the reset link.
    pub token: String,
    pub new_password: String,
}

pub fn parse_login(text: &str) -> Result<Login> {
    Login::parse(text).map_err(|m| Error::bad_request("invalid_login", m))
}

pub fn parse_name(text: &str) -> Result<DisplayName> {
    DisplayName::parse(text).map_err(|m| Error::bad_request("invalid_name", m))
}

/// Checks the password policy and hashes, waiting for a turn of the bounded argon2 work.
pub async fn hash_password(state: &AppState, text: &str) -> Result<String> {
    Ok(state.hasher.hash(text.to_owned()).await?)
}

/// Starts a session and answers with the `Me` document and the cookie.
pub async fn signed_in(store: &Store, user: User, status: StatusCode) -> Result<Response> {
    let secret = token::new_secret();
    let csrf = token::new_secret();
    store
        .create_session(&token::hash(&secret), user.id, &csrf)
        .await?;
    let classes = store.classes_of(user.id, user.is_admin()).await?;
    let me = Me {
        user: user.into(),
        csrf_token: csrf,
        classes,
    };
    Ok((
        status,
        [(header::SET_COOKIE, session_cookie_header(&secret))],
        Json(me),
    )
        .into_response())
}

/// Creates the first admin account with the one-time link printed at start. Once any admin
/// exists, every set-up link is dead, however recently it was printed.
#[utoipa::path(post, path = "/api/v1/setup", tag = "accounts", request_body = SetupRequest,
    responses((status = 201, body = Me), (status = 400, body = super::error::ErrorBody),
        (status = 410, body = super::error::ErrorBody), (status = 429, body = super::error::ErrorBody)))]
pub async fn setup(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(request): ApiJson<SetupRequest>,
) -> Result<Response> {
    let key = format!("setup:{ip}");
    let attempt = state.rate_limits.invite_ip.reserve(&key)?;
    let login = parse_login(&request.login)?;
    let name = parse_name(&request.display_name)?;
    let hash = hash_password(&state, &request.password).await?;
    let created = state
        .store
        .create_first_admin(
            &token::hash(&request.secret),
            NewUser {
                login: login.as_str(),
                display_name: name.as_str(),
                email: None,
                password_hash: &hash,
                is_admin: true,
                staff_role: None,
            },
        )
        .await
        .map_err(login_conflict)?;
    let Some(user) = created else {
        attempt.failed();
        return Err(Error::gone(
            "setup_link_invalid",
            "this set-up link is unknown, used or expired, or an admin exists already",
        ));
    };
    drop(attempt);
    tracing::info!(user_id = user.id, "first admin created");
    signed_in(&state.store, user, StatusCode::CREATED).await
}

/// Signs in with a login and password; sets the session cookie.
#[utoipa::path(post, path = "/api/v1/session", tag = "accounts", request_body = SignInRequest,
    responses((status = 200, body = Me), (status = 401, body = super::error::ErrorBody),
        (status = 429, body = super::error::ErrorBody)))]
pub async fn sign_in(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(request): ApiJson<SignInRequest>,
) -> Result<Response> {
    let limits = &state.rate_limits;
    let login = request.login.trim().to_lowercase();
    let ip_key = format!("login-ip:{ip}");
    let account_key = format!("login-account:{login}");
    // Both attempts are counted before the (slow) check, so parallel guesses cannot all
    // slip under the limit; they are given back if this turns out not to be a wrong guess.
    let ip_attempt = limits.login_ip.reserve(&ip_key)?;
    let account_attempt = limits.login_account.reserve(&account_key)?;
    let found = state.store.user_for_login(&login).await?;
    // Verify against a dummy hash when the login is unknown, so timing does not tell.
    let stored = found
        .as_ref()
        .map(|(_, h)| h.clone())
        .unwrap_or_else(|| DUMMY_HASH.clone());
    let ok = state.hasher.verify(request.password, stored).await? && found.is_some();
    let Some((user, _)) = found.filter(|_| ok) else {
        ip_attempt.failed();
        account_attempt.failed();
        tracing::info!("failed sign-in");
        return Err(Error::BadCredentials);
    };
    drop((ip_attempt, account_attempt));
    // Said only to someone who knows the password, so it tells a stranger nothing.
    if !user.is_active() {
        return Err(Error::forbidden(
            "account_deactivated",
            "this account was deactivated; ask the school",
        ));
    }
    limits.login_account.forget(&account_key);
    tracing::info!(user_id = user.id, "signed in");
    signed_in(&state.store, user, StatusCode::OK).await
}

/// A hash to verify against when the login is unknown, so that answer takes as long.
static DUMMY_HASH: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    crate::auth::password::hash(&token::new_secret()).expect("long enough")
});

/// Signs out of this session.
#[utoipa::path(delete, path = "/api/v1/session", tag = "accounts", responses((status = 204)))]
pub async fn sign_out(State(state): State<AppState>, current: CurrentUser) -> Result<Response> {
    state.store.delete_session(&current.session_hash).await?;
    state
        .sfu
        .revoke(Revocation::sessions(
            current.user.id,
            Reach::Session(current.session_hash.clone()),
        ))
        .await;
    Ok((
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, clear_cookie_header())],
    )
        .into_response())
}

/// Whether the browser is signed in: always 200, so that a signed-out page asks without an
/// error (a 401 would be logged in the browser's console on every signed-out page).
#[utoipa::path(get, path = "/api/v1/session", tag = "accounts",
    responses((status = 200, body = SessionStatus)))]
pub async fn session_status(
    State(state): State<AppState>,
    MaybeUser(current): MaybeUser,
) -> Result<Json<SessionStatus>> {
    let Some(current) = current else {
        return Ok(Json(SessionStatus {
            signed_in: false,
            user: None,
            csrf_token: None,
            classes: None,
        }));
    };
    let Json(me) = me(State(state), current).await?;
    Ok(Json(SessionStatus {
        signed_in: true,
        user: Some(me.user),
        csrf_token: Some(me.csrf_token),
        classes: Some(me.classes),
    }))
}

/// Who is signed in, their CSRF token, and their classes.
#[utoipa::path(get, path = "/api/v1/me", tag = "accounts",
    responses((status = 200, body = Me), (status = 401, body = super::error::ErrorBody)))]
pub async fn me(State(state): State<AppState>, current: CurrentUser) -> Result<Json<Me>> {
    let classes = state
        .store
        .classes_of(current.user.id, current.user.is_admin())
        .await?;
    Ok(Json(Me {
        user: current.user.into(),
        csrf_token: current.csrf,
        classes,
    }))
}

/// Changes one's own password; every other session of the account is signed out and every
/// feed link of the account stops working.
#[utoipa::path(put, path = "/api/v1/me/password", tag = "accounts", request_body = ChangePasswordRequest,
    responses((status = 204), (status = 401, body = super::error::ErrorBody),
        (status = 403, body = super::error::ErrorBody), (status = 429, body = super::error::ErrorBody)))]
pub async fn change_password(
    State(state): State<AppState>,
    current: CurrentUser,
    ApiJson(request): ApiJson<ChangePasswordRequest>,
) -> Result<StatusCode> {
    let (_, stored) = state
        .store
        .user_for_login(&current.user.login)
        .await?
        .ok_or(Error::Unauthorized)?;
    if !state
        .hasher
        .verify(request.current_password, stored)
        .await?
    {
        return Err(Error::BadCredentials);
    }
    let hash = hash_password(&state, &request.new_password).await?;
    state
        .store
        .set_password(current.user.id, &hash, Some(&current.session_hash))
        .await?;
    state
        .sfu
        .revoke(Revocation::sessions(
            current.user.id,
            Reach::SessionsExcept(current.session_hash.clone()),
        ))
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Every account (admins only).
#[utoipa::path(get, path = "/api/v1/users", tag = "accounts", responses((status = 200, body = [UserView])))]
pub async fn list_users(
    State(state): State<AppState>,
    current: CurrentUser,
) -> Result<Json<Vec<UserView>>> {
    require_admin(&current)?;
    Ok(Json(
        state
            .store
            .users()
            .await?
            .into_iter()
            .map(UserView::from)
            .collect(),
    ))
}

/// Creates an account (admins only), e.g. for a teacher; answers with a set-password link.
#[utoipa::path(post, path = "/api/v1/users", tag = "accounts", request_body = CreateUserRequest,
    responses((status = 201, body = CreatedUser), (status = 409, body = super::error::ErrorBody)))]
pub async fn create_user(
    State(state): State<AppState>,
    current: CurrentUser,
    ApiJson(request): ApiJson<CreateUserRequest>,
) -> Result<(StatusCode, Json<CreatedUser>)> {
    require_admin(&current)?;
    let login = parse_login(&request.login)?;
    let name = parse_name(&request.display_name)?;
    let (is_admin, staff_role) = match request.role.as_deref() {
        None => (request.is_admin, None),
        Some("admin") => (true, None),
        Some(role @ ("teacher" | "tutor")) => (request.is_admin, Some(role)),
        Some(_) => {
            return Err(Error::bad_request(
                "invalid_role",
                "role is teacher, tutor or admin",
            ))
        }
    };
    // Nobody knows this password; the owner sets theirs through the link.
    let hash = hash_password(&state, &token::new_secret()).await?;
    let user = state
        .store
        .create_user(NewUser {
            login: login.as_str(),
            display_name: name.as_str(),
            email: request
                .email
                .as_deref()
                .map(str::trim)
                .filter(|e| !e.is_empty()),
            password_hash: &hash,
            is_admin,
            staff_role,
        })
        .await
        .map_err(login_conflict)?;
    let link = reset_link(&state, user.id, current.user.id).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedUser {
            user: user.into(),
            set_password_url: link.reset_url,
        }),
    ))
}

/// Makes a password-reset link: admins for anyone, teachers for the families, tutors and
/// students whose every membership is in a class the teacher teaches (never an admin or a
/// teacher). Hand it over in person or by message; no mail server needed. Accounts the
/// caller teaches in no class answer 404, as if they did not exist.
#[utoipa::path(post, path = "/api/v1/users/{id}/password-reset", tag = "accounts",
    params(("id" = i64, Path)), responses((status = 201, body = ResetLink),
        (status = 403, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
pub async fn create_reset(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(user_id): Path<i64>,
) -> Result<(StatusCode, Json<ResetLink>)> {
    let target = super::classes::target(&state, user_id).await?;
    let taught: Vec<i64> = state
        .store
        .memberships_of(current.user.id)
        .await?
        .into_iter()
        .filter(|(_, role)| *role == Role::Teacher)
        .map(|(class, _)| class)
        .collect();
    if decide_reset(current.user.is_admin(), &taught, &target) == Grant::Denied {
        let shares_a_class = target
            .memberships
            .iter()
            .any(|(class, _)| taught.contains(class));
        return Err(match shares_a_class {
            true => Error::forbidden(
                "not_allowed",
                "teachers make reset links only for families, tutors and students who are in \
                 no other class; ask an admin",
            ),
            false => Error::NotFound,
        });
    }
    Ok((
        StatusCode::CREATED,
        Json(reset_link(&state, user_id, current.user.id).await?),
    ))
}

/// Sets a new password with a reset link; all the account's sessions and feed links end.
#[utoipa::path(post, path = "/api/v1/password-reset", tag = "accounts", request_body = UseResetRequest,
    responses((status = 204), (status = 400, body = super::error::ErrorBody),
        (status = 410, body = super::error::ErrorBody), (status = 429, body = super::error::ErrorBody)))]
pub async fn use_reset(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(request): ApiJson<UseResetRequest>,
) -> Result<StatusCode> {
    let key = format!("reset:{ip}");
    let attempt = state.rate_limits.invite_ip.reserve(&key)?;
    let hash = hash_password(&state, &request.new_password).await?;
    let Some(user_id) = state
        .store
        .consume_password_reset(&token::hash(&request.token))
        .await?
    else {
        attempt.failed();
        return Err(Error::gone(
            "reset_link_invalid",
            "this reset link is unknown, used or expired",
        ));
    };
    drop(attempt);
    state.store.set_password(user_id, &hash, None).await?;
    state
        .sfu
        .revoke(Revocation::sessions(user_id, Reach::AnySession))
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Deactivates an account (admins only): every session ends at once, sign-in, rooms and feeds
/// refuse it, and everything it did stays in the class histories.
#[utoipa::path(post, path = "/api/v1/users/{id}/deactivate", tag = "accounts", params(("id" = i64, Path)),
    responses((status = 204), (status = 400, body = super::error::ErrorBody),
        (status = 401, body = super::error::ErrorBody), (status = 403, body = super::error::ErrorBody),
        (status = 404, body = super::error::ErrorBody)))]
pub async fn deactivate(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(user_id): Path<i64>,
) -> Result<StatusCode> {
    require_admin(&current)?;
    if user_id == current.user.id {
        return Err(Error::bad_request(
            "cannot_deactivate_self",
            "an admin cannot deactivate their own account",
        ));
    }
    match state.store.set_deactivated(user_id, true).await? {
        true => {
            // Whatever the account is doing live ends now, not at its next request.
            state.sfu.revoke(Revocation::account(user_id)).await;
            tracing::info!(user_id, by = current.user.id, "account deactivated");
            Ok(StatusCode::NO_CONTENT)
        }
        false => Err(Error::NotFound),
    }
}

/// Lets a deactivated account sign in again (admins only).
#[utoipa::path(post, path = "/api/v1/users/{id}/reactivate", tag = "accounts", params(("id" = i64, Path)),
    responses((status = 204), (status = 401, body = super::error::ErrorBody),
        (status = 403, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
pub async fn reactivate(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(user_id): Path<i64>,
) -> Result<StatusCode> {
    require_admin(&current)?;
    match state.store.set_deactivated(user_id, false).await? {
        true => Ok(StatusCode::NO_CONTENT),
        false => Err(Error::NotFound),
    }
}

async fn reset_link(state: &AppState, user_id: i64, created_by: i64) -> Result<ResetLink> {
    let secret = token::new_secret();
    state
        .store
        .create_password_reset(&token::hash(&secret), user_id, created_by)
        .await?;
    let mut url = state.public_url.join("reset").expect("valid path");
    url.set_fragment(Some(&secret));
    Ok(ResetLink {
        reset_url: url.into(),
        expires_at: crate::store::now_ms() + crate::store::password_resets::RESET_TTL_MS,
    })
}

pub fn require_admin(current: &CurrentUser) -> Result<()> {
    match current.user.is_admin() {
        true => Ok(()),
        false => Err(Error::forbidden("admin_only", "only an admin may do this")),
    }
}

pub fn login_conflict(e: sqlx::Error) -> Error {
    if is_unique_violation(&e) {
        Error::conflict("login_taken", "this login is taken")
    } else {
        e.into()
    }
}
