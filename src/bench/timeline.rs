//! `homeroom bench timeline`: seeds a school (`seed.rs`) unless the database holds it already,
//! serves it from this process, signs in as a family member and as a teacher of class 1, and
//! times their requests one after another over HTTP: the timeline's first page, the session
//! list, and the class's attendance export. It prints a Markdown table of p50, p95 and p99
//! latency and the queries each request made (the `x-homeroom-queries` answer header).

use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::seed::{self, Size};
use crate::config::Config;
use crate::store::Store;

#[derive(Debug, Clone, clap::Args)]
pub struct TimelineBench {
    /// The database to seed and read, e.g. sqlite://bench.db?mode=rwc or postgres://…/bench.
    #[arg(long)]
    pub database_url: String,
    #[arg(long, default_value_t = 30)]
    pub classes: i64,
    #[arg(long, default_value_t = 600)]
    pub families: i64,
    #[arg(long, default_value_t = 100_000)]
    pub posts: i64,
    #[arg(long, default_value_t = 5_000)]
    pub sessions: i64,
    #[arg(long, default_value_t = 200_000)]
    pub events: i64,
    /// Timed requests per page and person.
    #[arg(long, default_value_t = 200)]
    pub requests: usize,
}

/// One measured page: (what, who, path).
fn pages() -> [(&'static str, &'static str); 3] {
    [
        ("timeline page", "/api/v1/classes/1/timeline?limit=20"),
        ("session list", "/api/v1/classes/1/sessions?limit=20"),
        (
            "CSV export (all sessions)",
            "/api/v1/classes/1/attendance.csv",
        ),
    ]
}

pub async fn run(args: TimelineBench) -> anyhow::Result<()> {
    if args.classes < 1 || args.families < args.classes || args.requests == 0 {
        bail!("at least one class, one family per class and one request");
    }
    let store = Store::connect(&args.database_url)
        .await
        .context("cannot open the database")?;
    store.migrate().await?;
    let started = Instant::now();
    let size = Size {
        classes: args.classes,
        families: args.families,
        posts: args.posts,
        sessions: args.sessions,
        events: args.events,
    };
    match seed::seed(&store, size).await? {
        true => println!(
            "seeded {size:?} in {:.1} s",
            started.elapsed().as_secs_f64()
        ),
        false => println!("the database holds a bench school already; measuring it"),
    }
    store.close().await;

    let dir = tempfile_dir()?;
    let mut config = Config {
        listen: "127.0.0.1:0".parse()?,
        data_dir: dir.join("data"),
        database_url: Some(args.database_url.clone()),
        count_queries: true,
        ..Default::default()
    };
    config.tls.behind_proxy = true;
    let listener = std::net::TcpListener::bind(config.listen)?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(crate::run(config, listener, async {
        let _ = stopped.await;
    }));

    let people = [
        ("family", seed::family_login(1)),
        ("teacher", seed::teacher_login(1)),
    ];
    println!("\n| page | who | p50 ms | p95 ms | p99 ms | queries per request |");
    println!("| --- | --- | ---: | ---: | ---: | ---: |");
    for (who, login) in people {
        let client = signed_in(&base, &login).await?;
        for (what, path) in pages() {
            let figures = measure(&client, &format!("{base}{path}"), args.requests).await?;
            println!(
                "| {what} | {who} | {:.1} | {:.1} | {:.1} | {} |",
                figures.p50, figures.p95, figures.p99, figures.queries
            );
        }
    }
    let _ = stop.send(());
    server.await??;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// A folder for the served node's data (its certificates are not used: plain HTTP).
fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("homeroom-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// A client that carries the session cookie (sent by hand: the cookie is `Secure` and this
/// is plain HTTP on loopback).
async fn signed_in(base: &str, login: &str) -> anyhow::Result<reqwest::Client> {
    let response = reqwest::Client::new()
        .post(format!("{base}/api/v1/session"))
        .json(&serde_json::json!({"login": login, "password": seed::PASSWORD}))
        .send()
        .await?;
    if !response.status().is_success() {
        bail!("cannot sign in as {login}: {}", response.status());
    }
    let cookie = response
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .context("no session cookie")?
        .to_owned();
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::COOKIE, cookie.parse()?);
    Ok(reqwest::Client::builder()
        .default_headers(headers)
        .timeout(Duration::from_secs(60))
        .build()?)
}

struct Figures {
    p50: f64,
    p95: f64,
    p99: f64,
    /// The most queries one request made (they should all make the same).
    queries: u32,
}

async fn measure(client: &reqwest::Client, url: &str, requests: usize) -> anyhow::Result<Figures> {
    let mut times = Vec::with_capacity(requests);
    let mut queries = 0;
    // One request first warms caches and connections; it is not counted.
    for n in 0..=requests {
        let started = Instant::now();
        let response = client.get(url).send().await?;
        let status = response.status();
        let counted: u32 = response
            .headers()
            .get("x-homeroom-queries")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .context("no query count in the answer")?;
        let body = response.bytes().await?;
        if !status.is_success() {
            bail!(
                "{url} answered {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        if n > 0 {
            times.push(started.elapsed().as_secs_f64() * 1000.0);
            queries = queries.max(counted);
        }
    }
    times.sort_by(f64::total_cmp);
    let at = |q: f64| times[((times.len() as f64 * q).ceil() as usize).clamp(1, times.len()) - 1];
    Ok(Figures {
        p50: at(0.50),
        p95: at(0.95),
        p99: at(0.99),
        queries,
    })
}
