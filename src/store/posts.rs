//! Class updates (posts): Markdown bodies about student work, the students they feature, the
//! learning targets they address, their review state, comments and who has seen them.
//!
//! Every content edit bumps the post's `revision`; approval names the revision the teacher
//! read, so an edit made after that reading is never published by it.

use serde::{Deserialize, Serialize};
use sqlx::FromRow;

use super::{now_ms, Store};

#[derive(Debug, Clone, FromRow, Serialize, utoipa::ToSchema)]
pub struct Post {
    pub id: i64,
    pub class_id: i64,
    pub author_id: Option<i64>,
    pub author_name: Option<String>,
    /// The Markdown as written.
    pub body: String,
    /// The body rendered and sanitized (when it was written or last edited).
    pub html: String,
    /// `class` or `students`.
    pub visibility: String,
    /// `draft`, `pending`, `returned` or `published`.
    pub state: String,
    /// The teacher's note when a student's draft was returned.
    pub review_note: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub published_at: Option<i64>,
    /// Counts content edits; approving names the revision the teacher read.
    pub revision: i64,
}

#[derive(Debug, Clone, FromRow, Serialize, utoipa::ToSchema)]
pub struct Comment {
    pub id: i64,
    pub post_id: i64,
    pub author_id: Option<i64>,
    pub author_name: Option<String>,
    pub body: String,
    pub created_at: i64,
}

/// A post as written, before it is stored.
pub struct NewPost<'a> {
    pub class_id: i64,
    pub author_id: i64,
    pub body: &'a str,
    /// `body` rendered and sanitized.
    pub html: &'a str,
    pub visibility: &'a str,
    pub state: &'a str,
    pub student_ids: &'a [i64],
    pub targets: &'a [String],
    /// The author's own unused uploads in this class, linked in the same transaction.
    pub attachment_ids: &'a [i64],
}

/// Why a post could not be written or moved on.
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    /// An attachment id that is not the author's unused upload in this class; nothing was
    /// stored or linked.
    #[error("an attachment is not the author's unused upload in this class")]
    UnknownAttachment,
    /// The post is not in a state that allows the change.
    #[error("the post is not in a state that allows this")]
    WrongState,
    /// The post was edited after the revision the caller named.
    #[error("the post changed since that revision")]
    Changed,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Links a post to its students and learning targets (made on first use).
