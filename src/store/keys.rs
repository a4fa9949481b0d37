//! Secrets the whole deployment shares, kept in the database: made once by whichever node
//! starts first, then read by every start, so a restart (or another node) honours what was
//! signed before.

use super::{now_ms, Store};

impl Store {
    /// The secret named `name`, made from `fresh` when there is none yet. Two nodes starting
    /// at once agree: the first insert wins and both read it back.
    pub async fn shared_secret(&self, name: &str, fresh: &str) -> Result<String, sqlx::Error> {
        sqlx::query(
            "INSERT INTO server_keys (name, secret, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(name)
        .bind(fresh)
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        sqlx::query_scalar("SELECT secret FROM server_keys WHERE name = $1")
            .bind(name)
            .fetch_one(self.pool())
            .await
    }
}
