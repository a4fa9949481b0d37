//! Forgetting what expired: sign-in sessions, set-up and password-reset links, revoked feed
//! links, and invites expired or revoked a while ago (a teacher still sees recent ones in the
//! invite list, with who used them). A periodic job calls this (see `server`).

use super::Store;

/// Invites stay listed this long after they expired or were revoked.
pub const INVITE_RETENTION_MS: i64 = 30 * 24 * 3600 * 1000;

impl Store {
    /// Deletes everything that expired before `now`; answers how many rows went.
    pub async fn purge_expired(&self, now: i64) -> Result<u64, sqlx::Error> {
        let mut tx = self.begin_write().await?;
        let mut purged = 0;
        for (sql, cutoff) in [
            ("DELETE FROM auth_sessions WHERE expires_at < $1", now),
            ("DELETE FROM setup_tokens WHERE expires_at < $1", now),
            ("DELETE FROM password_resets WHERE expires_at < $1", now),
            (
                "DELETE FROM feed_tokens WHERE revoked_at IS NOT NULL AND revoked_at < $1",
                now,
            ),
            (
                "DELETE FROM invites WHERE expires_at < $1 OR (revoked_at IS NOT NULL AND revoked_at < $1)",
                now - INVITE_RETENTION_MS,
            ),
        ] {
            purged += sqlx::query(sql)
                .bind(cutoff)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        tx.commit().await?;
        Ok(purged)
    }
}
