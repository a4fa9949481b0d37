//! Storage: one sqlx `AnyPool` over SQLite (the default, one file) or PostgreSQL.
//!
//! Every query is written once and runs on both: `$1`-style parameters (SQLite accepts them as
//! long as they appear in order), BIGINT ids and unix-millisecond times, TEXT everywhere else.
//! Only the DDL differs, so each backend has its own migration folder, both embedded.
//! One file per concept holds that concept's queries.
//!
//! Every statement reaches the database through [`Store::pool`] (or a transaction begun
//! there), which counts it for the request in progress when counting is on (see
//! [`query_count`]): that is how tests and the benchmark check that a page costs the same number
//! of queries whatever its length.

pub mod attachments;
pub mod classes;
pub mod feed_tokens;
pub mod invites;
pub mod keys;
pub mod live_sessions;
pub mod password_resets;
pub mod post_pages;
pub mod post_views;
pub mod posts;
pub mod purge;
pub mod recordings;
pub mod rooms;
pub mod school;
pub mod session_logs;
pub mod sessions;
pub mod setup;
pub mod stream_keys;
pub mod users;

use std::path::Path;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Executor};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A cheap, cloneable handle to the database.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// This node's name: the live sessions it opens carry it, and start-up closes only those.
    node_id: std::sync::Arc<str>,
}

pub mod query_count {
    //! Queries per request: a task-local counter that [`super::Store::pool`] bumps. Whoever
    //! wants a count runs the work inside [`counted`]; everywhere else counting costs one
    //! task-local lookup.

    use std::future::Future;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    tokio::task_local! {
        static QUERIES: Arc<AtomicU32>;
    }

    pub(super) fn bump() {
        let _ = QUERIES.try_with(|n| n.fetch_add(1, Ordering::Relaxed));
    }

    /// Runs `work` and answers its output with the number of store calls it made.
    pub async fn counted<T>(work: impl Future<Output = T>) -> (T, u32) {
        let counter = Arc::new(AtomicU32::new(0));
        let out = QUERIES.scope(counter.clone(), work).await;
        (out, counter.load(Ordering::Relaxed))
    }
}

impl Store {
    /// Connects, creating the SQLite file (and its folder) when needed.
    pub async fn connect(url: &str) -> Result<Store, sqlx::Error> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        if backend == Backend::Sqlite {
            if let Some(dir) = sqlite_path(url).and_then(|p| p.parent().map(Path::to_owned)) {
                if !dir.as_os_str().is_empty() {
                    std::fs::create_dir_all(&dir)?;
                }
            }
        }
        let options: AnyConnectOptions = url.parse()?;
        let pool = AnyPoolOptions::new()
            // SQLite writes one at a time anyway, but reads run side by side in WAL mode: a
            // class's families arriving at once mostly read (sessions, memberships, rooms).
            .max_connections(if backend == Backend::Sqlite { 8 } else { 16 })
            // A full room joining at once queues here rather than failing; past this the
            // request gets 503 busy (see http/error.rs), never a 500.
            .acquire_timeout(Duration::from_secs(20))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                        conn.execute("PRAGMA busy_timeout = 5000").await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        if backend == Backend::Sqlite {
            // WAL lets readers go on while one writer writes; it persists in the file.
            pool.execute("PRAGMA journal_mode = WAL").await?;
        }
        Ok(Store {
            pool,
            backend,
            node_id: std::sync::Arc::from(""),
        })
    }

    /// Names the node whose live sessions this handle opens (see `live_sessions`).
    pub fn with_node_id(mut self, node_id: &str) -> Store {
        self.node_id = std::sync::Arc::from(node_id);
        self
    }

    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// Applies the embedded migrations of this backend; a no-op when they are applied already.
    pub async fn migrate(&self) -> Result<(), sqlx::migrate::MigrateError> {
        match self.backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&self.pool).await,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&self.pool).await,
        }
    }

    /// The pool every query runs on; each call counts as one query of the request (a
    /// transaction begun here counts once, however many statements it holds).
    pub fn pool(&self) -> &AnyPool {
        query_count::bump();
        &self.pool
    }

    /// Begins a transaction that will write. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`, which waits out the busy timeout): a deferred transaction that reads
    /// first and writes later cannot wait for the lock when another writer got in between, and
    /// fails with "database is locked" instead.
    pub async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.pool().begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool().begin().await,
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Answers whether the database takes a query right now (for `/readyz`).
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn sqlite_path(url: &str) -> Option<&Path> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next()?;
    (!path.is_empty() && path != ":memory:").then(|| Path::new(path))
}

/// `$start, $start+1, …` for an `IN (...)` list of `n` values.
pub(crate) fn placeholders(start: usize, n: usize) -> String {
    (start..start + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A query with every id bound in order.
pub(crate) fn bind_ids<'q, O>(
    sql: &'q str,
    ids: &'q [i64],
) -> sqlx::query::QueryAs<'q, sqlx::Any, O, sqlx::any::AnyArguments<'q>>
where
    O: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow>,
{
    let mut query = sqlx::query_as::<_, O>(sql);
    for id in ids {
        query = query.bind(*id);
    }
    query
}

/// The current time in unix milliseconds, the only time format the store keeps.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Which constraint a write broke, on either backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Violation {
    /// The row exists already.
    Unique,
    /// The row names something that does not exist (any more).
    ForeignKey,
    /// A value outside what the column takes (CHECK or NOT NULL).
    Check,
}

/// The constraint the error reports, if it is a constraint violation.
pub fn violation(err: &sqlx::Error) -> Option<Violation> {
    let sqlx::Error::Database(db) = err else {
        return None;
    };
    let code = db.code();
    let message = db.message();
    if is_unique_violation(err) {
        Some(Violation::Unique)
    } else if db.is_foreign_key_violation()
        || code.as_deref() == Some("23503")
        || message.contains("FOREIGN KEY constraint failed")
    {
        Some(Violation::ForeignKey)
    } else if db.is_check_violation()
        || matches!(code.as_deref(), Some("23514" | "23502"))
        || message.contains("CHECK constraint failed")
        || message.contains("NOT NULL constraint failed")
    {
        Some(Violation::Check)
    } else {
        None
    }
}

/// True when the error is a unique-constraint violation, on either backend.
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(db) => {
            db.is_unique_violation()
                || db.code().as_deref() == Some("23505")
                || db.message().contains("UNIQUE constraint failed")
        }
        _ => false,
    }
}
