//! A school sets itself up: its name and first-run checklist, accounts an admin makes and
//! deactivates, archived classes, students renamed and removed, invites with who joined, and
//! rooms renamed, re-hosted and deleted. Over real HTTPS on both databases.

use homeroom::signal::protocol::ServerMessage;
use reqwest::Method;
use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{error_code, ClassFixture, Db, TestApp, PASSWORD};
use crate::peer::{self, Credential};

both_backends!(
    school_name_and_checklist,
    deactivation_ends_sessions_sign_in_and_feeds,
    archived_classes_keep_history_but_close,
    students_rename_and_remove,
    invites_list_who_joined_and_qr,
    members_and_sibling_invites,
    rooms_rename_rehost_and_delete,
    tutoring_room_entry_list,
);

async fn json_of(response: reqwest::Response) -> Value {
    let status = response.status();
    let text = response.text().await.unwrap();
    assert!(status.is_success(), "{status} {text}");
    serde_json::from_str(&text).unwrap()
}

async fn school_name_and_checklist(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.admin().await;
    let school = json_of(admin.get("/api/v1/school").await).await;
    assert_eq!(school["name"], Value::Null);
    assert_eq!(school["setup"]["school_named"], false);
    assert_eq!(school["setup"]["teachers"], 0);
    assert_eq!(school["setup"]["classes"], 0);

    let named = admin
        .send(
            Method::PUT,
            "/api/v1/school",
            Some(json!({"name": "  Lincoln Elementary "})),
        )
        .await;
    assert_eq!(named.status(), 204);
    let empty = admin
        .send(Method::PUT, "/api/v1/school", Some(json!({"name": " "})))
        .await;
    assert_eq!(error_code(empty).await, (400, "invalid_name".into()));

    // An account made as a teacher counts before it teaches anything.
    let made = admin
        .post_ok(
            "/api/v1/users",
            json!({"login": "rivera", "display_name": "Ms Rivera", "role": "teacher"}),
        )
        .await;
    assert_eq!(made["user"]["staff_role"], "teacher");
    assert_eq!(made["user"]["deactivated"], false);
    let school = json_of(admin.get("/api/v1/school").await).await;
    assert_eq!(school["name"], "Lincoln Elementary");
    assert_eq!(school["setup"]["school_named"], true);
    assert_eq!(school["setup"]["teachers"], 1);
    assert_eq!(school["setup"]["classes"], 0);
    let bad_role = admin
        .post(
            "/api/v1/users",
            json!({"login": "x-role", "display_name": "X", "role": "janitor"}),
        )
        .await;
    assert_eq!(error_code(bad_role).await, (400, "invalid_role".into()));

    // Anyone reads the name (the sign-in page shows it); only admins see the checklist and
    // change the name.
    let anonymous: Value = app.get("/api/v1/school").await.json().await.expect("json");
    assert_eq!(anonymous["name"], "Lincoln Elementary");
    assert!(anonymous.get("setup").is_none(), "{anonymous}");
    let class = ClassFixture::new(&app, &admin, "s").await;
    let teacher_view = json_of(class.teacher.get("/api/v1/school").await).await;
    assert!(teacher_view.get("setup").is_none());
    let refused = class
        .teacher
        .send(Method::PUT, "/api/v1/school", Some(json!({"name": "Mine"})))
        .await;
    assert_eq!(error_code(refused).await, (403, "admin_only".into()));
    let school = json_of(admin.get("/api/v1/school").await).await;
    assert_eq!(school["name"], "Lincoln Elementary");
    assert_eq!(school["setup"]["teachers"], 2);
    assert_eq!(school["setup"]["classes"], 1);
}

