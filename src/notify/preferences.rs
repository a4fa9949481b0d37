//! What each person wants to hear: their browsers' push subscriptions, per class and kind
//! switches (`live`, `updates`, `comments`; on unless turned off), quiet hours and the email
//! digest. The queries live here beside the rules that read them.

use serde::{Deserialize, Serialize};
use sqlx::FromRow;
use utoipa::ToSchema;

use super::push::Subscription;
use crate::store::{now_ms, Store};

/// The kinds a person can switch per class.
pub const KINDS: [&str; 3] = ["live", "updates", "comments"];
/// How often a digest goes out.
pub const DIGESTS: [&str; 3] = ["off", "daily", "weekly"];

const MINUTE_MS: i64 = 60_000;
const DAY_MINUTES: i64 = 24 * 60;

/// A person's settings that are not per class.
#[derive(Debug, Clone, PartialEq, Eq, FromRow, Serialize, Deserialize, ToSchema)]
pub struct Settings {
    /// Quiet hours start, in minutes after local midnight (0–1439); with `quiet_end` or neither.
    pub quiet_start: Option<i64>,
    /// Quiet hours end, in minutes after local midnight; may be before the start (overnight).
    pub quiet_end: Option<i64>,
    /// Minutes east of UTC, as the person's browser reports it.
    pub utc_offset: i64,
    /// `off`, `daily` or `weekly`: an email of the class updates they may see.
    pub digest: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            quiet_start: None,
            quiet_end: None,
            utc_offset: 0,
            digest: "off".into(),
        }
    }
}

impl Settings {
    /// The end of the quiet hours `now` falls in, or `None` outside them.
    pub fn quiet_until(&self, now: i64) -> Option<i64> {
        let (start, end) = (self.quiet_start?, self.quiet_end?);
        if start == end {
            return None;
        }
        let local = now + self.utc_offset * MINUTE_MS;
        let minute = (local / MINUTE_MS).rem_euclid(DAY_MINUTES);
        let quiet = if start < end {
            minute >= start && minute < end
        } else {
            minute >= start || minute < end
        };
        quiet.then(|| now + (end - minute).rem_euclid(DAY_MINUTES) * MINUTE_MS)
    }

    /// Whether the values can be stored; the message names the field.
    pub fn check(&self) -> Result<(), &'static str> {
        let minute = |m: Option<i64>| m.is_none_or(|m| (0..DAY_MINUTES).contains(&m));
        if self.quiet_start.is_some() != self.quiet_end.is_some() {
            return Err("quiet_start and quiet_end are set together or not at all");
        }
        if !minute(self.quiet_start) || !minute(self.quiet_end) {
            return Err("quiet hours are minutes after midnight, 0 to 1439");
        }
        if !(-14 * 60..=14 * 60).contains(&self.utc_offset) {
            return Err("utc_offset is minutes east of UTC, -840 to 840");
        }
        if !DIGESTS.contains(&self.digest.as_str()) {
            return Err("digest is off, daily or weekly");
        }
        Ok(())
    }
}

/// One browser of the caller's, as their settings page lists it.
#[derive(Debug, Clone, FromRow, Serialize, ToSchema)]
pub struct SubscriptionInfo {
    pub id: i64,
    pub endpoint: String,
    pub created_at: i64,
}

/// Someone whose digest is due.
#[derive(Debug, Clone, FromRow)]
pub struct DigestReader {
    pub user_id: i64,
    pub email: String,
    pub digest: String,
    pub digest_sent_at: Option<i64>,
}

impl Store {
    /// Stores (or refreshes) a browser's subscription for `user_id`. A browser has one
    /// endpoint; when another account signs in on it, the subscription becomes theirs.
    pub async fn add_subscription(
        &self,
        user_id: i64,
        sub: &Subscription,
    ) -> Result<i64, sqlx::Error> {
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO push_subscriptions (user_id, endpoint, p256dh, auth, created_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (endpoint) DO UPDATE
                SET user_id = excluded.user_id, p256dh = excluded.p256dh, auth = excluded.auth
             RETURNING id",
        )
        .bind(user_id)
        .bind(&sub.endpoint)
        .bind(&sub.p256dh)
        .bind(&sub.auth)
        .bind(now_ms())
        .fetch_one(self.pool())
        .await?;
        Ok(id)
    }

    pub async fn subscriptions_of(
        &self,
        user_id: i64,
    ) -> Result<Vec<SubscriptionInfo>, sqlx::Error> {
        sqlx::query_as(
            "SELECT id, endpoint, created_at FROM push_subscriptions WHERE user_id = $1 ORDER BY id",
        )
        .bind(user_id)
        .fetch_all(self.pool())
        .await
    }

