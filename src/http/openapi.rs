//! The OpenAPI document of the JSON API, served at `/api/v1/openapi.json`. Every JSON handler
//! carries a `#[utoipa::path]` and is listed here; a test checks that routes and document agree.

use axum::routing::get;
use axum::{Json, Router};
use utoipa::OpenApi;

use super::error::{ErrorBody, ErrorDetail};
use super::{
    accounts, attachments, classes, feeds, health, invites, posts, rooms, school, session_logs,
    timeline, whep, whip,
};
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Homeroom API",
        description = "Live classrooms and class timelines for schools."
    ),
    paths(
        health::healthz, health::readyz, health::metrics, openapi_json,
        accounts::setup, accounts::sign_in, accounts::sign_out, accounts::me, accounts::change_password,
        accounts::list_users, accounts::create_user, accounts::create_reset, accounts::use_reset,
        accounts::deactivate, accounts::reactivate, school::get_school, school::set_school,
        classes::list_classes, classes::create_class, classes::get_class, classes::rename_class,
        classes::list_members, classes::set_member, classes::remove_member,
        classes::list_students, classes::create_student, classes::rename_student, classes::remove_student,
        invites::create_invite, invites::list_invites, invites::revoke_invite, invites::lookup, invites::accept, invites::qr_code,
        rooms::list_rooms, rooms::create_room, rooms::update_room, rooms::delete_room, rooms::create_guest_link, rooms::guest_token,
        whip::create_key, whip::list_keys, whip::revoke_key, whip::publish, whip::trickle, whip::stop,
        whep::viewer_token, whep::play, whep::trickle, whep::stop,
        posts::create_post, posts::list_posts, posts::get_post, posts::edit_post, posts::delete_post, posts::submit, posts::approve,
        posts::return_post, posts::comment, timeline::timeline, attachments::upload, attachments::download, attachments::thumbnail, feeds::create_token, feeds::revoke_token,
        session_logs::list_sessions, session_logs::session_log, session_logs::session_csv, session_logs::class_csv,
    ),
    components(schemas(ErrorBody, ErrorDetail)),
    modifiers(&CsrfHeader)
)]
pub struct ApiDoc;

/// Documents the cookie session and the CSRF header that every change must carry.
struct CsrfHeader;

impl utoipa::Modify for CsrfHeader {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "homeroom_session",
                "Set by signing in. POST, PUT, PATCH and DELETE must also send the X-CSRF-Token header \
                 with the csrf_token from /api/v1/me.",
            ))),
        );
    }
}

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/openapi.json", get(openapi_json))
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta", responses((status = 200)))]
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// Every route registered in `src/http` (and the signalling and media routers) is in the
    /// document, and the document lists nothing that is not routed.
    #[test]
    fn document_lists_every_route() {
        let mut routed = BTreeSet::new();
        for dir in ["src/http", "src/signal"] {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
            for entry in std::fs::read_dir(dir).unwrap() {
                let source = std::fs::read_to_string(entry.unwrap().path()).unwrap();
                for piece in source.split(".route(").skip(1) {
                    if let Some(path) = piece.trim_start().strip_prefix("\"/") {
                        routed.insert(format!("/{}", path.split('"').next().unwrap()));
                    }
                }
            }
        }
        // The WebSocket speaks the protocol of docs/signalling.md, not HTTP request/response;
        // pages and static files of the web app are not part of the API.
        routed.remove("/api/v1/ws");
        routed.retain(|p| {
            p.starts_with("/api/")
                || p.starts_with("/whip/")
                || p.starts_with("/whep/")
                || ["/healthz", "/readyz", "/metrics"].contains(&p.as_str())
        });
        let documented: BTreeSet<String> = ApiDoc::openapi().paths.paths.keys().cloned().collect();
        assert_eq!(routed, documented);
    }
}
