//! The OpenAPI document of the JSON API, served at `/api/v1/openapi.json`. Every JSON handler
//! carries a `#[utoipa::path]` and is listed here; a test checks that routes and document agree.

use axum::routing::get;
use axum::{Json, Router};
use utoipa::OpenApi;

use super::error::{ErrorBody, ErrorDetail};
use super::{
    accounts, attachments, attendance_csv, check, class_events, classes, comments, emails, feeds,
    health, ice_servers, invites, notifications, posts, recordings, rooms, school, seen,
    session_logs, timeline, whep, whip,
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
        accounts::setup, accounts::session_status, accounts::sign_in, accounts::sign_out, accounts::me, accounts::change_password,
        accounts::list_users, accounts::create_user, accounts::create_reset, accounts::use_reset,
        accounts::deactivate, accounts::reactivate, school::get_school, school::set_school,
        classes::list_classes, classes::create_class, classes::get_class, classes::rename_class,
        classes::list_members, classes::set_member, classes::remove_member,
        classes::list_students, classes::create_student, classes::rename_student, classes::remove_student,
        invites::create_invite, invites::list_invites, invites::revoke_invite, invites::lookup, invites::accept, invites::qr_code,
        rooms::list_rooms, rooms::create_room, rooms::get_room, rooms::update_room, rooms::delete_room, rooms::create_guest_link, rooms::guest_token,
        whip::create_key, whip::list_keys, whip::revoke_key, whip::publish, whip::trickle, whip::stop,
        whep::viewer_token, whep::play, whep::trickle, whep::stop, ice_servers::ice_servers,
        posts::create_post, posts::list_posts, posts::get_post, posts::edit_post, posts::delete_post, posts::submit, posts::approve,
        posts::return_post, comments::comment, comments::list_comments, seen::report_seen, seen::seen_by, timeline::timeline, class_events::events, attachments::upload, attachments::download, attachments::thumbnail, feeds::create_token, feeds::revoke_token,
        session_logs::list_sessions, session_logs::session_log, attendance_csv::session_csv, attendance_csv::class_csv,
        recordings::list_recordings, recordings::get_recording, recordings::publish_recording, recordings::play_file, recordings::download_file,
        notifications::server_info, notifications::get_settings, notifications::put_settings, notifications::subscribe,
        notifications::unsubscribe, notifications::send_test, notifications::stop, emails::email_invite, emails::email_reset,
        check::offer,
    ),
    components(schemas(ErrorBody, ErrorDetail)),
    modifiers(&CsrfHeader)
)]
pub struct ApiDoc;

/// Operations anyone may call without a session: probes, signing in, links that carry their
/// own secret (set-up, reset, invite codes, guest links, stream keys, WHIP/WHEP resources).
/// Every other operation needs the session cookie; a test keeps this list true to the code.
const PUBLIC_OPERATIONS: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/api/v1/openapi.json"),
    ("post", "/api/v1/setup"),
    ("post", "/api/v1/session"),
    ("post", "/api/v1/password-reset"),
    ("post", "/api/v1/invites/lookup"),
    ("post", "/api/v1/invites/accept"),
    ("post", "/api/v1/guest-token"),
    ("post", "/whip/{room_id}"),
    ("patch", "/whip/{room_id}/{resource}"),
    ("delete", "/whip/{room_id}/{resource}"),
    ("post", "/whep/{room_id}"),
    ("patch", "/whep/{room_id}/{resource}"),
    ("delete", "/whep/{room_id}/{resource}"),
    ("get", "/feeds/{file}"),
    ("post", "/api/v1/notifications/stop"),
];

/// The served document: what the handlers declare, plus the conventions every operation
/// shares (docs/api.md, "Conventions"), added here once instead of on sixty handlers:
/// - signed-in operations name the `session` scheme and may answer 401; changes may answer 403
///   (CSRF token missing or wrong);
/// - a path parameter that does not parse answers 400, an unknown id 404;
/// - a JSON body that does not parse answers 400, a wrong content type 415, an oversized one 413;
/// - operation ids are unique (the WHIP and WHEP handlers share function names).
pub fn document() -> serde_json::Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).expect("the document serializes");
    doc.pointer_mut("/paths")
        .and_then(|p| p.as_object_mut())
        .expect("paths")
        .extend(unrouted_by_handlers());
    let error = serde_json::json!({
        "description": "error",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    });
    let mut seen_ids = std::collections::BTreeSet::new();
    let paths = doc["paths"].as_object_mut().expect("paths");
    for (path, item) in paths.iter_mut() {
        for (method, op) in item.as_object_mut().expect("path item").iter_mut() {
            let Some(op) = op.as_object_mut() else {
                continue;
            };
            let public = PUBLIC_OPERATIONS.contains(&(method.as_str(), path.as_str()));
            let mut extra: Vec<&str> = Vec::new();
            if path.starts_with("/whip/") {
                // Encoders present their stream key on every WHIP request.
                op.insert("security".into(), serde_json::json!([{"stream_key": []}]));
                extra.push("401");
            } else if path == "/whep/{room_id}" {
                op.insert(
                    "security".into(),
                    serde_json::json!([{"viewer_token": []}, {"session": []}]),
                );
                extra.extend(["401", "410"]);
            } else if !public {
                op.insert("security".into(), serde_json::json!([{"session": []}]));
                extra.push("401");
                if method != "get" {
                    extra.push("403");
                }
            }
            if path.contains('{') {
                extra.extend(["400", "404"]);
            }
            let json_body = op
                .get("requestBody")
                .and_then(|b| b.pointer("/content/application~1json"))
                .is_some();
            if json_body {
                extra.extend(["400", "413", "415"]);
            }
            let responses = op
                .entry("responses")
                .or_insert_with(|| serde_json::json!({}))
                .as_object_mut()
                .expect("responses");
            for status in extra {
                responses.entry(status).or_insert_with(|| error.clone());
            }
            let id = op
                .get("operationId")
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned();
            if !seen_ids.insert(id.clone()) {
                let tag = op
                    .get("tags")
                    .and_then(|t| t[0].as_str())
                    .unwrap_or("op")
                    .to_owned();
                let unique = format!("{tag}_{id}");
                seen_ids.insert(unique.clone());
                op.insert("operationId".into(), unique.into());
            }
        }
    }
    doc
}

