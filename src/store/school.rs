//! The school itself: its name, the one setting an install has (one school per install).

use super::{now_ms, Store};

impl Store {
    /// The school's name, once an admin has set it.
    pub async fn school_name(&self) -> Result<Option<String>, sqlx::Error> {
        sqlx::query_scalar("SELECT name FROM school WHERE id = 1")
            .fetch_optional(self.pool())
            .await
    }

    pub async fn set_school_name(&self, name: &str) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO school (id, name, updated_at) VALUES (1, $1, $2)
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, updated_at = excluded.updated_at",
        )
        .bind(name)
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        Ok(())
    }
}
