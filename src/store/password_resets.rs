//! Password-reset links that a teacher or admin makes; no mail server is needed.

use super::{now_ms, Store};

pub const RESET_TTL_MS: i64 = 72 * 60 * 60 * 1000;

impl Store {
    pub async fn create_password_reset(
        &self,
        token_hash: &str,
        user_id: i64,
        created_by: i64,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO password_resets (token_hash, user_id, created_by, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(token_hash)
        .bind(user_id)
        .bind(created_by)
        .bind(now_ms() + RESET_TTL_MS)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Uses the link up and returns whose password it resets; `None` for an unknown, used or
    /// expired link.
    pub async fn consume_password_reset(
        &self,
        token_hash: &str,
    ) -> Result<Option<i64>, sqlx::Error> {
        let now = now_ms();
        sqlx::query_scalar(
            "UPDATE password_resets SET used_at = $1
             WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1
             RETURNING user_id",
        )
        .bind(now)
        .bind(token_hash)
        .fetch_optional(self.pool())
        .await
    }
}

impl Store {
    /// Whose password an unused, unexpired link resets, and who made it (to email it).
    pub async fn open_password_reset(
        &self,
        token_hash: &str,
    ) -> Result<Option<(i64, Option<i64>)>, sqlx::Error> {
        sqlx::query_as(
            "SELECT user_id, created_by FROM password_resets
             WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2",
        )
        .bind(token_hash)
        .bind(now_ms())
        .fetch_optional(self.pool())
        .await
    }
}
