//! Web Push end to end: browsers (this test, holding their keys) subscribe through the API;
//! the push service of `push_service.rs` checks every request's VAPID signature and decrypts
//! its payload. Going live reaches each subscribed family of that class once, and nobody else;
//! a post reaches only those who may see it; an expired subscription (410) is forgotten; and
//! notifications queued when the server is SIGKILLed are sent after the restart, none twice.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::both_backends;
use crate::helpers::{Actor, ClassFixture, Db, TestApp};
use crate::peer::{self, Credential};
use crate::push_service::{Browser, PushService};
use homeroom::signal::protocol::ServerMessage;

/// Push endpoints of the test are plain http on loopback: allowed only by this setting.
const INSECURE: &str = "[notify]\nallow_insecure_endpoints = true\nretry_base_ms = 200\n";

async fn subscribe(service: &PushService, actor: &Actor, name: &str) -> Browser {
    let (browser, subscription) = service.browser(name);
    actor
        .post_ok("/api/v1/notifications/subscriptions", subscription)
        .await;
    browser
}

async fn switch_off(actor: &Actor, class_id: i64, kind: &str) {
    let mut class = json!({"class_id": class_id, "live": true, "updates": true, "comments": true});
    class[kind] = json!(false);
    let response = actor
        .send(
            reqwest::Method::PUT,
            "/api/v1/notifications/settings",
            Some(json!({"settings": {"utc_offset": 0, "digest": "off"}, "classes": [class]})),
        )
        .await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
}

