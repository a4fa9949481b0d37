//! "Seen": a family member's class page reports the posts it showed them, and the class's
//! teachers see which families have seen each post. Reports are queued for the store's
//! background writer (`store::post_views`), so they never slow a page; feed readers report
//! nothing.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use utoipa::ToSchema;

use super::classes::require;
use super::extract::{ApiJson, CurrentUser};
use super::page::MAX_LIMIT;
use super::post_view::manages;
use super::posts::load;
use super::{Error, Result};
use crate::access::{Action, Role, Who};
use crate::state::AppState;
use crate::store::post_views::Viewer;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/classes/{class_id}/seen", post(report_seen))
        .route("/api/v1/posts/{post_id}/seen", get(seen_by))
}

#[derive(Deserialize, ToSchema)]
pub struct SeenReport {
    /// Posts of the class the page showed, 1 to 50.
    pub post_ids: Vec<i64>,
}

/// The page showed the caller these posts. Recorded for family members only (it is their
/// seeing that teachers count), for the posts they may see; the rest are ignored.
#[utoipa::path(post, path = "/api/v1/classes/{class_id}/seen", tag = "posts", params(("class_id" = i64, Path)),
    request_body = SeenReport, responses((status = 202), (status = 400, body = super::error::ErrorBody),
        (status = 404, body = super::error::ErrorBody)))]
pub async fn report_seen(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(class_id): Path<i64>,
    ApiJson(report): ApiJson<SeenReport>,
) -> Result<StatusCode> {
    if report.post_ids.is_empty() || report.post_ids.len() as i64 > MAX_LIMIT {
        return Err(Error::bad_request(
            "invalid_post_ids",
            format!("report 1 to {MAX_LIMIT} posts at a time"),
        ));
    }
    let (who, _) = require(&state, &current.user, class_id, Action::ReadTimeline).await?;
    if who == Who::Member(Role::Family) {
        let mut ids = report.post_ids;
        ids.sort_unstable();
        ids.dedup();
        let visible = state
            .store
            .family_visible_posts(class_id, current.user.id, &ids)
            .await?;
        state.seen.seen(current.user.id, &visible);
    }
    Ok(StatusCode::ACCEPTED)
}

/// The families of the class who have seen the post, first seen first; teachers only.
#[utoipa::path(get, path = "/api/v1/posts/{post_id}/seen", tag = "posts", params(("post_id" = i64, Path)),
    responses((status = 200, body = [Viewer]), (status = 403, body = super::error::ErrorBody),
        (status = 404, body = super::error::ErrorBody)))]
pub async fn seen_by(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(post_id): Path<i64>,
) -> Result<Json<Vec<Viewer>>> {
    let (post, who) = load(&state, &current.user, post_id).await?;
    if !manages(who) {
        return Err(Error::forbidden(
            "not_allowed",
            "teachers see who has seen a post",
        ));
    }
    Ok(Json(
        state.store.post_viewers(post.id, post.class_id).await?,
    ))
}
