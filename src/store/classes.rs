//! Classes, their memberships, and the students (children) in them.

use serde::Serialize;
use sqlx::FromRow;

use super::{now_ms, Store};
use crate::access::Role;

#[derive(Debug, Clone, FromRow, Serialize, utoipa::ToSchema)]
pub struct Class {
    pub id: i64,
    pub name: String,
    pub created_at: i64,
    /// Set while the class is archived: its history stays readable, but it leaves families'
    /// lists, takes no new invites or rooms, and no room of it goes live.
    pub archived_at: Option<i64>,
}

impl Class {
    pub fn is_archived(&self) -> bool {
        self.archived_at.is_some()
    }
}

const CLASS_COLUMNS: &str = "id, name, created_at, archived_at";

#[derive(Debug, Clone, FromRow, Serialize, utoipa::ToSchema)]
pub struct Member {
    pub user_id: i64,
    pub display_name: String,
    pub login: String,
    pub role: String,
    pub joined_at: i64,
}

#[derive(Debug, Clone, FromRow, Serialize, utoipa::ToSchema)]
pub struct Student {
    pub id: i64,
    pub class_id: i64,
    pub name: String,
    pub created_at: i64,
}

/// A class seen by one user: the class and their role in it.
#[derive(Debug, Clone, FromRow, Serialize, utoipa::ToSchema)]
pub struct MyClass {
    pub id: i64,
    pub name: String,
    /// `None` for an admin who is not a member.
    pub role: Option<String>,
    /// Set when archived; only admins and the class's teachers still list it.
    pub archived_at: Option<i64>,
}

/// A family's link to one of its children, for the member list.
#[derive(Debug, Clone, FromRow)]
pub struct FamilyLink {
    pub user_id: i64,
    pub student_id: i64,
    pub name: String,
}

impl Store {
    /// Opens a class and, when one is named, makes its teacher a member in the same
    /// transaction: a class never exists without the teacher who opened it.
    pub async fn create_class(
        &self,
        name: &str,
        teacher: Option<i64>,
    ) -> Result<Class, sqlx::Error> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let class: Class = sqlx::query_as(&format!(
            "INSERT INTO classes (name, created_at) VALUES ($1, $2) RETURNING {CLASS_COLUMNS}"
        ))
        .bind(name)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        if let Some(teacher) = teacher {
            sqlx::query(
                "INSERT INTO memberships (user_id, class_id, role, created_at) VALUES ($1, $2, 'teacher', $3)",
            )
            .bind(teacher)
            .bind(class.id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(class)
    }

    pub async fn class(&self, id: i64) -> Result<Option<Class>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {CLASS_COLUMNS} FROM classes WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await
    }

    pub async fn rename_class(&self, id: i64, name: &str) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE classes SET name = $1 WHERE id = $2")
            .bind(name)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// The user's role in the class, if they are a member.
    pub async fn role_in(&self, user_id: i64, class_id: i64) -> Result<Option<Role>, sqlx::Error> {
        let role: Option<String> =
            sqlx::query_scalar("SELECT role FROM memberships WHERE user_id = $1 AND class_id = $2")
                .bind(user_id)
                .bind(class_id)
                .fetch_optional(self.pool())
                .await?;
        Ok(role.as_deref().and_then(Role::parse))
    }

