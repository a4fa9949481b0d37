//! The class timeline at school scale (issue 15): pages cost the same number of queries
//! whatever their length, feed readers never count as "seen", and `homeroom bench timeline`
//! runs. The store's side (plans, constraints, purge, nodes) is in `storage.rs`.

use std::time::Duration;

use serde_json::json;

use crate::both_backends;
use crate::helpers::{error_code, Actor, ClassFixture, Db, TestApp, Workspace};

/// The JSON answer of a GET.
async fn read(actor: &Actor, path: &str) -> serde_json::Value {
    actor.get(path).await.json().await.unwrap()
}

/// The queries a GET made (the server runs with `count_queries`), and its JSON.
async fn counted(actor: &Actor, path: &str) -> (u32, serde_json::Value) {
    let response = actor.get(path).await;
    assert_eq!(response.status(), 200, "GET {path}");
    let queries = response.headers()["x-homeroom-queries"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    (queries, response.json().await.unwrap())
}

/// Adds `n` ended sessions to the room, each with the family joining and leaving and a chat
/// line, as the SFU's log writer would; their attendance is stored as a session's end stores
/// it.
async fn add_sessions(app: &TestApp, room: i64, family: i64, n: i64, first_at: i64) {
    let db = app.workspace.database().await;
    for k in 0..n {
        let at = first_at + k * 60_000;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO live_sessions (room_id, started_at, ended_at, end_reason, peak_participants)
             VALUES ($1, $2, $3, 'ended', 2) RETURNING id",
        )
        .bind(room)
        .bind(at)
        .bind(at + 30_000)
        .fetch_one(&db)
        .await
        .unwrap();
        for (seq, kind, detail) in [
            (1, "join", "{}"),
            (2, "chat", "{\"text\":\"hello\"}"),
            (3, "leave", "{}"),
        ] {
            sqlx::query(
                "INSERT INTO session_events (session_id, seq, at, user_id, actor_name, kind, detail)
                 VALUES ($1, $2, $3, $4, 'Family', $5, $6)",
            )
            .bind(id)
            .bind(seq)
            .bind(at + seq * 1_000)
            .bind(family)
            .bind(kind)
            .bind(detail)
            .execute(&db)
            .await
            .unwrap();
        }
    }
    db.close().await;
    let store = homeroom::store::Store::connect(&app.workspace.database_url)
        .await
        .unwrap();
    store.summarize_ended_sessions().await.unwrap();
    store.close().await;
}

/// Posts `n` updates, every third for the featured student's family only, each with a
/// comment from the family.
async fn add_posts(class: &ClassFixture, n: usize) {
    let posts = format!("/api/v1/classes/{}/posts", class.class_id);
    for k in 0..n {
        let body = match k % 3 {
            0 => {
                json!({"body": format!("Update {k}"), "visibility": "students", "student_ids": [class.student_id], "targets": ["Counts to 100"]})
            }
            _ => json!({"body": format!("Update {k}"), "student_ids": [class.student_id]}),
        };
        let post = class.teacher.post_ok(&posts, body).await;
        class
            .family
            .post_ok(
                &format!("/api/v1/posts/{}/comments", post["id"]),
                json!({"body": "Thank you"}),
            )
            .await;
    }
}

async fn query_counts_do_not_grow_with_the_page(db: Db) {
    let app = TestApp::spawn_with(db, "count_queries = true").await;
    let admin = app.admin().await;
    let class = ClassFixture::new(&app, &admin, "q").await;
    let id = class.class_id;
    let room = |kind: &'static str| {
        let teacher = &class.teacher;
        async move {
            teacher
                .post_ok(
                    &format!("/api/v1/classes/{id}/rooms"),
                    json!({"kind": kind, "name": format!("{kind} room")}),
                )
                .await["id"]
                .as_i64()
                .unwrap()
        }
    };
    let (classroom, tutoring) = (room("classroom").await, room("tutoring").await);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    // Sessions older than every post first; then as many again among the new posts.
    let hour_ago = now - 3_600_000;
    add_posts(&class, 5).await;
    add_sessions(&app, classroom, class.family.user_id, 4, hour_ago).await;
    add_sessions(&app, tutoring, class.family.user_id, 1, hour_ago + 1).await;
    let pages = [
        format!("/api/v1/classes/{id}/timeline?limit=50"),
        format!("/api/v1/classes/{id}/sessions?limit=50"),
        format!("/api/v1/classes/{id}/posts?limit=50"),
    ];
    let mut small = Vec::new();
    for actor in [&class.teacher, &class.family] {
        for page in &pages {
            let (queries, body) = counted(actor, page).await;
            let items = body["items"].as_array().or(body.as_array()).unwrap().len();
            assert!((5..=10).contains(&items), "{page}: {items} items");
            assert!(queries <= 12, "{page} cost {queries} queries");
            small.push(queries);
        }
    }
    add_posts(&class, 45).await;
    add_sessions(&app, classroom, class.family.user_id, 40, now - 600_000).await;
    add_sessions(&app, tutoring, class.family.user_id, 5, now - 30_000).await;
    let mut large = Vec::new();
    for actor in [&class.teacher, &class.family] {
        for page in &pages {
            let (queries, body) = counted(actor, page).await;
            let items = body["items"].as_array().or(body.as_array()).unwrap();
            assert_eq!(items.len(), 50, "{page}: a full page");
            if page.contains("timeline") {
                let kinds: std::collections::BTreeSet<_> =
                    items.iter().map(|i| i["kind"].as_str().unwrap()).collect();
                assert_eq!(kinds.len(), 2, "posts and sessions on one page");
            }
            large.push(queries);
        }
    }
    assert_eq!(small, large, "queries per page with 5 and with 50 items");
    // The family's attendance: each session counts the family once, from the stored summary.
    let (_, sessions) = counted(&class.family, &pages[1]).await;
    assert!(sessions
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["attendees"] == 1));
}