/// Waits until the server's log shows `needle` `count` times (the fan-out says what it queued).
async fn logged(app: &TestApp, needle: &str, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.logs().matches(needle).count() < count {
        assert!(Instant::now() < deadline, "{needle:?} not logged");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Deliveries not yet sent or given up, read from the database.
async fn pending(app: &TestApp) -> i64 {
    let db = app.workspace.database().await;
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM notification_outbox WHERE sent_at IS NULL AND failed_at IS NULL",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    db.close().await;
    n
}

async fn post(teacher: &Actor, class_id: i64, body: serde_json::Value) -> i64 {
    teacher
        .post_ok(&format!("/api/v1/classes/{class_id}/posts"), body)
        .await["id"]
        .as_i64()
        .unwrap()
}

both_backends!(going_live_and_posts_reach_exactly_who_may_see_them);

async fn going_live_and_posts_reach_exactly_who_may_see_them(db: Db) {
    let service = PushService::start().await;
    let app = TestApp::spawn_with(db, INSECURE).await;
    let admin = app.admin().await;
    let a = ClassFixture::new(&app, &admin, "pa").await;
    let b = ClassFixture::new(&app, &admin, "pb").await;
    let second = a.family_of_new_student(&app, "Noor").await;
    let quiet = a.family_of_new_student(&app, "Ida").await;

    let fam1 = subscribe(&service, &a.family, "a-family").await;
    let fam2 = subscribe(&service, &second, "a-second").await;
    let off = subscribe(&service, &quiet, "a-live-off").await;
    let other = subscribe(&service, &b.family, "b-family").await;
    let teacher = subscribe(&service, &a.teacher, "a-teacher").await;
    switch_off(&quiet, a.class_id, "live").await;

    let room_id = a
        .teacher
        .post_ok(
            &format!("/api/v1/classes/{}/rooms", a.class_id),
            json!({"kind": "classroom", "name": "Morning circle"}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let mut live = peer::connect(&app, Credential::Cookie(&a.teacher.cookie)).await;
    let joined = live.join(room_id).await;
    assert!(matches!(joined, ServerMessage::Joined { .. }), "{joined:?}");

    // The fan-out says how many it queued; the worker then sends them all.
    logged(&app, "queued went-live notifications", 1).await;
    service
        .wait_for("two live messages", Duration::from_secs(10), |r| {
            r.len() >= 2
        })
        .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while pending(&app).await > 0 {
        assert!(Instant::now() < deadline, "the outbox did not drain");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let received = service.received();
    assert_eq!(received.len(), 2, "{received:#?}");
    for browser in [&fam1, &fam2] {
        let messages = service.accepted_for(browser);
        assert_eq!(messages.len(), 1, "{}: {messages:?}", browser.name);
        assert_eq!(messages[0]["type"], "live");
        assert_eq!(messages[0]["url"], format!("/watch/{room_id}"));
        assert_eq!(messages[0]["vars"]["class"], "Class pa");
        assert_eq!(messages[0]["vars"]["room"], "Morning circle");
    }
    for browser in [&off, &other, &teacher] {
        assert!(service.accepted_for(browser).is_empty(), "{}", browser.name);
    }
    let live_message = &received[0];
    assert_eq!(live_message.urgency.as_deref(), Some("high"));
    assert_eq!(
        live_message.topic.as_deref(),
        Some(&*format!("live-{room_id}"))
    );
    let server: serde_json::Value = a
        .family
        .get("/api/v1/notifications/server")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        live_message.vapid_key,
        server["vapid_public_key"].as_str().unwrap()
    );
    live.leave().await;

    // A post for one student's family reaches that family only; the second family's
    // subscription has expired at the push service (410) and is forgotten when tried.
    service.answer_for(&fam2, 410);
    let private = post(
        &a.teacher,
        a.class_id,
        json!({"body": "Kid pa read aloud", "visibility": "students", "student_ids": [a.student_id]}),
    )
    .await;
    let public = post(
        &a.teacher,
        a.class_id,
        json!({"body": "Field trip on Friday"}),
    )
    .await;
    service
        .wait_for("posts", Duration::from_secs(10), |r| {
            r.iter().filter(|m| m.message["type"] == "post").count() >= 4
        })
        .await;
    let posts_for = |browser: &Browser| -> Vec<String> {
        let mut tags: Vec<String> = service
            .received()
            .iter()
            .filter(|r| r.to == browser.name && r.message["type"] == "post")
            .map(|r| r.message["tag"].as_str().unwrap().to_owned())
            .collect();
        tags.sort();
        tags
    };
    let mut both = vec![format!("post-{private}"), format!("post-{public}")];
    both.sort();
    assert_eq!(posts_for(&fam1), both);
    assert_eq!(
        posts_for(&fam2),
        [format!("post-{public}")],
        "only the class-wide post"
    );
    assert_eq!(
        posts_for(&off),
        [format!("post-{public}")],
        "updates are still on"
    );
    assert!(posts_for(&other).is_empty() && posts_for(&teacher).is_empty());
    let settings: serde_json::Value = second
        .get("/api/v1/notifications/settings")
        .await
        .json()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut subscriptions = settings["subscriptions"].as_array().unwrap().len();
    while subscriptions > 0 {
        assert!(Instant::now() < deadline, "the expired subscription stayed");
        tokio::time::sleep(Duration::from_millis(50)).await;
        let settings: serde_json::Value = second
            .get("/api/v1/notifications/settings")
            .await
            .json()
            .await
            .unwrap();
        subscriptions = settings["subscriptions"].as_array().unwrap().len();
    }
}

both_backends!(queued_notifications_survive_sigkill_and_go_out_once);

async fn queued_notifications_survive_sigkill_and_go_out_once(db: Db) {
    let service = PushService::start().await;
    // The push service is down (503): notifications stay queued, retried with back-off.
    service.answer(503);
    let app = TestApp::spawn_with(db, INSECURE).await;
    let admin = app.admin().await;
    let class = ClassFixture::new(&app, &admin, "kill").await;
    let second = class.family_of_new_student(&app, "Lou").await;
    let fam1 = subscribe(&service, &class.family, "k-family").await;
    let fam2 = subscribe(&service, &second, "k-second").await;
    let posts = [
        post(&class.teacher, class.class_id, json!({"body": "One"})).await,
        post(&class.teacher, class.class_id, json!({"body": "Two"})).await,
    ];
    // Each of the four (two posts to two families) refused at least once: retries of the first
    // ones must not stand for notifications of the second post that are not queued yet.
    service
        .wait_for("a refused try of each", Duration::from_secs(10), |r| {
            let refused: std::collections::HashSet<(&str, &str)> = r
                .iter()
                .filter(|m| !m.accepted)
                .map(|m| (m.to.as_str(), m.message["tag"].as_str().unwrap_or("")))
                .collect();
            refused.len() >= 4
        })
        .await;
    assert_eq!(pending(&app).await, 4, "all four are still queued");
    let workspace = app.kill().await;

    service.answer(201);
    let app = TestApp::start(workspace).await;
    service
        .wait_for("all four accepted", Duration::from_secs(15), |r| {
            r.iter().filter(|m| m.accepted).count() >= 4
        })
        .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while pending(&app).await > 0 {
        assert!(Instant::now() < deadline, "the outbox did not drain");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for browser in [&fam1, &fam2] {
        let mut tags: Vec<String> = service
            .accepted_for(browser)
            .iter()
            .map(|m| m["tag"].as_str().unwrap().to_owned())
            .collect();
        tags.sort();
        let mut expected = posts.map(|id| format!("post-{id}")).to_vec();
        expected.sort();
        assert_eq!(tags, expected, "{}: each post once", browser.name);
    }
}
