//! Class events: what an open class page is told the moment it happens (a live session started
//! or ended, a post or a comment written), pushed over `GET /api/v1/classes/{id}/events`.
//!
//! One bounded broadcast channel per class that has a page open. Events carry ids only: each
//! page then fetches what its reader may see, so nothing private travels in an event, and the
//! HTTP edge (`http::class_events`) also drops events about posts the reader may not see. A
//! reader that falls more than [`BACKLOG`] events behind is dropped (its page reconnects and
//! reloads), never buffered for.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::{broadcast, mpsc};

/// Events kept per class for a reader that is behind; past this it is dropped.
pub const BACKLOG: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClassEvent {
    SessionStarted {
        room_id: i64,
        session_id: i64,
    },
    SessionEnded {
        room_id: i64,
        session_id: i64,
    },
    /// A post was written, edited, handed in, approved or returned.
    Post {
        post_id: i64,
    },
    Comment {
        post_id: i64,
        comment_id: i64,
    },
}

impl ClassEvent {
    /// The SSE `event:` name.
    pub fn name(&self) -> &'static str {
        match self {
            ClassEvent::SessionStarted { .. } => "session_started",
            ClassEvent::SessionEnded { .. } => "session_ended",
            ClassEvent::Post { .. } => "post",
            ClassEvent::Comment { .. } => "comment",
        }
    }
}

/// The node's class event hub: a cheap handle, cloned into the state and the SFU.
#[derive(Clone, Default)]
pub struct ClassEvents {
    inner: Arc<Mutex<Hub>>,
}

#[derive(Default)]
struct Hub {
    channels: HashMap<i64, broadcast::Sender<ClassEvent>>,
    /// Set at shutdown: open streams end and no new ones start, so draining never waits on
    /// a page that would listen forever.
    closed: bool,
    /// Every event of every class, for `notify` (which must hear of classes nobody has open).
    /// Unbounded: events come from people's actions, and the reader only queues rows.
    tap: Option<mpsc::UnboundedSender<(i64, ClassEvent)>>,
}

impl ClassEvents {
    /// A receiver of the class's events from now on; `None` once the server is stopping.
    pub fn subscribe(&self, class_id: i64) -> Option<broadcast::Receiver<ClassEvent>> {
        let mut hub = self.inner.lock().expect("events lock");
        if hub.closed {
            return None;
        }
        // Classes whose pages have all closed give their channel back.
        hub.channels.retain(|_, tx| tx.receiver_count() > 0);
        Some(
            hub.channels
                .entry(class_id)
                .or_insert_with(|| broadcast::channel(BACKLOG).0)
                .subscribe(),
        )
    }

    /// Every event of every class from now on (one reader: a second call replaces the first).
    pub fn tap(&self) -> mpsc::UnboundedReceiver<(i64, ClassEvent)> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.inner.lock().expect("events lock").tap = Some(tx);
        rx
    }

    /// Tells the class's open pages (and the tap); nobody listening costs nothing.
    pub fn publish(&self, class_id: i64, event: ClassEvent) {
        let mut hub = self.inner.lock().expect("events lock");
        if let Some(tap) = &hub.tap {
            let _ = tap.send((class_id, event.clone()));
        }
        if let Some(tx) = hub.channels.get(&class_id) {
            if tx.send(event).is_err() {
                hub.channels.remove(&class_id);
            }
        }
    }

    /// Ends every stream (server shutdown).
    pub fn close(&self) {
        let mut hub = self.inner.lock().expect("events lock");
        hub.closed = true;
        hub.channels.clear();
        hub.tap = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::broadcast::error::{RecvError, TryRecvError};

    fn post(post_id: i64) -> ClassEvent {
        ClassEvent::Post { post_id }
    }

    #[test]
    fn events_reach_only_their_class() {
        let events = ClassEvents::default();
        let mut one = events.subscribe(1).unwrap();
        let mut two = events.subscribe(2).unwrap();
        events.publish(1, post(7));
        assert_eq!(one.try_recv(), Ok(post(7)));
        assert_eq!(two.try_recv(), Err(TryRecvError::Empty));
    }

    #[test]
    fn a_reader_too_far_behind_learns_it_lagged() {
        let events = ClassEvents::default();
        let mut slow = events.subscribe(1).unwrap();
        for id in 0..(BACKLOG as i64 + 5) {
            events.publish(1, post(id));
        }
        assert!(matches!(slow.try_recv(), Err(TryRecvError::Lagged(5))));
    }

    #[tokio::test]
    async fn closing_ends_streams_and_refuses_new_ones() {
        let events = ClassEvents::default();
        let mut open = events.subscribe(1).unwrap();
        events.close();
        assert_eq!(open.recv().await, Err(RecvError::Closed));
        assert!(events.subscribe(1).is_none());
    }

    #[test]
    fn the_tap_hears_every_class_even_unwatched_ones() {
        let events = ClassEvents::default();
        let mut tap = events.tap();
        events.publish(1, post(7));
        events.publish(2, post(8));
        assert_eq!(tap.try_recv(), Ok((1, post(7))));
        assert_eq!(tap.try_recv(), Ok((2, post(8))));
        events.close();
        assert!(tap.try_recv().is_err());
    }

    #[test]
    fn wire_form_is_ids_only() {
        let json = serde_json::to_value(ClassEvent::SessionStarted {
            room_id: 3,
            session_id: 9,
        })
        .unwrap();
        assert_eq!(
            json,
            serde_json::json!({"type": "session_started", "room_id": 3, "session_id": 9})
        );
    }
}
