//! Notification settings and subscriptions (`/api/v1/notifications/…`), the test message and
//! the digest's one-click stop link (`crate::notify` sends; `emails` emails links).
//!
//! Everything here is about the caller's own account, except the stop link, whose token is
//! its own credential.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::{ApiJson, CurrentUser};
use super::{Error, Result};
use crate::notify::email::Email;
use crate::notify::preferences::{Settings, SubscriptionInfo, KINDS};
use crate::notify::push::Subscription;
use crate::notify::queue::PushMessage;
use crate::state::AppState;
use crate::store::now_ms;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/notifications/server", get(server_info))
        .route(
            "/api/v1/notifications/settings",
            get(get_settings).put(put_settings),
        )
        .route("/api/v1/notifications/subscriptions", post(subscribe))
        .route(
            "/api/v1/notifications/subscriptions/{subscription_id}",
            delete(unsubscribe),
        )
        .route("/api/v1/notifications/test", post(send_test))
        .route("/api/v1/notifications/stop", post(stop))
}

#[derive(Serialize, ToSchema)]
pub struct ServerInfo {
    /// The VAPID public key for `pushManager.subscribe` (`applicationServerKey`), base64url.
    pub vapid_public_key: String,
    /// Whether this server sends email (SMTP configured).
    pub email_enabled: bool,
}

/// One class's switches: each kind is on unless turned off.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct ClassSwitches {
    pub class_id: i64,
    /// Filled in answers; ignored when sent.
    #[serde(default)]
    pub name: String,
    pub live: bool,
    pub updates: bool,
    pub comments: bool,
}

#[derive(Serialize, ToSchema)]
pub struct SettingsView {
    pub settings: Settings,
    pub classes: Vec<ClassSwitches>,
    /// The browsers that receive push messages.
    pub subscriptions: Vec<SubscriptionInfo>,
    /// The address digests go to (set when joining), if any.
    pub email: Option<String>,
    pub email_enabled: bool,
}

#[derive(Deserialize, ToSchema)]
pub struct SettingsUpdate {
    pub settings: Settings,
    /// Classes to change; classes left out keep their switches.
    #[serde(default)]
    pub classes: Vec<ClassSwitches>,
}

/// `PushSubscription.toJSON()` as the browser gives it.
#[derive(Deserialize, ToSchema)]
pub struct SubscribeRequest {
    pub endpoint: String,
    pub keys: SubscriptionKeys,
}

#[derive(Deserialize, ToSchema)]
pub struct SubscriptionKeys {
    pub p256dh: String,
    pub auth: String,
}

#[derive(Serialize, ToSchema)]
pub struct Subscribed {
    pub id: i64,
}

#[derive(Serialize, ToSchema)]
pub struct TestSent {
    /// Browsers a test message was queued for.
    pub push: usize,
    /// Whether a test email was queued.
    pub email: bool,
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct StopQuery {
    /// The token from the email's link.
    pub token: String,
}

/// The VAPID public key and whether email is on.
#[utoipa::path(get, path = "/api/v1/notifications/server", tag = "notifications",
    responses((status = 200, body = ServerInfo)))]
pub async fn server_info(State(state): State<AppState>, _current: CurrentUser) -> Json<ServerInfo> {
    Json(ServerInfo {
        vapid_public_key: state.notify.vapid_public_key(),
        email_enabled: state.notify.email_enabled(),
    })
}

/// The caller's settings, switches per class, and browsers.
#[utoipa::path(get, path = "/api/v1/notifications/settings", tag = "notifications",
    responses((status = 200, body = SettingsView)))]
pub async fn get_settings(
    State(state): State<AppState>,
    current: CurrentUser,
) -> Result<Json<SettingsView>> {
    Ok(Json(view(&state, &current).await?))
}

async fn view(state: &AppState, current: &CurrentUser) -> Result<SettingsView> {
    let user = &current.user;
    let off = state.store.preferences(user.id).await?;
    let on = |class_id: i64, kind: &str| {
        !off.iter()
            .any(|(c, k, enabled)| *c == class_id && k == kind && !enabled)
    };
    let classes = state
        .store
        .classes_of(user.id, false)
        .await?
        .into_iter()
        .map(|c| ClassSwitches {
            class_id: c.id,
            live: on(c.id, "live"),
            updates: on(c.id, "updates"),
            comments: on(c.id, "comments"),
            name: c.name,
        })
        .collect();
    Ok(SettingsView {
        settings: state.store.notification_settings(user.id).await?,
        classes,
        subscriptions: state.store.subscriptions_of(user.id).await?,
        email: user.email.clone(),
        email_enabled: state.notify.email_enabled(),
    })
}

