//! Accounts, classes, invites and access control, over real HTTPS on both databases.

use reqwest::Method;
use serde_json::json;

use crate::both_backends;
use crate::helpers::{error_code, Actor, ClassFixture, Db, TestApp, PASSWORD};

both_backends!(
    setup_sign_in_and_csrf,
    invites_join_expire_revoke_and_run_out,
    role_table_over_http,
    teacher_acts_on_admin_and_co_teacher,
    families_never_see_another_class,
    brute_force_is_rate_limited,
    secrets_stay_out_of_the_logs,
);

async fn setup_sign_in_and_csrf(db: Db) {
    let app = TestApp::spawn(db).await;
    let secret = app.setup_secret().unwrap();
    let admin = app.admin().await;
    assert!(!admin.cookie.is_empty());

    // The set-up link works once.
    let again = app
        .anonymous()
        .post(app.url("/api/v1/setup"))
        .json(&json!({"secret": secret, "login": "second", "display_name": "x", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(again).await, (410, "setup_link_invalid".into()));

    // The cookie is HttpOnly, Secure and SameSite=Lax.
    let response = app
        .anonymous()
        .post(app.url("/api/v1/session"))
        .json(&json!({"login": "ADMIN", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    for flag in ["HttpOnly", "Secure", "SameSite=Lax"] {
        assert!(cookie.contains(flag), "{cookie}");
    }

    let wrong = app
        .anonymous()
        .post(app.url("/api/v1/session"))
        .json(&json!({"login": "admin", "password": "not the password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(wrong).await, (401, "bad_credentials".into()));

    // A change without the CSRF header is refused and changes nothing.
    let forged = admin
        .client
        .post(app.url("/api/v1/classes"))
        .json(&json!({"name": "Forged"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(forged).await, (403, "csrf".into()));
    let classes: serde_json::Value = admin.get("/api/v1/classes").await.json().await.unwrap();
    assert_eq!(classes.as_array().unwrap().len(), 0);

    // Bad JSON is a clear error.
    let bad = admin
        .client
        .post(app.url("/api/v1/classes"))
        .header("x-csrf-token", &admin.csrf)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(bad).await, (400, "bad_json".into()));

    // Changing the password signs out other sessions, and the new one works.
    let other = app.sign_in("admin", PASSWORD).await;
    let changed = admin
        .send(
            Method::PUT,
            "/api/v1/me/password",
            Some(json!({"current_password": PASSWORD, "new_password": "a new long password"})),
        )
        .await;
    assert_eq!(changed.status(), 204);
    assert_eq!(other.get("/api/v1/me").await.status(), 401);
    assert_eq!(admin.get("/api/v1/me").await.status(), 200);
    app.sign_in("admin", "a new long password").await;

    let out = admin.send(Method::DELETE, "/api/v1/session", None).await;
    assert_eq!(out.status(), 204);
    assert_eq!(admin.get("/api/v1/me").await.status(), 401);
}

async fn invites_join_expire_revoke_and_run_out(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.admin().await;
    let fixture = ClassFixture::new(&app, &admin, "a").await;
    let class_id = fixture.class_id;
    let teacher = &fixture.teacher;
    let invites_path = format!("/api/v1/classes/{class_id}/invites");

    let created = teacher
        .post_ok(
            &invites_path,
            json!({"role": "family", "student_id": fixture.student_id}),
        )
        .await;
    let code = created["code"].as_str().unwrap().to_owned();
    assert!(created["join_url"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/join#{code}")));
    assert!(created["qr_svg"].as_str().unwrap().contains("<svg"));
    let png = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        created["qr_png_base64"].as_str().unwrap(),
    )
    .unwrap();
    assert_eq!(&png[1..4], b"PNG");

    // The code is forgiving about case, spaces and dashes, as typed on a phone.
    let typed = code.to_lowercase().replace('-', " ");
    let preview = app
        .anonymous()
        .post(app.url("/api/v1/invites/lookup"))
        .json(&json!({"code": typed}))
        .send()
        .await
        .unwrap();
    let preview: serde_json::Value = preview.json().await.unwrap();
    assert_eq!(preview["class_name"], "Class a");
    assert_eq!(preview["student_name"], "Kid a");

    // Two parents join; the third use is refused.
    let parent1 = app.join(&typed, "parent-one").await;
    app.join(&code, "parent-two").await;
    let third = app
        .anonymous()
        .post(app.url("/api/v1/invites/accept"))
        .json(&json!({"code": code, "login": "parent-three", "display_name": "P3", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(third).await, (410, "invite_used_up".into()));
    // ... and no account was made for them.
    let users: serde_json::Value = admin.get("/api/v1/users").await.json().await.unwrap();
    assert!(!users
        .as_array()
        .unwrap()
        .iter()
        .any(|u| u["login"] == "parent-three"));

    // The family sees their child.
    let children: serde_json::Value = parent1
        .get(&format!("/api/v1/classes/{class_id}/students"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(children[0]["name"], "Kid a");

    // The invite list says who joined through each invite.
    let list: serde_json::Value = teacher.get(&invites_path).await.json().await.unwrap();
    let used = list
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == created["invite"]["id"])
        .unwrap();
    let joined: Vec<&str> = used["joined"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["display_name"].as_str().unwrap())
        .collect();
    assert_eq!(joined, ["parent-one", "parent-two"]);

    // Revoked and expired invites have their own codes.
    let revoked = teacher
        .post_ok(&invites_path, json!({"role": "tutor"}))
        .await;
    let revoked_id = revoked["invite"]["id"].as_i64().unwrap();
    assert_eq!(
        teacher
            .send(
                Method::DELETE,
                &format!("{invites_path}/{revoked_id}"),
                None
            )
            .await
            .status(),
        204
    );
    let expired = teacher
        .post_ok(&invites_path, json!({"role": "tutor"}))
        .await;
    let db = app.workspace.database().await;
    sqlx::query("UPDATE invites SET expires_at = 1 WHERE id = $1")
        .bind(expired["invite"]["id"].as_i64().unwrap())
        .execute(&db)
        .await
        .unwrap();
    for (invite, expected) in [(&revoked, "invite_revoked"), (&expired, "invite_expired")] {
        let response = app
            .anonymous()
            .post(app.url("/api/v1/invites/accept"))
            .json(&json!({"code": invite["code"], "login": "late-tutor", "display_name": "T", "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(error_code(response).await, (410, expected.into()));
    }
    let unknown = app
        .anonymous()
        .post(app.url("/api/v1/invites/lookup"))
        .json(&json!({"code": "AAAA-BBBB-CCCC"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(unknown).await, (400, "invite_invalid".into()));

    // A signed-in parent who accepts an invite to a second class gets a membership, not a
    // second account.
    let other = ClassFixture::new(&app, &admin, "b").await;
    let second = other
        .teacher
        .post_ok(
            &format!("/api/v1/classes/{}/invites", other.class_id),
            json!({"role": "family", "student_id": other.student_id}),
        )
        .await;
    let me = parent1
        .post_ok("/api/v1/invites/accept", json!({"code": second["code"]}))
        .await;
    assert_eq!(me["user"]["id"], parent1.user_id);
    assert_eq!(me["classes"].as_array().unwrap().len(), 2);
}

/// The role table of ARCHITECTURE.md, written out independently of the server's code.
const TABLE: &[(&str, [&str; 12])] = &[
    // manage, invite, read, comment, publish, go_live, watch, host_tut, join_tut, open_house, attendance, export
    ("admin", ["allowed"; 12]),
    ("teacher", ["allowed"; 12]),
    (
        "family",
        [
            "denied", "denied", "allowed", "allowed", "denied", "denied", "allowed", "denied",
            "denied", "allowed", "own_only", "own_only",
        ],
    ),
    (
        "tutor",
        [
            "denied", "denied", "denied", "denied", "denied", "denied", "denied", "denied",
            "allowed", "allowed", "own_only", "own_only",
        ],
    ),
    (
        "student",
        [
            "denied",
            "denied",
            "allowed",
            "denied",
            "draft_only",
            "denied",
            "allowed",
            "denied",
            "denied",
            "allowed",
            "denied",
            "denied",
        ],
    ),
];
const ACTIONS: [&str; 12] = [
    "manage_class",
    "create_invite",
    "read_timeline",
    "comment",
    "publish_post",
    "go_live",
    "watch_classroom",
    "host_tutoring",
    "join_tutoring",
    "watch_open_house",
    "see_attendance",
    "export_logs",
];

async fn role_table_over_http(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.admin().await;
    let a = ClassFixture::new(&app, &admin, "a").await;
    let class = format!("/api/v1/classes/{}", a.class_id);
    let actors: [(&str, &Actor); 5] = [
        ("admin", &admin),
        ("teacher", &a.teacher),
        ("family", &a.family),
        ("tutor", &a.tutor),
        ("student", &a.student),
    ];

    for (role, actor) in actors {
        let expected = TABLE.iter().find(|(r, _)| *r == role).unwrap().1;
        // What the server says the role may do...
        let view: serde_json::Value = actor.get(&class).await.json().await.unwrap();
        for (action, grant) in ACTIONS.iter().zip(expected) {
            assert_eq!(view["permissions"][action], grant, "{role} / {action}");
        }
        // ... and what the endpoints that exist actually let it do.
        let may =
            |action: &str| expected[ACTIONS.iter().position(|a| *a == action).unwrap()] != "denied";
        let rename = actor
            .send(Method::PATCH, &class, Some(json!({"name": "Class a"})))
            .await
            .status()
            .as_u16();
        assert_eq!(
            rename,
            if may("manage_class") { 204 } else { 403 },
            "{role} renames"
        );
        let members = actor
            .get(&format!("{class}/members"))
            .await
            .status()
            .as_u16();
        assert_eq!(
            members,
            if may("manage_class") { 200 } else { 403 },
            "{role} lists members"
        );
        let invite = actor
            .post(&format!("{class}/invites"), json!({"role": "tutor"}))
            .await
            .status()
            .as_u16();
        assert_eq!(
            invite,
            if may("create_invite") { 201 } else { 403 },
            "{role} invites"
        );
        let invites = actor
            .get(&format!("{class}/invites"))
            .await
            .status()
            .as_u16();
        assert_eq!(
            invites,
            if may("create_invite") { 200 } else { 403 },
            "{role} lists invites"
        );
        let students = actor
            .get(&format!("{class}/students"))
            .await
            .status()
            .as_u16();
        assert_eq!(
            students,
            if may("read_timeline") || may("manage_class") {
                200
            } else {
                403
            },
            "{role} lists students"
        );
        let add = actor
            .post(&format!("{class}/students"), json!({"name": "New kid"}))
            .await
            .status()
            .as_u16();
        assert_eq!(
            add,
            if may("manage_class") { 201 } else { 403 },
            "{role} adds a student"
        );
    }
    // Nobody signed in: nothing.
    let anonymous = app.anonymous().get(app.url(&class)).send().await.unwrap();
    assert_eq!(error_code(anonymous).await, (401, "unauthorized".into()));
}

/// Rows the role table does not settle: a teacher acting on a site admin or a fellow teacher
/// who are members of the class. Role change, removal and reset link are each refused, and
/// nothing changes; a teacher makes nobody a teacher, and resets nobody who is also elsewhere.
async fn teacher_acts_on_admin_and_co_teacher(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.admin().await;
    let a = ClassFixture::new(&app, &admin, "a").await;
    let b = ClassFixture::new(&app, &admin, "b").await;
    let co_teacher = app.teacher(&admin, "co-teacher").await;
    let members = format!("/api/v1/classes/{}/members", a.class_id);
    for (user, role) in [(admin.user_id, "family"), (co_teacher.user_id, "teacher")] {
        let added = admin
            .send(
                Method::PUT,
                &format!("{members}/{user}"),
                Some(json!({"role": role})),
            )
            .await;
        assert_eq!(added.status(), 204);
    }
    // The family of class A also joins class B, where teacher A does not teach.
    let b_invite = b
        .teacher
        .post_ok(
            &format!("/api/v1/classes/{}/invites", b.class_id),
            json!({"role": "family", "student_id": b.student_id}),
        )
        .await;
    a.family
        .post_ok("/api/v1/invites/accept", json!({"code": b_invite["code"]}))
        .await;
    let before: serde_json::Value = admin.get(&members).await.json().await.unwrap();
    let db = app.workspace.database().await;
    let resets = || async {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM password_resets")
            .fetch_one(&db)
            .await
            .unwrap()
    };
    let resets_before = resets().await;

    for (target, name) in [(admin.user_id, "admin"), (co_teacher.user_id, "co-teacher")] {
        let attempts = [
            (
                "role change",
                a.teacher
                    .send(
                        Method::PUT,
                        &format!("{members}/{target}"),
                        Some(json!({"role": "family"})),
                    )
                    .await,
            ),
            (
                "removal",
                a.teacher
                    .send(Method::DELETE, &format!("{members}/{target}"), None)
                    .await,
            ),
            (
                "reset link",
                a.teacher
                    .post(&format!("/api/v1/users/{target}/password-reset"), json!({}))
                    .await,
            ),
        ];
        for (action, response) in attempts {
            assert_eq!(
                error_code(response).await,
                (403, "not_allowed".into()),
                "teacher: {action} of {name}"
            );
        }
    }
    let promote = a
        .teacher
        .send(
            Method::PUT,
            &format!("{members}/{}", a.tutor.user_id),
            Some(json!({"role": "teacher"})),
        )
        .await;
    assert_eq!(
        error_code(promote).await,
        (403, "not_allowed".into()),
        "promotion"
    );
    let elsewhere = a
        .teacher
        .post(
            &format!("/api/v1/users/{}/password-reset", a.family.user_id),
            json!({}),
        )
        .await;
    assert_eq!(
        error_code(elsewhere).await,
        (403, "not_allowed".into()),
        "family in class B too"
    );
    // A teacher of another class only: as if the account did not exist.
    let outsider = b
        .teacher
        .post(
            &format!("/api/v1/users/{}/password-reset", a.tutor.user_id),
            json!({}),
        )
        .await;
    assert_eq!(error_code(outsider).await, (404, "not_found".into()));

    let after: serde_json::Value = admin.get(&members).await.json().await.unwrap();
    assert_eq!(before, after, "nothing changed");
    assert_eq!(resets().await, resets_before, "no reset link was made");
    // Admins may do all of it.
    let by_admin = admin
        .send(
            Method::PUT,
            &format!("{members}/{}", a.tutor.user_id),
            Some(json!({"role": "teacher"})),
        )
        .await;
    assert_eq!(by_admin.status(), 204);
    admin
        .post_ok(
            &format!("/api/v1/users/{}/password-reset", co_teacher.user_id),
            json!({}),
        )
        .await;
    let removed = admin
        .send(
            Method::DELETE,
            &format!("{members}/{}", co_teacher.user_id),
            None,
        )
        .await;
    assert_eq!(removed.status(), 204);
}

async fn families_never_see_another_class(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.admin().await;
    let a = ClassFixture::new(&app, &admin, "a").await;
    let b = ClassFixture::new(&app, &admin, "b").await;
    let b_invite = b
        .teacher
        .post_ok(
            &format!("/api/v1/classes/{}/invites", b.class_id),
            json!({"role": "tutor"}),
        )
        .await;
    let b_invite_id = b_invite["invite"]["id"].as_i64().unwrap();
    let b_room = b
        .teacher
        .post_ok(
            &format!("/api/v1/classes/{}/rooms", b.class_id),
            json!({"kind": "open_house", "name": "Open house"}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let missing = 999_999;

    for outsider in [&a.family, &a.teacher, &a.tutor, &a.student] {
        for class_id in [b.class_id, missing] {
            let class = format!("/api/v1/classes/{class_id}");
            let attempts = [
                outsider.get(&class).await,
                outsider
                    .send(Method::PATCH, &class, Some(json!({"name": "Mine now"})))
                    .await,
                outsider.get(&format!("{class}/members")).await,
                outsider
                    .send(
                        Method::PUT,
                        &format!("{class}/members/{}", outsider.user_id),
                        Some(json!({"role": "teacher"})),
                    )
                    .await,
                outsider.get(&format!("{class}/students")).await,
                outsider
                    .post(&format!("{class}/students"), json!({"name": "x"}))
                    .await,
                outsider.get(&format!("{class}/invites")).await,
                outsider
                    .post(
                        &format!("{class}/invites"),
                        json!({"role": "family", "student_id": b.student_id}),
                    )
                    .await,
                outsider
                    .send(
                        Method::DELETE,
                        &format!("{class}/invites/{b_invite_id}"),
                        None,
                    )
                    .await,
                outsider.get(&format!("{class}/rooms")).await,
                outsider
                    .post(
                        &format!("{class}/rooms"),
                        json!({"kind": "classroom", "name": "x"}),
                    )
                    .await,
                outsider
                    .post(&format!("/api/v1/rooms/{b_room}/guest-link"), json!({}))
                    .await,
            ];
            for response in attempts {
                // The same answer as for a class that does not exist.
                let url = response.url().path().to_owned();
                assert_eq!(
                    error_code(response).await,
                    (404, "not_found".into()),
                    "{url}"
                );
            }
        }
        let mine: serde_json::Value = outsider.get("/api/v1/classes").await.json().await.unwrap();
        assert!(mine
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["id"] != b.class_id));
    }
    // Class B is unchanged.
    let view: serde_json::Value = b
        .teacher
        .get(&format!("/api/v1/classes/{}", b.class_id))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(view["name"], "Class b");
    let invites: serde_json::Value = b
        .teacher
        .get(&format!("/api/v1/classes/{}/invites", b.class_id))
        .await
        .json()
        .await
        .unwrap();
    assert!(invites
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i["revoked_at"].is_null()));
}

async fn brute_force_is_rate_limited(db: Db) {
    let app = TestApp::spawn(db).await;
    let _admin = app.admin().await;
    let client = app.anonymous();
    let mut statuses = Vec::new();
    for _ in 0..12 {
        let response = client
            .post(app.url("/api/v1/session"))
            .json(&json!({"login": "admin", "password": "guess guess"}))
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            assert!(
                response.headers()["retry-after"]
                    .to_str()
                    .unwrap()
                    .parse::<u64>()
                    .unwrap()
                    > 0
            );
        }
    }
    assert_eq!(&statuses[..10], &[401; 10]);
    assert_eq!(&statuses[10..], &[429, 429]);
    // Even the right password waits now: the account is protected from this guesser.
    let right = client
        .post(app.url("/api/v1/session"))
        .json(&json!({"login": "admin", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), 429);

    let mut codes = Vec::new();
    for i in 0..11 {
        let response = client
            .post(app.url("/api/v1/invites/lookup"))
            .json(&json!({"code": format!("AAAA-BBBB-CC{}", ["CD", "DE", "EF", "FG", "GH", "HJ", "JK", "KM", "MN", "NP", "PQ"][i])}))
            .send()
            .await
            .unwrap();
        codes.push(response.status().as_u16());
    }
    assert_eq!(&codes[..10], &[400; 10]);
    assert_eq!(codes[10], 429);
}

async fn secrets_stay_out_of_the_logs(db: Db) {
    let app = TestApp::spawn(db).await;
    let setup_secret = app.setup_secret().unwrap();
    let admin = app.admin().await;
    let a = ClassFixture::new(&app, &admin, "a").await;
    let invite = a
        .teacher
        .post_ok(
            &format!("/api/v1/classes/{}/invites", a.class_id),
            json!({"role": "tutor"}),
        )
        .await;
    let code = invite["code"].as_str().unwrap();
    app.join(code, "logged-tutor").await;
    let reset = admin
        .post_ok(
            &format!("/api/v1/users/{}/password-reset", a.family.user_id),
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
    // A failed sign-in with a password-like string.
    app.anonymous()
        .post(app.url("/api/v1/session"))
        .json(&json!({"login": "admin", "password": "Wrong-Secret-Password"}))
        .send()
        .await
        .unwrap();

    let logs = app.logs();
    assert!(logs.contains("signed in"), "the log is captured: {logs}");
    let secrets = [
        PASSWORD,
        "Wrong-Secret-Password",
        &setup_secret,
        &admin.cookie,
        &admin.csrf,
        &a.family.cookie,
        code,
        &code.replace('-', ""),
        &reset_token,
    ];
    for secret in secrets {
        assert!(!secret.is_empty());
        assert!(
            !logs.contains(secret),
            "a secret appears in the log: {secret}"
        );
    }
}
