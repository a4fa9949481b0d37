//! HTTP: one router per resource, merged here, with the layers every request passes through.

mod accounts;
mod classes;
pub mod error;
pub mod extract;
mod health;
mod invites;
mod openapi;
mod rooms;

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use tower_http::set_header::SetResponseHeaderLayer;

pub use error::{Error, Result};

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
        .merge(rooms::router())
        .merge(crate::signal::router())
        .merge(openapi::router())
        .layer(middleware::from_fn_with_state(state.clone(), observe))
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
