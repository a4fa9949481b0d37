//! Who hears of what: class events become queued push messages, one per recipient's browser.
//!
//! Recipients are decided by the rules their pages use: a live room by `signal::admission`
//! (who may enter it), a post or comment by `http::post_visible` (who may see it), reviews and
//! new members by `access::decide(…, ManageClass, …)`; all of them ask `crate::access`. Then
//! the recipient's switch for the class and kind, and their quiet hours: live news is dropped
//! during them (it would be stale), other news waits until they end. Every message has a dedupe
//! key, so an event seen twice (a post edited after publishing) notifies once.

use anyhow::Context;
use tokio::sync::mpsc::UnboundedReceiver;

use super::queue::PushMessage;
use crate::access::{decide, Action, Facts, Role, Who};
use crate::events::ClassEvent;
use crate::http::{post_visible, Error};
use crate::signal::admission::admit;
use crate::signal::Identity;
use crate::state::AppState;
use crate::store::classes::Member;
use crate::store::now_ms;
use crate::store::posts::Post;
use crate::store::users::User;

/// Reads the hub's tap until the server stops.
pub async fn run(state: AppState, mut events: UnboundedReceiver<(i64, ClassEvent)>) {
    while let Some((class_id, event)) = events.recv().await {
        if let Err(e) = handle(&state, class_id, &event).await {
            tracing::warn!(error = %e, class_id, "cannot queue notifications for a class event");
        }
    }
}

async fn handle(state: &AppState, class_id: i64, event: &ClassEvent) -> anyhow::Result<()> {
    match *event {
        ClassEvent::SessionStarted {
            room_id,
            session_id,
        } => went_live(state, class_id, room_id, session_id).await,
        ClassEvent::Post { post_id } => post_changed(state, post_id).await,
        ClassEvent::Comment {
            post_id,
            comment_id,
        } => commented(state, post_id, comment_id).await,
        ClassEvent::SessionEnded { .. } => Ok(()),
    }
}

/// A message for one kind of news, before it is addressed.
struct News {
    /// The preference it falls under: `live`, `updates` or `comments`.
    pref: &'static str,
    class_id: i64,
    dedupe: String,
    message: PushMessage,
}

impl News {
    fn new(pref: &'static str, class_id: i64, dedupe: String, message: PushMessage) -> News {
        News {
            pref,
            class_id,
            dedupe,
            message,
        }
    }
}

fn message(kind: &str, title: String, body: String, url: String, tag: String) -> PushMessage {
    PushMessage {
        kind: kind.into(),
        title,
        body,
        url,
        tag,
        vars: Default::default(),
    }
}

/// Queues `news` for `user_id` if they want it and it is not their quiet time.
async fn tell(state: &AppState, user_id: i64, news: &News) -> anyhow::Result<usize> {
    let store = &state.store;
    if !store.wants(user_id, news.class_id, news.pref).await? {
        return Ok(0);
    }
    let now = now_ms();
    let due_at = match store.notification_settings(user_id).await?.quiet_until(now) {
        None => now,
        Some(_) if news.pref == "live" => return Ok(0),
        Some(end) => end,
    };
    let dedupe = format!("{}:u{user_id}", news.dedupe);
    Ok(state
        .notify
        .push_to(user_id, &dedupe, &news.message, due_at)
        .await?)
}

/// Members of the class with an active account, with their role.
async fn members(state: &AppState, class_id: i64) -> anyhow::Result<Vec<(Member, User, Who)>> {
    let mut out = Vec::new();
    for member in state.store.members(class_id).await? {
        let Some(user) = state.store.user_by_id(member.user_id).await? else {
            continue;
        };
        let Some(role) = Role::parse(&member.role) else {
            continue;
        };
        if user.is_active() {
            out.push((member, user, Who::Member(role)));
        }
    }
    Ok(out)
}

async fn class_name(state: &AppState, class_id: i64) -> anyhow::Result<String> {
    Ok(state
        .store
        .class(class_id)
        .await?
        .map(|c| c.name)
        .unwrap_or_default())
}

async fn went_live(
    state: &AppState,
    class_id: i64,
    room_id: i64,
    session_id: i64,
) -> anyhow::Result<()> {
    let room = state.store.room(room_id).await?.context("room is gone")?;
    let started_by = state.store.session_starter(session_id).await?;
    let class = class_name(state, class_id).await?;
    let url = match room.kind.as_str() {
        "tutoring" => format!("/tutor/{room_id}"),
        _ => format!("/watch/{room_id}"),
    };
    let mut news = News::new(
        "live",
        class_id,
        format!("live:{session_id}"),
        message(
            "live",
            format!("{class} is live"),
            format!("{} started. Tap to join.", room.name),
            url,
            format!("live-{room_id}"),
        ),
    );
    news.message.vars.insert("class".into(), class.into());
    news.message
        .vars
        .insert("room".into(), room.name.clone().into());
    let mut told = 0;
    for (member, user, _) in members(state, class_id).await? {
        if Some(member.user_id) == started_by {
            continue;
        }
        // The same decision the room makes when they try to come in.
        if admit(&state.store, &Identity::User(user), &room)
            .await
            .is_ok()
        {
            told += tell(state, member.user_id, &news).await?;
        }
    }
    tracing::info!(room_id, session_id, told, "queued went-live notifications");
    Ok(())
}

