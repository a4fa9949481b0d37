//! The STUN/TURN servers a client should use, with a fresh credential for the built-in relay:
//! as JSON for signed-in pages (the connection check tests each one), and as `Link` headers
//! on WHIP and WHEP answers (RFC 9725 section 4.6) for encoders and players.

use axum::extract::State;
use axum::http::{header, HeaderName};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::ToSchema;

use super::extract::CurrentUser;
use crate::config::IceServer;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/ice-servers", get(ice_servers))
}

#[derive(Serialize, ToSchema)]
pub struct IceServers {
    /// The configured servers (`media.ice_servers`) and, when the built-in relay runs, its
    /// `turn:`/`turns:` URLs with a username and credential.
    pub ice_servers: Vec<IceServer>,
    /// When the built-in relay stops accepting the credential, for new allocations and
    /// refreshes alike (unix ms); null when the relay is off.
    pub expires_at: Option<i64>,
}

/// The ICE servers for the signed-in user, with a fresh relay credential.
#[utoipa::path(get, path = "/api/v1/ice-servers", tag = "media",
    responses((status = 200, body = IceServers), (status = 401, body = super::error::ErrorBody)))]
pub async fn ice_servers(State(state): State<AppState>, current: CurrentUser) -> Json<IceServers> {
    let (ice_servers, expiry) = crate::turn::ice_servers(&state, &format!("u{}", current.user.id));
    Json(IceServers {
        ice_servers,
        expires_at: expiry.map(|secs| secs as i64 * 1000),
    })
}

/// One `Link: <url>; rel="ice-server"` header per URL, with the username and credential
/// when the server has them (RFC 9725 section 4.6).
pub fn link_headers(servers: &[IceServer]) -> Vec<(HeaderName, String)> {
    let mut headers = Vec::new();
    for server in servers {
        for url in &server.urls {
            let mut link = format!("<{url}>; rel=\"ice-server\"");
            if let (Some(username), Some(credential)) = (&server.username, &server.credential) {
                link.push_str(&format!(
                    "; username=\"{}\"; credential=\"{}\"; credential-type=\"password\"",
                    quoted(username),
                    quoted(credential)
                ));
            }
            headers.push((header::LINK, link));
        }
    }
    headers
}

/// A value fit for a quoted string: quotes and backslashes escaped, control characters gone.
fn quoted(value: &str) -> String {
    value
        .chars()
        .filter(|c| !c.is_control())
        .flat_map(|c| match c {
            '"' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_carry_the_credential() {
        let servers = vec![
            IceServer {
                urls: vec!["stun:stun.example.org".into()],
                username: None,
                credential: None,
            },
            IceServer {
                urls: vec![
                    "turn:h:3478?transport=udp".into(),
                    "turn:h:3478?transport=tcp".into(),
                ],
                username: Some("1700000000:p1".into()),
                credential: Some("a\"b".into()),
            },
        ];
        let links: Vec<String> = link_headers(&servers).into_iter().map(|(_, v)| v).collect();
        assert_eq!(links[0], "<stun:stun.example.org>; rel=\"ice-server\"");
        assert_eq!(
            links[2],
            "<turn:h:3478?transport=tcp>; rel=\"ice-server\"; username=\"1700000000:p1\"; \
             credential=\"a\\\"b\"; credential-type=\"password\""
        );
    }
}
