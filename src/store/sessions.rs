//! Sign-in sessions, stored server-side so signing out (or a password reset) really ends them.

use super::Store;

impl Store {
    /// Ends every session of the user, e.g. after their password changed.
    pub async fn delete_sessions_of(&self, user_id: i64) -> Result<u64, sqlx::Error> {
        let done = sqlx::query("DELETE FROM auth_sessions WHERE user_id = $1")
            .bind(user_id)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected())
    }
}
