//! Sign-in sessions, stored server-side so signing out (or a password reset) really ends them.
//! The cookie holds a random secret; only its hash is stored.

use super::users::User;
use super::{now_ms, Store};

/// How long a sign-in lasts. Families sign in on a phone once and stay in for the term.
pub const SESSION_TTL_MS: i64 = 30 * 24 * 60 * 60 * 1000;

impl Store {
    pub async fn create_session(
        &self,
        token_hash: &str,
        user_id: i64,
        csrf: &str,
    ) -> Result<(), sqlx::Error> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO auth_sessions (token_hash, user_id, csrf_token, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(token_hash)
        .bind(user_id)
        .bind(csrf)
        .bind(now)
        .bind(now + SESSION_TTL_MS)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The signed-in user and the session's CSRF token, if the session is valid (and the account
    /// is not deactivated).
    pub async fn session_user(
        &self,
        token_hash: &str,
    ) -> Result<Option<(User, String)>, sqlx::Error> {
        let row: Option<SessionRow> = sqlx::query_as(
            "SELECT u.id, u.login, u.display_name, u.email, u.is_admin, u.created_at,
                    u.deactivated_at, u.staff_role, s.csrf_token
             FROM auth_sessions s JOIN users u ON u.id = s.user_id
             WHERE s.token_hash = $1 AND s.expires_at > $2 AND u.deactivated_at IS NULL",
        )
        .bind(token_hash)
        .bind(now_ms())
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|r| (r.user, r.csrf_token)))
    }

    pub async fn delete_session(&self, token_hash: &str) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM auth_sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}

#[derive(sqlx::FromRow)]
struct SessionRow {
    #[sqlx(flatten)]
    user: User,
    csrf_token: String,
}

/// Signs the user out everywhere but `keep` (the session that changed its own password),
/// inside the caller's transaction.
pub(super) async fn end_sessions_of(
    conn: &mut sqlx::AnyConnection,
    user_id: i64,
    keep: Option<&str>,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("DELETE FROM auth_sessions WHERE user_id = $1 AND token_hash <> $2")
        .bind(user_id)
        // No session's hash is empty, so `None` ends them all.
        .bind(keep.unwrap_or(""))
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
}
