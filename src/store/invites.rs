//! Invites: the only way in for families, tutors and students. The code is the secret; only
//! its hash is stored, so it is shown once, when the invite is made.

use serde::Serialize;
use sqlx::FromRow;

use super::users::User;
use super::{now_ms, Store};
use crate::access::Role;

#[derive(Debug, Clone, FromRow, Serialize, utoipa::ToSchema)]
pub struct Invite {
    pub id: i64,
    pub class_id: i64,
    pub role: String,
    pub student_id: Option<i64>,
    pub created_at: i64,
    pub expires_at: i64,
    pub max_uses: i64,
    pub uses: i64,
    pub revoked_at: Option<i64>,
    /// Every student the invite is for (`student_id` first; siblings after it).
    #[sqlx(skip)]
    pub student_ids: Vec<i64>,
}

/// Why an invite cannot be used; each has its own error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InviteProblem {
    Unknown,
    Revoked,
    Expired,
    UsedUp,
}

impl Invite {
    pub fn problem(&self, now: i64) -> Option<InviteProblem> {
        if self.revoked_at.is_some() {
            Some(InviteProblem::Revoked)
        } else if self.expires_at <= now {
            Some(InviteProblem::Expired)
        } else if self.uses >= self.max_uses {
            Some(InviteProblem::UsedUp)
        } else {
            None
        }
    }
}

#[derive(Debug, Clone, FromRow, Serialize, utoipa::ToSchema)]
pub struct InviteUse {
    pub invite_id: i64,
    pub user_id: i64,
    pub display_name: String,
    pub used_at: i64,
}

pub struct NewInvite<'a> {
    pub class_id: i64,
    pub role: Role,
    pub student_id: Option<i64>,
    /// Further students of a family invite (siblings), beyond `student_id`.
    pub more_students: &'a [i64],
    pub code_hash: &'a str,
    pub created_by: i64,
    pub expires_at: i64,
    pub max_uses: i64,
}

/// Who accepts: someone signed in already, or a new account.
pub enum Joiner<'a> {
    Existing(i64),
    New {
        login: &'a str,
        display_name: &'a str,
        email: Option<&'a str>,
        password_hash: &'a str,
    },
}

#[derive(Debug)]
pub enum AcceptError {
    Invite(InviteProblem),
    LoginTaken,
    Database(sqlx::Error),
}

impl From<sqlx::Error> for AcceptError {
    fn from(e: sqlx::Error) -> Self {
        AcceptError::Database(e)
    }
}

const COLUMNS: &str =
    "id, class_id, role, student_id, created_at, expires_at, max_uses, uses, revoked_at";