async fn link(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    id: i64,
    class_id: i64,
    student_ids: &[i64],
    targets: &[String],
) -> Result<(), sqlx::Error> {
    for student in student_ids {
        sqlx::query("INSERT INTO post_students (post_id, student_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(id)
            .bind(student)
            .execute(&mut **tx)
            .await?;
    }
    for target in targets {
        sqlx::query(
            "INSERT INTO learning_targets (class_id, name) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(class_id)
        .bind(target)
        .execute(&mut **tx)
        .await?;
        sqlx::query(
            "INSERT INTO post_targets (post_id, target_id)
             SELECT $1, id FROM learning_targets WHERE class_id = $2 AND name = $3 ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(class_id)
        .bind(target)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

pub(super) const COLUMNS: &str =
    "p.id, p.class_id, p.author_id, u.display_name AS author_name, p.body, COALESCE(p.html, '') AS html, p.visibility, p.state,
     p.review_note, p.created_at, p.updated_at, p.published_at, p.revision";

/// A SQL list of post states, e.g. `'draft', 'returned'` (the states are constants of the code).
fn state_list(states: &[&str]) -> String {
    debug_assert!(states
        .iter()
        .all(|s| s.chars().all(|c| c.is_ascii_lowercase())));
    states
        .iter()
        .map(|s| format!("'{s}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Store {
    /// Stores the post with its students, learning targets (made on first use) and attachments
    /// in one transaction: when one attachment is not the author's unused upload in this class,
    /// nothing is stored and every upload stays free to attach to a corrected post.
    pub async fn create_post(&self, new: NewPost<'_>) -> Result<i64, PostError> {
        let now = now_ms();
        let published_at = (new.state == "published").then_some(now);
        let mut tx = self.pool().begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO posts (class_id, author_id, body, html, visibility, state, created_at, updated_at, published_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8) RETURNING id",
        )
        .bind(new.class_id)
        .bind(new.author_id)
        .bind(new.body)
        .bind(new.html)
        .bind(new.visibility)
        .bind(new.state)
        .bind(now)
        .bind(published_at)
        .fetch_one(&mut *tx)
        .await?;
        link(&mut tx, id, new.class_id, new.student_ids, new.targets).await?;
        let mut ids = new.attachment_ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        for attachment in ids {
            // The row lock taken here makes a second post claiming the same upload wait, then
            // find it used.
            let done = sqlx::query(
                "UPDATE attachments SET post_id = $1
                 WHERE id = $2 AND class_id = $3 AND uploader_id = $4 AND post_id IS NULL",
            )
            .bind(id)
            .bind(attachment)
            .bind(new.class_id)
            .bind(new.author_id)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() != 1 {
                tx.rollback().await?;
                return Err(PostError::UnknownAttachment);
            }
        }
        tx.commit().await?;
        Ok(id)
    }

    /// Replaces a post's body, audience, students and learning targets and bumps its
    /// revision, if the post is in one of `editable_in` (checked in the same statement, so a
    /// hand-in racing the edit cannot slip between check and write).
    #[allow(clippy::too_many_arguments)]
    pub async fn update_post(
        &self,
        id: i64,
        class_id: i64,
        editable_in: &[&str],
        body: &str,
        html: &str,
        visibility: &str,
        student_ids: &[i64],
        targets: &[String],
    ) -> Result<(), PostError> {
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query(&format!(
            "UPDATE posts SET body = $1, html = $2, visibility = $3, updated_at = $4, revision = revision + 1
             WHERE id = $5 AND state IN ({})",
            state_list(editable_in)
        ))
        .bind(body)
        .bind(html)
        .bind(visibility)
        .bind(now_ms())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            tx.rollback().await?;
            return Err(PostError::WrongState);
        }
        sqlx::query("DELETE FROM post_students WHERE post_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM post_targets WHERE post_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        link(&mut tx, id, class_id, student_ids, targets).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn post(&self, id: i64) -> Result<Option<Post>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM posts p LEFT JOIN users u ON u.id = p.author_id WHERE p.id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await
    }

    /// Whether the user is family of, or is, a student the post features.
    pub async fn featured_for(&self, post_id: i64, user_id: i64) -> Result<bool, sqlx::Error> {
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM post_students ps JOIN students s ON s.id = ps.student_id
             WHERE ps.post_id = $1 AND (s.user_id = $2
                OR EXISTS (SELECT 1 FROM family_students f WHERE f.student_id = s.id AND f.user_id = $2))",
        )
        .bind(post_id)
        .bind(user_id)
        .fetch_one(self.pool())
        .await?;
        Ok(count > 0)
    }

    /// Moves a post between review states; false when it was not in one of `from`.
    pub async fn set_post_state(
        &self,
        id: i64,
        from: &[&str],
        to: &str,
        note: Option<&str>,
    ) -> Result<bool, sqlx::Error> {
        let now = now_ms();
        let done = sqlx::query(&format!(
            "UPDATE posts SET state = $1, review_note = $2, updated_at = $3,
                 published_at = CASE WHEN $1 = 'published' THEN $3 ELSE published_at END
             WHERE id = $4 AND state IN ({})",
            state_list(from)
        ))
        .bind(to)
        .bind(note)
        .bind(now)
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Publishes a handed-in post if it is still at the revision the teacher read.
    pub async fn approve_post(&self, id: i64, revision: i64) -> Result<(), PostError> {
        let now = now_ms();
        let done = sqlx::query(
            "UPDATE posts SET state = 'published', review_note = NULL, updated_at = $1, published_at = $1
             WHERE id = $2 AND state = 'pending' AND revision = $3",
        )
        .bind(now)
        .bind(id)
        .bind(revision)
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 1 {
            return Ok(());
        }
        let state: Option<String> = sqlx::query_scalar("SELECT state FROM posts WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        match state.as_deref() {
            Some("pending") => Err(PostError::Changed),
            _ => Err(PostError::WrongState),
        }
    }

    pub async fn delete_post(&self, id: i64) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM posts WHERE id = $1")
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn add_comment(
        &self,
        post_id: i64,
        author_id: i64,
        body: &str,
    ) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar("INSERT INTO comments (post_id, author_id, body, created_at) VALUES ($1, $2, $3, $4) RETURNING id")
            .bind(post_id)
            .bind(author_id)
            .bind(body)
            .bind(now_ms())
            .fetch_one(self.pool())
            .await
    }

    pub async fn comment(&self, id: i64) -> Result<Option<Comment>, sqlx::Error> {
        sqlx::query_as(
            "SELECT c.id, c.post_id, c.author_id, u.display_name AS author_name, c.body, c.created_at
             FROM comments c LEFT JOIN users u ON u.id = c.author_id WHERE c.id = $1",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await
    }

    /// Posts whose HTML predates rendering at write time: (id, class, body), a batch at a time.
    pub async fn posts_without_html(
        &self,
        limit: i64,
    ) -> Result<Vec<(i64, i64, String)>, sqlx::Error> {
        sqlx::query_as(
            "SELECT id, class_id, body FROM posts WHERE html IS NULL ORDER BY id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.pool())
        .await
    }

    pub async fn set_post_html(&self, id: i64, html: &str) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE posts SET html = $1 WHERE id = $2")
            .bind(html)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}

/// A position in the timeline: items strictly older than (time, rank, id) come next. Posts
/// rank 1 and sessions 0, so items at the same millisecond still have one order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub at: i64,
    pub rank: i64,
    pub id: i64,
}

impl Position {
    pub const START: Position = Position {
        at: i64::MAX,
        rank: 1,
        id: i64::MAX,
    };
}
