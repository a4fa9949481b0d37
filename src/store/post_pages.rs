//! Posts a page at a time: which posts a reader may see is decided in SQL (a join to the
//! students a post features and the reader's children), and everything a page shows with its
//! posts (students, learning targets, attachments, comments, seen counts) is fetched for the
//! whole page at once, so a page costs the same few queries whatever its length.

use std::collections::HashMap;

use super::attachments::Attachment;
use super::posts::{Comment, Position, Post, COLUMNS};
use super::session_logs::IN_CHUNK;
use super::{bind_ids, placeholders, Store};

/// Whose eyes a list of published posts is read with, decided by the caller from the role
/// table.
#[derive(Debug, Clone, Copy)]
pub struct PostReader {
    pub user_id: i64,
    /// Teachers and admins see every post of the class.
    pub sees_all: bool,
    /// The reader may still write posts here, so sees their own whatever their audience.
    pub sees_own: bool,
}

/// A post's audience in SQL: `$1` the reader, `$2` 1 when they see all, `$3` the author id
/// whose posts they see (0 for none).
const VISIBLE: &str = "($2 = 1 OR p.visibility = 'class' OR p.author_id = $3 OR EXISTS (
    SELECT 1 FROM post_students ps JOIN students s ON s.id = ps.student_id
    WHERE ps.post_id = p.id AND (s.user_id = $1
        OR EXISTS (SELECT 1 FROM family_students f WHERE f.student_id = s.id AND f.user_id = $1))))";

/// Comments shown with a post in a page; the rest are read with `post_comments`.
pub const COMMENTS_SHOWN: i64 = 20;

/// What a page shows with its posts, by post id.
#[derive(Debug, Default)]
pub struct PostDetails {
    pub students: HashMap<i64, Vec<(i64, String)>>,
    pub targets: HashMap<i64, Vec<String>>,
    pub attachments: HashMap<i64, Vec<Attachment>>,
    /// The first `COMMENTS_SHOWN` comments, oldest first.
    pub comments: HashMap<i64, Vec<Comment>>,
    pub comment_counts: HashMap<i64, i64>,
    /// Families of the class who have seen each post (asked only for teachers).
    pub family_views: HashMap<i64, i64>,
}

/// The query of [`Store::posts_before`] (kept apart so the plan tests read the same text).
pub fn posts_before_sql() -> String {
    format!(
        "SELECT {COLUMNS} FROM posts p LEFT JOIN users u ON u.id = p.author_id
         WHERE p.class_id = $4 AND p.state = 'published'
           AND (p.published_at < $5 OR (p.published_at = $5 AND $6 = 1 AND p.id < $7))
           AND {VISIBLE}
         ORDER BY p.published_at DESC, p.id DESC LIMIT $8"
    )
}

/// The query of [`Store::posts_in_state`].
pub fn posts_in_state_sql() -> String {
    format!(
        "SELECT {COLUMNS} FROM posts p LEFT JOIN users u ON u.id = p.author_id
         WHERE p.class_id = $1 AND p.state = $2
           AND (p.updated_at < $3 OR (p.updated_at = $3 AND p.id < $4))
         ORDER BY p.updated_at DESC, p.id DESC LIMIT $5"
    )
}

/// The query of [`Store::post_comments`].
pub const POST_COMMENTS_SQL: &str =
    "SELECT c.id, c.post_id, c.author_id, u.display_name AS author_name, c.body, c.created_at
     FROM comments c LEFT JOIN users u ON u.id = c.author_id
     WHERE c.post_id = $1 AND (c.created_at > $2 OR (c.created_at = $2 AND c.id > $3))
     ORDER BY c.created_at, c.id LIMIT $4";

impl Store {
    /// Published posts older than `before` that `reader` may see, newest first.
    pub async fn posts_before(
        &self,
        class_id: i64,
        reader: PostReader,
        before: Position,
        limit: i64,
    ) -> Result<Vec<Post>, sqlx::Error> {
        sqlx::query_as(&posts_before_sql())
            .bind(reader.user_id)
            .bind(reader.sees_all as i64)
            .bind(if reader.sees_own { reader.user_id } else { 0 })
            .bind(class_id)
            .bind(before.at)
            .bind(before.rank)
            .bind(before.id)
            .bind(limit)
            .fetch_all(self.pool())
            .await
    }

    /// Posts of the class in `state` (the approval queue) last changed before `before`,
    /// most recently changed first.
    pub async fn posts_in_state(
        &self,
        class_id: i64,
        state: &str,
        before: Position,
        limit: i64,
    ) -> Result<Vec<Post>, sqlx::Error> {
        sqlx::query_as(&posts_in_state_sql())
            .bind(class_id)
            .bind(state)
            .bind(before.at)
            .bind(before.id)
            .bind(limit)
            .fetch_all(self.pool())
            .await
    }

