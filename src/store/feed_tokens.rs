//! Private feed tokens: one live token per person and class, so a family can follow the class
//! in a feed reader; making a new one (or revoking) ends the old. Only hashes are stored.
//! A feed link is a credential: when the account's password changes or is reset (say after
//! a compromise), all its feed links end with its sessions ([`revoke_all_of`]).

use sqlx::AnyConnection;

use super::{now_ms, Store};

/// Revokes every live feed token of the user, inside the caller's transaction.
pub(super) async fn revoke_all_of(
    conn: &mut AnyConnection,
    user_id: i64,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE feed_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
    )
    .bind(now_ms())
    .bind(user_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

impl Store {
    /// Replaces the person's feed token for the class.
    pub async fn replace_feed_token(
        &self,
        user_id: i64,
        class_id: i64,
        token_hash: &str,
    ) -> Result<(), sqlx::Error> {
        let now = now_ms();
        let mut tx = self.pool().begin().await?;
        sqlx::query("UPDATE feed_tokens SET revoked_at = $1 WHERE user_id = $2 AND class_id = $3 AND revoked_at IS NULL")
            .bind(now)
            .bind(user_id)
            .bind(class_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO feed_tokens (token_hash, user_id, class_id, created_at) VALUES ($1, $2, $3, $4)")
            .bind(token_hash)
            .bind(user_id)
            .bind(class_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    pub async fn revoke_feed_tokens(
        &self,
        user_id: i64,
        class_id: i64,
    ) -> Result<u64, sqlx::Error> {
        let done = sqlx::query("UPDATE feed_tokens SET revoked_at = $1 WHERE user_id = $2 AND class_id = $3 AND revoked_at IS NULL")
            .bind(now_ms())
            .bind(user_id)
            .bind(class_id)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected())
    }

    /// The person and class of a live token.
    pub async fn feed_token(&self, token_hash: &str) -> Result<Option<(i64, i64)>, sqlx::Error> {
        sqlx::query_as("SELECT user_id, class_id FROM feed_tokens WHERE token_hash = $1 AND revoked_at IS NULL")
            .bind(token_hash)
            .fetch_optional(self.pool())
            .await
    }
}
