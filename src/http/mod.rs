//! HTTP: one router per resource, merged here, with the layers every request passes through.

mod accounts;
mod attachments;
mod attendance_csv;
mod check;
mod class_events;
mod classes;
mod comments;
mod emails;
pub mod error;
pub mod extract;
mod feeds;
#[cfg(test)]
mod fuzz;
mod health;
mod ice_servers;
mod invites;
pub mod media_sessions;
mod notifications;
mod openapi;
mod page;
mod post_view;
mod posts;
mod recordings;
mod rooms;
mod school;
mod seen;
mod session_logs;
mod signalling;
mod timeline;
mod web;
pub mod whep;
pub mod whip;

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderName, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower_http::set_header::SetResponseHeaderLayer;

pub use attachments::remove_crash_leftovers;
pub use error::{Error, Result};
pub use post_view::render_missing_html;
/// Whether a person may see a post: `notify` asks it exactly as the timeline does.
pub use post_view::visible as post_visible;

/// No inline scripts or styles, nothing from elsewhere; the socket is `wss:` on this host and
/// media elements play `MediaStream`s.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data: blob:; media-src 'self' blob: mediastream:; \
     connect-src 'self' wss:; font-src 'self'; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// Pages may use the camera, microphone and screen; embedded documents (there are none) may not.
pub const PERMISSIONS_POLICY: &str =
    "camera=(self), microphone=(self), display-capture=(self), autoplay=(self), geolocation=()";

use crate::state::AppState;

pub fn router(state: AppState) -> Router {
    let hsts = (!state.config.tls.behind_proxy).then(|| {
        SetResponseHeaderLayer::if_not_present(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        )
    });
    Router::new()
        .merge(health::router())
        .merge(accounts::router())
        .merge(classes::router())
        .merge(invites::router())
        .merge(notifications::router())
        .merge(emails::router())
        .merge(rooms::router())
        .merge(school::router())
        .merge(posts::router())
        .merge(comments::router())
        .merge(seen::router())
        .merge(attachments::router())
        .merge(timeline::router())
        .merge(class_events::router())
        .merge(feeds::router())
        .merge(session_logs::router())
        .merge(recordings::router())
        .merge(signalling::router())
        .merge(openapi::router())
        .merge(web::router())
        .merge(whip::router())
        .merge(whep::router())
        .merge(check::router())
        .merge(ice_servers::router())
        .layer(middleware::from_fn(read_whole_body))
        .layer(middleware::from_fn_with_state(state.clone(), count_queries))
        .layer(middleware::from_fn(error::json_refusals))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static("permissions-policy"),
            HeaderValue::from_static(PERMISSIONS_POLICY),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(tower::util::option_layer(hsts))
        .with_state(state)
}

/// The largest request body read before routing; only uploads (multipart) may be larger, and
/// they read their own bodies with their own limit.
const BODY_LIMIT: usize = 2 * 1024 * 1024;

/// Reads the request body before any handler runs, so a request refused without looking at
/// its body (401 before parsing, 404 for an unknown room) still has its body consumed. Left
/// unread, the connection closes with bytes in the kernel's buffer, the kernel resets it, and
/// the client loses the answer ("EOF in violation of protocol") instead of reading the refusal.
async fn read_whole_body(request: Request, next: Next) -> Response {
    let multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"multipart/"));
    if multipart {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    match axum::body::to_bytes(body, BODY_LIMIT).await {
        Ok(bytes) => next.run(Request::from_parts(parts, bytes.into())).await,
        Err(_) => Error::TooLarge {
            limit_mb: (BODY_LIMIT / (1024 * 1024)) as u64,
        }
        .into_response(),
    }
}

/// With `count_queries` on, answers how many store calls the request made (see
/// `store::query_count`), for tests and the benchmark to check that a page costs the same
/// whatever its length.
async fn count_queries(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if !state.config.count_queries {
        return next.run(request).await;
    }
    let (mut response, queries) = crate::store::query_count::counted(next.run(request)).await;
    response.headers_mut().insert(
        HeaderName::from_static("x-homeroom-queries"),
        HeaderValue::from(queries),
    );
    response
}

/// Counts and logs each request by its route template. The raw URI is never logged: links
/// can carry secrets (feed tokens), and a log line must not hand them to whoever reads logs.
async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let response = next.run(request).await;
    let status = response.status().as_u16();
    state.metrics.count_request(method.as_str(), &route, status);
    tracing::info!(
        method = %method,
        route = %route,
        status,
        ms = started.elapsed().as_millis() as u64,
        "request"
    );
    response
}
