//! The school: its name (shown on the pages and the printed invitation sheets) and, for
//! admins, how far the first-run set-up has come.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::accounts::{parse_name, require_admin};
use super::extract::{ApiJson, CurrentUser, MaybeUser};
use super::Result;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/school", get(get_school).put(set_school))
}

#[derive(Serialize, ToSchema)]
pub struct School {
    /// `null` until an admin names the school.
    pub name: Option<String>,
    /// The first-run checklist; only admins get it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub setup: Option<SetupProgress>,
}

/// The steps of a school's first run, each done or not.
#[derive(Serialize, ToSchema)]
pub struct SetupProgress {
    pub school_named: bool,
    /// Active accounts made as teachers, or teaching a class.
    pub teachers: i64,
    /// Classes that are not archived.
    pub classes: i64,
}

#[derive(Deserialize, ToSchema)]
pub struct SchoolRequest {
    pub name: String,
}

/// The school's name (anyone may read it: the sign-in page shows it); admins also get the
/// first-run checklist.
#[utoipa::path(get, path = "/api/v1/school", tag = "school", responses((status = 200, body = School)))]
pub async fn get_school(
    State(state): State<AppState>,
    MaybeUser(current): MaybeUser,
) -> Result<Json<School>> {
    let name = state.store.school_name().await?;
    let setup = match current {
        Some(c) if c.user.is_admin() => Some(SetupProgress {
            school_named: name.is_some(),
            teachers: state.store.teacher_count().await?,
            classes: state.store.active_class_count().await?,
        }),
        _ => None,
    };
    Ok(Json(School { name, setup }))
}

/// Names (or renames) the school. Admins only.
#[utoipa::path(put, path = "/api/v1/school", tag = "school", request_body = SchoolRequest,
    responses((status = 204), (status = 400, body = super::error::ErrorBody),
        (status = 401, body = super::error::ErrorBody), (status = 403, body = super::error::ErrorBody)))]
pub async fn set_school(
    State(state): State<AppState>,
    current: CurrentUser,
    ApiJson(request): ApiJson<SchoolRequest>,
) -> Result<StatusCode> {
    require_admin(&current)?;
    let name = parse_name(&request.name)?;
    state.store.set_school_name(name.as_str()).await?;
    Ok(StatusCode::NO_CONTENT)
}