async fn feed_readers_never_count_as_seen(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.admin().await;
    let class = ClassFixture::new(&app, &admin, "s").await;
    let id = class.class_id;
    let posts = format!("/api/v1/classes/{id}/posts");
    let opened = class
        .teacher
        .post_ok(&posts, json!({"body": "Read on the page"}))
        .await["id"]
        .as_i64()
        .unwrap();
    let fed = class
        .teacher
        .post_ok(&posts, json!({"body": "Only in the feed"}))
        .await["id"]
        .as_i64()
        .unwrap();
    let feed = class
        .family
        .post_ok(&format!("/api/v1/classes/{id}/feed-token"), json!({}))
        .await["feed_url"]
        .as_str()
        .unwrap()
        .to_owned();
    for _ in 0..3 {
        let atom = app
            .anonymous()
            .get(&feed)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(atom.contains("Only in the feed"));
    }
    // Bad reports change nothing.
    let seen = format!("/api/v1/classes/{id}/seen");
    let (status, code) = error_code(class.family.post(&seen, json!({"post_ids": []})).await).await;
    assert_eq!((status, code.as_str()), (400, "invalid_post_ids"));
    let too_many: Vec<i64> = (1..=51).collect();
    let (status, _) = error_code(
        class
            .family
            .post(&seen, json!({"post_ids": too_many}))
            .await,
    )
    .await;
    assert_eq!(status, 400);
    // The teacher's own reading is not a family's.
    assert_eq!(
        class
            .teacher
            .post(&seen, json!({"post_ids": [fed]}))
            .await
            .status(),
        202
    );
    // The family's page shows one post; the writer records it shortly after.
    assert_eq!(
        class
            .family
            .post(&seen, json!({"post_ids": [opened]}))
            .await
            .status(),
        202
    );
    let views = |post: i64| {
        let teacher = &class.teacher;
        async move {
            let view = read(teacher, &format!("/api/v1/posts/{post}")).await;
            view["family_views"].as_i64().unwrap()
        }
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while views(opened).await == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the report was never written"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Reports are written in order, so the feed's reads (had they counted) would be in by now.
    assert_eq!(
        views(fed).await,
        0,
        "feed reads and the teacher's own count for nothing"
    );
    let seen_by = read(&class.teacher, &format!("/api/v1/posts/{opened}/seen")).await;
    assert_eq!(seen_by.as_array().unwrap().len(), 1);
    assert_eq!(seen_by[0]["user_id"], class.family.user_id);
    let none = read(&class.teacher, &format!("/api/v1/posts/{fed}/seen")).await;
    assert_eq!(none, json!([]));
    // Who has seen a post is for teachers.
    let (status, _) = error_code(
        class
            .family
            .get(&format!("/api/v1/posts/{opened}/seen"))
            .await,
    )
    .await;
    assert_eq!(status, 403);
}

async fn bench_runs_on_a_tiny_seed(db: Db) {
    let workspace = Workspace::new(db).await;
    workspace.write_config("");
    let args = [
        "bench",
        "timeline",
        "--database-url",
        &workspace.database_url,
        "--classes",
        "2",
        "--families",
        "6",
        "--posts",
        "90",
        "--sessions",
        "30",
        "--events",
        "300",
        "--requests",
        "3",
    ];
    for round in ["seeded", "holds a bench school already"] {
        let output = workspace.command(&args).output().await.unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(stdout.contains(round), "{stdout}");
        let rows: Vec<Vec<&str>> = stdout
            .lines()
            .filter(|l| l.starts_with("| ") && !l.starts_with("| page") && !l.starts_with("| ---"))
            .map(|l| l.trim_matches('|').split('|').map(str::trim).collect())
            .collect();
        assert_eq!(rows.len(), 6, "three pages for two people:\n{stdout}");
        for row in rows {
            let figures: Vec<f64> = row[2..].iter().map(|v| v.parse().unwrap()).collect();
            assert!(
                figures[0] <= figures[1] && figures[1] <= figures[2],
                "{row:?}"
            );
            assert!(
                figures[3] >= 2.0,
                "a signed-in page reads the store: {row:?}"
            );
        }
    }
}

both_backends!(
    query_counts_do_not_grow_with_the_page,
    feed_readers_never_count_as_seen,
    bench_runs_on_a_tiny_seed,
);
