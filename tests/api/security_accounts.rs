//! Accounts and sign-in under attack (issue #18): each test replays what an outside review did
//! against the running server, on both databases.

use reqwest::Method;
use serde_json::json;

use crate::both_backends;
use crate::helpers::{error_code, Actor, ClassFixture, Db, TestApp, PASSWORD};

both_backends!(
    a_teacher_cannot_take_over_the_admin_or_a_co_teacher,
    parallel_guesses_cannot_pass_the_sign_in_limit,
    a_burst_of_sign_ins_stays_small_and_never_fails,
    an_old_set_up_link_dies_once_an_admin_exists,
    a_password_change_or_reset_ends_feed_links,
    parallel_accepts_of_one_invite_all_succeed,
    nul_characters_are_refused_at_the_edge,
);

/// The review's chain: make the admin (or a co-teacher) a "family" of the teacher's class,
/// make a reset link for that "family", set its password, sign in as them.
async fn a_teacher_cannot_take_over_the_admin_or_a_co_teacher(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.admin().await;
    let a = ClassFixture::new(&app, &admin, "a").await;
    let co_teacher = app.teacher(&admin, "co-teacher").await;
    let members = format!("/api/v1/classes/{}/members", a.class_id);
    for (user, role) in [(admin.user_id, "student"), (co_teacher.user_id, "teacher")] {
        let added = admin
            .send(
                Method::PUT,
                &format!("{members}/{user}"),
                Some(json!({"role": role})),
            )
            .await;
        assert_eq!(added.status(), 204);
    }

    for (victim, login) in [(&admin, "admin"), (&co_teacher, "co-teacher")] {
        let demoted = a
            .teacher
            .send(
                Method::PUT,
                &format!("{members}/{}", victim.user_id),
                Some(json!({"role": "family"})),
            )
            .await;
        assert_eq!(
            error_code(demoted).await,
            (403, "not_allowed".into()),
            "{login}"
        );
        let reset = a
            .teacher
            .post(
                &format!("/api/v1/users/{}/password-reset", victim.user_id),
                json!({}),
            )
            .await;
        assert_eq!(
            error_code(reset).await,
            (403, "not_allowed".into()),
            "{login}"
        );
        // The account is still its owner's: their password works, a guessed one does not.
        app.sign_in(login, PASSWORD).await;
        assert_eq!(victim.get("/api/v1/me").await.status(), 200);
    }
    let roles: serde_json::Value = admin.get(&members).await.json().await.unwrap();
    let role_of = |id: i64| {
        roles
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["user_id"] == id)
            .map(|m| m["role"].as_str().unwrap().to_owned())
    };
    assert_eq!(role_of(admin.user_id).as_deref(), Some("student"));
    assert_eq!(role_of(co_teacher.user_id).as_deref(), Some("teacher"));

    // What a teacher may still do: manage the families, tutors and students of the class.
    let tutor_reset = a
        .teacher
        .post_ok(
            &format!("/api/v1/users/{}/password-reset", a.tutor.user_id),
            json!({}),
        )
        .await;
    assert!(tutor_reset["reset_url"]
        .as_str()
        .unwrap()
        .contains("/reset#"));
    let moved = a
        .teacher
        .send(
            Method::PUT,
            &format!("{members}/{}", a.tutor.user_id),
            Some(json!({"role": "student"})),
        )
        .await;
    assert_eq!(moved.status(), 204);
}

async fn sign_in_status(
    app: &TestApp,
    client: &reqwest::Client,
    login: &str,
    password: &str,
) -> u16 {
    client
        .post(app.url("/api/v1/session"))
        .json(&json!({"login": login, "password": password}))
        .send()
        .await
        .expect("request")
        .status()
        .as_u16()
}

/// 100 wrong passwords at once, then the right one: the limit of 10 per account holds.
async fn parallel_guesses_cannot_pass_the_sign_in_limit(db: Db) {
    let app = TestApp::spawn(db).await;
    app.admin().await;
    let client = app.anonymous();
    let guesses = (0..100).map(|i| {
        let (app, client) = (&app, &client);
        async move { sign_in_status(app, client, "admin", &format!("wrong guess {i}")).await }
    });
    let statuses = futures_util::future::join_all(guesses).await;
    let verified = statuses.iter().filter(|s| **s == 401).count();
    assert!(
        statuses.iter().all(|s| *s == 401 || *s == 429),
        "{statuses:?}"
    );
    assert!(verified <= 10, "{verified} guesses were checked");
    let logged = app.logs().matches("failed sign-in").count();
    assert!(logged <= 10, "{logged} failed sign-ins were verified");
    assert_eq!(
        sign_in_status(&app, &client, "admin", PASSWORD).await,
        429,
        "the right password sent last waits too"
    );
}

