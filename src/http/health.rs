//! Probes for the process supervisor and the monitoring system.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

/// The process is up and answering.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, body = String)))]
pub async fn healthz() -> &'static str {
    "ok"
}

/// The database answers; a load balancer should stop sending traffic when this fails.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses((status = 200, body = String), (status = 503, body = String)))]
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    if state.store.ping().await {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "database unavailable")
    }
}

/// Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "health", responses((status = 200, body = String)))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let open = crate::sfu::peer::OPEN_CONNECTIONS.load(std::sync::atomic::Ordering::Relaxed);
    state.metrics.set_gauge(
        "homeroom_peer_connections",
        "Open WebRTC peer connections.",
        open as i64,
    );
    let tasks = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();
    state.metrics.set_gauge(
        "homeroom_tasks",
        "Tasks alive in the async runtime.",
        tasks as i64,
    );
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}
