//! The browser app: `web/` built into the binary (or read from `web_dir` during development),
//! its pages and its files under `/static/`.
//!
//! Every page is the same `index.html`; the app's router picks the page from the path; the
//! service worker and the web app manifest are served at the root (`ROOT_FILES`). Files
//! carry a strong ETag (SHA-256 of the bytes) and `no-cache`, so browsers revalidate cheaply
//! and never run a stale script after an upgrade.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::LazyLock;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha256};

use crate::state::AppState;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/web_files.rs"));
}

/// Paths the app's router knows; each answers with `index.html`.
const PAGES: &[&str] = &[
    "/",
    "/signin",
    "/join",
    "/setup",
    "/reset",
    "/guest",
    "/class/{id}",
    "/watch/{id}",
    "/studio/{id}",
    "/tutor/{id}",
    "/session/{id}",
    "/recording/{id}",
    "/school",
    "/people",
    "/classes",
    "/class/{id}/manage",
    "/class/{id}/sheet",
    "/notifications",
    "/notifications/stop",
    "/check",
];

/// Files served at the root rather than under `/static/`: a service worker controls only
/// pages under its own path, so it must be `/sw.js` to cover the whole app.
const ROOT_FILES: &[(&str, &str)] = &[
    ("/sw.js", "sw.js"),
    ("/manifest.webmanifest", "manifest.webmanifest"),
];

pub fn router() -> Router<AppState> {
    let mut router = Router::new().route("/static/{*path}", get(file));
    for page in PAGES {
        router = router.route(page, get(index));
    }
    for (path, name) in ROOT_FILES {
        router = router.route(
            path,
            get(
                move |State(state): State<AppState>, headers: HeaderMap| async move {
                    serve(&state, &headers, name).await
                },
            ),
        );
    }
    router
}

/// A file's bytes and its ETag.
struct Asset {
    bytes: Cow<'static, [u8]>,
    etag: String,
}

impl Asset {
    fn new(bytes: Cow<'static, [u8]>) -> Asset {
        let digest = Sha256::digest(&bytes);
        Asset {
            etag: format!("\"{}\"", hex::encode(&digest[..16])),
            bytes,
        }
    }
}

static EMBEDDED: LazyLock<HashMap<&'static str, Asset>> = LazyLock::new(|| {
    embedded::FILES
        .iter()
        .map(|(name, bytes)| (*name, Asset::new(Cow::Borrowed(*bytes))))
        .collect()
});

/// Finds `name` (a path inside `web/`) on disk when configured, else in the binary.
async fn load(state: &AppState, name: &str) -> Option<Asset> {
    if name
        .split('/')
        .any(|part| part.is_empty() || part.starts_with('.'))
    {
        return None;
    }
    match &state.config.web_dir {
        Some(dir) => tokio::fs::read(dir.join(name))
            .await
            .ok()
            .map(|bytes| Asset::new(Cow::Owned(bytes))),
        None => EMBEDDED.get(name).map(|asset| Asset {
            bytes: asset.bytes.clone(),
            etag: asset.etag.clone(),
        }),
    }
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("webmanifest") => "application/manifest+json",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

async fn serve(state: &AppState, headers: &HeaderMap, name: &str) -> Response {
    let Some(asset) = load(state, name).await else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let etag = HeaderValue::from_str(&asset.etag).expect("hex is a valid header");
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == asset.etag));
    let common = [
        (header::ETAG, etag),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
    ];
    if fresh {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    (
        common,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(content_type(name)),
        )],
        asset.bytes.into_owned(),
    )
        .into_response()
}

async fn index(State(state): State<AppState>, headers: HeaderMap) -> Response {
    serve(&state, &headers, "index.html").await
}

async fn file(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(path): Path<String>,
) -> Response {
    serve(&state, &headers, &path).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_app_is_built_in() {
        for name in ["index.html", "js/app.js", "css/app.css", "i18n/en.json"] {
            assert!(EMBEDDED.contains_key(name), "{name} is not embedded");
        }
        assert_eq!(content_type("js/app.js"), "text/javascript; charset=utf-8");
    }

    #[test]
    fn both_catalogues_have_the_same_keys() {
        let keys = |name: &str| {
            let value: serde_json::Value =
                serde_json::from_slice(&EMBEDDED[name].bytes).expect("catalogue is JSON");
            let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
            keys.sort();
            keys
        };
        assert_eq!(keys("i18n/en.json"), keys("i18n/es.json"));
    }
}
