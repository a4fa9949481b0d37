//! Sessions of clients that have no signalling socket — WHIP encoders and WHEP players — kept by
//! the secret resource id their `Location` names.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::mpsc;

use crate::auth::token;
use crate::sfu::event::Event;

/// A session lives in one room; requests naming another room do not reach it.
pub trait InRoom {
    fn room_id(&self) -> i64;
}

pub struct Sessions<T>(Mutex<HashMap<String, T>>);

impl<T> Default for Sessions<T> {
    fn default() -> Self {
        Sessions(Mutex::default())
    }
}

impl<T: InRoom> Sessions<T> {
    /// Keeps a new session; returns its resource id.
    pub fn insert(&self, session: T) -> String {
        let resource = token::new_secret();
        self.0
            .lock()
            .expect("sessions lock")
            .insert(resource.clone(), session);
        resource
    }

    pub fn take(&self, resource: &str) -> Option<T> {
        self.0.lock().expect("sessions lock").remove(resource)
    }

    /// The session, if it belongs to this room; left in place otherwise.
    pub fn take_in(&self, room_id: i64, resource: &str) -> Option<T> {
        let mut sessions = self.0.lock().expect("sessions lock");
        match sessions.get(resource) {
            Some(session) if session.room_id() == room_id => sessions.remove(resource),
            _ => None,
        }
    }

    /// Reads something of the session, if it belongs to this room.
    pub fn read_in<R>(
        &self,
        room_id: i64,
        resource: &str,
        read: impl FnOnce(&T) -> R,
    ) -> Option<R> {
        let sessions = self.0.lock().expect("sessions lock");
        sessions
            .get(resource)
            .filter(|s| s.room_id() == room_id)
            .map(read)
    }
}

/// Reads the room's events to a socketless participant until the room is done with it (the
/// session ended, or the host removed it).
pub async fn until_removed(mut outbox: mpsc::Receiver<Event>) {
    while let Some(event) = outbox.recv().await {
        if matches!(event, Event::Ended { .. } | Event::Kicked { .. }) {
            break;
        }
    }
}
