//! Extractors that say who is asking: the signed-in user (with CSRF checked on every
//! state-changing request) and the client's IP address for rate limits.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, Method};

use super::Error;
use crate::auth::token;
use crate::state::AppState;
use crate::store::users::User;

pub const SESSION_COOKIE: &str = "homeroom_session";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// A signed-in user. Rejects with 401 when there is no valid session, and with 403 `csrf`
/// when a state-changing request does not carry the session's CSRF token.
pub struct CurrentUser {
    pub user: User,
    pub csrf: String,
    /// The stored form of the session cookie, to sign this session out.
    pub session_hash: String,
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        let secret = session_cookie(parts).ok_or(Error::Unauthorized)?;
        let session_hash = token::hash(&secret);
        let (user, csrf) = state
            .store
            .session_user(&session_hash)
            .await?
            .ok_or(Error::Unauthorized)?;
        let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        if !safe {
            let sent = parts
                .headers
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !constant_time_eq(sent.as_bytes(), csrf.as_bytes()) {
                return Err(Error::Csrf);
            }
        }
        Ok(CurrentUser {
            user,
            csrf,
            session_hash,
        })
    }
}

/// The signed-in user if there is one; requests without a session pass as `None`.
pub struct MaybeUser(pub Option<CurrentUser>);

impl FromRequestParts<AppState> for MaybeUser {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        match CurrentUser::from_request_parts(parts, state).await {
            Ok(user) => Ok(MaybeUser(Some(user))),
            Err(Error::Unauthorized) => Ok(MaybeUser(None)),
            Err(e) => Err(e),
        }
    }
}

fn session_cookie(parts: &Parts) -> Option<String> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_owned())
}

pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The `Set-Cookie` value for a new session.
pub fn session_cookie_header(secret: &str) -> String {
    let max_age = crate::store::sessions::SESSION_TTL_MS / 1000;
    format!("{SESSION_COOKIE}={secret}; Path=/; Max-Age={max_age}; HttpOnly; Secure; SameSite=Lax")
}

pub fn clear_cookie_header() -> String {
    format!("{SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax")
}

/// The client's address: the TCP peer, or behind a proxy the last `X-Forwarded-For` hop
/// (the one our proxy added; earlier hops are whatever the client claimed).
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        if state.config.tls.behind_proxy {
            let forwarded = parts
                .headers
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.rsplit(',').next())
                .and_then(|ip| ip.trim().parse().ok());
            if let Some(ip) = forwarded {
                return Ok(ClientIp(ip));
            }
        }
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("no peer address")))?;
        Ok(ClientIp(peer))
    }
}

/// `axum::Json` whose rejections (bad JSON, wrong content type) answer in our error format,
/// and which refuses any text holding a NUL character (`\u0000`) with `400 invalid_text`.
/// JSON allows NUL in strings but PostgreSQL text does not (and no name, post or login needs
/// one), so it is refused here, once, before any handler or query sees it.
pub struct ApiJson<T>(pub T);

impl<T, S> axum::extract::FromRequest<S> for ApiJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, Error> {
        let axum::Json(value) =
            axum::Json::<serde_json::Value>::from_request(request, state).await?;
        if holds_nul(&value) {
            return Err(Error::bad_request(
                "invalid_text",
                "text must not contain NUL characters (\\u0000)",
            ));
        }
        serde_path_to_error::deserialize(value)
            .map(ApiJson)
            .map_err(|e| {
                Error::bad_request(
                    "bad_json",
                    format!("Failed to deserialize the JSON body into the target type: {e}"),
                )
            })
    }
}

/// True when any string (or object key) in the document contains a NUL character.
fn holds_nul(value: &serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        Value::String(text) => text.contains('\0'),
        Value::Array(items) => items.iter().any(holds_nul),
        Value::Object(fields) => fields
            .iter()
            .any(|(key, value)| key.contains('\0') || holds_nul(value)),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::holds_nul;
    use serde_json::json;

    #[test]
    fn finds_nul_anywhere_in_the_document() {
        assert!(!holds_nul(
            &json!({"body": "fine", "ids": [1, 2], "x": null})
        ));
        assert!(holds_nul(&json!({"body": "a\u{0}b"})));
        assert!(holds_nul(&json!({"targets": ["ok", "\u{0}"]})));
        assert!(holds_nul(&json!({"a": {"b": ["\u{0}"]}})));
        assert!(holds_nul(&json!({"key\u{0}": 1})));
    }
}