/// Saves quiet hours, the digest and switches; nothing is saved when any part is wrong.
#[utoipa::path(put, path = "/api/v1/notifications/settings", tag = "notifications",
    request_body = SettingsUpdate, responses((status = 200, body = SettingsView),
        (status = 400, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
pub async fn put_settings(
    State(state): State<AppState>,
    current: CurrentUser,
    ApiJson(update): ApiJson<SettingsUpdate>,
) -> Result<Json<SettingsView>> {
    let user_id = current.user.id;
    update
        .settings
        .check()
        .map_err(|message| Error::bad_request("bad_settings", message))?;
    let mine: Vec<i64> = state
        .store
        .classes_of(user_id, false)
        .await?
        .iter()
        .map(|c| c.id)
        .collect();
    if update.classes.iter().any(|c| !mine.contains(&c.class_id)) {
        return Err(Error::NotFound);
    }
    state
        .store
        .set_notification_settings(user_id, &update.settings)
        .await?;
    for class in &update.classes {
        for (kind, enabled) in KINDS
            .iter()
            .zip([class.live, class.updates, class.comments])
        {
            state
                .store
                .set_preference(user_id, class.class_id, kind, enabled)
                .await?;
        }
    }
    state.notify.digest_wake.notify_one();
    Ok(Json(view(&state, &current).await?))
}

/// Registers this browser for push messages (or refreshes its keys).
#[utoipa::path(post, path = "/api/v1/notifications/subscriptions", tag = "notifications",
    request_body = SubscribeRequest, responses((status = 201, body = Subscribed),
        (status = 400, body = super::error::ErrorBody)))]
pub async fn subscribe(
    State(state): State<AppState>,
    current: CurrentUser,
    ApiJson(request): ApiJson<SubscribeRequest>,
) -> Result<(StatusCode, Json<Subscribed>)> {
    let subscription = Subscription::parse(
        &request.endpoint,
        &request.keys.p256dh,
        &request.keys.auth,
        state.notify.allow_insecure_endpoints,
    )
    .map_err(|e| Error::bad_request("bad_subscription", e.to_string()))?;
    let id = state
        .store
        .add_subscription(current.user.id, &subscription)
        .await?;
    tracing::info!(
        user_id = current.user.id,
        subscription_id = id,
        "push subscription added"
    );
    Ok((StatusCode::CREATED, Json(Subscribed { id })))
}

/// Stops push messages to one of the caller's browsers.
#[utoipa::path(delete, path = "/api/v1/notifications/subscriptions/{subscription_id}", tag = "notifications",
    params(("subscription_id" = i64, Path)),
    responses((status = 204), (status = 404, body = super::error::ErrorBody)))]
pub async fn unsubscribe(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(subscription_id): Path<i64>,
) -> Result<StatusCode> {
    match state
        .store
        .remove_subscription(current.user.id, subscription_id)
        .await?
    {
        true => Ok(StatusCode::NO_CONTENT),
        false => Err(Error::NotFound),
    }
}

/// Sends the caller a test message on every browser, and by email when both are set up.
#[utoipa::path(post, path = "/api/v1/notifications/test", tag = "notifications",
    responses((status = 200, body = TestSent)))]
pub async fn send_test(
    State(state): State<AppState>,
    current: CurrentUser,
) -> Result<Json<TestSent>> {
    let user = &current.user;
    let dedupe = format!("test:{}:{}", user.id, now_ms());
    let message = PushMessage {
        kind: "test".into(),
        title: "Homeroom".into(),
        body: "Notifications work on this device.".into(),
        url: "/notifications".into(),
        tag: "test".into(),
        vars: Default::default(),
    };
    let push = state
        .notify
        .push_to(user.id, &dedupe, &message, now_ms())
        .await?;
    let email = match &user.email {
        Some(to) => {
            let email = Email {
                subject: "Homeroom test message".into(),
                text: format!(
                    "Hello {},\n\nEmail from Homeroom reaches you.\n",
                    user.display_name
                ),
                stop_url: None,
                stop_post_url: None,
            };
            state
                .notify
                .email_to(Some(user.id), to, &dedupe, &email)
                .await?
        }
        None => false,
    };
    Ok(Json(TestSent { push, email }))
}

/// Turns the digest off: the one-click link of every digest email (RFC 8058). The token is
/// the credential; it stops that account's digest and nothing else.
#[utoipa::path(post, path = "/api/v1/notifications/stop", tag = "notifications", params(StopQuery),
    responses((status = 204), (status = 400, body = super::error::ErrorBody),
        (status = 404, body = super::error::ErrorBody)))]
pub async fn stop(
    State(state): State<AppState>,
    Query(query): Query<StopQuery>,
) -> Result<StatusCode> {
    let user_id =
        crate::notify::digest::check_stop_token(&state, &query.token).ok_or(Error::NotFound)?;
    state.store.stop_digest(user_id).await?;
    tracing::info!(user_id, "digest stopped from its email link");
    Ok(StatusCode::NO_CONTENT)
}
