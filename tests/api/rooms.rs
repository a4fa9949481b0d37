//! Rooms as their pages see them: every tutoring room has a host whose arrival opens it, the
//! others wait for it (and then to be let in); `GET /api/v1/rooms/{id}` says who hosts and
//! whether the caller does. Also `GET /api/v1/session`, which answers signed out without an
//! error.

use homeroom::signal::protocol::ServerMessage;
use serde_json::json;

use crate::both_backends;
use crate::helpers::{error_code, ClassFixture, Db, TestApp};
use crate::peer::{self, Credential};

both_backends!(tutoring_rooms_always_have_a_host);

async fn tutoring_rooms_always_have_a_host(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.admin().await;
    let class = ClassFixture::new(&app, &admin, "rm").await;
    let other = ClassFixture::new(&app, &admin, "other").await;
    let rooms = format!("/api/v1/classes/{}/rooms", class.class_id);

    // Made without a host, a tutoring room is hosted by whoever made it.
    let room = class
        .teacher
        .post_ok(&rooms, json!({"kind": "tutoring", "name": "Reading help"}))
        .await;
    assert_eq!(room["host_user_id"], class.teacher.user_id);
    // Families and students cannot host, so they cannot be made hosts; broadcasts have none.
    for (body, code) in [
        (
            json!({"kind": "tutoring", "name": "T", "host_user_id": class.family.user_id}),
            "host_cannot_host",
        ),
        (
            json!({"kind": "tutoring", "name": "T", "host_user_id": other.tutor.user_id}),
            "host_not_member",
        ),
        (
            json!({"kind": "classroom", "name": "C", "host_user_id": class.tutor.user_id}),
            "host_for_tutoring_only",
        ),
    ] {
        assert_eq!(
            error_code(class.teacher.post(&rooms, body).await).await,
            (400, code.to_owned())
        );
    }

    let tutored = class
        .teacher
        .post_ok(
            &rooms,
            json!({"kind": "tutoring", "name": "Maths help", "host_user_id": class.tutor.user_id}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let path = format!("/api/v1/rooms/{tutored}");
    let seen: serde_json::Value = class.family.get(&path).await.json().await.unwrap();
    assert_eq!(seen["host_name"], "tutor-rm");
    assert_eq!(seen["class_name"], "Class rm");
    assert_eq!(seen["you_host"], false);
    assert_eq!(seen["live"], false);
    let hosting: serde_json::Value = class.tutor.get(&path).await.json().await.unwrap();
    assert_eq!(hosting["you_host"], true);
    assert_eq!(
        error_code(other.family.get(&path).await).await,
        (404, "not_found".to_owned())
    );
    let listed: serde_json::Value = class.family.get(&rooms).await.json().await.unwrap();
    assert!(listed
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["id"] == tutored && r["host_name"] == "tutor-rm"));

    // Before the host: not live. The host's arrival starts it; then the family waits to be let in.
    let mut family = peer::connect(&app, Credential::Cookie(&class.family.cookie)).await;
    let early = family.join(tutored).await;
    assert!(
        matches!(early, ServerMessage::Error { ref code, .. } if code == "not_live"),
        "{early:?}"
    );
    let mut tutor = peer::connect(&app, Credential::Cookie(&class.tutor.cookie)).await;
    let ServerMessage::Joined {
        waiting, abilities, ..
    } = tutor.join(tutored).await
    else {
        panic!("the host could not open the room");
    };
    assert!(!waiting && abilities.host);
    let live: serde_json::Value = class.family.get(&path).await.json().await.unwrap();
    assert_eq!(live["live"], true);
    let mut family = peer::connect(&app, Credential::Cookie(&class.family.cookie)).await;
    let ServerMessage::Joined { waiting, .. } = family.join(tutored).await else {
        panic!("the family could not join the live room");
    };
    assert!(waiting, "the family waits for the host to let it in");
}

both_backends!(session_status_answers_signed_out_without_an_error);

async fn session_status_answers_signed_out_without_an_error(db: Db) {
    let app = TestApp::spawn(db).await;
    let signed_out = app
        .anonymous()
        .get(app.url("/api/v1/session"))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_out.status(), 200);
    let body: serde_json::Value = signed_out.json().await.unwrap();
    assert_eq!(body, json!({"signed_in": false}));
    let admin = app.admin().await;
    let body: serde_json::Value = admin.get("/api/v1/session").await.json().await.unwrap();
    assert_eq!(body["signed_in"], true);
    assert_eq!(body["csrf_token"], admin.csrf.as_str());
    assert_eq!(body["user"]["id"], admin.user_id);
}