/// The server's peak resident memory (VmHWM) in MB.
fn peak_memory_mb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/<pid>/status");
    kb / 1024
}

/// 200 sign-ins at once with unknown logins (each verifies against a dummy hash): argon2
/// work is bounded, so memory stays small and every answer is 401 or 429, never a 500.
async fn a_burst_of_sign_ins_stays_small_and_never_fails(db: Db) {
    let app = TestApp::spawn(db).await;
    app.admin().await;
    let client = app.anonymous();
    let attempts = (0..200).map(|i| {
        let (app, client) = (&app, &client);
        async move { sign_in_status(app, client, &format!("nobody-{i}"), "some password").await }
    });
    let statuses = futures_util::future::join_all(attempts).await;
    let peak = peak_memory_mb(app.pid());
    assert!(
        statuses.iter().all(|s| *s == 401 || *s == 429),
        "{statuses:?}"
    );
    assert!(peak < 300, "the server peaked at {peak} MB");
    // The server still answers normally afterwards.
    assert_eq!(app.get("/readyz").await.status(), 200);
}

async fn use_setup_link(app: &TestApp, secret: &str, login: &str) -> (u16, String) {
    let response = app
        .anonymous()
        .post(app.url("/api/v1/setup"))
        .json(
            &json!({"secret": secret, "login": login, "display_name": login, "password": PASSWORD}),
        )
        .send()
        .await
        .unwrap();
    error_code(response).await
}

/// Every start without an admin prints a new link; once one of them made the admin, the
/// others (printed earlier, still within 24 h) make no second one, even when used at once.
async fn an_old_set_up_link_dies_once_an_admin_exists(db: Db) {
    let mut app = TestApp::spawn(db).await;
    let mut links = vec![app.setup_secret().unwrap()];
    for _ in 0..2 {
        let (_, _, workspace) = app.terminate().await;
        app = TestApp::start(workspace).await;
        links.push(app.setup_secret().unwrap());
    }
    assert_eq!(links.len(), 3);
    let (first, second) = tokio::join!(
        use_setup_link(&app, &links[0], "first"),
        use_setup_link(&app, &links[1], "second")
    );
    let mut outcomes = [first.0, second.0];
    outcomes.sort();
    assert_eq!(outcomes, [201, 410], "{first:?} {second:?}");
    assert_eq!(
        use_setup_link(&app, &links[2], "third").await,
        (410, "setup_link_invalid".into())
    );
    let db = app.workspace.database().await;
    let admins: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE is_admin = 1")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(admins, 1);
}

