//! The benchmark's school: classes with a teacher, families with one child each, a classroom
//! and a tutoring room per class, years of posts (with students, learning targets,
//! attachments and comments) and of live sessions with their events. Rows are written with
//! explicit ids in multi-row INSERTs, many per transaction, so the full seed takes minutes.

use anyhow::Context;

use crate::store::{placeholders, Backend, Store};

/// What to seed.
#[derive(Debug, Clone, Copy)]
pub struct Size {
    pub classes: i64,
    pub families: i64,
    pub posts: i64,
    pub sessions: i64,
    pub events: i64,
}

/// Everyone signs in with this password.
pub const PASSWORD: &str = "bench-password-1";
/// The newest post or session is this old; the oldest about three years older.
const NOW: i64 = 1_795_000_000_000;
const SPAN: i64 = 3 * 365 * 86_400_000;
/// Rows per INSERT and INSERTs per transaction.
const ROWS: usize = 400;
const STATEMENTS: usize = 25;

/// A value of a seeded row.
enum V {
    I(i64),
    T(String),
}

/// Writes one table's rows in multi-row INSERTs, `STATEMENTS` to a transaction.
async fn insert(
    store: &Store,
    table: &str,
    columns: &[&str],
    rows: impl Iterator<Item = Vec<V>>,
) -> anyhow::Result<u64> {
    let mut rows = rows.peekable();
    let mut written = 0;
    while rows.peek().is_some() {
        let mut tx = store.begin_write().await?;
        for _ in 0..STATEMENTS {
            let batch: Vec<Vec<V>> = rows.by_ref().take(ROWS).collect();
            if batch.is_empty() {
                break;
            }
            let values: Vec<String> = (0..batch.len())
                .map(|i| format!("({})", placeholders(i * columns.len() + 1, columns.len())))
                .collect();
            let sql = format!(
                "INSERT INTO {table} ({}) VALUES {}",
                columns.join(", "),
                values.join(", ")
            );
            let mut query = sqlx::query(&sql);
            for value in batch.iter().flatten() {
                query = match value {
                    V::I(n) => query.bind(*n),
                    V::T(t) => query.bind(t.clone()),
                };
            }
            query
                .execute(&mut *tx)
                .await
                .with_context(|| format!("seeding {table}"))?;
            written += batch.len() as u64;
        }
        tx.commit().await?;
    }
    Ok(written)
}

/// The teacher of class `c` (from 1) and the family `f` (from 1): logins the measurement
/// signs in with.
pub fn teacher_login(class: i64) -> String {
    format!("bench-teacher-{class}")
}

pub fn family_login(family: i64) -> String {
    format!("bench-family-{family}")
}

