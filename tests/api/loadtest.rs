//! A small run of `homeroom loadtest` against a real server: correctness only, never speed.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{ClassFixture, Db, TestApp, BIN, PASSWORD};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_publisher_twenty_subscribers_all_get_media() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let admin = app.admin().await;
    let class = ClassFixture::new(&app, &admin, "a").await;
    let room = class
        .teacher
        .post_ok(
            &format!("/api/v1/classes/{}/rooms", class.class_id),
            json!({"kind": "classroom", "name": "Load"}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let run = tokio::process::Command::new(BIN)
        .args([
            "loadtest",
            "--server",
            &app.base,
            "--room",
            &room.to_string(),
            "--login",
            "teacher-a",
            "--viewer-login",
            "family-a",
        ])
        .args([
            "--subscribers",
            "20",
            "--ramp",
            "20",
            "--duration",
            "5",
            "--max-loss",
            "1",
        ])
        .arg("--ca")
        .arg(app.workspace.path().join("certs/self-signed.crt"))
        .args(["--server-pid", &app.pid().to_string()])
        .env("LOADTEST_PASSWORD", PASSWORD)
        .env("RUST_LOG", "warn,rtc=error,rtc_ice=error,webrtc=error")
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(90), run)
        .await
        .expect("the run ends by itself")
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "loadtest failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.lines().any(|l| l.starts_with("t=")),
        "progress lines are printed:\n{stdout}"
    );
    let json = &stdout[stdout.find("\n{").expect("a JSON summary") + 1..];
    let summary: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(summary["subscribers_connected"], 20, "{summary}");
    assert_eq!(summary["subscribers_with_media"], 20, "{summary}");
    assert!(summary["loss_pct"].as_f64().unwrap() <= 1.0, "{summary}");
    assert!(
        summary["server_rss_mb"].as_f64().unwrap() > 1.0,
        "{summary}"
    );
    // Join times as the room fills: the first and the last 50 (here, all 20 both times).
    for key in ["join_ms_first50_p95", "join_ms_last50_p95"] {
        assert!(summary[key].as_u64().unwrap() > 0, "{key}: {summary}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_whip_and_whep_too() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let admin = app.admin().await;
    let class = ClassFixture::new(&app, &admin, "a").await;
    let room = class
        .teacher
        .post_ok(
            &format!("/api/v1/classes/{}/rooms", class.class_id),
            json!({"kind": "classroom", "name": "Load"}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let key = class
        .teacher
        .post_ok(&format!("/api/v1/rooms/{room}/stream-keys"), json!({}))
        .await;
    // One family's viewer token serves every WHEP subscriber of the run.
    let token = class
        .family
        .post_ok(&format!("/api/v1/rooms/{room}/viewer-token"), json!({}))
        .await;
    let run = tokio::process::Command::new(BIN)
        .args([
            "loadtest",
            "--whip",
            key["whip_url"].as_str().unwrap(),
            "--whep",
            token["whep_url"].as_str().unwrap(),
        ])
        .args([
            "--subscribers",
            "5",
            "--ramp",
            "10",
            "--duration",
            "3",
            "--max-loss",
            "1",
        ])
        .arg("--ca")
        .arg(app.workspace.path().join("certs/self-signed.crt"))
        .env("LOADTEST_WHIP_KEY", key["stream_key"].as_str().unwrap())
        .env("LOADTEST_WHEP_TOKEN", token["token"].as_str().unwrap())
        .env("RUST_LOG", "warn,rtc=error,rtc_ice=error,webrtc=error")
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the run ends by itself")
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "loadtest failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: serde_json::Value =
        serde_json::from_str(&stdout[stdout.find("\n{").unwrap() + 1..]).unwrap();
    assert_eq!(summary["subscribers_with_media"], 5, "{summary}");
    assert!(summary["loss_pct"].as_f64().unwrap() <= 1.0, "{summary}");
}
