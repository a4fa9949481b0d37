//! The browser app in a real browser: headless Chromium with a fake camera and microphone,
//! driven by `run.mjs` (playwright-core) against the real server. This file makes the server,
//! the class and the accounts; the script signs in through the pages and checks that media
//! flows (from `getStats()` in the page), chat arrives and the end is shown. Screenshots go to
//! `tests/artifacts/`, and stay there when a test fails.

#[allow(dead_code)]
#[path = "../api/helpers.rs"]
mod helpers;
mod netns;
mod network;
mod simulcast;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

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
    run_script(script, config, 175).await
}

/// `node script`, told `config` and to stop itself 15 s before `limit_s` (`limit_s` in its
/// config).
fn node(script: &Path, config: &serde_json::Value, limit_s: u64) -> tokio::process::Command {
    let mut config = config.clone();
    config["limit_s"] = json!(limit_s - 15);
    let mut command = tokio::process::Command::new("node");
    command
        .arg(script)
        .env("HOMEROOM_BROWSER_TEST", config.to_string())
        .kill_on_drop(true);
    command
}

/// Fails the test unless `run` (a script's run, to its exit) ends well within `limit_s`.
async fn passes(run: impl Future<Output = ExitStatus>, config: &serde_json::Value, limit_s: u64) {
    let status = tokio::time::timeout(Duration::from_secs(limit_s), run)
        .await
        .unwrap_or_else(|_| panic!("the browser tests took longer than {limit_s} s"));
    assert!(
        status.success(),
        "browser scenarios failed (see above; screenshots in {})",
        config["artifacts"].as_str().unwrap_or("tests/artifacts")
    );
}

/// Runs a browser script, which stops itself 15 s before `limit_s`.
async fn run_script(script: &Path, config: &serde_json::Value, limit_s: u64) {
    let mut child = node(script, config, limit_s)
        .spawn()
        .expect("node runs (install Node.js 20 or newer)");
    passes(async { child.wait().await.unwrap() }, config, limit_s).await
}

/// Runs a browser script that has the test act at points of its own: `step(name)` in
/// common.mjs prints `step: <name>` and waits; `on_step(name)` acts (slows a network down, say)
/// and the script goes on. The script's output is the test's (shown when it fails).
async fn run_script_with_steps(
    script: &Path,
    config: &serde_json::Value,
    limit_s: u64,
    mut on_step: impl FnMut(&str),
) {
    let mut child = node(script, config, limit_s)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("node runs (install Node.js 20 or newer)");
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let run = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            println!("{line}");
            if let Some(step) = line.strip_prefix("step: ") {
                on_step(step);
                stdin.write_all(b"done\n").await.unwrap();
            }
        }
        child.wait().await.unwrap()
    };
    passes(run, config, limit_s).await
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
    // A history longer than the timeline's first page (10 items), for "Older".
    for n in 0..10 {
        class
            .teacher
            .post_ok(
                &format!("/api/v1/classes/{}/posts", class.class_id),
                json!({"body": format!("Earlier update {n}")}),
            )
            .await;
    }
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

/// The server, a class with one person in every role (and a second family), a classroom and a
/// tutoring room hosted by the tutor, all made over the API; the config the newer scripts read.
async fn live_class(tag: &str) -> (TestApp, serde_json::Value) {
    live_class_with(tag, "").await
}

