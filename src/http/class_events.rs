//! The class page's push channel: Server-Sent Events at `GET /api/v1/classes/{id}/events`,
//! for those who may read the class timeline (`crate::events` owns the hub).
//!
//! Each event is checked against the reader as it goes out: a post or comment the reader may
//! not see is skipped, and a reader no longer in the class (or one fallen too far behind) has
//! the stream ended. The page reconnects by itself and reloads what it shows.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use axum::Router;
use futures_util::Stream;
use tokio::sync::broadcast::error::RecvError;

use super::classes::require;
use super::extract::CurrentUser;
use super::posts::visible;
use super::Result;
use crate::access::Action;
use crate::events::ClassEvent;
use crate::state::AppState;
use crate::store::users::User;

/// A comment line this often keeps proxies from closing a quiet stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// How long a browser waits before reconnecting a dropped stream.
const RETRY: Duration = Duration::from_secs(1);

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/classes/{class_id}/events", get(events))
}

/// A stream of `session_started`, `session_ended`, `post` and `comment` events carrying ids
/// (`{"type", "room_id", "session_id"}`, `{"type", "post_id"}`, `{"type", "post_id",
/// "comment_id"}`); fetch the room list, timeline or post to see what changed.
#[utoipa::path(get, path = "/api/v1/classes/{class_id}/events", tag = "timeline", params(("class_id" = i64, Path)),
    responses((status = 200, description = "text/event-stream of class events", content_type = "text/event-stream", body = ClassEvent),
        (status = 401, body = super::error::ErrorBody), (status = 403, body = super::error::ErrorBody),
        (status = 404, body = super::error::ErrorBody)))]
pub async fn events(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(class_id): Path<i64>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    require(&state, &current.user, class_id, Action::ReadTimeline).await?;
    let receiver = state.events.subscribe(class_id);
    let hello = Event::default().comment("ready").retry(RETRY);
    let reader = Reader {
        state,
        user: current.user,
        class_id,
    };
    let first = futures_util::stream::once(async move { Ok(hello) });
    let rest =
        futures_util::stream::unfold((reader, receiver), |(reader, mut receiver)| async move {
            let event = reader.next(receiver.as_mut()?).await?;
            Some((Ok(event), (reader, receiver)))
        });
    Ok(Sse::new(futures_util::StreamExt::chain(first, rest))
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}

struct Reader {
    state: AppState,
    user: User,
    class_id: i64,
}

impl Reader {
    /// The next event for this reader, or `None` to end the stream.
    async fn next(
        &self,
        receiver: &mut tokio::sync::broadcast::Receiver<ClassEvent>,
    ) -> Option<Event> {
        loop {
            let event = match receiver.recv().await {
                Ok(event) => event,
                // Too slow: end here rather than hold events for it; the page reloads.
                Err(RecvError::Lagged(_)) | Err(RecvError::Closed) => return None,
            };
            match self.may_see(&event).await {
                Ok(true) => {
                    let data = serde_json::to_string(&event).expect("events serialize");
                    return Some(Event::default().event(event.name()).data(data));
                }
                Ok(false) => continue,
                Err(_) => return None,
            }
        }
    }

    /// Whether the reader may learn of `event`; an error when they may no longer read the
    /// class at all.
    async fn may_see(&self, event: &ClassEvent) -> Result<bool> {
        require(&self.state, &self.user, self.class_id, Action::ReadTimeline).await?;
        let post_id = match event {
            ClassEvent::SessionStarted { .. } | ClassEvent::SessionEnded { .. } => return Ok(true),
            ClassEvent::Post { post_id } | ClassEvent::Comment { post_id, .. } => *post_id,
        };
        let Some(post) = self.state.store.post(post_id).await? else {
            return Ok(false);
        };
        Ok(post.class_id == self.class_id && visible(&self.state, &self.user, &post).await.is_ok())
    }
}
