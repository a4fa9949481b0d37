//! The email digest: once a day or week, the class updates a person may see that were
//! published since their last digest, with a one-click link that turns the digest off.
//!
//! The first digest goes out as soon as it is switched on and covers the last period. The
//! stop link carries the user id and an HMAC of it (key derived from the VAPID key), so it
//! works without signing in and cannot be made for anyone else.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::email::Email;
use crate::state::AppState;
use crate::store::now_ms;

const DAY_MS: i64 = 24 * 60 * 60 * 1000;
/// How often due digests are looked for when nobody changed a setting.
const CHECK: Duration = Duration::from_secs(10 * 60);
/// Characters of a post shown in the digest.
const EXCERPT: usize = 140;

/// Sends due digests now and then, and whenever someone changed theirs.
pub async fn run(state: AppState) {
    if !state.notify.email_enabled() {
        return;
    }
    let wake = state.notify.digest_wake.clone();
    loop {
        if let Err(e) = send_due(&state).await {
            tracing::warn!(error = %e, "cannot queue digests");
        }
        let _ = tokio::time::timeout(CHECK, wake.notified()).await;
    }
}

async fn send_due(state: &AppState) -> anyhow::Result<()> {
    let now = now_ms();
    for reader in state.store.digest_readers().await? {
        let period = if reader.digest == "weekly" {
            7 * DAY_MS
        } else {
            DAY_MS
        };
        let since = match reader.digest_sent_at {
            Some(at) if at + period > now => continue,
            Some(at) => at,
            None => now - period,
        };
        let Some(user) = state.store.user_by_id(reader.user_id).await? else {
            continue;
        };
        let lines = updates_for(state, &user, since).await?;
        if !lines.is_empty() {
            let email = Email {
                subject: format!("Class updates ({} new)", lines.len()),
                text: format!(
                    "Hello {},\n\nWhat your classes shared since your last digest:\n\n{}\n",
                    user.display_name,
                    lines.join("\n")
                ),
                stop_url: Some(stop_link(state, user.id, "notifications/stop")),
                stop_post_url: Some(stop_link(state, user.id, "api/v1/notifications/stop")),
            };
            let dedupe = format!("digest:{}:{since}", user.id);
            state
                .notify
                .email_to(Some(user.id), &reader.email, &dedupe, &email)
                .await?;
        }
        state.store.set_digest_sent(user.id, now).await?;
    }
    Ok(())
}

/// The most posts of one class a digest lists.
const DIGEST_POSTS: i64 = 50;

/// One line per post published after `since` that `user` may see, newest first.
async fn updates_for(
    state: &AppState,
    user: &crate::store::users::User,
    since: i64,
) -> anyhow::Result<Vec<String>> {
    let mut lines = Vec::new();
    for (class_id, _) in state.store.memberships_of(user.id).await? {
        let Some(class) = state.store.class(class_id).await? else {
            continue;
        };
        // Newest first, every published post (each is then asked as the timeline asks), up
        // to the last digest.
        let all = crate::store::post_pages::PostReader {
            user_id: user.id,
            sees_all: true,
            sees_own: false,
        };
        let recent = state
            .store
            .posts_before(
                class_id,
                all,
                crate::store::posts::Position::START,
                DIGEST_POSTS,
            )
            .await?;
        for post in recent {
            if post.published_at.is_none_or(|at| at <= since) {
                break;
            }
            // The same question the timeline asks; a post they may not see is left out.
            if crate::http::post_visible(state, user, &post).await.is_err() {
                continue;
            }
            let excerpt: String = post
                .body
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .chars()
                .take(EXCERPT)
                .collect();
            let link = state.public_url.join(&format!("class/{class_id}"))?;
            lines.push(format!(
                "- {} · {}: {excerpt}\n  {link}",
                class.name,
                post.author_name.unwrap_or_default()
            ));
        }
    }
    Ok(lines)
}

type HmacSha256 = Hmac<Sha256>;

fn signature(state: &AppState, user_id: i64) -> String {
    let mut mac = HmacSha256::new_from_slice(&state.notify.secret("stop links"))
        .expect("any key length works");
    mac.update(format!("digest:{user_id}").as_bytes());
    hex::encode(&mac.finalize().into_bytes()[..16])
}

/// `<public url>/<path>?token=<user id>.<signature>`.
fn stop_link(state: &AppState, user_id: i64, path: &str) -> String {
    let mut url = state.public_url.join(path).expect("a valid path");
    url.query_pairs_mut()
        .append_pair("token", &format!("{user_id}.{}", signature(state, user_id)));
    url.into()
}

/// The user a stop token was made for, if it is genuine.
pub fn check_stop_token(state: &AppState, token: &str) -> Option<i64> {
    let (id, given) = token.split_once('.')?;
    let user_id: i64 = id.parse().ok()?;
    let expected = signature(state, user_id);
    // Constant time: the comparison must not tell how much of a guess was right.
    let same = expected.len() == given.len()
        && expected
            .bytes()
            .zip(given.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    same.then_some(user_id)
}
