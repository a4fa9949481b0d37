//! One-time set-up links: the way the first admin gets in on a fresh install, and only then.

use super::users::{NewUser, User};
use super::{now_ms, Backend, Store};

/// How long a printed set-up link stays usable.
pub const SETUP_TOKEN_TTL_MS: i64 = 24 * 60 * 60 * 1000;

impl Store {
    /// Stores a new set-up token's hash. Earlier unused links stay valid until they expire (or
    /// an admin exists), so a restart does not break a link someone already copied.
    pub async fn create_setup_token(&self, token_hash: &str) -> Result<(), sqlx::Error> {
        sqlx::query("INSERT INTO setup_tokens (token_hash, expires_at) VALUES ($1, $2)")
            .bind(token_hash)
            .bind(now_ms() + SETUP_TOKEN_TTL_MS)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Uses a set-up token and creates the first admin, in one transaction that no other
    /// set-up can interleave with: `None` when the token is unknown, used or expired, or when
    /// any admin exists already (a link printed at an earlier start must not make a second
    /// one). Every other unused set-up link dies with it.
    pub async fn create_first_admin(
        &self,
        token_hash: &str,
        new: NewUser<'_>,
    ) -> Result<Option<User>, sqlx::Error> {
        let now = now_ms();
        // SQLite: `begin_write` holds the write lock from the start. PostgreSQL: this lock
        // mode conflicts with itself, so two set-ups (with two different links) run one after
        // the other and the second sees the first one's admin.
        let mut tx = self.begin_write().await?;
        if self.backend() == Backend::Postgres {
            sqlx::query("LOCK TABLE setup_tokens IN SHARE ROW EXCLUSIVE MODE")
                .execute(&mut *tx)
                .await?;
        }
        let admins: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE is_admin = 1")
            .fetch_one(&mut *tx)
            .await?;
        if admins > 0 {
            return Ok(None);
        }
        let used = sqlx::query(
            "UPDATE setup_tokens SET used_at = $1
             WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $3",
        )
        .bind(now)
        .bind(token_hash)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if used.rows_affected() != 1 {
            return Ok(None);
        }
        sqlx::query("UPDATE setup_tokens SET used_at = $1 WHERE used_at IS NULL")
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let user = super::users::insert_user(&mut tx, new).await?;
        tx.commit().await?;
        Ok(Some(user))
    }
}
