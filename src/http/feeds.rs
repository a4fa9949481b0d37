//! A private Atom feed per person and class, so a family can follow the class in any feed
//! reader at a time that suits them. The feed URL carries a revocable secret; the server logs
//! only route templates, so it never lands in a log.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use utoipa::ToSchema;

use super::classes::{require, who_in};
use super::extract::CurrentUser;
use super::session_logs::iso8601;
use super::timeline::{page_of, Item};
use super::{Error, Result};
use crate::access::{decide, Action, Facts};
use crate::auth::token;
use crate::state::AppState;
use crate::store::now_ms;
use crate::store::posts::Position;

/// Entries in a feed.
const FEED_ITEMS: i64 = 30;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/classes/{class_id}/feed-token",
            post(create_token).delete(revoke_token),
        )
        .route("/feeds/{file}", get(feed))
}

#[derive(Serialize, ToSchema)]
pub struct FeedLink {
    /// Paste into a feed reader. Anyone with it reads what you read; revoke it if it leaks.
    pub feed_url: String,
}

/// Makes the caller's feed link for the class; an earlier link stops working.
#[utoipa::path(post, path = "/api/v1/classes/{class_id}/feed-token", tag = "timeline", params(("class_id" = i64, Path)),
    responses((status = 201, body = FeedLink), (status = 404, body = super::error::ErrorBody)))]
pub async fn create_token(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(class_id): Path<i64>,
) -> Result<(StatusCode, Json<FeedLink>)> {
    require(&state, &current.user, class_id, Action::ReadTimeline).await?;
    let secret = token::new_secret();
    state
        .store
        .replace_feed_token(current.user.id, class_id, &token::hash(&secret))
        .await?;
    let feed_url = state
        .public_url
        .join(&format!("feeds/{secret}.atom"))
        .expect("valid path")
        .to_string();
    Ok((StatusCode::CREATED, Json(FeedLink { feed_url })))
}

/// Revokes the caller's feed link for the class.
#[utoipa::path(delete, path = "/api/v1/classes/{class_id}/feed-token", tag = "timeline", params(("class_id" = i64, Path)),
    responses((status = 204), (status = 404, body = super::error::ErrorBody)))]
pub async fn revoke_token(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(class_id): Path<i64>,
) -> Result<StatusCode> {
    require(&state, &current.user, class_id, Action::ReadTimeline).await?;
    state
        .store
        .revoke_feed_tokens(current.user.id, class_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The Atom document: what the token's owner would see in the timeline now.
async fn feed(
    State(state): State<AppState>,
    Path(file): Path<String>,
) -> Result<impl IntoResponse> {
    let secret = file.strip_suffix(".atom").ok_or(Error::NotFound)?;
    let (user_id, class_id) = state
        .store
        .feed_token(&token::hash(secret))
        .await?
        .ok_or(Error::NotFound)?;
    let user = state
        .store
        .user_by_id(user_id)
        .await?
        .filter(|u| u.is_active())
        .ok_or(Error::NotFound)?;
    // A deactivated account's links read nothing; someone who left the class no longer reads
    // it, whatever their link says.
    let who = who_in(&state, &user, class_id).await?;
    if !decide(who, Action::ReadTimeline, Facts::default()).allowed() {
        return Err(Error::NotFound);
    }
    let class = state.store.class(class_id).await?.ok_or(Error::NotFound)?;
    let (items, _) = page_of(&state, &user, who, class_id, Position::START, FEED_ITEMS).await?;
    let link = state
        .public_url
        .join(&format!("class/{class_id}"))
        .expect("valid path");
    let updated = items.first().map(|(p, _)| p.at).unwrap_or_else(now_ms);
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\">\n\
         <title>{}</title>\n<id>urn:homeroom:class:{class_id}:reader:{user_id}</id>\n<updated>{}</updated>\n\
         <link href=\"{}\"/>\n",
        escape(&class.name),
        iso8601(updated),
        escape(link.as_str())
    );
    for (position, item) in &items {
        let (id, title, author, content) = match item {
            Item::Post { post, .. } => (
                format!("post:{}", post.post.id),
                headline(&post.post.body),
                post.post.author_name.clone().unwrap_or_default(),
                format!(
                    "<content type=\"html\">{}</content>",
                    escape(&post.post.html)
                ),
            ),
            Item::Session { session, .. } => (
                format!("session:{}", session.session.id),
                format!("Live session: {}", session.session.room_name),
                String::new(),
                format!(
                    "<content type=\"text\">{} minutes, {} attending</content>",
                    session.duration_ms / 60_000,
                    session.attendees
                ),
            ),
        };
        xml.push_str(&format!(
            "<entry>\n<id>urn:homeroom:{id}</id>\n<title>{}</title>\n<updated>{}</updated>\n<author><name>{}</name></author>\n\
             <link href=\"{}\"/>\n{content}\n</entry>\n",
            escape(&title),
            iso8601(position.at),
            escape(&author),
            escape(link.as_str()),
        ));
    }
    xml.push_str("</feed>\n");
    Ok((
        [
            (header::CONTENT_TYPE, "application/atom+xml; charset=utf-8"),
            (header::CACHE_CONTROL, "private, no-cache"),
        ],
        xml,
    ))
}

/// The first line of a post, without Markdown markers, as an entry title.
fn headline(body: &str) -> String {
    let line = body
        .lines()
        .map(|l| l.trim_start_matches(['#', '*', '-', '>', ' ']).trim())
        .find(|l| !l.is_empty());
    let line = line.unwrap_or("Class update").replace(['*', '_', '`'], "");
    match line.char_indices().nth(80) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}

/// Text as XML character data or an attribute value: markup characters escaped, and the
/// characters XML 1.0 does not allow at all (most control characters, U+FFFE, U+FFFF) left
/// out, so one odd character in a post written before they were refused cannot make the
/// whole feed unreadable.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c if xml_char(c) => out.push(c),
            _ => {}
        }
    }
    out
}

/// XML 1.0's `Char` production (Rust's `char` already excludes surrogates).
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headlines_and_escaping() {
        assert_eq!(headline("## **Fractions** week\n\nMore"), "Fractions week");
        assert_eq!(headline(""), "Class update");
        assert_eq!(
            escape("<a href=\"x\">&</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;"
        );
        assert_eq!(
            escape("a\u{1}b\u{b}c\u{1b}\td\ne\u{fffe}f\u{85}"),
            "abc\td\nef\u{85}"
        );
    }
}
