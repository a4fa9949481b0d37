//! Recordings of live sessions and their files. A row is made when the recorder starts; its
//! files are listed when it is finalised (at stop, or at the next start after a crash).

use serde::Serialize;
use sqlx::FromRow;

use super::{now_ms, Store};

#[derive(Debug, Clone, FromRow, Serialize, utoipa::ToSchema)]
pub struct RecordingRow {
    pub id: i64,
    pub session_id: i64,
    #[serde(skip)]
    pub dir: String,
    /// recording, ready, empty (nothing was published while it ran) or deleted (past
    /// retention: the files are gone).
    pub state: String,
    pub started_at: i64,
    pub started_by_name: String,
    pub ended_at: Option<i64>,
    pub stopped_by_name: Option<String>,
    /// stopped, session_ended, disk_full, server_restart.
    pub stop_reason: Option<String>,
    pub deleted_at: Option<i64>,
}

#[derive(Debug, Clone, FromRow, Serialize, utoipa::ToSchema)]
pub struct RecordingFile {
    pub id: i64,
    pub recording_id: i64,
    #[serde(skip)]
    pub file_name: String,
    /// camera (with the publisher's microphone) or screen.
    pub source: String,
    pub participant_name: String,
    /// When the file starts, from the start of the recording: every file is on one clock.
    pub offset_ms: i64,
    pub duration_ms: i64,
    pub size_bytes: i64,
}

/// A file made by finalising a recording.
pub struct NewFile<'a> {
    pub file_name: &'a str,
    pub source: &'a str,
    pub participant_name: &'a str,
    pub offset_ms: i64,
    pub duration_ms: i64,
    pub size_bytes: i64,
}

const COLUMNS: &str = "id, session_id, dir, state, started_at, started_by_name, ended_at, \
     stopped_by_name, stop_reason, deleted_at";

const FILE_COLUMNS: &str =
    "id, recording_id, file_name, source, participant_name, offset_ms, duration_ms, size_bytes";

impl Store {
    pub async fn create_recording(
        &self,
        session_id: i64,
        dir: &str,
        started_at: i64,
        started_by: Option<i64>,
        started_by_name: &str,
    ) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar(
            "INSERT INTO recordings (session_id, dir, state, started_at, started_by, started_by_name)
             VALUES ($1, $2, 'recording', $3, $4, $5) RETURNING id",
        )
        .bind(session_id)
        .bind(dir)
        .bind(started_at)
        .bind(started_by)
        .bind(started_by_name)
        .fetch_one(self.pool())
        .await
    }

    pub async fn recording(&self, id: i64) -> Result<Option<RecordingRow>, sqlx::Error> {
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM recordings WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await
    }

    pub async fn session_recordings(
        &self,
        session_id: i64,
    ) -> Result<Vec<RecordingRow>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM recordings WHERE session_id = $1 ORDER BY id"
        ))
        .bind(session_id)
        .fetch_all(self.pool())
        .await
    }

    /// Recordings still being written: at start-up, the ones a crash interrupted.
    pub async fn unfinished_recordings(&self) -> Result<Vec<RecordingRow>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM recordings WHERE state = 'recording' ORDER BY id"
        ))
        .fetch_all(self.pool())
        .await
    }

    /// Finished recordings that ended before `before` and still have files.
    pub async fn expired_recordings(&self, before: i64) -> Result<Vec<RecordingRow>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM recordings
             WHERE state IN ('ready', 'empty') AND ended_at < $1 ORDER BY id"
        ))
        .bind(before)
        .fetch_all(self.pool())
        .await
    }

    /// Lists the files and marks the recording finished, in one transaction.
    pub async fn finish_recording(
        &self,
        id: i64,
        ended_at: i64,
        stopped_by_name: Option<&str>,
        stop_reason: &str,
        files: &[NewFile<'_>],
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.pool().begin().await?;
        for f in files {
            sqlx::query(
                "INSERT INTO recording_files (recording_id, file_name, source, participant_name, offset_ms, duration_ms, size_bytes)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(id)
            .bind(f.file_name)
            .bind(f.source)
            .bind(f.participant_name)
            .bind(f.offset_ms)
            .bind(f.duration_ms)
            .bind(f.size_bytes)
            .execute(&mut *tx)
            .await?;
        }
        let state = if files.is_empty() { "empty" } else { "ready" };
        sqlx::query(
            "UPDATE recordings SET state = $1, ended_at = $2, stopped_by_name = $3, stop_reason = $4
             WHERE id = $5 AND state = 'recording'",
        )
        .bind(state)
        .bind(ended_at)
        .bind(stopped_by_name)
        .bind(stop_reason)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }

    /// Marks a recording deleted once its files are gone; its file rows go with them.
    pub async fn mark_recording_deleted(&self, id: i64) -> Result<(), sqlx::Error> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM recording_files WHERE recording_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE recordings SET state = 'deleted', deleted_at = $1 WHERE id = $2")
            .bind(now_ms())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    pub async fn recording_files(
        &self,
        recording_id: i64,
    ) -> Result<Vec<RecordingFile>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {FILE_COLUMNS} FROM recording_files WHERE recording_id = $1 ORDER BY id"
        ))
        .bind(recording_id)
        .fetch_all(self.pool())
        .await
    }

    pub async fn recording_file(&self, id: i64) -> Result<Option<RecordingFile>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {FILE_COLUMNS} FROM recording_files WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await
    }
}