    /// A post's comments after `after` (time, id), oldest first.
    pub async fn post_comments(
        &self,
        post_id: i64,
        after: Position,
        limit: i64,
    ) -> Result<Vec<Comment>, sqlx::Error> {
        sqlx::query_as(POST_COMMENTS_SQL)
            .bind(post_id)
            .bind(after.at)
            .bind(after.id)
            .bind(limit)
            .fetch_all(self.pool())
            .await
    }

    /// Everything a page shows with these posts of one class: five queries (six with the
    /// teachers' seen counts) for a page of up to `IN_CHUNK` posts.
    pub async fn post_details(
        &self,
        class_id: i64,
        ids: &[i64],
        with_views: bool,
    ) -> Result<PostDetails, sqlx::Error> {
        let mut details = PostDetails::default();
        for chunk in ids.chunks(IN_CHUNK) {
            let list = placeholders(1, chunk.len());
            let n = chunk.len();
            let rows: Vec<(i64, i64, String)> = bind_ids(
                &format!(
                    "SELECT ps.post_id, s.id, s.name FROM post_students ps JOIN students s ON s.id = ps.student_id
                     WHERE ps.post_id IN ({list}) ORDER BY ps.post_id, s.name"
                ),
                chunk,
            )
            .fetch_all(self.pool())
            .await?;
            for (post, id, name) in rows {
                details.students.entry(post).or_default().push((id, name));
            }
            let rows: Vec<(i64, String)> = bind_ids(
                &format!(
                    "SELECT pt.post_id, t.name FROM post_targets pt JOIN learning_targets t ON t.id = pt.target_id
                     WHERE pt.post_id IN ({list}) ORDER BY pt.post_id, t.name"
                ),
                chunk,
            )
            .fetch_all(self.pool())
            .await?;
            for (post, name) in rows {
                details.targets.entry(post).or_default().push(name);
            }
            let sql = format!(
                "SELECT {} FROM attachments WHERE post_id IN ({list}) ORDER BY post_id, id",
                super::attachments::COLUMNS
            );
            for attachment in bind_ids::<Attachment>(&sql, chunk)
                .fetch_all(self.pool())
                .await?
            {
                let post = attachment.post_id.unwrap_or_default();
                details
                    .attachments
                    .entry(post)
                    .or_default()
                    .push(attachment);
            }
            // The first comments of each post, and how many there are in all, in one pass.
            let sql = format!(
                "SELECT id, post_id, author_id, author_name, body, created_at, total FROM (
                     SELECT c.id, c.post_id, c.author_id, u.display_name AS author_name, c.body, c.created_at,
                            ROW_NUMBER() OVER (PARTITION BY c.post_id ORDER BY c.created_at, c.id) AS nth,
                            COUNT(*) OVER (PARTITION BY c.post_id) AS total
                     FROM comments c LEFT JOIN users u ON u.id = c.author_id
                     WHERE c.post_id IN ({list})
                 ) numbered WHERE nth <= ${} ORDER BY post_id, created_at, id",
                n + 1
            );
            for row in bind_ids::<CommentWithTotal>(&sql, chunk)
                .bind(COMMENTS_SHOWN)
                .fetch_all(self.pool())
                .await?
            {
                details.comment_counts.insert(row.post_id, row.total);
                details
                    .comments
                    .entry(row.post_id)
                    .or_default()
                    .push(Comment {
                        id: row.id,
                        post_id: row.post_id,
                        author_id: row.author_id,
                        author_name: row.author_name,
                        body: row.body,
                        created_at: row.created_at,
                    });
            }
            if with_views {
                let sql = format!(
                    "SELECT v.post_id, COUNT(*) FROM post_views v
                     JOIN memberships m ON m.user_id = v.user_id AND m.class_id = ${} AND m.role = 'family'
                     WHERE v.post_id IN ({list}) GROUP BY v.post_id",
                    n + 1
                );
                let counts = bind_ids::<(i64, i64)>(&sql, chunk)
                    .bind(class_id)
                    .fetch_all(self.pool())
                    .await?;
                details.family_views.extend(counts);
            }
        }
        Ok(details)
    }
}

#[derive(sqlx::FromRow)]
struct CommentWithTotal {
    id: i64,
    post_id: i64,
    author_id: Option<i64>,
    author_name: Option<String>,
    body: String,
    created_at: i64,
    total: i64,
}
