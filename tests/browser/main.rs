//! The browser app in a real browser: headless Chromium with a fake camera and microphone,
//! driven by `run.mjs` (playwright-core) against the real server. This file makes the server,
//! the class and the accounts; the script signs in through the pages and checks that media
//! flows (from `getStats()` in the page), chat arrives and the end is shown. Screenshots go to
//! `tests/artifacts/`, and stay there when a test fails.

#[allow(dead_code)]
#[path = "../api/helpers.rs"]
mod helpers;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;

use helpers::{ClassFixture, Db, TestApp, PASSWORD};

/// The browser and the driver, or a message naming what is missing and how to get it.
fn tools() -> (PathBuf, PathBuf) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let chromium =
        PathBuf::from(std::env::var("HOMEROOM_CHROMIUM").unwrap_or("/usr/bin/chromium".into()));
    assert!(
        chromium.exists(),
        "browser tests need Chromium at {}: run ./scripts/test.sh (it installs it with apt-get) \
         or `apt-get install -y chromium`, or set HOMEROOM_CHROMIUM",
        chromium.display()
    );
    let driver = root.join("tests/browser/node_modules/playwright-core");
    assert!(
        driver.exists(),
        "browser tests need playwright-core in tests/browser/node_modules: run ./scripts/test.sh \
         (it runs `npm ci` there)"
    );
    (chromium, root.join("tests/browser/run.mjs"))
}

async fn invite(class: &ClassFixture, role: &str) -> String {
    class
        .teacher
        .post_ok(
            &format!("/api/v1/classes/{}/invites", class.class_id),
            json!({"role": role, "student_id": class.student_id}),
        )
        .await["code"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn room(class: &ClassFixture, kind: &str, host: Option<i64>) -> i64 {
    class
        .teacher
        .post_ok(
            &format!("/api/v1/classes/{}/rooms", class.class_id),
            json!({"kind": kind, "name": format!("{kind} room"), "host_user_id": host}),
        )
        .await["id"]
        .as_i64()
        .unwrap()
}

/// Runs `run.mjs` with `config`; a run stops itself at 160 s with screenshots.
async fn run_browser(script: &Path, config: &serde_json::Value) {
    let mut child = tokio::process::Command::new("node")
        .arg(script)
        .env("HOMEROOM_BROWSER_TEST", config.to_string())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs (install Node.js 20 or newer)");
    let status = tokio::time::timeout(Duration::from_secs(175), child.wait())
        .await
        .expect("the browser tests took longer than 175 s")
        .unwrap();
    assert!(
        status.success(),
        "browser scenarios failed (see above; screenshots in {})",
        config["artifacts"].as_str().unwrap_or("tests/artifacts")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_present_and_tutor_in_chromium() {
    let (chromium, script) = tools();
    let started = Instant::now();
    let app = TestApp::spawn(Db::Sqlite).await;
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/artifacts");
    for shot in ["watch.png", "studio.png", "tutoring.png"] {
        let _ = std::fs::remove_file(artifacts.join(shot));
    }
    let base = json!({
        "base": app.base,
        "chromium": chromium,
        "artifacts": artifacts,
        "password": PASSWORD,
    });
    let with = |extra: serde_json::Value| {
        let mut config = base.clone();
        config
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        config
    };
    // The first admin is made on the set-up page, then the class is made over the API.
    let secret = app.setup_secret().expect("set-up link printed");
    run_browser(&script, &with(json!({"phase": "setup", "secret": secret}))).await;
    let admin = app.sign_in("admin", PASSWORD).await;
    let class = ClassFixture::new(&app, &admin, "web").await;
    app.join(&invite(&class, "family").await, "family2-web")
        .await;
    let classroom = room(&class, "classroom", None).await;
    let tutoring = room(&class, "tutoring", Some(class.tutor.user_id)).await;
    let open_house = room(&class, "open_house", None).await;
    let new_family_invite = invite(&class, "family").await;
    let reset = class
        .teacher
        .post_ok(
            &format!("/api/v1/users/{}/password-reset", class.tutor.user_id),
            json!({}),
        )
        .await;
    let reset_token = reset["reset_url"]
        .as_str()
        .unwrap()
        .split('#')
        .nth(1)
        .unwrap()
        .to_owned();
    run_browser(
        &script,
        &with(json!({
            "teacher": "teacher-web",
            "family1": "family-web",
            "family2": "family2-web",
            "tutor": "tutor-web",
            "student": "student-web",
            "classroom": classroom,
            "tutoring": tutoring,
            "open_house": open_house,
            "class_id": class.class_id,
            "invite": new_family_invite,
            "reset_token": reset_token,
        })),
    )
    .await;
    eprintln!("browser tests took {:?}", started.elapsed());
    for shot in ["watch.png", "studio.png", "tutoring.png"] {
        assert!(artifacts.join(shot).exists(), "{shot} was not written");
    }
}

/// After signing in, the page follows `next` only to a path on this site: values that
/// browsers read as another site (`/\host`, `/<tab>/host`, `//host`) end on `/`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_next_stays_on_site() {
    let (chromium, _) = tools();
    let app = TestApp::spawn(Db::Sqlite).await;
    app.admin().await;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/next.mjs");
    let cases = json!([
        {"next": "/%5Cevil.example/steal", "expect": "/"},
        {"next": "/%09/evil.example/steal", "expect": "/"},
        {"next": "%2F%5C%5Cevil.example", "expect": "/"},
        {"next": "//evil.example/steal", "expect": "/"},
        {"next": "https://evil.example/", "expect": "/"},
        {"next": "/%0A/evil.example", "expect": "/"},
        {"next": "%2F%3Fafter%3Dsignin", "expect": "/?after=signin"},
    ]);
    run_browser(
        &script,
        &json!({
            "base": app.base,
            "chromium": chromium,
            "login": "admin",
            "password": PASSWORD,
            "cases": cases,
        }),
    )
    .await;
}
