//! The class page's push channel (`GET /api/v1/classes/{id}/events`, Server-Sent Events):
//! members learn at once that a session started or ended and that posts and comments were
//! written; outsiders get 404, and nobody hears of a post they may not see.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::both_backends;
use crate::helpers::{error_code, Actor, ClassFixture, Db, TestApp};
use crate::peer::{self, Credential};
use homeroom::signal::protocol::ServerMessage;

/// An open event stream, read event by event.
struct Events {
    response: reqwest::Response,
    buffer: String,
}

impl Events {
    async fn open(actor: &Actor, class_id: i64) -> Events {
        let response = actor
            .get(&format!("/api/v1/classes/{class_id}/events"))
            .await;
        assert_eq!(response.status(), 200, "the stream opens");
        let kind = response.headers()["content-type"].to_str().unwrap();
        assert!(kind.starts_with("text/event-stream"), "{kind}");
        Events {
            response,
            buffer: String::new(),
        }
    }

    /// The next event's name and data, or `None` when none comes within `within`.
    async fn next(&mut self, within: Duration) -> Option<(String, serde_json::Value)> {
        let deadline = Instant::now() + within;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut name = None;
                let mut data = None;
                for line in block.lines() {
                    if let Some(value) = line.strip_prefix("event:") {
                        name = Some(value.trim().to_owned());
                    } else if let Some(value) = line.strip_prefix("data:") {
                        data = Some(serde_json::from_str(value.trim()).expect("data is JSON"));
                    }
                }
                // Comments (keep-alives) and the retry hint carry no event.
                if let (Some(name), Some(data)) = (name, data) {
                    return Some((name, data));
                }
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            match tokio::time::timeout(left, self.response.chunk()).await {
                Ok(Ok(Some(chunk))) => self.buffer.push_str(&String::from_utf8_lossy(&chunk)),
                Ok(_) => return None,
                Err(_) => return None,
            }
        }
    }
}

async fn classroom(class: &ClassFixture) -> i64 {
    class
        .teacher
        .post_ok(
            &format!("/api/v1/classes/{}/rooms", class.class_id),
            json!({"kind": "classroom", "name": "Morning circle"}),
        )
        .await["id"]
        .as_i64()
        .unwrap()
}

both_backends!(members_hear_sessions_start_and_end_at_once);

async fn members_hear_sessions_start_and_end_at_once(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.admin().await;
    let class = ClassFixture::new(&app, &admin, "ev").await;
    let room_id = classroom(&class).await;
    let mut family = Events::open(&class.family, class.class_id).await;

    let started = Instant::now();
    let mut teacher = peer::connect(&app, Credential::Cookie(&class.teacher.cookie)).await;
    let joined = teacher.join(room_id).await;
    let ServerMessage::Joined { session_id, .. } = joined else {
        panic!("the teacher could not go live: {joined:?}");
    };
    let (name, data) = family
        .next(Duration::from_secs(2))
        .await
        .expect("session_started within 2 s");
    assert_eq!(name, "session_started");
    assert_eq!(
        data,
        json!({"type": "session_started", "room_id": room_id, "session_id": session_id})
    );
    assert!(started.elapsed() < Duration::from_secs(2));

    teacher.leave().await;
    let (name, data) = family
        .next(Duration::from_secs(2))
        .await
        .expect("session_ended within 2 s");
    assert_eq!(name, "session_ended");
    assert_eq!(data["room_id"], room_id);
    assert_eq!(data["session_id"], session_id);
}

both_backends!(outsiders_get_404_and_tutors_403);

async fn outsiders_get_404_and_tutors_403(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.admin().await;
    let class = ClassFixture::new(&app, &admin, "ev").await;
    let other = ClassFixture::new(&app, &admin, "other").await;
    let path = format!("/api/v1/classes/{}/events", class.class_id);
    assert_eq!(
        error_code(other.family.get(&path).await).await,
        (404, "not_found".into())
    );
    assert_eq!(
        error_code(other.teacher.get(&path).await).await,
        (404, "not_found".into())
    );
    assert_eq!(
        error_code(class.family.get("/api/v1/classes/999999/events").await).await,
        (404, "not_found".into())
    );
    // Tutors do not read the class timeline, so they do not hear of it either.
    assert_eq!(error_code(class.tutor.get(&path).await).await.0, 403);
    let anonymous = app.anonymous().get(app.url(&path)).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
}

both_backends!(nobody_hears_of_a_post_they_may_not_see);

async fn nobody_hears_of_a_post_they_may_not_see(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.admin().await;
    let class = ClassFixture::new(&app, &admin, "ev").await;
    let posts = format!("/api/v1/classes/{}/posts", class.class_id);
    let mia_family = class.family_of_new_student(&app, "Mia").await;
    let mut family = Events::open(&class.family, class.class_id).await;
    let mut mias = Events::open(&mia_family, class.class_id).await;
    let mut teacher = Events::open(&class.teacher, class.class_id).await;

    // A post for the fixture child's family only, then one for everyone.
    let private = class
        .teacher
        .post_ok(&posts, json!({"body": "Kid ev read a chapter.", "visibility": "students", "student_ids": [class.student_id]}))
        .await["id"]
        .as_i64()
        .unwrap();
    let public = class
        .teacher
        .post_ok(&posts, json!({"body": "Field trip on Friday."}))
        .await["id"]
        .as_i64()
        .unwrap();

    let within = Duration::from_secs(2);
    for (who, stream) in [("teacher", &mut teacher), ("family", &mut family)] {
        for id in [private, public] {
            let (name, data) = stream.next(within).await.unwrap_or_else(|| {
                panic!("{who} hears of post {id}");
            });
            assert_eq!(
                (name.as_str(), data["post_id"].as_i64()),
                ("post", Some(id))
            );
        }
    }
    // Mia's family hears of the public post only: events keep their order, so the private
    // one would have come first.
    let (name, data) = mias.next(within).await.expect("the public post");
    assert_eq!(
        (name.as_str(), data),
        ("post", json!({"type": "post", "post_id": public}))
    );

    // A comment on the private post reaches its family, never Mia's.
    let comment = class
        .family
        .post_ok(
            &format!("/api/v1/posts/{private}/comments"),
            json!({"body": "Proud of you!"}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let (name, data) = family.next(within).await.expect("the comment");
    assert_eq!(
        (name.as_str(), data),
        (
            "comment",
            json!({"type": "comment", "post_id": private, "comment_id": comment})
        )
    );
    assert_eq!(mias.next(Duration::from_millis(700)).await, None);
}
