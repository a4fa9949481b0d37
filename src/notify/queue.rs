//! The durable outbox: every notification is a row before anything is sent, and the worker
//! sends due rows with retries and doubling back-off, so a restart (even SIGKILL) loses none.
//!
//! A row is marked sent right after its push service or SMTP server accepted it. Enqueueing is
//! idempotent through `dedupe_key`, so the same news is never queued twice. A crash between the
//! acceptance and the mark can repeat that one message; push messages carry a `Topic`, so a push
//! service still holding the first replaces it rather than delivering both.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use sqlx::FromRow;
use tokio::sync::Notify;

use super::email::{Email, Mailer};
use super::push::{self, Outcome, Subscription};
use super::vapid::Vapid;
use crate::store::{now_ms, Store};

/// Deliveries attempted at once (one live session can notify a whole school).
const PARALLEL: usize = 16;
/// Rows read per pass.
const BATCH: i64 = 200;
/// The worker looks at the outbox at least this often, even if nobody pokes it.
const IDLE: Duration = Duration::from_secs(30);
/// Retries never wait longer than this.
const MAX_BACKOFF_MS: u64 = 60 * 60 * 1000;

/// What a push message says; the service worker shows it (in the reader's language when its
/// catalogue has `notify_<type>`, else `title` and `body` as they are).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PushMessage {
    /// `live`, `post`, `review`, `comment`, `joined` or `test`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub body: String,
    /// Where a tap on the notification leads (a path on this site).
    pub url: String,
    /// Same tag, same subject: a newer notification replaces an older one on the device.
    pub tag: String,
    /// Values for the localized text (class, room, person).
    #[serde(default)]
    pub vars: serde_json::Map<String, serde_json::Value>,
}

/// What is being queued, for whom.
pub enum Target<'a> {
    Push { user_id: i64, subscription_id: i64 },
    Email { user_id: Option<i64>, to: &'a str },
}

#[derive(Debug, FromRow)]
struct Due {
    id: i64,
    channel: String,
    subscription_id: Option<i64>,
    email_to: Option<String>,
    payload: String,
    attempts: i64,
    endpoint: Option<String>,
    p256dh: Option<String>,
    auth: Option<String>,
}

