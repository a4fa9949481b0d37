//! Comments on class updates: families comment, teachers reply, and everyone who sees a post
//! reads its comments, a page at a time, oldest first.

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, Uri};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use utoipa::ToSchema;

use super::extract::{ApiJson, CurrentUser};
use super::page::{split, PageQuery, Paged};
use super::posts::{load, plain_text, MAX_COMMENT};
use super::{Error, Result};
use crate::access::{decide, Action, Facts};
use crate::events::ClassEvent;
use crate::state::AppState;
use crate::store::posts::{Comment, Position};

pub fn router() -> Router<AppState> {
    Router::new().route(
        "/api/v1/posts/{post_id}/comments",
        get(list_comments).post(comment),
    )
}

#[derive(Deserialize, ToSchema)]
pub struct CommentRequest {
    pub body: String,
}

/// Families comment, teachers reply.
#[utoipa::path(post, path = "/api/v1/posts/{post_id}/comments", tag = "posts", params(("post_id" = i64, Path)),
    request_body = CommentRequest, responses((status = 201, body = Comment), (status = 400, body = super::error::ErrorBody),
        (status = 403, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
pub async fn comment(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(post_id): Path<i64>,
    ApiJson(request): ApiJson<CommentRequest>,
) -> Result<(StatusCode, Json<Comment>)> {
    let (post, who) = load(&state, &current.user, post_id).await?;
    if post.state != "published" || !decide(who, Action::Comment, Facts::default()).allowed() {
        return Err(Error::forbidden(
            "not_allowed",
            "your role in this class does not comment",
        ));
    }
    let body = plain_text(&request.body)?;
    let body = body.trim();
    if body.is_empty() || body.chars().count() > MAX_COMMENT {
        return Err(Error::bad_request(
            "invalid_body",
            format!("a comment is 1 to {MAX_COMMENT} characters"),
        ));
    }
    let id = state
        .store
        .add_comment(post.id, current.user.id, body)
        .await?;
    state.events.publish(
        post.class_id,
        ClassEvent::Comment {
            post_id: post.id,
            comment_id: id,
        },
    );
    let comment = state.store.comment(id).await?.ok_or(Error::NotFound)?;
    Ok((StatusCode::CREATED, Json(comment)))
}

/// A post's comments, oldest first, a page at a time (`Link: rel="next"`).
#[utoipa::path(get, path = "/api/v1/posts/{post_id}/comments", tag = "posts", params(("post_id" = i64, Path), PageQuery),
    responses((status = 200, body = [Comment], headers(("link" = String, description = "The next page, absent on the last"))),
        (status = 400, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
pub async fn list_comments(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(post_id): Path<i64>,
    Query(page): Query<PageQuery>,
    uri: Uri,
) -> Result<Paged<Comment>> {
    let (post, _) = load(&state, &current.user, post_id).await?;
    let limit = page.limit()?;
    let start = page.start(Position {
        at: i64::MIN,
        rank: 0,
        id: i64::MIN,
    })?;
    let rows = state.store.post_comments(post.id, start, limit + 1).await?;
    let (items, next) = split(rows, limit, |c: &Comment| Position {
        at: c.created_at,
        rank: 0,
        id: c.id,
    });
    Ok(Paged { items, next, uri })
}