    /// Every membership of the user as (class id, role), for decisions about their account.
    pub async fn memberships_of(&self, user_id: i64) -> Result<Vec<(i64, Role)>, sqlx::Error> {
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT class_id, role FROM memberships WHERE user_id = $1 ORDER BY class_id",
        )
        .bind(user_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(class, role)| Role::parse(&role).map(|role| (class, role)))
            .collect())
    }

    /// True when the user teaches at least one class; teachers may open new classes.
    pub async fn teaches_any(&self, user_id: i64) -> Result<bool, sqlx::Error> {
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM memberships WHERE user_id = $1 AND role = 'teacher'",
        )
        .bind(user_id)
        .fetch_one(self.pool())
        .await?;
        Ok(count > 0)
    }

    /// Archives the class (or brings it back); true when it exists.
    pub async fn set_archived(&self, id: i64, archived: bool) -> Result<bool, sqlx::Error> {
        let done = sqlx::query("UPDATE classes SET archived_at = $1 WHERE id = $2")
            .bind(archived.then(now_ms))
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Classes that are not archived, for the admin's first-run checklist.
    pub async fn active_class_count(&self) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar("SELECT COUNT(*) FROM classes WHERE archived_at IS NULL")
            .fetch_one(self.pool())
            .await
    }

    /// The classes a user belongs to; admins see every class. Archived classes are listed
    /// only for admins and the class's teachers (families, tutors and students move on).
    pub async fn classes_of(
        &self,
        user_id: i64,
        is_admin: bool,
    ) -> Result<Vec<MyClass>, sqlx::Error> {
        let sql = if is_admin {
            "SELECT c.id, c.name, m.role, c.archived_at FROM classes c
             LEFT JOIN memberships m ON m.class_id = c.id AND m.user_id = $1 ORDER BY c.name, c.id"
        } else {
            "SELECT c.id, c.name, m.role, c.archived_at FROM classes c
             JOIN memberships m ON m.class_id = c.id AND m.user_id = $1
             WHERE c.archived_at IS NULL OR m.role = 'teacher' ORDER BY c.name, c.id"
        };
        sqlx::query_as(sql)
            .bind(user_id)
            .fetch_all(self.pool())
            .await
    }

    /// Adds or changes a membership (one role per person and class).
    pub async fn set_membership(
        &self,
        user_id: i64,
        class_id: i64,
        role: Role,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO memberships (user_id, class_id, role, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (user_id, class_id) DO UPDATE SET role = excluded.role",
        )
        .bind(user_id)
        .bind(class_id)
        .bind(role.as_str())
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn remove_membership(
        &self,
        user_id: i64,
        class_id: i64,
    ) -> Result<bool, sqlx::Error> {
        let done = sqlx::query("DELETE FROM memberships WHERE user_id = $1 AND class_id = $2")
            .bind(user_id)
            .bind(class_id)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn members(&self, class_id: i64) -> Result<Vec<Member>, sqlx::Error> {
        sqlx::query_as(
            "SELECT u.id AS user_id, u.display_name, u.login, m.role, m.created_at AS joined_at
             FROM memberships m JOIN users u ON u.id = m.user_id
             WHERE m.class_id = $1 ORDER BY m.role, u.display_name",
        )
        .bind(class_id)
        .fetch_all(self.pool())
        .await
    }

    pub async fn create_student(&self, class_id: i64, name: &str) -> Result<Student, sqlx::Error> {
        sqlx::query_as(
            "INSERT INTO students (class_id, name, created_at) VALUES ($1, $2, $3)
             RETURNING id, class_id, name, created_at",
        )
        .bind(class_id)
        .bind(name)
        .bind(now_ms())
        .fetch_one(self.pool())
        .await
    }

    pub async fn students(&self, class_id: i64) -> Result<Vec<Student>, sqlx::Error> {
        sqlx::query_as("SELECT id, class_id, name, created_at FROM students WHERE class_id = $1 ORDER BY name, id")
            .bind(class_id)
            .fetch_all(self.pool())
            .await
    }

    pub async fn student(
        &self,
        class_id: i64,
        student_id: i64,
    ) -> Result<Option<Student>, sqlx::Error> {
        sqlx::query_as(
            "SELECT id, class_id, name, created_at FROM students WHERE class_id = $1 AND id = $2",
        )
        .bind(class_id)
        .bind(student_id)
        .fetch_optional(self.pool())
        .await
    }

    pub async fn rename_student(
        &self,
        class_id: i64,
        student_id: i64,
        name: &str,
    ) -> Result<bool, sqlx::Error> {
        let done = sqlx::query("UPDATE students SET name = $1 WHERE id = $2 AND class_id = $3")
            .bind(name)
            .bind(student_id)
            .bind(class_id)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Removes a student: their family links and the invites made for them go too; their
    /// families stay members (they may have other children in the class).
    pub async fn remove_student(
        &self,
        class_id: i64,
        student_id: i64,
    ) -> Result<bool, sqlx::Error> {
        let done = sqlx::query("DELETE FROM students WHERE id = $1 AND class_id = $2")
            .bind(student_id)
            .bind(class_id)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Which students each family of the class belongs to.
    pub async fn family_links(&self, class_id: i64) -> Result<Vec<FamilyLink>, sqlx::Error> {
        sqlx::query_as(
            "SELECT f.user_id, s.id AS student_id, s.name FROM family_students f
             JOIN students s ON s.id = f.student_id WHERE s.class_id = $1 ORDER BY s.name, s.id",
        )
        .bind(class_id)
        .fetch_all(self.pool())
        .await
    }

    /// The students of this class that the user is family of.
    pub async fn children_of(
        &self,
        user_id: i64,
        class_id: i64,
    ) -> Result<Vec<Student>, sqlx::Error> {
        sqlx::query_as(
            "SELECT s.id, s.class_id, s.name, s.created_at FROM students s
             JOIN family_students f ON f.student_id = s.id
             WHERE f.user_id = $1 AND s.class_id = $2 ORDER BY s.name",
        )
        .bind(user_id)
        .bind(class_id)
        .fetch_all(self.pool())
        .await
    }
}
