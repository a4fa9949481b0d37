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
    /// Set when an admin deactivated the account: it keeps its history but cannot sign in,
    /// enter a room or read a feed.
    pub deactivated_at: Option<i64>,
    /// What an admin made the account for (`teacher` or `tutor`), so the set-up pages can
    /// offer teachers for classes and tutors for rooms before they are in any class.
    pub staff_role: Option<String>,
}

impl User {
    pub fn is_admin(&self) -> bool {
        self.is_admin != 0
    }

    pub fn is_active(&self) -> bool {
        self.deactivated_at.is_none()
    }
}

/// The columns of [`User`], for every query that reads one (other files join on them).
pub const USER_COLUMNS: &str =
    "id, login, display_name, email, is_admin, created_at, deactivated_at, staff_role";

/// What a new account needs; the password arrives already hashed.
pub struct NewUser<'a> {
    pub login: &'a str,
    pub display_name: &'a str,
    pub email: Option<&'a str>,
    pub password_hash: &'a str,
    pub is_admin: bool,
    /// `teacher` or `tutor` for accounts an admin makes for staff.
    pub staff_role: Option<&'a str>,
}

const COLUMNS: &str = USER_COLUMNS;

/// Inserts an account on the given connection (or inside the caller's transaction).
pub(super) async fn insert_user(
    conn: &mut sqlx::AnyConnection,
    new: NewUser<'_>,
) -> Result<User, sqlx::Error> {
    sqlx::query_as::<_, User>(&format!(
        "INSERT INTO users (login, display_name, email, password_hash, is_admin, created_at, staff_role)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
    ))
    .bind(new.login)
    .bind(new.display_name)
    .bind(new.email)
    .bind(new.password_hash)
    .bind(new.is_admin as i64)
    .bind(now_ms())
    .bind(new.staff_role)
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
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM users WHERE is_admin = 1 AND deactivated_at IS NULL",
        )
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

impl Store {
    /// Deactivates (or reactivates) the account; true when it exists. Deactivating also ends
    /// every session, so the person is signed out everywhere at once.
    pub async fn set_deactivated(
        &self,
        user_id: i64,
        deactivated: bool,
    ) -> Result<bool, sqlx::Error> {
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query("UPDATE users SET deactivated_at = $1 WHERE id = $2")
            .bind(deactivated.then(now_ms))
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        if deactivated {
            sqlx::query("DELETE FROM auth_sessions WHERE user_id = $1")
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// Active accounts that may teach: made as teachers, or teaching a class now.
    pub async fn teacher_count(&self) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM users WHERE deactivated_at IS NULL AND (staff_role = 'teacher'
             OR id IN (SELECT user_id FROM memberships WHERE role = 'teacher'))",
        )
        .fetch_one(self.pool())
        .await
    }
}
