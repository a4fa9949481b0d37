//! The server's edges a stranger can reach without an account: `/metrics`, and the answers
//! axum gives before any handler runs.

use crate::helpers::{error_code, Db, TestApp};

/// `/metrics` needs the configured token (anyone else: 404), and made-up methods and paths do
/// not grow it: every label comes from a closed set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_need_the_token_and_stay_bounded() {
    let app = TestApp::spawn_with(Db::Sqlite, "metrics_token = \"metrics-secret-123\"").await;
    let client = app.anonymous();
    let metrics = |token: Option<&'static str>| {
        let mut request = client.get(app.url("/metrics"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    assert_eq!(metrics(None).await.unwrap().status(), 404);
    assert_eq!(metrics(Some("wrong")).await.unwrap().status(), 404);
    let before = metrics(Some("metrics-secret-123")).await.unwrap();
    assert_eq!(before.status(), 200);
    let before = before.text().await.unwrap();

    for i in 0..300 {
        let method = reqwest::Method::from_bytes(format!("FOO{i}").as_bytes()).unwrap();
        let response = client
            .request(method, app.url(&format!("/api/v1/made-up-{i}")))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_client_error());
    }
    let after = metrics(Some("metrics-secret-123"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let series = |text: &str| {
        text.lines()
            .filter(|l| l.starts_with("homeroom_http_requests_total"))
            .count()
    };
    assert!(
        series(&after) <= series(&before) + 3,
        "made-up methods and paths added series:\n{after}"
    );
    assert!(after.contains("method=\"other\""), "{after}");
    assert!(!after.contains("FOO"), "{after}");
}

/// Refusals axum makes itself (unknown route, wrong method, unparsable path parameter) come in
/// the documented JSON error format, like every other error of the API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_refusals_speak_json() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let admin = app.admin().await;
    let (status, code) = error_code(admin.get("/api/v1/no-such-thing").await).await;
    assert_eq!((status, code.as_str()), (404, "not_found"));

    let response = admin
        .send(reqwest::Method::DELETE, "/api/v1/me", None)
        .await;
    assert!(
        response.headers().contains_key("allow"),
        "405 keeps its Allow header"
    );
    let (status, code) = error_code(response).await;
    assert_eq!((status, code.as_str()), (405, "method_not_allowed"));

    let response = admin.get("/api/v1/classes/not-a-number").await;
    let (status, code) = error_code(response).await;
    assert_eq!((status, code.as_str()), (400, "bad_request"));

    let response = app
        .anonymous()
        .post(app.url("/api/v1/session"))
        .header("content-type", "text/plain")
        .body("login=admin")
        .send()
        .await
        .unwrap();
    let (status, code) = error_code(response).await;
    assert!(status == 400 || status == 415, "{status}");
    assert!(!code.is_empty(), "the refusal has a code");
}