/// Whether `user` may see `post`, asked exactly as their timeline asks.
async fn sees(state: &AppState, user: &User, post: &Post) -> anyhow::Result<bool> {
    match post_visible(state, user, post).await {
        Ok(_) => Ok(true),
        Err(Error::NotFound) => Ok(false),
        Err(e) => Err(anyhow::anyhow!("cannot decide visibility: {e}")),
    }
}

async fn post_changed(state: &AppState, post_id: i64) -> anyhow::Result<()> {
    let Some(post) = state.store.post(post_id).await? else {
        return Ok(());
    };
    let class = class_name(state, post.class_id).await?;
    let author = post.author_name.clone().unwrap_or_default();
    let url = format!("/class/{}", post.class_id);
    let (news, audience) = match post.state.as_str() {
        "published" => (
            News::new(
                "updates",
                post.class_id,
                format!("post:{post_id}"),
                message(
                    "post",
                    format!("New in {class}"),
                    format!("{author} posted an update."),
                    url,
                    format!("post-{post_id}"),
                ),
            ),
            Audience::Readers,
        ),
        "pending" => (
            News::new(
                "updates",
                post.class_id,
                format!("review:{post_id}:r{}", post.revision),
                message(
                    "review",
                    format!("A draft to review in {class}"),
                    format!("{author} handed in a post for your review."),
                    url,
                    format!("review-{post_id}"),
                ),
            ),
            Audience::Managers,
        ),
        _ => return Ok(()),
    };
    let mut news = news;
    news.message.vars.insert("class".into(), class.into());
    news.message.vars.insert("who".into(), author.into());
    for (member, user, who) in members(state, post.class_id).await? {
        if Some(member.user_id) == post.author_id {
            continue;
        }
        let reaches = match audience {
            Audience::Readers => sees(state, &user, &post).await?,
            Audience::Managers => manages(who),
        };
        if reaches {
            tell(state, member.user_id, &news).await?;
        }
    }
    Ok(())
}

enum Audience {
    /// Whoever may see the post.
    Readers,
    /// Whoever manages the class (teachers).
    Managers,
}

fn manages(who: Who) -> bool {
    decide(who, Action::ManageClass, Facts::default()).allowed()
}

/// Tells the post's author and everyone who commented before that someone answered.
async fn commented(state: &AppState, post_id: i64, comment_id: i64) -> anyhow::Result<()> {
    let Some(post) = state.store.post(post_id).await? else {
        return Ok(());
    };
    // The thread up to the new comment (a thread is read once per comment, never unbounded).
    let first = crate::store::posts::Position {
        at: i64::MIN,
        rank: 0,
        id: 0,
    };
    let comments = state.store.post_comments(post_id, first, 1000).await?;
    let Some(new) = comments.iter().find(|c| c.id == comment_id) else {
        return Ok(());
    };
    let mut earlier: Vec<i64> = comments
        .iter()
        .filter(|c| c.id < comment_id)
        .filter_map(|c| c.author_id)
        .chain(post.author_id)
        .filter(|id| Some(*id) != new.author_id)
        .collect();
    earlier.sort_unstable();
    earlier.dedup();
    let class = class_name(state, post.class_id).await?;
    let who = new.author_name.clone().unwrap_or_default();
    let mut news = News::new(
        "comments",
        post.class_id,
        format!("comment:{comment_id}"),
        message(
            "comment",
            format!("A reply in {class}"),
            format!("{who} answered in a conversation you are in."),
            format!("/class/{}", post.class_id),
            format!("comments-{post_id}"),
        ),
    );
    news.message.vars.insert("class".into(), class.into());
    news.message.vars.insert("who".into(), who.into());
    for user_id in earlier {
        let Some(user) = state.store.user_by_id(user_id).await? else {
            continue;
        };
        if user.is_active() && sees(state, &user, &post).await? {
            tell(state, user_id, &news).await?;
        }
    }
    Ok(())
}

/// Tells the class's teachers that someone joined through an invitation.
pub async fn invitation_accepted(state: &AppState, class_id: i64, invite_id: i64, user: &User) {
    if let Err(e) = joined(state, class_id, invite_id, user).await {
        tracing::warn!(error = %e, class_id, "cannot queue invitation notifications");
    }
}

async fn joined(
    state: &AppState,
    class_id: i64,
    invite_id: i64,
    user: &User,
) -> anyhow::Result<()> {
    let class = class_name(state, class_id).await?;
    let mut news = News::new(
        "updates",
        class_id,
        format!("joined:{invite_id}:{}", user.id),
        message(
            "joined",
            format!("{} joined {class}", user.display_name),
            "They accepted your invitation.".into(),
            format!("/class/{class_id}/manage"),
            format!("joined-{class_id}"),
        ),
    );
    news.message.vars.insert("class".into(), class.into());
    news.message
        .vars
        .insert("who".into(), user.display_name.clone().into());
    for (member, _, who) in members(state, class_id).await? {
        if member.user_id != user.id && manages(who) {
            tell(state, member.user_id, &news).await?;
        }
    }
    Ok(())
}

impl crate::store::Store {
    /// Who started a live session (its host), so they are not told of their own.
    async fn session_starter(&self, session_id: i64) -> Result<Option<i64>, sqlx::Error> {
        let found: Option<(Option<i64>,)> =
            sqlx::query_as("SELECT started_by FROM live_sessions WHERE id = $1")
                .bind(session_id)
                .fetch_optional(self.pool())
                .await?;
        Ok(found.and_then(|(by,)| by))
    }
}
