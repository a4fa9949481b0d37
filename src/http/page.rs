//! Cursor pagination for every list that grows (posts, sessions, comments, the timeline).
//!
//! A cursor is opaque to clients: the position after which the next page starts (a time, a
//! rank and an id, base64url), never an offset, so rows written while someone pages never
//! show twice or get skipped. Lists answer a JSON array as before, and name the next page in
//! a `Link: <…>; rel="next"` header (RFC 8288), absent on the last page; the timeline, whose
//! page object predates this, also carries `next_cursor` in its body.

use axum::http::{header, HeaderValue, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use super::{Error, Result};
use crate::store::posts::Position;

/// `cursor` and `limit` of a list request.
#[derive(Deserialize, utoipa::IntoParams)]
pub struct PageQuery {
    /// From the previous page's `Link: rel="next"` (or the timeline's `next_cursor`); absent
    /// for the first page.
    pub cursor: Option<String>,
    /// Items per page, 1 to 50 (default 20).
    pub limit: Option<i64>,
}

pub const DEFAULT_LIMIT: i64 = 20;
pub const MAX_LIMIT: i64 = 50;

impl PageQuery {
    pub fn limit(&self) -> Result<i64> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        match (1..=MAX_LIMIT).contains(&limit) {
            true => Ok(limit),
            false => Err(Error::bad_request(
                "invalid_limit",
                format!("limit is 1 to {MAX_LIMIT}"),
            )),
        }
    }

    /// The position the page starts after, or `first` without a cursor.
    pub fn start(&self, first: Position) -> Result<Position> {
        match &self.cursor {
            Some(cursor) => decode(cursor).ok_or_else(|| {
                Error::bad_request("invalid_cursor", "this cursor is not one we gave out")
            }),
            None => Ok(first),
        }
    }
}

pub fn encode(p: Position) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}:{}:{}", p.at, p.rank, p.id))
}

fn decode(cursor: &str) -> Option<Position> {
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(cursor).ok()?).ok()?;
    let mut parts = text.split(':').map(|n| n.parse::<i64>().ok());
    let position = Position {
        at: parts.next()??,
        rank: parts.next()??,
        id: parts.next()??,
    };
    (parts.next().is_none() && (0..=1).contains(&position.rank)).then_some(position)
}

/// Of `limit + 1` rows read, the page and the cursor of the next one (if that extra row
/// exists, the last row shown is where the next page starts).
pub fn split<T>(
    mut rows: Vec<T>,
    limit: i64,
    position: impl Fn(&T) -> Position,
) -> (Vec<T>, Option<String>) {
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next = match more {
        true => rows.last().map(|row| encode(position(row))),
        false => None,
    };
    (rows, next)
}

/// A page of a list: the JSON array, and a `Link` to the next page.
pub struct Paged<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
    /// The request's URI: the next page's link keeps its path and other parameters.
    pub uri: Uri,
}

impl<T: Serialize> IntoResponse for Paged<T> {
    fn into_response(self) -> Response {
        let mut response = Json(self.items).into_response();
        if let Some(cursor) = self.next {
            let mut query: Vec<String> = self
                .uri
                .query()
                .unwrap_or("")
                .split('&')
                .filter(|p| !p.is_empty() && !p.starts_with("cursor="))
                .map(str::to_owned)
                .collect();
            query.push(format!("cursor={cursor}"));
            let link = format!("<{}?{}>; rel=\"next\"", self.uri.path(), query.join("&"));
            if let Ok(value) = HeaderValue::from_str(&link) {
                response.headers_mut().insert(header::LINK, value);
            }
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_junk() {
        let p = Position {
            at: 1_795_000_000_000,
            rank: 1,
            id: 42,
        };
        assert_eq!(decode(&encode(p)), Some(p));
        assert_eq!(decode("not a cursor"), None);
        assert_eq!(decode(&URL_SAFE_NO_PAD.encode("1:7:3")), None);
        assert_eq!(decode(&URL_SAFE_NO_PAD.encode("1:1:3:4")), None);
    }

    #[test]
    fn a_page_names_the_next_only_when_there_is_one() {
        let at = |n: &i64| Position {
            at: *n,
            rank: 1,
            id: *n,
        };
        let (rows, next) = split(vec![5, 4, 3], 2, at);
        assert_eq!(rows, vec![5, 4]);
        assert_eq!(next.as_deref().and_then(decode), Some(at(&4)));
        let (rows, next) = split(vec![5, 4], 2, at);
        assert_eq!((rows.len(), next), (2, None));
    }
}