async fn deactivation_ends_sessions_sign_in_and_feeds(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.admin().await;
    let class = ClassFixture::new(&app, &admin, "d").await;
    let family_id = class.family.user_id;
    let feed = class
        .family
        .post_ok(
            &format!("/api/v1/classes/{}/feed-token", class.class_id),
            json!({}),
        )
        .await["feed_url"]
        .as_str()
        .unwrap()
        .to_owned();
    let feed_path = format!("/feeds/{}", feed.rsplit('/').next().unwrap());
    assert_eq!(app.get(&feed_path).await.status(), 200);

    // A teacher may not deactivate anyone, nor an admin themselves.
    let path = format!("/api/v1/users/{family_id}/deactivate");
    let by_teacher = class.teacher.post(&path, json!({})).await;
    assert_eq!(error_code(by_teacher).await, (403, "admin_only".into()));
    assert_eq!(class.family.get("/api/v1/me").await.status(), 200);
    let own = admin
        .post(
            &format!("/api/v1/users/{}/deactivate", admin.user_id),
            json!({}),
        )
        .await;
    assert_eq!(
        error_code(own).await,
        (400, "cannot_deactivate_self".into())
    );
    let unknown = admin
        .post("/api/v1/users/99999/deactivate", json!({}))
        .await;
    assert_eq!(error_code(unknown).await, (404, "not_found".into()));

    let done = admin.post(&path, json!({})).await;
    assert_eq!(done.status(), 204);
    // The session ended, sign-in is refused, the feed link reads nothing.
    let me = class.family.get("/api/v1/me").await;
    assert_eq!(error_code(me).await, (401, "unauthorized".into()));
    let again = app
        .anonymous()
        .post(app.url("/api/v1/session"))
        .json(&json!({"login": "family-d", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(again).await, (403, "account_deactivated".into()));
    let wrong = app
        .anonymous()
        .post(app.url("/api/v1/session"))
        .json(&json!({"login": "family-d", "password": "not the password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(wrong).await, (401, "bad_credentials".into()));
    assert_eq!(app.get(&feed_path).await.status(), 404);

    // History kept: still listed, still a member, flagged.
    let users = json_of(admin.get("/api/v1/users").await).await;
    let listed = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"] == family_id)
        .expect("still listed");
    assert_eq!(listed["deactivated"], true);
    let members = json_of(
        class
            .teacher
            .get(&format!("/api/v1/classes/{}/members", class.class_id))
            .await,
    )
    .await;
    assert!(members
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["user_id"] == family_id));

    // A deactivated teacher's stream key publishes for nobody.
    let classroom = class
        .teacher
        .post_ok(
            &format!("/api/v1/classes/{}/rooms", class.class_id),
            json!({"kind": "classroom", "name": "Main"}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let key = class
        .teacher
        .post_ok(&format!("/api/v1/rooms/{classroom}/stream-keys"), json!({}))
        .await["stream_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let whip = |key: String| {
        let client = app.anonymous();
        let url = app.url(&format!("/whip/{classroom}"));
        async move {
            client
                .post(url)
                .bearer_auth(key)
                .header("content-type", "application/sdp")
                .body("v=0\r\n")
                .send()
                .await
                .unwrap()
        }
    };
    // Active, the key gets as far as reading the (bad) offer.
    assert_eq!(
        error_code(whip(key.clone()).await).await,
        (400, "bad_sdp".into())
    );
    let teacher_off = admin
        .post(
            &format!("/api/v1/users/{}/deactivate", class.teacher.user_id),
            json!({}),
        )
        .await;
    assert_eq!(teacher_off.status(), 204);
    assert_eq!(
        error_code(whip(key).await).await,
        (403, "not_allowed".into())
    );

    // Reactivated, the family signs in again; the old feed link works again too.
    let back = admin
        .post(&format!("/api/v1/users/{family_id}/reactivate"), json!({}))
        .await;
    assert_eq!(back.status(), 204);
    let family = app.sign_in("family-d", PASSWORD).await;
    assert_eq!(family.get("/api/v1/me").await.status(), 200);
    let by_family = family
        .post(&format!("/api/v1/users/{family_id}/reactivate"), json!({}))
        .await;
    assert_eq!(error_code(by_family).await, (403, "admin_only".into()));
}

async fn archived_classes_keep_history_but_close(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.admin().await;
    let class = ClassFixture::new(&app, &admin, "a").await;
    let other = ClassFixture::new(&app, &admin, "b").await;
    let path = format!("/api/v1/classes/{}", class.class_id);
    let classroom = class
        .teacher
        .post_ok(
            &format!("/api/v1/classes/{}/rooms", class.class_id),
            json!({"kind": "classroom", "name": "Main"}),
        )
        .await["id"]
        .as_i64()
        .unwrap();

    // Outsiders learn nothing; families may not archive.
    let outsider = other
        .teacher
        .send(Method::PATCH, &path, Some(json!({"archived": true})))
        .await;
    assert_eq!(error_code(outsider).await, (404, "not_found".into()));
    let family = class
        .family
        .send(Method::PATCH, &path, Some(json!({"archived": true})))
        .await;
    assert_eq!(error_code(family).await, (403, "not_allowed".into()));

    let archived = class
        .teacher
        .send(
            Method::PATCH,
            &path,
            Some(json!({"archived": true, "name": "Class a (2025)"})),
        )
        .await;
    assert_eq!(archived.status(), 204);

    // Families' lists drop it; teachers and admins still list it, flagged.
    let ids = |v: &Value| -> Vec<i64> {
        v["classes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_i64().unwrap())
            .collect()
    };
    let family_me = json_of(class.family.get("/api/v1/me").await).await;
    assert!(!ids(&family_me).contains(&class.class_id), "{family_me}");
    let teacher_me = json_of(class.teacher.get("/api/v1/me").await).await;
    assert!(ids(&teacher_me).contains(&class.class_id));
    let listed = json_of(admin.get("/api/v1/classes").await).await;
    let entry = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == class.class_id)
        .unwrap()
        .clone();
    assert!(entry["archived_at"].is_i64(), "{entry}");
    assert_eq!(entry["name"], "Class a (2025)");

    // History stays readable by its members.
    assert_eq!(class.family.get(&path).await.status(), 200);
    let timeline = class
        .family
        .get(&format!("/api/v1/classes/{}/timeline", class.class_id))
        .await;
    assert_eq!(timeline.status(), 200);

    // Nothing new: no rooms, no invites, and no room goes live.
    let room = class
        .teacher
        .post(
            &format!("/api/v1/classes/{}/rooms", class.class_id),
            json!({"kind": "classroom", "name": "New"}),
        )
        .await;
    assert_eq!(error_code(room).await, (409, "class_archived".into()));
    let invite = class
        .teacher
        .post(
            &format!("/api/v1/classes/{}/invites", class.class_id),
            json!({"role": "tutor"}),
        )
        .await;
    assert_eq!(error_code(invite).await, (409, "class_archived".into()));
    let mut teacher_peer = peer::connect(&app, Credential::Cookie(&class.teacher.cookie)).await;
    match teacher_peer.join(classroom).await {
        ServerMessage::Error { code, .. } => assert_eq!(code, "class_archived"),
        other => panic!("joined an archived class's room: {other:?}"),
    }

    // Back from the archive, it is open again.
    let back = class
        .teacher
        .send(Method::PATCH, &path, Some(json!({"archived": false})))
        .await;
    assert_eq!(back.status(), 204);
    let family_me = json_of(class.family.get("/api/v1/me").await).await;
    assert!(ids(&family_me).contains(&class.class_id));
    let mut teacher_peer = peer::connect(&app, Credential::Cookie(&class.teacher.cookie)).await;
    let reply = teacher_peer.join(classroom).await;
    assert!(matches!(reply, ServerMessage::Joined { .. }), "{reply:?}");
}

async fn students_rename_and_remove(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.admin().await;
    let class = ClassFixture::new(&app, &admin, "r").await;
    let other = ClassFixture::new(&app, &admin, "q").await;
    let students = format!("/api/v1/classes/{}/students", class.class_id);
    let one = format!("{students}/{}", class.student_id);

    let outsider = other
        .teacher
        .send(Method::PATCH, &one, Some(json!({"name": "X"})))
        .await;
    assert_eq!(error_code(outsider).await, (404, "not_found".into()));
    let by_family = class
        .family
        .send(Method::PATCH, &one, Some(json!({"name": "X"})))
        .await;
    assert_eq!(error_code(by_family).await, (403, "not_allowed".into()));
    // Another class's student is not reachable through this class.
    let elsewhere = class
        .teacher
        .send(
            Method::PATCH,
            &format!("{students}/{}", other.student_id),
            Some(json!({"name": "X"})),
        )
        .await;
    assert_eq!(error_code(elsewhere).await, (404, "not_found".into()));
    let blank = class
        .teacher
        .send(Method::PATCH, &one, Some(json!({"name": "  "})))
        .await;
    assert_eq!(error_code(blank).await, (400, "invalid_name".into()));

    let renamed = class
        .teacher
        .send(Method::PATCH, &one, Some(json!({"name": "Ana María"})))
        .await;
    assert_eq!(renamed.status(), 204);
    let family_sees = json_of(class.family.get(&students).await).await;
    assert_eq!(family_sees[0]["name"], "Ana María");

    let removed = class.teacher.send(Method::DELETE, &one, None).await;
    assert_eq!(removed.status(), 204);
    let left = json_of(class.teacher.get(&students).await).await;
    assert!(left.as_array().unwrap().is_empty(), "{left}");
    let twice = class.teacher.send(Method::DELETE, &one, None).await;
    assert_eq!(error_code(twice).await, (404, "not_found".into()));
    // The family stays a member, with no child linked now.
    let family_sees = json_of(class.family.get(&students).await).await;
    assert!(family_sees.as_array().unwrap().is_empty());
    assert_eq!(
        class
            .family
            .get(&format!("/api/v1/classes/{}", class.class_id))
            .await
            .status(),
        200
    );
}

async fn invites_list_who_joined_and_qr(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.admin().await;
    let class = ClassFixture::new(&app, &admin, "i").await;
    let other = ClassFixture::new(&app, &admin, "j").await;
    let invites = format!("/api/v1/classes/{}/invites", class.class_id);
    let created = class
        .teacher
        .post_ok(
            &invites,
            json!({"role": "family", "student_id": class.student_id}),
        )
        .await;
    let code = created["code"].as_str().unwrap().to_owned();
    let joined = app.join(&code, "grandma-i").await;

    let list = json_of(class.teacher.get(&invites).await).await;
    let entry = list
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == created["invite"]["id"])
        .unwrap()
        .clone();
    assert_eq!(entry["uses"], 1);
    assert_eq!(entry["joined"][0]["user_id"], joined.user_id);
    assert_eq!(entry["joined"][0]["display_name"], "grandma-i");
    let outsider = other.teacher.get(&invites).await;
    assert_eq!(error_code(outsider).await, (404, "not_found".into()));

    // The QR code for the printed sheet: an SVG for a usable code only.
    let qr = app
        .anonymous()
        .post(app.url("/api/v1/invites/qr"))
        .json(&json!({"code": code.to_lowercase()}))
        .send()
        .await
        .unwrap();
    assert_eq!(qr.status(), 200);
    assert_eq!(qr.headers()["content-type"], "image/svg+xml");
    let svg = qr.text().await.unwrap();
    assert!(svg.contains("<svg"), "{svg}");
    assert_eq!(svg, created["qr_svg"].as_str().unwrap());
    let revoked = class
        .teacher
        .send(
            Method::DELETE,
            &format!("{invites}/{}", created["invite"]["id"]),
            None,
        )
        .await;
    assert_eq!(revoked.status(), 204);
    let qr = app
        .anonymous()
        .post(app.url("/api/v1/invites/qr"))
        .json(&json!({"code": code}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(qr).await, (410, "invite_revoked".into()));
}

/// Families show which students they belong to; one invite can name siblings.
async fn members_and_sibling_invites(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.admin().await;
    let class = ClassFixture::new(&app, &admin, "m").await;
    let second = class.family_of_new_student(&app, "Beto").await;
    let members = json_of(
        class
            .teacher
            .get(&format!("/api/v1/classes/{}/members", class.class_id))
            .await,
    )
    .await;
    let of = |id: i64| {
        members
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["user_id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(of(class.family.user_id)["students"][0]["name"], "Kid m");
    assert_eq!(of(second.user_id)["students"][0]["name"], "Beto");
    assert_eq!(of(second.user_id)["students"].as_array().unwrap().len(), 1);
    assert!(of(class.tutor.user_id)["students"]
        .as_array()
        .unwrap()
        .is_empty());
    assert_eq!(of(class.tutor.user_id)["role"], "tutor");

    // One family invitation for two siblings: whoever accepts belongs to both.
    let sibling = class
        .teacher
        .post_ok(
            &format!("/api/v1/classes/{}/students", class.class_id),
            json!({"name": "Carla"}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let invites = format!("/api/v1/classes/{}/invites", class.class_id);
    let made = class
        .teacher
        .post_ok(
            &invites,
            json!({"role": "family", "student_ids": [class.student_id, sibling]}),
        )
        .await;
    assert_eq!(
        made["invite"]["student_ids"],
        json!([class.student_id, sibling])
    );
    let code = made["code"].as_str().unwrap();
    let preview = json_of(
        app.anonymous()
            .post(app.url("/api/v1/invites/lookup"))
            .json(&json!({"code": code}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(preview["student_name"], "Kid m, Carla");
    let parent = app.join(code, "parent-of-two").await;
    let theirs = json_of(
        parent
            .get(&format!("/api/v1/classes/{}/students", class.class_id))
            .await,
    )
    .await;
    let names: Vec<&str> = theirs
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Carla", "Kid m"]);
    let listed = json_of(class.teacher.get(&invites).await).await;
    assert_eq!(listed[0]["student_ids"], json!([class.student_id, sibling]));
    // Only family invitations name several students.
    let student_for_two = class
        .teacher
        .post(
            &invites,
            json!({"role": "student", "student_ids": [class.student_id, sibling]}),
        )
        .await;
    assert_eq!(
        error_code(student_for_two).await,
        (400, "one_student_only".into())
    );
}

async fn rooms_rename_rehost_and_delete(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.admin().await;
    let class = ClassFixture::new(&app, &admin, "t").await;
    let other = ClassFixture::new(&app, &admin, "u").await;
    let rooms = format!("/api/v1/classes/{}/rooms", class.class_id);

    // A family cannot host a tutoring room.
    let family_host = class
        .teacher
        .post(
            &rooms,
            json!({"kind": "tutoring", "name": "Reading", "host_user_id": class.family.user_id}),
        )
        .await;
    assert_eq!(
        error_code(family_host).await,
        (400, "host_cannot_host".into())
    );
    let room = class
        .teacher
        .post_ok(
            &rooms,
            json!({"kind": "tutoring", "name": "Reading", "host_user_id": class.tutor.user_id}),
        )
        .await;
    let room_id = room["id"].as_i64().unwrap();
    let listed = json_of(class.tutor.get(&rooms).await).await;
    assert_eq!(listed[0]["host_name"], "tutor-t");

    let path = format!("/api/v1/rooms/{room_id}");
    let outsider = other
        .teacher
        .send(Method::PATCH, &path, Some(json!({"name": "Mine"})))
        .await;
    assert_eq!(error_code(outsider).await, (404, "not_found".into()));
    let by_tutor = class
        .tutor
        .send(Method::PATCH, &path, Some(json!({"name": "Mine"})))
        .await;
    assert_eq!(error_code(by_tutor).await, (403, "not_allowed".into()));

    let renamed = class
        .teacher
        .send(
            Method::PATCH,
            &path,
            Some(json!({"name": "Reading group", "host_user_id": class.teacher.user_id})),
        )
        .await;
    let renamed = json_of(renamed).await;
    assert_eq!(renamed["name"], "Reading group");
    assert_eq!(renamed["host_user_id"], class.teacher.user_id);
    // Only the name: the host stays; `null`: no assigned host.
    let kept = json_of(
        class
            .teacher
            .send(Method::PATCH, &path, Some(json!({"name": "Reading A"})))
            .await,
    )
    .await;
    assert_eq!(kept["host_user_id"], class.teacher.user_id);
    let cleared = json_of(
        class
            .teacher
            .send(Method::PATCH, &path, Some(json!({"host_user_id": null})))
            .await,
    )
    .await;
    assert_eq!(cleared["host_user_id"], Value::Null);
    assert_eq!(cleared["name"], "Reading A");

    let deleted = class.teacher.send(Method::DELETE, &path, None).await;
    assert_eq!(deleted.status(), 204);
    let listed = json_of(class.teacher.get(&rooms).await).await;
    assert!(listed.as_array().unwrap().is_empty(), "{listed}");
    let again = class.teacher.send(Method::DELETE, &path, None).await;
    assert_eq!(error_code(again).await, (404, "not_found".into()));
    let mut peer = peer::connect(&app, Credential::Cookie(&class.teacher.cookie)).await;
    match peer.join(room_id).await {
        ServerMessage::Error { code, .. } => assert_eq!(code, "room_not_found"),
        other => panic!("joined a deleted room: {other:?}"),
    }
}

/// A tutoring room that lists its students lets only them and their families ask to come in.
async fn tutoring_room_entry_list(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.admin().await;
    let class = ClassFixture::new(&app, &admin, "e").await;
    let other_family = class.family_of_new_student(&app, "Beto").await;
    let rooms = format!("/api/v1/classes/{}/rooms", class.class_id);
    let on_classroom = class
        .teacher
        .post(
            &rooms,
            json!({"kind": "classroom", "name": "Main", "student_ids": [class.student_id]}),
        )
        .await;
    assert_eq!(
        error_code(on_classroom).await,
        (400, "students_for_tutoring_only".into())
    );
    let room = class
        .teacher
        .post_ok(
            &rooms,
            json!({"kind": "tutoring", "name": "Kid e only", "host_user_id": class.tutor.user_id,
                   "student_ids": [class.student_id]}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let listed = json_of(class.teacher.get(&rooms).await).await;
    assert_eq!(listed[0]["student_ids"], json!([class.student_id]));

    let mut host = peer::connect(&app, Credential::Cookie(&class.tutor.cookie)).await;
    let reply = host.join(room).await;
    assert!(matches!(reply, ServerMessage::Joined { .. }), "{reply:?}");
    let join = |cookie: String| {
        let app = &app;
        async move {
            let mut peer = peer::connect(app, Credential::Cookie(&cookie)).await;
            let reply = peer.join(room).await;
            (peer, reply)
        }
    };
    let (_listed_family, reply) = join(class.family.cookie.clone()).await;
    assert!(
        matches!(reply, ServerMessage::Joined { waiting: true, .. }),
        "{reply:?}"
    );
    let (_other, reply) = join(other_family.cookie.clone()).await;
    match reply {
        ServerMessage::Error { code, .. } => assert_eq!(code, "not_allowed"),
        other => panic!("a family not on the list came in: {other:?}"),
    }

    // An empty list leaves it to the host again.
    let opened = class
        .teacher
        .send(
            Method::PATCH,
            &format!("/api/v1/rooms/{room}"),
            Some(json!({"student_ids": []})),
        )
        .await;
    assert_eq!(opened.status(), 200);
    let (_other, reply) = join(other_family.cookie.clone()).await;
    assert!(
        matches!(reply, ServerMessage::Joined { waiting: true, .. }),
        "{reply:?}"
    );
}
