//! The class timeline: class updates and session logs side by side, newest first, a page at a
//! time. The cursor is a position (time, kind, id), not an offset, so posts that arrive while a
//! family scrolls never push an item onto the next page twice.

use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::ToSchema;

use super::classes::require;
use super::extract::CurrentUser;
use super::page::{encode, PageQuery};
use super::post_view::{reader, views, PostView};
use super::session_logs::{reader as session_reader, summaries, SessionSummary};
use super::Result;
use crate::access::Action;
use crate::access::Who;
use crate::state::AppState;
use crate::store::posts::Position;
use crate::store::users::User;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/classes/{class_id}/timeline", get(timeline))
}

#[derive(Serialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Item {
    Post {
        at: i64,
        post: Box<PostView>,
    },
    Session {
        at: i64,
        session: Box<SessionSummary>,
    },
}

#[derive(Serialize, ToSchema)]
pub struct TimelinePage {
    pub items: Vec<Item>,
    /// Pass as `cursor` for older items; absent at the end.
    pub next_cursor: Option<String>,
}

/// One page of the timeline.
#[utoipa::path(get, path = "/api/v1/classes/{class_id}/timeline", tag = "timeline", params(("class_id" = i64, Path), PageQuery),
    responses((status = 200, body = TimelinePage), (status = 404, body = super::error::ErrorBody)))]
pub async fn timeline(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(class_id): Path<i64>,
    Query(page): Query<PageQuery>,
) -> Result<Json<TimelinePage>> {
    let (who, _) = require(&state, &current.user, class_id, Action::ReadTimeline).await?;
    let limit = page.limit()?;
    let start = page.start(Position::START)?;
    let (items, more) = page_of(&state, &current.user, who, class_id, start, limit).await?;
    let next_cursor = match more {
        true => items.last().map(|(p, _)| encode(*p)),
        false => None,
    };
    Ok(Json(TimelinePage {
        items: items.into_iter().map(|(_, item)| item).collect(),
        next_cursor,
    }))
}

/// Up to `limit` items older than `start` that `user` may see, newest first, and whether
/// there are more. What the caller may see is decided in SQL, so each list is one query of
/// `limit + 1` rows, and the page's details one batch: the same queries for any page length.
pub(super) async fn page_of(
    state: &AppState,
    user: &User,
    who: Who,
    class_id: i64,
    start: Position,
    limit: i64,
) -> Result<(Vec<(Position, Item)>, bool)> {
    let posts = state
        .store
        .posts_before(class_id, reader(who, user), start, limit + 1)
        .await?;
    let sessions = state
        .store
        .sessions_before(
            class_id,
            session_reader(who, user),
            (0, i64::MAX),
            start,
            limit + 1,
        )
        .await?;
    // Newest first across both lists; only what makes the page is looked up further. Each
    // list is in that same order, so the page takes a front part of each.
    let mut order: Vec<Position> = posts
        .iter()
        .map(|p| Position {
            at: p.published_at.unwrap_or(p.updated_at),
            rank: 1,
            id: p.id,
        })
        .chain(sessions.iter().map(|s| Position {
            at: s.started_at,
            rank: 0,
            id: s.id,
        }))
        .collect();
    order.sort_by_key(|p| std::cmp::Reverse((p.at, p.rank, p.id)));
    let more = order.len() as i64 > limit;
    order.truncate(limit as usize);
    let mut posts = posts;
    let mut sessions = sessions;
    posts.truncate(order.iter().filter(|p| p.rank == 1).count());
    sessions.truncate(order.iter().filter(|p| p.rank == 0).count());
    let mut posts = views(state, who, class_id, posts).await?.into_iter();
    let mut sessions = summaries(state, who, user, sessions, Action::SeeAttendance)
        .await?
        .into_iter();
    let mut items = Vec::with_capacity(order.len());
    for position in order {
        let item = match position.rank {
            1 => posts.next().map(|post| Item::Post {
                at: position.at,
                post: Box::new(post),
            }),
            _ => sessions.next().flatten().map(|session| Item::Session {
                at: position.at,
                session: Box::new(session),
            }),
        };
        items.extend(item.map(|item| (position, item)));
    }
    Ok((items, more))
}
