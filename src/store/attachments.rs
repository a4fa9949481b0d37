//! Attachments: files of student work, stored once by content hash in the data directory and
//! linked to the post that shows them (in the same transaction as the post, see
//! `Store::create_post`).

use serde::Serialize;
use sqlx::FromRow;

use super::{now_ms, Store};

#[derive(Debug, Clone, FromRow, Serialize, utoipa::ToSchema)]
pub struct Attachment {
    pub id: i64,
    pub class_id: i64,
    pub post_id: Option<i64>,
    pub uploader_id: Option<i64>,
    #[serde(skip)]
    pub sha256: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub file_name: String,
    /// A small PNG of an image, at /api/v1/attachments/{id}/thumbnail; only whether there is one
    /// is sent.
    #[serde(rename = "has_thumbnail", serialize_with = "present")]
    #[schema(value_type = bool)]
    pub thumbnail_sha256: Option<String>,
    pub created_at: i64,
}

fn present<S: serde::Serializer>(value: &Option<String>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_bool(value.is_some())
}

pub struct NewAttachment<'a> {
    pub class_id: i64,
    pub uploader_id: i64,
    pub sha256: &'a str,
    pub content_type: &'a str,
    pub size_bytes: i64,
    pub file_name: &'a str,
    pub thumbnail_sha256: Option<&'a str>,
}

pub(super) const COLUMNS: &str =
    "id, class_id, post_id, uploader_id, sha256, content_type, size_bytes, file_name, thumbnail_sha256, created_at";

impl Store {
    pub async fn create_attachment(
        &self,
        new: NewAttachment<'_>,
    ) -> Result<Attachment, sqlx::Error> {
        sqlx::query_as(&format!(
            "INSERT INTO attachments (class_id, uploader_id, sha256, content_type, size_bytes, file_name, thumbnail_sha256, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {COLUMNS}"
        ))
        .bind(new.class_id)
        .bind(new.uploader_id)
        .bind(new.sha256)
        .bind(new.content_type)
        .bind(new.size_bytes)
        .bind(new.file_name)
        .bind(new.thumbnail_sha256)
        .bind(now_ms())
        .fetch_one(self.pool())
        .await
    }

    pub async fn attachment(&self, id: i64) -> Result<Option<Attachment>, sqlx::Error> {
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM attachments WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await
    }

    /// Which of `ids` are attachments of this class (for images a post may show inline).
    pub async fn class_attachment_ids(
        &self,
        class_id: i64,
        ids: &[i64],
    ) -> Result<Vec<i64>, sqlx::Error> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT id FROM attachments WHERE class_id = $1 AND id IN ({})",
            super::placeholders(2, ids.len())
        );
        let mut query = sqlx::query_scalar(&sql).bind(class_id);
        for id in ids {
            query = query.bind(*id);
        }
        query.fetch_all(self.pool()).await
    }
}