impl Store {
    /// Queues one delivery, due at `due_at`; `false` when `dedupe_key` was queued before.
    pub async fn enqueue(
        &self,
        dedupe_key: &str,
        target: Target<'_>,
        payload: &str,
        due_at: i64,
    ) -> Result<bool, sqlx::Error> {
        let (user_id, channel, subscription_id, email_to) = match target {
            Target::Push {
                user_id,
                subscription_id,
            } => (Some(user_id), "push", Some(subscription_id), None),
            Target::Email { user_id, to } => (user_id, "email", None, Some(to)),
        };
        let done = sqlx::query(
            "INSERT INTO notification_outbox
                (dedupe_key, user_id, channel, subscription_id, email_to, payload, next_attempt_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (dedupe_key) DO NOTHING",
        )
        .bind(dedupe_key)
        .bind(user_id)
        .bind(channel)
        .bind(subscription_id)
        .bind(email_to)
        .bind(payload)
        .bind(due_at)
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn due_deliveries(&self, now: i64) -> Result<Vec<Due>, sqlx::Error> {
        sqlx::query_as(
            "SELECT o.id, o.channel, o.subscription_id, o.email_to, o.payload, o.attempts,
                    s.endpoint, s.p256dh, s.auth
             FROM notification_outbox o LEFT JOIN push_subscriptions s ON s.id = o.subscription_id
             WHERE o.sent_at IS NULL AND o.failed_at IS NULL AND o.next_attempt_at <= $1
             ORDER BY o.next_attempt_at, o.id LIMIT $2",
        )
        .bind(now)
        .bind(BATCH)
        .fetch_all(self.pool())
        .await
    }

    /// When the next pending delivery is due, if any.
    async fn next_due(&self) -> Result<Option<i64>, sqlx::Error> {
        let (next,): (Option<i64>,) = sqlx::query_as(
            "SELECT MIN(next_attempt_at) FROM notification_outbox
             WHERE sent_at IS NULL AND failed_at IS NULL",
        )
        .fetch_one(self.pool())
        .await?;
        Ok(next)
    }

    async fn settle(&self, id: i64, attempts: i64, result: Settled) -> Result<(), sqlx::Error> {
        let now = now_ms();
        let (sent, failed, next, error) = match result {
            Settled::Sent => (Some(now), None, now, None),
            Settled::Failed(e) => (None, Some(now), now, Some(e)),
            Settled::RetryAt(at, e) => (None, None, at, Some(e)),
        };
        sqlx::query(
            "UPDATE notification_outbox
             SET sent_at = $1, failed_at = $2, next_attempt_at = $3, last_error = $4, attempts = $5
             WHERE id = $6",
        )
        .bind(sent)
        .bind(failed)
        .bind(next)
        .bind(error)
        .bind(attempts)
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(())
    }
}

enum Settled {
    Sent,
    Failed(String),
    RetryAt(i64, String),
}

/// Sends what is due, for as long as the server runs.
pub struct Worker {
    pub store: Store,
    pub vapid: Arc<Vapid>,
    pub mailer: Option<Arc<Mailer>>,
    pub client: reqwest::Client,
    pub wake: Arc<Notify>,
    pub max_attempts: u32,
    pub retry_base_ms: u64,
}

impl Worker {
    pub async fn run(self) {
        loop {
            if let Err(e) = self.pass().await {
                tracing::warn!(error = %e, "notification outbox pass failed");
            }
            let wait = match self.store.next_due().await {
                Ok(Some(at)) => {
                    Duration::from_millis((at - now_ms()).clamp(0, IDLE.as_millis() as i64) as u64)
                }
                _ => IDLE,
            };
            if wait.is_zero() {
                continue;
            }
            let _ = tokio::time::timeout(wait, self.wake.notified()).await;
        }
    }

    /// Attempts every due row once.
    async fn pass(&self) -> Result<(), sqlx::Error> {
        let due = self.store.due_deliveries(now_ms()).await?;
        futures_util::stream::iter(due)
            .for_each_concurrent(PARALLEL, |row| async move {
                if let Err(e) = self.deliver(row).await {
                    tracing::warn!(error = %e, "cannot record a notification's delivery");
                }
            })
            .await;
        Ok(())
    }

    async fn deliver(&self, row: Due) -> Result<(), sqlx::Error> {
        let attempts = row.attempts + 1;
        let outcome = match row.channel.as_str() {
            "push" => self.push(&row).await,
            _ => self.email(&row).await,
        };
        let settled = match outcome {
            Outcome::Sent => Settled::Sent,
            Outcome::Gone => {
                // The browser withdrew its subscription: forget it (its queued rows go too).
                if let Some(id) = row.subscription_id {
                    self.store.remove_subscription_by_id(id).await?;
                    tracing::info!(subscription_id = id, "push subscription expired; removed");
                }
                return Ok(());
            }
            Outcome::Refused(e) => Settled::Failed(e),
            Outcome::Retry(e) if attempts >= i64::from(self.max_attempts) => Settled::Failed(e),
            Outcome::Retry(e) => Settled::RetryAt(now_ms() + self.backoff_ms(attempts), e),
        };
        match &settled {
            Settled::Sent => {
                tracing::debug!(id = row.id, channel = %row.channel, "notification sent")
            }
            Settled::Failed(e) => {
                tracing::warn!(id = row.id, channel = %row.channel, error = %e, "notification given up")
            }
            Settled::RetryAt(_, e) => {
                tracing::info!(id = row.id, attempts, error = %e, "notification will be retried")
            }
        }
        self.store.settle(row.id, attempts, settled).await
    }

    fn backoff_ms(&self, attempts: i64) -> i64 {
        let doubling = 1u64 << (attempts - 1).clamp(0, 20);
        self.retry_base_ms
            .saturating_mul(doubling)
            .min(MAX_BACKOFF_MS) as i64
    }

    async fn push(&self, row: &Due) -> Outcome {
        let (Some(endpoint), Some(p256dh), Some(auth)) = (&row.endpoint, &row.p256dh, &row.auth)
        else {
            return Outcome::Gone;
        };
        let subscription = Subscription {
            endpoint: endpoint.clone(),
            p256dh: p256dh.clone(),
            auth: auth.clone(),
        };
        let Ok(message) = serde_json::from_str::<PushMessage>(&row.payload) else {
            return Outcome::Refused("unreadable payload".into());
        };
        let topic = topic(&message.tag);
        let urgent = message.kind == "live";
        push::send(
            &self.client,
            &self.vapid,
            &subscription,
            row.payload.as_bytes(),
            &topic,
            urgent,
        )
        .await
    }

    async fn email(&self, row: &Due) -> Outcome {
        let Some(mailer) = &self.mailer else {
            return Outcome::Refused("email is not configured".into());
        };
        let (Some(to), Ok(email)) = (&row.email_to, serde_json::from_str::<Email>(&row.payload))
        else {
            return Outcome::Refused("unreadable email".into());
        };
        mailer.send(to, &email).await
    }
}

/// RFC 8030 topics are at most 32 characters of the base64url alphabet.
fn topic(tag: &str) -> String {
    tag.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .take(32)
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn topics_use_the_allowed_alphabet_and_length() {
        assert_eq!(super::topic("live:12/session 9"), "live-12-session-9");
        assert_eq!(super::topic(&"x".repeat(40)).len(), 32);
    }
}
