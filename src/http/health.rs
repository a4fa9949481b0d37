//! Probes for the process supervisor and the monitoring system.

use std::net::IpAddr;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use super::extract::{constant_time_eq, ClientIp};
use super::{Error, Result};
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

/// Prometheus text format, for the school's monitoring only: with the configured bearer token,
/// or, without one, from this machine itself. Anyone else gets 404, as for a page that is not
/// there: the figures tell how many families are live, which is nobody else's business.
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, body = String), (status = 404, body = super::error::ErrorBody)),
    security((), ("metrics_token" = [])))]
pub async fn metrics(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
) -> Result<impl IntoResponse> {
    if !may_read_metrics(&state, ip, &headers) {
        return Err(Error::NotFound);
    }
    let open = crate::sfu::peer::OPEN_CONNECTIONS.load(std::sync::atomic::Ordering::Relaxed);
    state.metrics.set_gauge(
        "homeroom_peer_connections",
        "Open WebRTC peer connections.",
        open as i64,
    );
    crate::sfu::paths::report(&state.metrics);
    if let Some(turn) = &state.turn {
        turn.report(&state.metrics);
    }
    let tasks = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
        + state.sfu.media().port().tasks();
    state.metrics.set_gauge(
        "homeroom_tasks",
        "Tasks alive in the async runtimes (control and media).",
        tasks as i64,
    );
    state.metrics.set_gauge(
        "homeroom_media_lag_microseconds",
        "How late the busiest media reactor runs, smoothed over about a second.",
        state.sfu.media().port().lag().as_micros() as i64,
    );
    let mut text = state.metrics.render();
    text.push_str(&state.sfu.media().port().render_metrics());
    text.push_str(&state.sfu.admission().render_metrics());
    let forward_drops = |reason: &str, counter: &std::sync::atomic::AtomicU64| {
        format!(
            "homeroom_forward_dropped_total{{reason=\"{reason}\"}} {}\n",
            counter.load(std::sync::atomic::Ordering::Relaxed)
        )
    };
    text.push_str(
        "# HELP homeroom_forward_dropped_total Packets not forwarded to subscribers that could not keep up.\n\
         # TYPE homeroom_forward_dropped_total counter\n",
    );
    text.push_str(&forward_drops(
        "queue_full",
        &crate::sfu::fanout::QUEUE_FULL_DROPS,
    ));
    text.push_str(&forward_drops("stale", &crate::sfu::outgoing::STALE_DROPS));
    text.push_str(&format!(
        "# HELP homeroom_packets_resent_total Packets resent to viewers who reported them lost (NACK).\n\
         # TYPE homeroom_packets_resent_total counter\n\
         homeroom_packets_resent_total {}\n",
        crate::sfu::output::RESENT.load(std::sync::atomic::Ordering::Relaxed)
    ));
    text.push_str(&crate::sfu::quality::reception::render_metrics());
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    ))
}

fn may_read_metrics(state: &AppState, ip: IpAddr, headers: &HeaderMap) -> bool {
    match &state.config.metrics_token {
        Some(token) => headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|given| constant_time_eq(given.as_bytes(), token.as_bytes())),
        // Behind a proxy every request comes from loopback: only a token will do.
        None => !state.config.tls.behind_proxy && ip.is_loopback(),
    }
}