impl Store {
    pub async fn create_invite(&self, new: NewInvite<'_>) -> Result<Invite, sqlx::Error> {
        let mut tx = self.pool().begin().await?;
        let mut invite: Invite = sqlx::query_as(&format!(
            "INSERT INTO invites (class_id, role, student_id, code_hash, created_by, created_at, expires_at, max_uses)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {COLUMNS}"
        ))
        .bind(new.class_id)
        .bind(new.role.as_str())
        .bind(new.student_id)
        .bind(new.code_hash)
        .bind(new.created_by)
        .bind(now_ms())
        .bind(new.expires_at)
        .bind(new.max_uses)
        .fetch_one(&mut *tx)
        .await?;
        for student in new.more_students {
            sqlx::query("INSERT INTO invite_students (invite_id, student_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(invite.id)
                .bind(student)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        invite.student_ids = new.student_id.into_iter().collect();
        for student in new.more_students {
            if !invite.student_ids.contains(student) {
                invite.student_ids.push(*student);
            }
        }
        Ok(invite)
    }

    /// Fills in `student_ids` of invites of one class.
    async fn with_students(
        &self,
        class_id: i64,
        invites: &mut [Invite],
    ) -> Result<(), sqlx::Error> {
        let more: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT x.invite_id, x.student_id FROM invite_students x JOIN invites i ON i.id = x.invite_id
             WHERE i.class_id = $1 ORDER BY x.student_id",
        )
        .bind(class_id)
        .fetch_all(self.pool())
        .await?;
        for invite in invites {
            invite.student_ids = invite.student_id.into_iter().collect();
            for (_, student) in more.iter().filter(|(id, _)| *id == invite.id) {
                if !invite.student_ids.contains(student) {
                    invite.student_ids.push(*student);
                }
            }
        }
        Ok(())
    }

    /// The names of every student an invite is for, for the join page.
    pub async fn invite_student_names(&self, invite: &Invite) -> Result<Vec<String>, sqlx::Error> {
        sqlx::query_scalar(
            "SELECT name FROM students WHERE id = $1
             UNION ALL SELECT s.name FROM invite_students x JOIN students s ON s.id = x.student_id
             WHERE x.invite_id = $2 AND s.id <> $1",
        )
        .bind(invite.student_id.unwrap_or(-1))
        .bind(invite.id)
        .fetch_all(self.pool())
        .await
    }

    pub async fn invites(&self, class_id: i64) -> Result<Vec<Invite>, sqlx::Error> {
        let mut invites: Vec<Invite> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM invites WHERE class_id = $1 ORDER BY created_at DESC, id DESC"
        ))
        .bind(class_id)
        .fetch_all(self.pool())
        .await?;
        self.with_students(class_id, &mut invites).await?;
        Ok(invites)
    }

    pub async fn invite_uses(&self, class_id: i64) -> Result<Vec<InviteUse>, sqlx::Error> {
        sqlx::query_as(
            "SELECT iu.invite_id, iu.user_id, u.display_name, iu.used_at
             FROM invite_uses iu JOIN invites i ON i.id = iu.invite_id JOIN users u ON u.id = iu.user_id
             WHERE i.class_id = $1 ORDER BY iu.used_at",
        )
        .bind(class_id)
        .fetch_all(self.pool())
        .await
    }

    pub async fn revoke_invite(&self, class_id: i64, invite_id: i64) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE invites SET revoked_at = $1 WHERE id = $2 AND class_id = $3 AND revoked_at IS NULL",
        )
        .bind(now_ms())
        .bind(invite_id)
        .bind(class_id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn invite_by_code(&self, code_hash: &str) -> Result<Option<Invite>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM invites WHERE code_hash = $1"
        ))
        .bind(code_hash)
        .fetch_optional(self.pool())
        .await
    }

    /// Uses the invite in one transaction: takes a use (guarded against races), creates the
    /// account if needed, adds the membership and the family-student link, records the use.
    /// A signed-in member who accepts keeps their role and gains the student link.
    pub async fn accept_invite(
        &self,
        code_hash: &str,
        joiner: Joiner<'_>,
    ) -> Result<(User, Invite), AcceptError> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let invite: Option<Invite> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM invites WHERE code_hash = $1"
        ))
        .bind(code_hash)
        .fetch_optional(&mut *tx)
        .await?;
        let invite = invite.ok_or(AcceptError::Invite(InviteProblem::Unknown))?;
        if let Some(problem) = invite.problem(now) {
            return Err(AcceptError::Invite(problem));
        }
        let taken = sqlx::query(
            "UPDATE invites SET uses = uses + 1
             WHERE id = $1 AND uses < max_uses AND revoked_at IS NULL AND expires_at > $2",
        )
        .bind(invite.id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if taken.rows_affected() != 1 {
            return Err(AcceptError::Invite(InviteProblem::UsedUp));
        }
        let user_columns = super::users::USER_COLUMNS;
        let user: User = match joiner {
            Joiner::Existing(id) => {
                sqlx::query_as(&format!("SELECT {user_columns} FROM users WHERE id = $1"))
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await?
            }
            Joiner::New {
                login,
                display_name,
                email,
                password_hash,
            } => {
                let created = sqlx::query_as(&format!(
                    "INSERT INTO users (login, display_name, email, password_hash, is_admin, created_at)
                     VALUES ($1, $2, $3, $4, 0, $5) RETURNING {user_columns}"
                ))
                .bind(login)
                .bind(display_name)
                .bind(email)
                .bind(password_hash)
                .bind(now)
                .fetch_one(&mut *tx)
                .await;
                match created {
                    Ok(user) => user,
                    Err(e) if super::is_unique_violation(&e) => {
                        return Err(AcceptError::LoginTaken)
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        };
        sqlx::query(
            "INSERT INTO memberships (user_id, class_id, role, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (user_id, class_id) DO NOTHING",
        )
        .bind(user.id)
        .bind(invite.class_id)
        .bind(&invite.role)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if let Some(student_id) = invite.student_id {
            let link = match invite.role.as_str() {
                "student" => "UPDATE students SET user_id = $1 WHERE id = $2",
                _ => "INSERT INTO family_students (user_id, student_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            };
            sqlx::query(link)
                .bind(user.id)
                .bind(student_id)
                .execute(&mut *tx)
                .await?;
            if invite.role == "family" {
                sqlx::query(
                    "INSERT INTO family_students (user_id, student_id)
                     SELECT $1, student_id FROM invite_students WHERE invite_id = $2
                     ON CONFLICT DO NOTHING",
                )
                .bind(user.id)
                .bind(invite.id)
                .execute(&mut *tx)
                .await?;
            }
        }
        sqlx::query("INSERT INTO invite_uses (invite_id, user_id, used_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
            .bind(invite.id)
            .bind(user.id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok((user, invite))
    }
}
