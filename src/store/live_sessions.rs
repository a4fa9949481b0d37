//! The writing side of session logs: a live session's row and its events. The SFU calls these
//! from its event-log task, never from a media path.

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
        sqlx::query_scalar("INSERT INTO live_sessions (room_id, started_at, started_by) VALUES ($1, $2, $3) RETURNING id")
            .bind(room_id)
            .bind(now_ms())
            .bind(started_by)
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

    pub async fn end_live_session(
        &self,
        session_id: i64,
        reason: &str,
        peak: i64,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE live_sessions SET ended_at = $1, end_reason = $2, peak_participants = $3
             WHERE id = $4 AND ended_at IS NULL",
        )
        .bind(now_ms())
        .bind(reason)
        .bind(peak)
        .bind(session_id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// At start-up: sessions a crash left open end at their last event (or their start).
    pub async fn close_orphaned_sessions(&self) -> Result<u64, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE live_sessions SET end_reason = 'server_restart',
                 ended_at = COALESCE((SELECT MAX(e.at) FROM session_events e WHERE e.session_id = live_sessions.id), started_at)
             WHERE ended_at IS NULL",
        )
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
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
