//! The writing side of session logs: a live session's row and its events. The SFU calls these
//! from its event-log task, never from a media path.
//!
//! When a session ends, its attendance is worked out once from its comings and goings and
//! stored (`session_attendance`, `live_sessions.attendees`): lists, the timeline and the CSV
//! export read that instead of every event of every session. A session carries the node
//! that runs it, so a node's start-up closes only what it left open itself.

use super::session_logs::{attendance, EventRow};
use super::{now_ms, Store};

/// One thing that happened in a live session.
#[derive(Debug, Clone)]
pub struct SessionEvent {
    pub session_id: i64,
    /// Order within the session, assigned by the room; the log keeps it.
    pub seq: i64,
    pub at: i64,
    pub user_id: Option<i64>,
    pub actor_name: String,
    /// join, leave, publish, unpublish, chat, hand, promote, mute, kick, end.
    pub kind: &'static str,
    /// A JSON object, e.g. `{"text":"…"}` for chat.
    pub detail: String,
}

impl Store {
    pub async fn start_live_session(
        &self,
        room_id: i64,
        started_by: Option<i64>,
    ) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar("INSERT INTO live_sessions (room_id, started_at, started_by, node_id) VALUES ($1, $2, $3, $4) RETURNING id")
            .bind(room_id)
            .bind(now_ms())
            .bind(started_by)
            .bind(self.node_id())
            .fetch_one(self.pool())
            .await
    }

    /// Writes events in one transaction, in the order given.
    pub async fn append_session_events(&self, events: &[SessionEvent]) -> Result<(), sqlx::Error> {
        let mut tx = self.pool().begin().await?;
        for e in events {
            sqlx::query(
                "INSERT INTO session_events (session_id, seq, at, user_id, actor_name, kind, detail)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(e.session_id)
            .bind(e.seq)
            .bind(e.at)
            .bind(e.user_id)
            .bind(&e.actor_name)
            .bind(e.kind)
            .bind(&e.detail)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await
    }

    /// Ends the session and stores its attendance, in one transaction.
    pub async fn end_live_session(
        &self,
        session_id: i64,
        reason: &str,
        peak: i64,
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE live_sessions SET ended_at = $1, end_reason = $2, peak_participants = $3
             WHERE id = $4 AND ended_at IS NULL",
        )
        .bind(now_ms())
        .bind(reason)
        .bind(peak)
        .bind(session_id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 1 {
            summarize(&mut tx, session_id).await?;
        }
        tx.commit().await
    }

    /// At start-up: sessions this node left open (a crash) end at their last event (or their
    /// start), and every ended session without a stored attendance gets one. Sessions other
    /// nodes run are theirs to close.
    pub async fn close_orphaned_sessions(&self) -> Result<u64, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE live_sessions SET end_reason = 'server_restart',
                 ended_at = COALESCE((SELECT MAX(e.at) FROM session_events e WHERE e.session_id = live_sessions.id), started_at)
             WHERE ended_at IS NULL AND (node_id = $1 OR node_id IS NULL)",
        )
        .bind(self.node_id())
        .execute(self.pool())
        .await?;
        self.summarize_ended_sessions().await?;
        Ok(done.rows_affected())
    }

    /// Stores the attendance of every ended session that has none yet; answers how many.
    pub async fn summarize_ended_sessions(&self) -> Result<u64, sqlx::Error> {
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM live_sessions WHERE ended_at IS NOT NULL AND attendees IS NULL ORDER BY id",
        )
        .fetch_all(self.pool())
        .await?;
        for chunk in ids.chunks(200) {
            let mut tx = self.begin_write().await?;
            for id in chunk {
                summarize(&mut tx, *id).await?;
            }
            tx.commit().await?;
        }
        Ok(ids.len() as u64)
    }

    /// The live session of a room that is still open, if any.
    pub async fn open_session_of(&self, room_id: i64) -> Result<Option<i64>, sqlx::Error> {
        sqlx::query_scalar(
            "SELECT id FROM live_sessions WHERE room_id = $1 AND ended_at IS NULL ORDER BY id DESC",
        )
        .bind(room_id)
        .fetch_optional(self.pool())
        .await
    }
}

/// Works out an ended session's attendance from its events and stores it.
async fn summarize(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    session_id: i64,
) -> Result<(), sqlx::Error> {
    let ended_at: i64 = sqlx::query_scalar("SELECT ended_at FROM live_sessions WHERE id = $1")
        .bind(session_id)
        .fetch_one(&mut **tx)
        .await?;
    let events: Vec<EventRow> = sqlx::query_as(
        "SELECT seq, at, user_id, actor_name, kind, detail FROM session_events
         WHERE session_id = $1 AND kind IN ('join', 'leave') ORDER BY seq",
    )
    .bind(session_id)
    .fetch_all(&mut **tx)
    .await?;
    let people = attendance(&events, ended_at);
    sqlx::query("DELETE FROM session_attendance WHERE session_id = $1")
        .bind(session_id)
        .execute(&mut **tx)
        .await?;
    for (position, person) in people.iter().enumerate() {
        sqlx::query(
            "INSERT INTO session_attendance (session_id, position, user_id, name, intervals, total_ms)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(session_id)
        .bind(position as i64)
        .bind(person.user_id)
        .bind(&person.name)
        .bind(serde_json::to_string(&person.intervals).expect("numbers serialize"))
        .bind(person.total_ms)
        .execute(&mut **tx)
        .await?;
    }
    sqlx::query("UPDATE live_sessions SET attendees = $1 WHERE id = $2")
        .bind(people.len() as i64)
        .bind(session_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