/// Seeds an empty database; false when it holds the bench school already.
pub async fn seed(store: &Store, size: Size) -> anyhow::Result<bool> {
    let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(store.pool())
        .await?;
    if users > 0 {
        let seeded = store.user_for_login(&teacher_login(1)).await?.is_some();
        anyhow::ensure!(
            seeded,
            "the database has users but no bench school: use an empty one"
        );
        return Ok(false);
    }
    let hash = crate::auth::password::hash(PASSWORD)?;
    let (c, f) = (size.classes, size.families);
    // Users: an admin (id 1), teachers (2..=c+1), families after them.
    let teacher = |class: i64| 1 + class;
    let family = |n: i64| 1 + c + n;
    insert(
        store,
        "users",
        &[
            "id",
            "login",
            "display_name",
            "password_hash",
            "is_admin",
            "created_at",
        ],
        std::iter::once(vec![
            V::I(1),
            V::T("bench-admin".into()),
            V::T("Admin".into()),
            V::T(hash.clone()),
            V::I(1),
            V::I(0),
        ])
        .chain((1..=c).map(|k| {
            vec![
                V::I(teacher(k)),
                V::T(teacher_login(k)),
                V::T(format!("Teacher {k}")),
                V::T(hash.clone()),
                V::I(0),
                V::I(0),
            ]
        }))
        .chain((1..=f).map(|n| {
            vec![
                V::I(family(n)),
                V::T(family_login(n)),
                V::T(format!("Family {n}")),
                V::T(hash.clone()),
                V::I(0),
                V::I(0),
            ]
        })),
    )
    .await?;
    insert(
        store,
        "classes",
        &["id", "name", "created_at"],
        (1..=c).map(|k| vec![V::I(k), V::T(format!("Class {k}")), V::I(0)]),
    )
    .await?;
    // Family n is in class (n - 1) % c + 1, with one child, student n.
    let class_of = |n: i64| (n - 1) % c + 1;
    insert(
        store,
        "memberships",
        &["user_id", "class_id", "role", "created_at"],
        (1..=c)
            .map(|k| vec![V::I(teacher(k)), V::I(k), V::T("teacher".into()), V::I(0)])
            .chain((1..=f).map(|n| {
                vec![
                    V::I(family(n)),
                    V::I(class_of(n)),
                    V::T("family".into()),
                    V::I(0),
                ]
            })),
    )
    .await?;
    insert(
        store,
        "students",
        &["id", "class_id", "name", "created_at"],
        (1..=f).map(|n| {
            vec![
                V::I(n),
                V::I(class_of(n)),
                V::T(format!("Student {n}")),
                V::I(0),
            ]
        }),
    )
    .await?;
    insert(
        store,
        "family_students",
        &["user_id", "student_id"],
        (1..=f).map(|n| vec![V::I(family(n)), V::I(n)]),
    )
    .await?;
    insert(
        store,
        "learning_targets",
        &["id", "class_id", "name"],
        (1..=c * 10).map(|t| vec![V::I(t), V::I((t - 1) / 10 + 1), V::T(format!("Target {t}"))]),
    )
    .await?;
    // Posts: spread over the span, newest last; one in five is for one child's family only.
    let posts = size.posts;
    let post_at = |p: i64| NOW - SPAN + p * (SPAN / posts.max(1));
    let post_class = |p: i64| (p - 1) % c + 1;
    let families_per_class = (f / c).max(1);
    let featured = |p: i64| post_class(p) + c * ((p / c) % families_per_class);
    let html =
        crate::markdown::to_safe_html("Our work on **fractions** today.", &Default::default());
    insert(
        store,
        "posts",
        &[
            "id",
            "class_id",
            "author_id",
            "body",
            "html",
            "visibility",
            "state",
            "created_at",
            "updated_at",
            "published_at",
        ],
        (1..=posts).map(|p| {
            vec![
                V::I(p),
                V::I(post_class(p)),
                V::I(teacher(post_class(p))),
                V::T("Our work on **fractions** today.".into()),
                V::T(html.clone()),
                V::T(if p % 5 == 0 { "students" } else { "class" }.into()),
                V::T("published".into()),
                V::I(post_at(p)),
                V::I(post_at(p)),
                V::I(post_at(p)),
            ]
        }),
    )
    .await?;
    insert(
        store,
        "post_students",
        &["post_id", "student_id"],
        (1..=posts)
            .filter(|p| p % 5 == 0)
            .map(|p| vec![V::I(p), V::I(featured(p))]),
    )
    .await?;
    insert(
        store,
        "post_targets",
        &["post_id", "target_id"],
        (1..=posts).map(|p| vec![V::I(p), V::I((post_class(p) - 1) * 10 + p % 10 + 1)]),
    )
    .await?;
    insert(
        store,
        "attachments",
        &[
            "id",
            "class_id",
            "post_id",
            "uploader_id",
            "sha256",
            "content_type",
            "size_bytes",
            "file_name",
            "created_at",
        ],
        (1..=posts).map(|p| {
            vec![
                V::I(p),
                V::I(post_class(p)),
                V::I(p),
                V::I(teacher(post_class(p))),
                V::T(format!("{p:064x}")),
                V::T("image/jpeg".into()),
                V::I(200_000),
                V::T(format!("work-{p}.jpg")),
                V::I(post_at(p)),
            ]
        }),
    )
    .await?;
    // Two comments a post, from families of its class.
    insert(
        store,
        "comments",
        &["id", "post_id", "author_id", "body", "created_at"],
        (1..=posts * 2).map(|n| {
            let p = (n + 1) / 2;
            vec![
                V::I(n),
                V::I(p),
                V::I(family(featured(p))),
                V::T("Lovely work!".into()),
                V::I(post_at(p) + n % 2 * 60_000),
            ]
        }),
    )
    .await?;
    // Rooms: a classroom (id k) and a tutoring room (id c + k) per class.
    insert(
        store,
        "rooms",
        &[
            "id",
            "class_id",
            "kind",
            "name",
            "host_user_id",
            "created_at",
        ],
        (1..=c)
            .map(|k| {
                vec![
                    V::I(k),
                    V::I(k),
                    V::T("classroom".into()),
                    V::T(format!("Class {k} live")),
                    V::I(teacher(k)),
                    V::I(0),
                ]
            })
            .chain((1..=c).map(|k| {
                vec![
                    V::I(c + k),
                    V::I(k),
                    V::T("tutoring".into()),
                    V::T(format!("Class {k} tutoring")),
                    V::I(teacher(k)),
                    V::I(0),
                ]
            })),
    )
    .await?;
    // Sessions of an hour, one in ten in the tutoring room; events: each family of the class
    // joins and leaves, the rest is chat.
    let sessions = size.sessions;
    let per_session = (size.events / sessions.max(1)).max(2);
    let session_at = |s: i64| NOW - SPAN + s * (SPAN / sessions.max(1)) + 1;
    let session_class = |s: i64| (s - 1) % c + 1;
    insert(
        store,
        "live_sessions",
        &[
            "id",
            "room_id",
            "started_at",
            "ended_at",
            "started_by",
            "end_reason",
            "peak_participants",
        ],
        (1..=sessions).map(|s| {
            let room = if s % 10 == 0 {
                c + session_class(s)
            } else {
                session_class(s)
            };
            vec![
                V::I(s),
                V::I(room),
                V::I(session_at(s)),
                V::I(session_at(s) + 3_600_000),
                V::I(teacher(session_class(s))),
                V::T("ended".into()),
                V::I(10),
            ]
        }),
    )
    .await?;
    insert(
        store,
        "session_events",
        &[
            "session_id",
            "seq",
            "at",
            "user_id",
            "actor_name",
            "kind",
            "detail",
        ],
        (1..=sessions)
            .flat_map(|s| (1..=per_session).map(move |e| (s, e)))
            .map(|(s, e)| {
                let k = session_class(s);
                // Pairs of (join, leave) first, for up to half the events; chat after.
                let people = (per_session / 4).min(families_per_class);
                let (user, kind, detail) = if e <= people * 2 {
                    let who = k + c * ((e - 1) % people);
                    (
                        family(who),
                        if e <= people { "join" } else { "leave" },
                        "{}".to_owned(),
                    )
                } else {
                    (teacher(k), "chat", format!("{{\"text\":\"Question {e}\"}}"))
                };
                vec![
                    V::I(s),
                    V::I(e),
                    V::I(session_at(s) + e * 1_000),
                    V::I(user),
                    V::T(format!("Person {user}")),
                    V::T(kind.into()),
                    V::T(detail),
                ]
            }),
    )
    .await?;
    if store.backend() == Backend::Postgres {
        // Explicit ids leave the identity sequences behind; later inserts need them ahead.
        for table in [
            "users",
            "classes",
            "students",
            "learning_targets",
            "posts",
            "attachments",
            "comments",
            "rooms",
            "live_sessions",
            "session_events",
        ] {
            sqlx::query(&format!("SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))"))
                .execute(store.pool())
                .await?;
        }
    } else {
        sqlx::query("ANALYZE").execute(store.pool()).await?;
    }
    store.summarize_ended_sessions().await?;
    if store.backend() == Backend::Postgres {
        sqlx::query("ANALYZE").execute(store.pool()).await?;
    }
    Ok(true)
}
