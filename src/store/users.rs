//! Users: one person, with a login and any number of memberships.

use sqlx::FromRow;

use super::{now_ms, Store};

#[derive(Debug, Clone, FromRow)]
pub struct User {
    pub id: i64,
    pub login: String,
    pub display_name: String,
    pub email: Option<String>,
    pub is_admin: i64,
    pub created_at: i64,
}

impl User {
    pub fn is_admin(&self) -> bool {
        self.is_admin != 0
    }
}

/// What a new account needs; the password arrives already hashed.
pub struct NewUser<'a> {
    pub login: &'a str,
    pub display_name: &'a str,
    pub email: Option<&'a str>,
    pub password_hash: &'a str,
    pub is_admin: bool,
}

const COLUMNS: &str = "id, login, display_name, email, is_admin, created_at";

/// Inserts an account on the given connection (or inside the caller's transaction).
pub(super) async fn insert_user(
    conn: &mut sqlx::AnyConnection,
    new: NewUser<'_>,
) -> Result<User, sqlx::Error> {
    sqlx::query_as::<_, User>(&format!(
        "INSERT INTO users (login, display_name, email, password_hash, is_admin, created_at)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING {COLUMNS}"
    ))
    .bind(new.login)
    .bind(new.display_name)
    .bind(new.email)
    .bind(new.password_hash)
    .bind(new.is_admin as i64)
    .bind(now_ms())
    .fetch_one(conn)
    .await
}

impl Store {
    pub async fn create_user(&self, new: NewUser<'_>) -> Result<User, sqlx::Error> {
        insert_user(&mut *self.pool().acquire().await?, new).await
    }

    pub async fn user_by_id(&self, id: i64) -> Result<Option<User>, sqlx::Error> {
        sqlx::query_as::<_, User>(&format!("SELECT {COLUMNS} FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await
    }

    /// The user and their password hash, for signing in.
    pub async fn user_for_login(&self, login: &str) -> Result<Option<(User, String)>, sqlx::Error> {
        let row = sqlx::query_as::<_, UserWithHash>(&format!(
            "SELECT {COLUMNS}, password_hash FROM users WHERE login = $1"
        ))
        .bind(login)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|r| (r.user, r.password_hash)))
    }

    /// Sets a new password and, in the same transaction, ends every credential the old one
    /// may have leaked with: all sessions but `keep_session` (the one that changed its own
    /// password) and all feed links.
    pub async fn set_password(
        &self,
        user_id: i64,
        hash: &str,
        keep_session: Option<&str>,
    ) -> Result<bool, sqlx::Error> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
            .bind(hash)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        super::sessions::end_sessions_of(&mut tx, user_id, keep_session).await?;
        super::feed_tokens::revoke_all_of(&mut tx, user_id).await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn admin_exists(&self) -> Result<bool, sqlx::Error> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE is_admin = 1")
            .fetch_one(self.pool())
            .await?;
        Ok(count > 0)
    }
}

#[derive(FromRow)]
struct UserWithHash {
    #[sqlx(flatten)]
    user: User,
    password_hash: String,
}

impl Store {
    pub async fn users(&self) -> Result<Vec<User>, sqlx::Error> {
        sqlx::query_as::<_, User>(&format!(
            "SELECT {COLUMNS} FROM users ORDER BY display_name, id"
        ))
        .fetch_all(self.pool())
        .await
    }
}
