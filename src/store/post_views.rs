//! Who has seen which post. A family member's page reports the posts it showed; the reports
//! go through one background writer that batches them into multi-row inserts, so reading a
//! page never waits on a write, and many readers at once cost a few statements a second.
//! Feed readers never report anything: a feed polled every hour is not a person reading.

use std::time::Duration;

use serde::Serialize;
use sqlx::FromRow;
use tokio::sync::mpsc;

use super::{now_ms, placeholders, Store};

/// Reports queued at most; past that a report is dropped (and counted in the log), never
/// waited for.
const QUEUE: usize = 10_000;
/// Rows in one INSERT.
const BATCH: usize = 200;

/// One family member who has seen a post.
#[derive(Debug, Clone, FromRow, Serialize, utoipa::ToSchema)]
pub struct Viewer {
    pub user_id: i64,
    pub display_name: String,
    /// When they first saw it (unix ms).
    pub first_seen_at: i64,
}

enum Report {
    Seen {
        post_id: i64,
        user_id: i64,
        at: i64,
    },
    /// Answers once everything reported before it is written.
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// The handle pages report to; cheap to clone.
#[derive(Clone)]
pub struct SeenWriter {
    tx: mpsc::Sender<Report>,
}

impl SeenWriter {
    /// Starts the writer task.
    pub fn start(store: Store) -> SeenWriter {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(write_loop(store, rx));
        SeenWriter { tx }
    }

    /// Queues "this person saw these posts"; the caller has checked they may see them.
    pub fn seen(&self, user_id: i64, post_ids: &[i64]) {
        let at = now_ms();
        for &post_id in post_ids {
            let report = Report::Seen {
                post_id,
                user_id,
                at,
            };
            if self.tx.try_send(report).is_err() {
                tracing::warn!("seen reports dropped: the writer is behind");
                return;
            }
        }
    }

    /// Waits until everything reported so far is written (shutdown).
    pub async fn flush(&self) {
        let (done, wait) = tokio::sync::oneshot::channel();
        if self.tx.send(Report::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

async fn write_loop(store: Store, mut rx: mpsc::Receiver<Report>) {
    let mut batch: Vec<(i64, i64, i64)> = Vec::new();
    let mut waiting = Vec::new();
    while let Some(first) = rx.recv().await {
        // A short pause lets the reports of a burst of page loads share one write.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut next = Some(first);
        while let Some(report) = next {
            match report {
                Report::Seen {
                    post_id,
                    user_id,
                    at,
                } => batch.push((post_id, user_id, at)),
                Report::Flush(done) => waiting.push(done),
            }
            next = rx.try_recv().ok();
        }
        for chunk in batch.chunks(BATCH) {
            if let Err(e) = store.record_views(chunk).await {
                tracing::error!(error = %e, count = chunk.len(), "seen reports not written");
            }
        }
        batch.clear();
        for done in waiting.drain(..) {
            let _ = done.send(());
        }
    }
}

impl Store {
    /// Writes (post, user, time) rows in one statement; a post seen before keeps its first
    /// time, and a post deleted meanwhile is skipped.
    pub async fn record_views(&self, rows: &[(i64, i64, i64)]) -> Result<(), sqlx::Error> {
        if rows.is_empty() {
            return Ok(());
        }
        let values: Vec<String> = (0..rows.len())
            .map(|i| format!("({})", placeholders(3 * i + 1, 3)))
            .collect();
        let sql = format!(
            "INSERT INTO post_views (post_id, user_id, first_seen_at)
             SELECT v.column1, v.column2, MIN(v.column3) FROM (VALUES {}) AS v
             WHERE EXISTS (SELECT 1 FROM posts p WHERE p.id = v.column1)
               AND EXISTS (SELECT 1 FROM users u WHERE u.id = v.column2)
             GROUP BY v.column1, v.column2
             ON CONFLICT DO NOTHING",
            values.join(", ")
        );
        let mut query = sqlx::query(&sql);
        for (post_id, user_id, at) in rows {
            query = query.bind(*post_id).bind(*user_id).bind(*at);
        }
        query.execute(self.pool()).await?;
        Ok(())
    }

    /// Of `post_ids`, the published posts of the class that `user_id` sees as a family member
    /// (the class's posts, and those featuring their children).
    pub async fn family_visible_posts(
        &self,
        class_id: i64,
        user_id: i64,
        post_ids: &[i64],
    ) -> Result<Vec<i64>, sqlx::Error> {
        let sql = format!(
            "SELECT p.id FROM posts p WHERE p.class_id = $1 AND p.state = 'published' AND p.id IN ({})
               AND (p.visibility = 'class' OR EXISTS (
                   SELECT 1 FROM post_students ps JOIN students s ON s.id = ps.student_id
                   JOIN family_students f ON f.student_id = s.id
                   WHERE ps.post_id = p.id AND f.user_id = $2))",
            placeholders(3, post_ids.len())
        );
        let mut query = sqlx::query_scalar(&sql).bind(class_id).bind(user_id);
        for id in post_ids {
            query = query.bind(*id);
        }
        query.fetch_all(self.pool()).await
    }

    /// The families of the class who have seen the post, first seen first.
    pub async fn post_viewers(
        &self,
        post_id: i64,
        class_id: i64,
    ) -> Result<Vec<Viewer>, sqlx::Error> {
        sqlx::query_as(
            "SELECT u.id AS user_id, u.display_name, v.first_seen_at FROM post_views v
             JOIN memberships m ON m.user_id = v.user_id AND m.class_id = $2 AND m.role = 'family'
             JOIN users u ON u.id = v.user_id
             WHERE v.post_id = $1 ORDER BY v.first_seen_at, u.id",
        )
        .bind(post_id)
        .bind(class_id)
        .fetch_all(self.pool())
        .await
    }
}
