//! The store at school scale (issue 15), spoken to directly on both databases: the paging
//! queries' plans use their indexes, constraint violations map to 4xx answers, expired rows
//! are purged, and the groundwork for several nodes holds.

use crate::both_backends;
use crate::helpers::{Db, Workspace};

/// A fresh, migrated database and a store on it.
async fn migrated(db: Db) -> (Workspace, homeroom::store::Store) {
    let workspace = Workspace::new(db).await;
    let store = homeroom::store::Store::connect(&workspace.database_url)
        .await
        .unwrap();
    store.migrate().await.unwrap();
    (workspace, store)
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
    let (_workspace, store) = migrated(db).await;
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
    paging_queries_use_their_indexes,
    constraint_violations_answer_4xx,
    expired_rows_are_purged,
    nodes_share_the_key_and_close_only_their_sessions,
);
