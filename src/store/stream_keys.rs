//! Stream keys: revocable bearer tokens with which an encoder (OBS) publishes into a room over
//! WHIP as the teacher who made the key. Only the key's hash is stored.

use serde::Serialize;
use sqlx::FromRow;

use super::{now_ms, Store};

#[derive(Debug, Clone, FromRow, Serialize, utoipa::ToSchema)]
pub struct StreamKey {
    pub id: i64,
    pub room_id: i64,
    pub created_by: Option<i64>,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

const COLUMNS: &str = "id, room_id, created_by, created_at, revoked_at";

impl Store {
    pub async fn create_stream_key(
        &self,
        room_id: i64,
        token_hash: &str,
        created_by: i64,
    ) -> Result<StreamKey, sqlx::Error> {
        sqlx::query_as(&format!(
            "INSERT INTO stream_keys (room_id, token_hash, created_by, created_at) VALUES ($1, $2, $3, $4) RETURNING {COLUMNS}"
        ))
        .bind(room_id)
        .bind(token_hash)
        .bind(created_by)
        .bind(now_ms())
        .fetch_one(self.pool())
        .await
    }

    pub async fn stream_keys(&self, room_id: i64) -> Result<Vec<StreamKey>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM stream_keys WHERE room_id = $1 ORDER BY id DESC"
        ))
        .bind(room_id)
        .fetch_all(self.pool())
        .await
    }

    pub async fn revoke_stream_key(&self, room_id: i64, key_id: i64) -> Result<bool, sqlx::Error> {
        let done = sqlx::query("UPDATE stream_keys SET revoked_at = $1 WHERE id = $2 AND room_id = $3 AND revoked_at IS NULL")
            .bind(now_ms())
            .bind(key_id)
            .bind(room_id)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The live (unrevoked) key with this hash.
    pub async fn stream_key_by_hash(
        &self,
        token_hash: &str,
    ) -> Result<Option<StreamKey>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM stream_keys WHERE token_hash = $1 AND revoked_at IS NULL"
        ))
        .bind(token_hash)
        .fetch_optional(self.pool())
        .await
    }
}
