//! Notifications: families and teachers hear that a class went live, a post was published, a
//! comment answered theirs, a draft awaits review or an invitation was accepted, by Web Push on
//! their phones, and (when SMTP is configured) invitations and digests by email.
//!
//! - `fanout`: turns class events (the hub of `crate::events`, and direct calls for invitations)
//!   into queued notifications, each recipient decided through `crate::access` the same way
//!   their pages decide what they may see, then filtered by their preferences and quiet hours.
//! - `queue`: the durable outbox in the database and the worker that sends it, with retries.
//! - `push`, `vapid`: Web Push (RFC 8030/8291/8292); `email`: SMTP; `digest`: the daily or
//!   weekly email; `preferences`: subscriptions, switches, quiet hours; `config`: settings.
//!
//! Outbox rows are written before anything is sent, so a restart loses nothing; the hub's own
//! events are in memory, so news that happens in the instant before a crash may go unsent.

mod config;
pub mod digest;
pub mod email;
pub mod fanout;
pub mod preferences;
pub mod push;
pub mod queue;
pub mod vapid;

use std::sync::Arc;

use tokio::sync::Notify;

pub use config::{EmailConfig, NotifyConfig, SmtpSecurity};
use email::{Email, Mailer};
use queue::Target;
use vapid::Vapid;

use crate::config::Config;
use crate::store::{now_ms, Store};

/// The node's notification handle: cheap to clone into the state.
#[derive(Clone)]
pub struct Notifier {
    store: Store,
    vapid: Arc<Vapid>,
    mailer: Option<Arc<Mailer>>,
    /// Pokes the delivery worker when something was queued.
    wake: Arc<Notify>,
    /// Pokes the digest task when someone changed their digest.
    pub digest_wake: Arc<Notify>,
    pub allow_insecure_endpoints: bool,
}

impl Notifier {
    /// Loads (or makes) the VAPID key and connects nothing yet; `start` runs the worker.
    pub fn new(config: &Config, store: Store, public_url: &url::Url) -> anyhow::Result<Notifier> {
        let contact = config
            .notify
            .vapid_contact
            .clone()
            .unwrap_or_else(|| public_url.as_str().trim_end_matches('/').to_owned());
        Ok(Notifier {
            store,
            vapid: Arc::new(Vapid::load_or_create(&config.data_dir, contact)?),
            mailer: Mailer::new(&config.email)?.map(Arc::new),
            wake: Arc::default(),
            digest_wake: Arc::default(),
            allow_insecure_endpoints: config.notify.allow_insecure_endpoints,
        })
    }

    /// Runs the delivery worker until the process ends (pending rows simply wait for the next
    /// start).
    pub fn start(&self, config: &NotifyConfig) {
        let worker = queue::Worker {
            store: self.store.clone(),
            vapid: self.vapid.clone(),
            mailer: self.mailer.clone(),
            client: push::client(),
            wake: self.wake.clone(),
            max_attempts: config.max_attempts.max(1),
            retry_base_ms: config.retry_base_ms.max(1),
        };
        tokio::spawn(worker.run());
    }

    pub fn vapid_public_key(&self) -> String {
        self.vapid.public_key()
    }

    pub fn email_enabled(&self) -> bool {
        self.mailer.is_some()
    }

    /// An HMAC key for links of our own (see `digest`).
    pub fn secret(&self, purpose: &str) -> [u8; 32] {
        self.vapid.derived_secret(purpose)
    }

    /// Queues a push message to every browser of the user; returns how many were queued.
    pub async fn push_to(
        &self,
        user_id: i64,
        dedupe: &str,
        message: &queue::PushMessage,
        due_at: i64,
    ) -> Result<usize, sqlx::Error> {
        let payload = serde_json::to_string(message).expect("messages serialize");
        let mut queued = 0;
        for subscription_id in self.store.subscription_ids(user_id).await? {
            let target = Target::Push {
                user_id,
                subscription_id,
            };
            let key = format!("{dedupe}:s{subscription_id}");
            queued += usize::from(self.store.enqueue(&key, target, &payload, due_at).await?);
        }
        if queued > 0 {
            self.wake.notify_one();
        }
        Ok(queued)
    }

    /// Queues an email; `false` when email is off or `dedupe` was queued already.
    pub async fn email_to(
        &self,
        user_id: Option<i64>,
        to: &str,
        dedupe: &str,
        email: &Email,
    ) -> Result<bool, sqlx::Error> {
        if self.mailer.is_none() {
            return Ok(false);
        }
        let payload = serde_json::to_string(email).expect("emails serialize");
        let queued = self
            .store
            .enqueue(dedupe, Target::Email { user_id, to }, &payload, now_ms())
            .await?;
        if queued {
            self.wake.notify_one();
        }
        Ok(queued)
    }
}
