-- Notifications: the browsers (push subscriptions) and settings of each person, what they want
-- to hear per class and kind, and the outbox the delivery worker sends from. An outbox row is
-- one delivery (one push subscription or one email address); its `dedupe_key` makes enqueueing
-- the same news twice a no-op, so a replayed event or a restart never sends it twice.

CREATE TABLE push_subscriptions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    endpoint TEXT NOT NULL UNIQUE,
    p256dh TEXT NOT NULL,
    auth TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX push_subscriptions_user ON push_subscriptions(user_id);

CREATE TABLE notification_settings (
    user_id BIGINT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    -- Quiet hours in minutes after local midnight; both set or both NULL.
    quiet_start BIGINT,
    quiet_end BIGINT,
    -- The person's offset from UTC in minutes (east positive), sent by their browser.
    utc_offset BIGINT NOT NULL DEFAULT 0,
    digest TEXT NOT NULL DEFAULT 'off' CHECK (digest IN ('off', 'daily', 'weekly')),
    digest_sent_at BIGINT
);

-- A missing row means "on": people hear everything until they turn something off.
CREATE TABLE notification_preferences (
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    class_id BIGINT NOT NULL REFERENCES classes(id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('live', 'updates', 'comments')),
    enabled BIGINT NOT NULL,
    PRIMARY KEY (user_id, class_id, kind)
);

CREATE TABLE notification_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    dedupe_key TEXT NOT NULL UNIQUE,
    user_id BIGINT REFERENCES users(id) ON DELETE CASCADE,
    channel TEXT NOT NULL CHECK (channel IN ('push', 'email')),
    subscription_id BIGINT REFERENCES push_subscriptions(id) ON DELETE CASCADE,
    email_to TEXT,
    payload TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    sent_at BIGINT,
    failed_at BIGINT,
    last_error TEXT
);
CREATE INDEX notification_outbox_due ON notification_outbox(sent_at, failed_at, next_attempt_at);