/// Routes whose answers are not JSON documents: the Atom feeds and the signalling socket.
fn unrouted_by_handlers() -> serde_json::Map<String, serde_json::Value> {
    let error = serde_json::json!({
        "description": "error",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    });
    let json = serde_json::json!({
        "/feeds/{file}": {"get": {
            "tags": ["timeline"],
            "operationId": "feed",
            "summary": "A person's private Atom feed of one class (the link from the feed-token operation).",
            "parameters": [{"name": "file", "in": "path", "required": true,
                "description": "the feed secret followed by .atom", "schema": {"type": "string"}}],
            "responses": {
                "200": {"description": "an Atom document",
                    "content": {"application/atom+xml": {"schema": {"type": "string"}}}},
                "404": error
            }
        }},
        "/api/v1/ws": {"get": {
            "tags": ["signalling"],
            "operationId": "signalling_socket",
            "summary": "The signalling WebSocket; it speaks the protocol of docs/signalling.md.",
            "parameters": [{"name": "token", "in": "query", "required": false,
                "description": "a guest's room token, for people without an account",
                "schema": {"type": "string"}}],
            "responses": {
                "101": {"description": "switched to the WebSocket protocol"},
                "400": error,
                "401": error,
                "403": error,
                "410": error
            }
        }}
    });
    json.as_object().expect("object").clone()
}

/// Documents the cookie session and the CSRF header that every change must carry.
struct CsrfHeader;

impl utoipa::Modify for CsrfHeader {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme,
        };
        let components = doc.components.get_or_insert_with(Default::default);
        let bearer = |description: &str| {
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(description))
                    .build(),
            )
        };
        components.add_security_scheme(
            "stream_key",
            bearer("A stream key made in the studio, sent by the encoder (WHIP, RFC 9725)."),
        );
        components.add_security_scheme(
            "viewer_token",
            bearer("A viewer token from POST /api/v1/rooms/{room_id}/viewer-token (WHEP)."),
        );
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
pub async fn openapi_json() -> Json<serde_json::Value> {
    static DOCUMENT: std::sync::LazyLock<serde_json::Value> = std::sync::LazyLock::new(document);
    Json(DOCUMENT.clone())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// Every route registered in `src/http` is in the document, and the document lists nothing
    /// that is not routed.
    #[test]
    fn document_lists_every_route() {
        let mut routed = BTreeSet::new();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http");
        for entry in std::fs::read_dir(dir).unwrap() {
            let source = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            for piece in source.split(".route(").skip(1) {
                if let Some(path) = piece.trim_start().strip_prefix("\"/") {
                    routed.insert(format!("/{}", path.split('"').next().unwrap()));
                }
            }
        }
        // Pages and static files of the web app are not part of the API.
        routed.retain(|p| {
            p.starts_with("/api/")
                || p.starts_with("/whip/")
                || p.starts_with("/whep/")
                || p.starts_with("/feeds/")
                || ["/healthz", "/readyz", "/metrics"].contains(&p.as_str())
        });
        let document = document();
        let documented: BTreeSet<String> = document["paths"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(routed, documented);
    }

    /// Operations listed as public are those whose handlers take no session, and every
    /// operation id is unique.
    #[test]
    fn public_operations_exist_and_ids_are_unique() {
        let document = document();
        for (method, path) in PUBLIC_OPERATIONS {
            assert!(
                document["paths"][path][method].is_object(),
                "{method} {path} is listed as public but not documented"
            );
        }
        let mut ids = BTreeSet::new();
        for item in document["paths"].as_object().unwrap().values() {
            for op in item.as_object().unwrap().values() {
                let id = op["operationId"].as_str().unwrap().to_owned();
                assert!(ids.insert(id.clone()), "duplicate operationId {id}");
            }
        }
    }
}
