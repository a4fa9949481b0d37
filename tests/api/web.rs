//! The browser app as HTTP serves it: pages, files with their content types and ETags, and the
//! security headers (a strict Content-Security-Policy among them) on every answer.

use crate::helpers::{Db, TestApp, Workspace};

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_and_files_are_served_with_strict_headers() {
    let app = TestApp::spawn(Db::Sqlite).await;
    for path in [
        "/",
        "/signin",
        "/join",
        "/setup",
        "/reset",
        "/guest",
        "/class/1",
        "/watch/2",
        "/studio/3",
        "/tutor/4",
        "/school",
        "/people",
        "/classes",
        "/class/5/manage",
        "/class/5/sheet",
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(
            header(&response, "content-type"),
            "text/html; charset=utf-8"
        );
        let csp = header(&response, "content-security-policy");
        for directive in [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "connect-src 'self' wss:",
            "media-src 'self' blob: mediastream:",
            "frame-ancestors 'none'",
            "object-src 'none'",
        ] {
            assert!(
                csp.contains(directive),
                "{path}: {directive} missing in {csp}"
            );
        }
        assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
        assert_eq!(header(&response, "x-content-type-options"), "nosniff");
        assert_eq!(header(&response, "x-frame-options"), "DENY");
        assert_eq!(header(&response, "referrer-policy"), "same-origin");
        assert_eq!(
            header(&response, "cross-origin-opener-policy"),
            "same-origin"
        );
        assert!(header(&response, "permissions-policy").contains("camera=(self)"));
        assert!(header(&response, "strict-transport-security").contains("max-age="));
        let html = response.text().await.unwrap();
        assert!(html.contains(r#"<script type="module" src="/static/js/app.js">"#));
        assert!(!html.contains("style="), "no inline styles");
    }
    // The API carries the same headers.
    let api = app.get("/api/v1/me").await;
    assert!(header(&api, "content-security-policy").contains("frame-ancestors 'none'"));

    for (path, kind) in [
        ("/static/js/app.js", "text/javascript; charset=utf-8"),
        ("/static/css/app.css", "text/css; charset=utf-8"),
        ("/static/i18n/es.json", "application/json"),
        ("/static/icon.svg", "image/svg+xml"),
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(header(&response, "content-type"), kind, "{path}");
        assert_eq!(header(&response, "cache-control"), "no-cache");
        let etag = header(&response, "etag").to_owned();
        assert!(etag.starts_with('"') && etag.len() > 10, "{path}: {etag}");
        let again = app
            .client
            .get(app.url(path))
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "{path} revalidates");
    }
    for path in [
        "/static/nope.js",
        "/static/../Cargo.toml",
        "/static/%2e%2e/Cargo.toml",
        "/static/.hidden",
        "/nowhere",
    ] {
        assert_eq!(app.get(path).await.status(), 404, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_dir_serves_the_app_from_disk() {
    let workspace = Workspace::new(Db::Sqlite).await;
    let web = workspace.path().join("web");
    std::fs::create_dir_all(web.join("js")).unwrap();
    std::fs::write(web.join("index.html"), "<!doctype html><p>from disk</p>").unwrap();
    std::fs::write(web.join("js/app.js"), "export const edited = true;").unwrap();
    workspace.write_config(&format!("web_dir = \"{}\"", web.display()));
    let app = TestApp::start(workspace).await;
    assert!(app
        .get("/watch/1")
        .await
        .text()
        .await
        .unwrap()
        .contains("from disk"));
    let script = app.get("/static/js/app.js").await;
    assert_eq!(
        header(&script, "content-type"),
        "text/javascript; charset=utf-8"
    );
    assert_eq!(script.text().await.unwrap(), "export const edited = true;");
    assert_eq!(app.get("/static/css/app.css").await.status(), 404);
}