async fn feed_status(app: &TestApp, url: &str) -> u16 {
    app.anonymous()
        .get(url)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn feed_url(actor: &Actor, class_id: i64) -> String {
    actor
        .post_ok(&format!("/api/v1/classes/{class_id}/feed-token"), json!({}))
        .await["feed_url"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn a_password_change_or_reset_ends_feed_links(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.admin().await;
    let a = ClassFixture::new(&app, &admin, "a").await;

    // Changing one's own password.
    let url = feed_url(&a.family, a.class_id).await;
    assert_eq!(feed_status(&app, &url).await, 200);
    let changed = a
        .family
        .send(
            Method::PUT,
            "/api/v1/me/password",
            Some(json!({"current_password": PASSWORD, "new_password": "a new long password"})),
        )
        .await;
    assert_eq!(changed.status(), 204);
    assert_eq!(feed_status(&app, &url).await, 404);
    // The family stays signed in here and may make a new link.
    let fresh = feed_url(&a.family, a.class_id).await;
    assert_eq!(feed_status(&app, &fresh).await, 200);

    // A reset link made by the teacher.
    let reset = a
        .teacher
        .post_ok(
            &format!("/api/v1/users/{}/password-reset", a.family.user_id),
            json!({}),
        )
        .await;
    let token = reset["reset_url"]
        .as_str()
        .unwrap()
        .split('#')
        .nth(1)
        .unwrap();
    let used = app
        .anonymous()
        .post(app.url("/api/v1/password-reset"))
        .json(&json!({"token": token, "new_password": "after the reset"}))
        .send()
        .await
        .unwrap();
    assert_eq!(used.status(), 204);
    assert_eq!(feed_status(&app, &fresh).await, 404);
    // Other people's links are untouched.
    let teacher_url = feed_url(&a.teacher, a.class_id).await;
    let other = a
        .tutor
        .send(
            Method::PUT,
            "/api/v1/me/password",
            Some(json!({"current_password": PASSWORD, "new_password": "tutor's new password"})),
        )
        .await;
    assert_eq!(other.status(), 204);
    assert_eq!(feed_status(&app, &teacher_url).await, 200);
}

/// New accounts accept one invite at once, 8 at a time, twice: on SQLite the accepts queue
/// for the write lock instead of failing with "database is locked".
async fn parallel_accepts_of_one_invite_all_succeed(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.admin().await;
    let a = ClassFixture::new(&app, &admin, "a").await;
    let invite = a
        .teacher
        .post_ok(
            &format!("/api/v1/classes/{}/invites", a.class_id),
            json!({"role": "tutor", "max_uses": 16}),
        )
        .await;
    let code = invite["code"].as_str().unwrap();
    for round in 0..2 {
        let accepts = (0..8).map(|i| {
            let app = &app;
            async move {
                let login = format!("helper-{round}-{i}");
                let response = app
                    .anonymous()
                    .post(app.url("/api/v1/invites/accept"))
                    .json(&json!({"code": code, "login": login, "display_name": login, "password": PASSWORD}))
                    .send()
                    .await
                    .unwrap();
                let status = response.status().as_u16();
                (status, response.text().await.unwrap())
            }
        });
        let results = futures_util::future::join_all(accepts).await;
        let failed: Vec<_> = results.iter().filter(|(s, _)| *s != 201).collect();
        assert!(failed.is_empty(), "round {round}: {failed:?}");
    }
    assert!(!app.logs().contains("database is locked"));
    let list: serde_json::Value = a
        .teacher
        .get(&format!("/api/v1/classes/{}/invites", a.class_id))
        .await
        .json()
        .await
        .unwrap();
    let used = list
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == invite["invite"]["id"])
        .unwrap();
    assert_eq!(used["uses"], 16);
    assert_eq!(used["joined"].as_array().unwrap().len(), 16);
}

/// NUL is valid in a JSON string but not in PostgreSQL text: refused with 400 everywhere.
async fn nul_characters_are_refused_at_the_edge(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.admin().await;
    let a = ClassFixture::new(&app, &admin, "a").await;
    let posts = format!("/api/v1/classes/{}/posts", a.class_id);
    let post = a
        .teacher
        .post_ok(&posts, json!({"body": "A clean post"}))
        .await;
    let invite = a
        .teacher
        .post_ok(
            &format!("/api/v1/classes/{}/invites", a.class_id),
            json!({"role": "tutor"}),
        )
        .await;

    let sign_in = app
        .anonymous()
        .post(app.url("/api/v1/session"))
        .json(&json!({"login": "admin\u{0}", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let join = app
        .anonymous()
        .post(app.url("/api/v1/invites/accept"))
        .json(&json!({"code": invite["code"], "login": "new\u{0}tutor", "display_name": "T", "email": "t\u{0}@example.org", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let refused = [
        ("sign-in login", sign_in),
        ("invite login and e-mail", join),
        (
            "post body",
            a.teacher
                .post(&posts, json!({"body": "Hello\u{0}world"}))
                .await,
        ),
        (
            "learning target",
            a.teacher
                .post(
                    &posts,
                    json!({"body": "Fine", "targets": ["Adds\u{0}fractions"]}),
                )
                .await,
        ),
        (
            "comment",
            a.family
                .post(
                    &format!("/api/v1/posts/{}/comments", post["id"]),
                    json!({"body": "So\u{0}proud"}),
                )
                .await,
        ),
    ];
    for (what, response) in refused {
        assert_eq!(
            error_code(response).await,
            (400, "invalid_text".into()),
            "{what}"
        );
    }
    // Nothing was stored, and the invite was not used.
    let list: serde_json::Value = a.teacher.get(&posts).await.json().await.unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert!(!app.logs().contains("database error"));
    app.join(invite["code"].as_str().unwrap(), "new-tutor")
        .await;
}