/// The same on a server with `extra` config.
async fn live_class_with(tag: &str, extra: &str) -> (TestApp, serde_json::Value) {
    let app = TestApp::spawn_with(Db::Sqlite, extra).await;
    let admin = app.admin().await;
    let class = ClassFixture::new(&app, &admin, tag).await;
    let family2 = format!("family2-{tag}");
    app.join(&invite(&class, "family").await, &family2).await;
    let classroom = room(&class, "classroom", None).await;
    let tutoring = room(&class, "tutoring", Some(class.tutor.user_id)).await;
    class
        .teacher
        .post_ok(
            &format!("/api/v1/classes/{}/posts", class.class_id),
            json!({"body": "**Welcome** to the class.", "targets": ["Says hello"]}),
        )
        .await;
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/artifacts");
    let config = json!({
        "base": app.base,
        "chromium": tools().0,
        "artifacts": artifacts,
        "password": PASSWORD,
        "admin": "admin",
        "teacher": format!("teacher-{tag}"),
        "family": format!("family-{tag}"),
        "family2": family2,
        "tutor": format!("tutor-{tag}"),
        "tutor_name": format!("tutor-{tag}"),
        "class_id": class.class_id,
        "class_name": format!("Class {tag}"),
        "classroom": classroom,
        "classroom_name": "classroom room",
        "tutoring": tutoring,
    });
    (app, config)
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/browser")
        .join(name)
}

/// Class pages learn of sessions and posts within 2 s without a reload; the watch page ends
/// with a link to the log; a tutoring room is never a dead end for those waiting for its host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_pages_stay_current() {
    let (_app, config) = live_class("live").await;
    run_browser(&script("live_pages.mjs"), &config).await;
}

/// A family turned away by a full server is told so on the watch page (not "connection
/// lost"), and the page gets in by itself once there is room (`full.mjs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_server_is_explained_and_the_page_gets_in_when_there_is_room() {
    let (_app, config) = live_class_with("full", "[limits]\nmax_participants_per_node = 2").await;
    run_browser(&script("full.mjs"), &config).await;
}

/// axe-core finds no WCAG A/AA violation on any page in English or Spanish; on a 375 px phone
/// no page is wider than the screen (screenshots in tests/artifacts/phone/); signed-out pages
/// log no console errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_are_accessible_on_phones() {
    let (_app, config) = live_class("a11y").await;
    let phone = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/artifacts/phone");
    let _ = std::fs::remove_dir_all(&phone);
    // About a hundred axe runs: more time than the scenarios take.
    run_script(&script("a11y.mjs"), &config, 300).await;
    let shots = std::fs::read_dir(&phone).map(|d| d.count()).unwrap_or(0);
    assert!(
        shots >= 20,
        "only {shots} phone screenshots in {}",
        phone.display()
    );
}

/// A school sets itself up from the browser, from an empty server (only the set-up link that
/// the server printed): `setup.mjs` clicks and types through every step, then prints an
/// invitation sheet and reads its QR code back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn school_sets_itself_up_in_chromium() {
    let (chromium, _) = tools();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/setup.mjs");
    for module in ["jsqr", "pngjs"] {
        assert!(
            script.with_file_name("node_modules").join(module).exists(),
            "the set-up test reads QR codes with {module}: run `npm ci` in tests/browser"
        );
    }
    let app = TestApp::spawn(Db::Sqlite).await;
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/artifacts");
    let shots = [
        "checklist-done.png",
        "manage-class.png",
        "invitation-sheet-es.png",
    ];
    for shot in shots {
        let _ = std::fs::remove_file(artifacts.join(shot));
    }
    let secret = app.setup_secret().expect("set-up link printed");
    run_browser(
        &script,
        &json!({
            "base": app.base,
            "chromium": chromium,
            "artifacts": artifacts,
            "password": PASSWORD,
            "secret": secret,
        }),
    )
    .await;
    for shot in shots {
        assert!(artifacts.join(shot).exists(), "{shot} was not written");
    }
}

/// From an empty server to live video, on the pages alone (`school_day.mjs`): set-up as above,
/// then the teacher goes live and the family's open class page shows the banner within 2 s and
/// its watch page decodes video; the tutor opens the tutoring room, lets the family in, and both
/// decode each other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_school_day_from_an_empty_server() {
    let (chromium, _) = tools();
    let app = TestApp::spawn(Db::Sqlite).await;
    let secret = app.setup_secret().expect("set-up link printed");
    let config = json!({
        "base": app.base,
        "chromium": chromium,
        "artifacts": Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/artifacts"),
        "password": PASSWORD,
        "secret": secret,
    });
    run_script(&script("school_day.mjs"), &config, 240).await;
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
