//! The OpenAPI document of the JSON API, served at `/api/v1/openapi.json`. Every JSON handler
//! carries a `#[utoipa::path]` and is listed here; a test checks that routes and document agree.

use axum::routing::get;
use axum::{Json, Router};
use utoipa::OpenApi;

use super::error::{ErrorBody, ErrorDetail};
use super::health;
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Homeroom API",
        description = "Live classrooms and class timelines for schools."
    ),
    paths(health::healthz, health::readyz, health::metrics, openapi_json),
    components(schemas(ErrorBody, ErrorDetail))
)]
pub struct ApiDoc;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/openapi.json", get(openapi_json))
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta", responses((status = 200)))]
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
