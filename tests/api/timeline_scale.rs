//! The class timeline at school scale (issue 15): pages cost the same number of queries
//! whatever their length, feed readers never count as "seen", the plans of the paging
//! queries use their indexes, constraint violations answer 4xx, expired rows are purged, and
//! `homeroom bench timeline` runs.

use std::time::Duration;

use serde_json::json;

use crate::both_backends;
use crate::helpers::{error_code, Actor, ClassFixture, Db, TestApp, Workspace};

/// The JSON answer of a GET.
async fn read(actor: &Actor, path: &str) -> serde_json::Value {
    actor.get(path).await.json().await.unwrap()
}

/// A fresh, migrated database and a store on it.
async fn migrated(db: Db) -> (Workspace, homeroom::store::Store) {
    let workspace = Workspace::new(db).await;
    let store = homeroom::store::Store::connect(&workspace.database_url)
        .await
        .unwrap();
    store.migrate().await.unwrap();
    (workspace, store)
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
            let view = read(&teacher, &format!("/api/v1/posts/{post}")).await;
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

/// A parameter of an explained query.
enum Bind {
    I(i64),
    T(&'static str),
}

/// `EXPLAIN` of `sql` with `binds`: the plan's text, one line per node.
async fn plan(db: Db, pool: &sqlx::AnyPool, sql: &str, binds: &[Bind]) -> String {
    let mut tx = pool.begin().await.unwrap();
    let explain = match db {
        Db::Sqlite => format!("EXPLAIN QUERY PLAN {sql}"),
        Db::Postgres => {
            // Tiny tables make a sequential scan cheapest; what matters is that an index
            // can serve the query.
            sqlx::query("SET LOCAL enable_seqscan = off")
                .execute(&mut *tx)
                .await
                .unwrap();
            format!("EXPLAIN {sql}")
        }
    };
    let mut query = sqlx::query(&explain);
    for value in binds {
        query = match value {
            Bind::I(n) => query.bind(*n),
            Bind::T(t) => query.bind(*t),
        };
    }
    let rows = query.fetch_all(&mut *tx).await.unwrap();
    use sqlx::Row;
    rows.iter()
        .map(|row| match db {
            Db::Sqlite => row.get::<String, _>("detail"),
            Db::Postgres => row.get::<String, _>(0),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

async fn paging_queries_use_their_indexes(db: Db) {
    use homeroom::store::post_pages::{posts_before_sql, posts_in_state_sql, POST_COMMENTS_SQL};
    use homeroom::store::session_logs::{sessions_before_sql, SessionFilter};
    let (workspace, store) = migrated(db).await;
    let pool = workspace.database().await;
    let ints = |values: &[i64]| values.iter().map(|v| Bind::I(*v)).collect::<Vec<_>>();
    let max = i64::MAX;
    let uses = |plan: &str, index: &str| {
        assert!(
            plan.contains(index),
            "expected {index} in the plan:\n{plan}"
        );
        let full_scan = plan.lines().any(|l| {
            let l = l.trim();
            ["SCAN p", "SCAN s", "SCAN c"].contains(&l)
                || [
                    "Seq Scan on posts",
                    "Seq Scan on live_sessions",
                    "Seq Scan on comments",
                ]
                .iter()
                .any(|scan| l.contains(scan))
        });
        assert!(!full_scan, "a full scan:\n{plan}");
    };
    let posts = plan(
        db,
        &pool,
        &posts_before_sql(),
        &ints(&[1, 0, 0, 1, max, 1, max, 21]),
    )
    .await;
    uses(&posts, "posts_published");
    let binds = [
        Bind::I(1),
        Bind::T("pending"),
        Bind::I(max),
        Bind::I(max),
        Bind::I(21),
    ];
    uses(
        &plan(db, &pool, &posts_in_state_sql(), &binds).await,
        "posts_updated",
    );
    uses(
        &plan(db, &pool, POST_COMMENTS_SQL, &ints(&[1, 0, 0, 21])).await,
        "comments_post",
    );
    for filter in [
        SessionFilter::All,
        SessionFilter::Reader,
        SessionFilter::Host,
    ] {
        let sql = sessions_before_sql(filter);
        let binds = ints(&[1, 0, 1, 0, max, max, 1, max, 21]);
        uses(&plan(db, &pool, &sql, &binds).await, "live_sessions_room");
    }
    pool.close().await;
    store.close().await;
}

async fn constraint_violations_answer_4xx(db: Db) {
    use axum::http::StatusCode;
    use homeroom::http::Error;
    let (workspace, store) = migrated(db).await;
    // A membership of a user and class that do not exist: a foreign key.
    let missing = store
        .set_membership(999, 999, homeroom::access::Role::Family)
        .await
        .unwrap_err();
    let error = Error::from(missing);
    assert_eq!(
        (error.status(), error.code()),
        (StatusCode::CONFLICT, "missing_reference")
    );
    let class = store.create_class("A", None).await.unwrap();
    // A role the column does not take: a CHECK.
    let bad = sqlx::query("INSERT INTO invites (class_id, role, code_hash, created_at, expires_at, max_uses) VALUES ($1, 'janitor', 'x', 0, 0, 1)")
        .bind(class.id)
        .execute(store.pool())
        .await
        .unwrap_err();
    let error = Error::from(bad);
    assert_eq!(
        (error.status(), error.code()),
        (StatusCode::BAD_REQUEST, "invalid_value")
    );
    store.close().await;
}

async fn expired_rows_are_purged(db: Db) {
    let (workspace, store) = migrated(db).await;
    let pool = workspace.database().await;
    sqlx::query("INSERT INTO users (login, display_name, password_hash, created_at) VALUES ('u', 'U', 'x', 0)")
        .execute(&pool)
        .await
        .unwrap();
    for (hash, expires) in [("old", 1_000), ("live", i64::MAX)] {
        sqlx::query("INSERT INTO auth_sessions (token_hash, user_id, csrf_token, created_at, expires_at) VALUES ($1, (SELECT id FROM users), 'c', 0, $2)")
            .bind(hash)
            .bind(expires)
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query("INSERT INTO setup_tokens (token_hash, expires_at) VALUES ($1, $2)")
            .bind(hash)
            .bind(expires)
            .execute(&pool)
            .await
            .unwrap();
    }
    let purged = store.purge_expired(2_000).await.unwrap();
    assert_eq!(purged, 2);
    let left: Vec<String> = sqlx::query_scalar(
        "SELECT token_hash FROM auth_sessions UNION ALL SELECT token_hash FROM setup_tokens",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(left, ["live", "live"]);
    pool.close().await;
    store.close().await;
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

/// Groundwork for several nodes: the room-token key is the database's, made once; a node's
/// start-up closes (and summarizes) only the sessions it ran.
async fn nodes_share_the_key_and_close_only_their_sessions(db: Db) {
    let (workspace, store) = migrated(db).await;
    let first = store.shared_secret("room_tokens", "aa").await.unwrap();
    let again = store.shared_secret("room_tokens", "bb").await.unwrap();
    assert_eq!((first.as_str(), again.as_str()), ("aa", "aa"));
    let pool = workspace.database().await;
    let class = store.create_class("Nodes", None).await.unwrap();
    let room: i64 = sqlx::query_scalar("INSERT INTO rooms (class_id, kind, name, created_at) VALUES ($1, 'classroom', 'r', 0) RETURNING id")
        .bind(class.id)
        .fetch_one(&pool)
        .await
        .unwrap();
    let node_a = store.clone().with_node_id("node-a");
    let node_b = store.clone().with_node_id("node-b");
    let a = node_a.start_live_session(room, None).await.unwrap();
    let b = node_b.start_live_session(room, None).await.unwrap();
    assert_eq!(node_a.close_orphaned_sessions().await.unwrap(), 1);
    let open: Vec<i64> = sqlx::query_scalar("SELECT id FROM live_sessions WHERE ended_at IS NULL")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(open, [b], "node b's session is b's to close");
    let summarized: Option<i64> =
        sqlx::query_scalar("SELECT attendees FROM live_sessions WHERE id = $1")
            .bind(a)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        summarized,
        Some(0),
        "a closed session's attendance is stored"
    );
    pool.close().await;
    store.close().await;
}

both_backends!(
    nodes_share_the_key_and_close_only_their_sessions,
    query_counts_do_not_grow_with_the_page,
    feed_readers_never_count_as_seen,
    paging_queries_use_their_indexes,
    constraint_violations_answer_4xx,
    expired_rows_are_purged,
    bench_runs_on_a_tiny_seed,
);
