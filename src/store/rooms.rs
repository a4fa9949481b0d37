//! Rooms: a class's classroom, tutoring and open-house rooms. A deleted room keeps its row
//! (`deleted_at`) so the logs of its past sessions keep their room; no query here returns it.

use serde::Serialize;
use sqlx::FromRow;

use super::{now_ms, Store};

#[derive(Debug, Clone, FromRow, Serialize, utoipa::ToSchema)]
pub struct Room {
    pub id: i64,
    pub class_id: i64,
    /// `classroom`, `tutoring` or `open_house`.
    pub kind: String,
    pub name: String,
    /// The tutor or teacher assigned to host a tutoring room.
    pub host_user_id: Option<i64>,
    pub created_at: i64,
    /// Every session is recorded from the moment its host arrives (`crate::recording`).
    #[serde(serialize_with = "flag")]
    #[schema(value_type = bool)]
    pub record_sessions: i64,
}

fn flag<S: serde::Serializer>(value: &i64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_bool(*value != 0)
}

const COLUMNS: &str = "id, class_id, kind, name, host_user_id, created_at, record_sessions";

impl Store {
    pub async fn create_room(
        &self,
        class_id: i64,
        kind: &str,
        name: &str,
        host: Option<i64>,
    ) -> Result<Room, sqlx::Error> {
        sqlx::query_as(&format!(
            "INSERT INTO rooms (class_id, kind, name, host_user_id, created_at) VALUES ($1, $2, $3, $4, $5)
             RETURNING {COLUMNS}"
        ))
        .bind(class_id)
        .bind(kind)
        .bind(name)
        .bind(host)
        .bind(now_ms())
        .fetch_one(self.pool())
        .await
    }

    pub async fn set_room_recording(&self, room_id: i64, on: bool) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE rooms SET record_sessions = $1 WHERE id = $2 AND deleted_at IS NULL")
            .bind(on as i64)
            .bind(room_id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn room(&self, id: i64) -> Result<Option<Room>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM rooms WHERE id = $1 AND deleted_at IS NULL"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await
    }

    pub async fn rooms(&self, class_id: i64) -> Result<Vec<Room>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM rooms WHERE class_id = $1 AND deleted_at IS NULL ORDER BY kind, name, id"
        ))
        .bind(class_id)
        .fetch_all(self.pool())
        .await
    }

    /// Replaces the open house's guest code; earlier guest links stop working.
    pub async fn set_guest_code(
        &self,
        room_id: i64,
        code_hash: Option<&str>,
    ) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE rooms SET guest_code_hash = $1 WHERE id = $2")
            .bind(code_hash)
            .bind(room_id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn room_by_guest_code(&self, code_hash: &str) -> Result<Option<Room>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM rooms
             WHERE guest_code_hash = $1 AND kind = 'open_house' AND deleted_at IS NULL"
        ))
        .bind(code_hash)
        .fetch_optional(self.pool())
        .await
    }
}

impl Store {
    /// Renames the room and sets its assigned host (`None`: no assigned host).
    pub async fn update_room(
        &self,
        room_id: i64,
        name: &str,
        host: Option<i64>,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE rooms SET name = $1, host_user_id = $2 WHERE id = $3 AND deleted_at IS NULL",
        )
        .bind(name)
        .bind(host)
        .bind(room_id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Deletes the room for everyone; its guest link stops working and its logs stay.
    pub async fn delete_room(&self, room_id: i64) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE rooms SET deleted_at = $1, guest_code_hash = NULL WHERE id = $2 AND deleted_at IS NULL",
        )
        .bind(now_ms())
        .bind(room_id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

impl Store {
    /// The students a tutoring room is for (empty: anyone the role table lets in).
    pub async fn room_students(&self, room_id: i64) -> Result<Vec<i64>, sqlx::Error> {
        sqlx::query_scalar(
            "SELECT student_id FROM room_students WHERE room_id = $1 ORDER BY student_id",
        )
        .bind(room_id)
        .fetch_all(self.pool())
        .await
    }

    /// Replaces the list of students a tutoring room is for.
    pub async fn set_room_students(
        &self,
        room_id: i64,
        students: &[i64],
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM room_students WHERE room_id = $1")
            .bind(room_id)
            .execute(&mut *tx)
            .await?;
        for student in students {
            sqlx::query(
                "INSERT INTO room_students (room_id, student_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            )
            .bind(room_id)
            .bind(student)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await
    }

    /// Whether the room's list lets the user in: no list, or the user is one of its students
    /// (with a login) or family of one.
    pub async fn on_room_list(&self, room_id: i64, user_id: i64) -> Result<bool, sqlx::Error> {
        let (listed, theirs): (i64, i64) = sqlx::query_as(
            "SELECT COUNT(*),
                    COUNT(CASE WHEN r.student_id IN (SELECT student_id FROM family_students WHERE user_id = $2)
                                 OR r.student_id IN (SELECT id FROM students WHERE user_id = $2)
                               THEN 1 END)
             FROM room_students r WHERE r.room_id = $1",
        )
        .bind(room_id)
        .bind(user_id)
        .fetch_one(self.pool())
        .await?;
        Ok(listed == 0 || theirs > 0)
    }
}
