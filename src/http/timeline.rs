//! The class timeline: class updates and session logs side by side, newest first, a page at a
//! time. The cursor is a position (time, kind, id), not an offset, so posts that arrive while a
//! family scrolls never push an item onto the next page twice.

use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::classes::require;
use super::extract::CurrentUser;
use super::posts::{view, visible, PostView};
use super::session_logs::{only_own, session_visibility, until, SessionSummary};
use super::{Error, Result};
use crate::access::Action;
use crate::access::Who;
use crate::state::AppState;
use crate::store::posts::Position;
use crate::store::session_logs::attendance;
use crate::store::users::User;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/classes/{class_id}/timeline", get(timeline))
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct Page {
    /// `next_cursor` of the previous page; absent for the newest items.
    pub cursor: Option<String>,
    /// Items per page, 1 to 50 (default 20).
    pub limit: Option<i64>,
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

fn encode(p: Position) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}:{}:{}", p.at, p.rank, p.id))
}

fn decode(cursor: &str) -> Option<Position> {
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(cursor).ok()?).ok()?;
    let mut parts = text.split(':').map(|n| n.parse::<i64>().ok());
    let position = Position {
        at: parts.next()??,
        rank: parts.next()??,
        id: parts.next()??,
    };
    (0..=1).contains(&position.rank).then_some(position)
}

/// One page of the timeline.
#[utoipa::path(get, path = "/api/v1/classes/{class_id}/timeline", tag = "timeline", params(("class_id" = i64, Path), Page),
    responses((status = 200, body = TimelinePage), (status = 404, body = super::error::ErrorBody)))]
pub async fn timeline(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(class_id): Path<i64>,
    Query(page): Query<Page>,
) -> Result<Json<TimelinePage>> {
    let (who, _) = require(&state, &current.user, class_id, Action::ReadTimeline).await?;
    let limit = page.limit.unwrap_or(20);
    if !(1..=50).contains(&limit) {
        return Err(Error::bad_request("invalid_limit", "limit is 1 to 50"));
    }
    let start = match &page.cursor {
        Some(cursor) => decode(cursor).ok_or_else(|| {
            Error::bad_request("invalid_cursor", "this cursor is not one we gave out")
        })?,
        None => Position::START,
    };
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
/// there are more.
pub(super) async fn page_of(
    state: &AppState,
    user: &User,
    who: Who,
    class_id: i64,
    start: Position,
    limit: i64,
) -> Result<(Vec<(Position, Item)>, bool)> {
    // Candidates older than the cursor, each list in order; what the caller may not see is
    // skipped, and batches continue until a page is full or the list ends.
    let mut items: Vec<(Position, Item)> = Vec::new();
    let mut from = start;
    loop {
        let batch = state.store.posts_before(class_id, from, limit + 1).await?;
        let full = batch.len() as i64 == limit + 1;
        for post in batch {
            from = Position {
                at: post.published_at.unwrap_or(post.updated_at),
                rank: 1,
                id: post.id,
            };
            if visible(state, user, &post).await.is_ok() {
                items.push((
                    from,
                    Item::Post {
                        at: from.at,
                        post: Box::new(view(state, who, user, post).await?),
                    },
                ));
            }
        }
        if !full || items.len() as i64 > limit {
            break;
        }
    }
    let mut from = start;
    let mut sessions = 0;
    loop {
        let batch = state
            .store
            .sessions_before(class_id, from, limit + 1)
            .await?;
        let full = batch.len() as i64 == limit + 1;
        for session in batch {
            from = Position {
                at: session.started_at,
                rank: 0,
                id: session.id,
            };
            let Some((seen, _)) =
                session_visibility(state, who, user, &session, Action::SeeAttendance).await?
            else {
                continue;
            };
            let events = state.store.session_events(session.id).await?;
            let people = only_own(attendance(&events, until(&session)), seen, user);
            let summary = SessionSummary {
                duration_ms: until(&session) - session.started_at,
                attendees: people.len(),
                session,
            };
            items.push((
                from,
                Item::Session {
                    at: from.at,
                    session: Box::new(summary),
                },
            ));
            sessions += 1;
        }
        if !full || sessions > limit {
            break;
        }
    }
    items.sort_by_key(|(p, _)| std::cmp::Reverse((p.at, p.rank, p.id)));
    let more = items.len() as i64 > limit;
    items.truncate(limit as usize);
    Ok((items, more))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_junk() {
        let p = Position {
            at: 1_795_000_000_000,
            rank: 1,
            id: 42,
        };
        assert_eq!(decode(&encode(p)), Some(p));
        assert_eq!(decode("not a cursor"), None);
        assert_eq!(decode(&URL_SAFE_NO_PAD.encode("1:7:3")), None);
    }
}