    /// Removes one of the user's subscriptions; `false` when it is not theirs.
    pub async fn remove_subscription(&self, user_id: i64, id: i64) -> Result<bool, sqlx::Error> {
        let done = sqlx::query("DELETE FROM push_subscriptions WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(user_id)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn remove_subscription_by_id(&self, id: i64) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM push_subscriptions WHERE id = $1")
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn notification_settings(&self, user_id: i64) -> Result<Settings, sqlx::Error> {
        let found: Option<Settings> = sqlx::query_as(
            "SELECT quiet_start, quiet_end, utc_offset, digest FROM notification_settings
             WHERE user_id = $1",
        )
        .bind(user_id)
        .fetch_optional(self.pool())
        .await?;
        Ok(found.unwrap_or_default())
    }

    pub async fn set_notification_settings(
        &self,
        user_id: i64,
        settings: &Settings,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO notification_settings (user_id, quiet_start, quiet_end, utc_offset, digest)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (user_id) DO UPDATE SET quiet_start = excluded.quiet_start,
                quiet_end = excluded.quiet_end, utc_offset = excluded.utc_offset,
                digest = excluded.digest",
        )
        .bind(user_id)
        .bind(settings.quiet_start)
        .bind(settings.quiet_end)
        .bind(settings.utc_offset)
        .bind(&settings.digest)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The switches the user turned off or back on: (class id, kind, enabled).
    pub async fn preferences(&self, user_id: i64) -> Result<Vec<(i64, String, bool)>, sqlx::Error> {
        let rows: Vec<(i64, String, i64)> = sqlx::query_as(
            "SELECT class_id, kind, enabled FROM notification_preferences WHERE user_id = $1",
        )
        .bind(user_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(|(c, k, e)| (c, k, e != 0)).collect())
    }

    pub async fn set_preference(
        &self,
        user_id: i64,
        class_id: i64,
        kind: &str,
        enabled: bool,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO notification_preferences (user_id, class_id, kind, enabled)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (user_id, class_id, kind) DO UPDATE SET enabled = excluded.enabled",
        )
        .bind(user_id)
        .bind(class_id)
        .bind(kind)
        .bind(i64::from(enabled))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Whether the user wants `kind` news of the class (on unless turned off).
    pub async fn wants(
        &self,
        user_id: i64,
        class_id: i64,
        kind: &str,
    ) -> Result<bool, sqlx::Error> {
        let found: Option<(i64,)> = sqlx::query_as(
            "SELECT enabled FROM notification_preferences
             WHERE user_id = $1 AND class_id = $2 AND kind = $3",
        )
        .bind(user_id)
        .bind(class_id)
        .bind(kind)
        .fetch_optional(self.pool())
        .await?;
        Ok(found.is_none_or(|(enabled,)| enabled != 0))
    }

    /// The ids of the user's push subscriptions.
    pub async fn subscription_ids(&self, user_id: i64) -> Result<Vec<i64>, sqlx::Error> {
        let rows: Vec<(i64,)> =
            sqlx::query_as("SELECT id FROM push_subscriptions WHERE user_id = $1")
                .bind(user_id)
                .fetch_all(self.pool())
                .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Active accounts with an email address whose digest is switched on.
    pub async fn digest_readers(&self) -> Result<Vec<DigestReader>, sqlx::Error> {
        sqlx::query_as(
            "SELECT s.user_id, u.email, s.digest, s.digest_sent_at
             FROM notification_settings s JOIN users u ON u.id = s.user_id
             WHERE s.digest <> 'off' AND u.email IS NOT NULL AND u.deactivated_at IS NULL",
        )
        .fetch_all(self.pool())
        .await
    }

    pub async fn set_digest_sent(&self, user_id: i64, at: i64) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE notification_settings SET digest_sent_at = $1 WHERE user_id = $2")
            .bind(at)
            .bind(user_id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Turns the digest off (the "stop these" link of a digest email).
    pub async fn stop_digest(&self, user_id: i64) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE notification_settings SET digest = 'off' WHERE user_id = $1")
            .bind(user_id)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 60 * MINUTE_MS;

    fn quiet(start: i64, end: i64, offset: i64) -> Settings {
        Settings {
            quiet_start: Some(start),
            quiet_end: Some(end),
            utc_offset: offset,
            ..Settings::default()
        }
    }

    #[test]
    fn overnight_quiet_hours_end_in_the_morning() {
        // 21:00–07:00 at UTC+1; 22:30 UTC is 23:30 local, quiet until 07:00 local = 06:00 UTC.
        let s = quiet(21 * 60, 7 * 60, 60);
        let now = 22 * HOUR + 30 * MINUTE_MS;
        assert_eq!(s.quiet_until(now), Some(30 * HOUR));
        // 12:00 UTC is 13:00 local: not quiet.
        assert_eq!(s.quiet_until(12 * HOUR), None);
    }

    #[test]
    fn daytime_quiet_hours_and_none() {
        let s = quiet(9 * 60, 15 * 60, 0);
        assert_eq!(s.quiet_until(10 * HOUR), Some(15 * HOUR));
        assert_eq!(s.quiet_until(15 * HOUR), None);
        assert_eq!(Settings::default().quiet_until(10 * HOUR), None);
    }

    #[test]
    fn bad_settings_are_named() {
        let mut s = quiet(0, 1440, 0);
        assert!(s.check().unwrap_err().contains("0 to 1439"));
        s.quiet_end = None;
        assert!(s.check().unwrap_err().contains("together"));
        let s = Settings {
            digest: "hourly".into(),
            ..Settings::default()
        };
        assert!(s.check().unwrap_err().contains("digest"));
    }
}
