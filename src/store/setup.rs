//! One-time set-up links: the way the first admin gets in on a fresh install.

use super::{now_ms, Store};

/// How long a printed set-up link stays usable.
pub const SETUP_TOKEN_TTL_MS: i64 = 24 * 60 * 60 * 1000;

impl Store {
    /// Stores a new set-up token's hash. Earlier unused links stay valid until they expire, so
    /// a restart does not break a link someone already copied.
    pub async fn create_setup_token(&self, token_hash: &str) -> Result<(), sqlx::Error> {
        sqlx::query("INSERT INTO setup_tokens (token_hash, expires_at) VALUES ($1, $2)")
            .bind(token_hash)
            .bind(now_ms() + SETUP_TOKEN_TTL_MS)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Marks the token used; true only for the one caller that used a valid, unused token.
    pub async fn consume_setup_token(&self, token_hash: &str) -> Result<bool, sqlx::Error> {
        let now = now_ms();
        let done = sqlx::query(
            "UPDATE setup_tokens SET used_at = $1
             WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $3",
        )
        .bind(now)
        .bind(token_hash)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
