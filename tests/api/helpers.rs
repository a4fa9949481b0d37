//! The test harness: a real `homeroom` process on a random port with a fresh store (a temporary
//! SQLite file, or a new PostgreSQL database), spoken to over real HTTPS.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// Runs an async test body once per backend: `both_backends!(name);` expects `async fn name(db: Db)`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() { super::$name($crate::helpers::Db::Sqlite).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() { super::$name($crate::helpers::Db::Postgres).await }
        }
    )*};
}

pub const BIN: &str = env!("CARGO_BIN_EXE_homeroom");

/// A fresh place for one server: its folder and its database URL.
pub struct Workspace {
    pub dir: tempfile::TempDir,
    pub database_url: String,
    /// `HOMEROOM_*` overrides applied after the harness's own (a test that serves media on
    /// another interface than loopback, say).
    pub env: Vec<(String, String)>,
}

impl Drop for Workspace {
    /// Drops the test's PostgreSQL database so repeated runs leave nothing behind.
    fn drop(&mut self) {
        if !self.database_url.starts_with("postgres") {
            return;
        }
        let (Ok(admin_url), Ok(url)) = (
            std::env::var("HOMEROOM_TEST_POSTGRES"),
            url::Url::parse(&self.database_url),
        ) else {
            return;
        };
        let name = url.path().trim_start_matches('/').to_owned();
        let _ = std::thread::spawn(move || {
            use sqlx::Connection;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin_url).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut conn)
                        .await;
                }
            });
        })
        .join();
    }
}

impl Workspace {
    pub async fn new(db: Db) -> Workspace {
        let dir = tempfile::tempdir().expect("temp dir");
        let database_url = match db {
            Db::Sqlite => format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("homeroom.db").display()
            ),
            Db::Postgres => fresh_postgres_database().await,
        };
        Workspace {
            dir,
            database_url,
            env: Vec::new(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The config file the server is started with; `extra` is appended (TOML).
    pub fn write_config(&self, extra: &str) -> PathBuf {
        let path = self.path().join("homeroom.toml");
        let text = format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = \"{data}\"\ndatabase_url = \"{db}\"\n{extra}\n",
            data = self.path().join("data").display(),
            db = self.database_url,
        );
        std::fs::write(&path, text).expect("write config");
        path
    }

    /// A `homeroom` command with this workspace's config and a clean HOMEROOM_* environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        for (key, _) in std::env::vars() {
            if key.starts_with("HOMEROOM_") {
                command.env_remove(key);
            }
        }
        // The harness's own settings come as overrides, so tests may write any [section].
        // Media stays on loopback, on a free port of this server's own.
        command
            .env("HOMEROOM_TLS_CERT_DIR", self.path().join("certs"))
            .env("HOMEROOM_MEDIA_INTERFACES", "[\"127.0.0.1\"]")
            .env("HOMEROOM_MEDIA_PORT", "0")
            // Dozens of test servers share two cores, so their media runs late because of one
            // another; that must not turn viewers away (`limits.max_media_lag_ms`). The test
            // of that sets its own.
            .env("HOMEROOM_LIMITS_MAX_MEDIA_LAG_MS", "1000")
            .arg("--config")
            .arg(self.path().join("homeroom.toml"))
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env(
                "RUST_LOG",
                std::env::var("HOMEROOM_TEST_LOG")
                    .unwrap_or_else(|_| "info,rtc=warn,rtc_ice=error,webrtc=warn".into()),
            )
            .kill_on_drop(true);
        command
    }
}

/// A running server.
pub struct TestApp {
    // Fields drop in order: the log is read, then the process ends, then its folder goes.
    _log_on_panic: LogOnPanic,
    child: Child,
    pub workspace: Workspace,
    pub base: String,
    pub client: reqwest::Client,
    stdout: Arc<Mutex<Vec<String>>>,
    log_path: PathBuf,
}

impl TestApp {
    pub async fn spawn(db: Db) -> TestApp {
        TestApp::spawn_with(db, "").await
    }

    /// A server with extra configuration (TOML, at the top level of the file).
    pub async fn spawn_with(db: Db, extra: &str) -> TestApp {
        TestApp::spawn_with_env(db, extra, &[]).await
    }

    /// A server with extra configuration and `HOMEROOM_*` overrides over the harness's own.
    pub async fn spawn_with_env(db: Db, extra: &str, env: &[(&str, &str)]) -> TestApp {
        let mut workspace = Workspace::new(db).await;
        workspace.write_config(extra);
        workspace.env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        TestApp::start(workspace).await
    }
}

/// Shows the end of the server's log when the test fails.
struct LogOnPanic(PathBuf);

impl Drop for LogOnPanic {
    fn drop(&mut self) {
        // For reading a passing run's decisions: HOMEROOM_TEST_LOG_DIR keeps every server's log.
        if let Ok(dir) = std::env::var("HOMEROOM_TEST_LOG_DIR") {
            let name = format!("server-{}.log", std::process::id());
            let to = std::path::Path::new(&dir).join(name);
            let log = std::fs::read(&self.0).unwrap_or_default();
            let _ = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(to)
                .and_then(|mut f| std::io::Write::write_all(&mut f, &log));
        }
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.0).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!("--- last lines of the server log ---");
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

impl TestApp {
    /// Starts (or restarts) the server on an existing workspace.
    pub async fn start(workspace: Workspace) -> TestApp {
        let log_path = workspace.path().join("server.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .unwrap();
        let mut child = workspace
            .command(&["serve"])
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn homeroom");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let base = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                stdout.lock().unwrap().push(line.clone());
                if let Some(url) = line.split("; open ").nth(1) {
                    return url.trim_end_matches('/').to_owned();
                }
            }
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            panic!("homeroom exited before serving; its log:\n{log}");
        })
        .await
        .expect("homeroom did not start within 30 s");
        tokio::spawn({
            let stdout = stdout.clone();
            async move {
                while let Ok(Some(line)) = lines.next_line().await {
                    stdout.lock().unwrap().push(line);
                }
            }
        });
        let client = client_trusting(&workspace.path().join("certs/self-signed.crt"));
        TestApp {
            _log_on_panic: LogOnPanic(log_path.clone()),
            workspace,
            base,
            client,
            child,
            stdout,
            log_path,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }

    /// What the server printed on standard output so far.
    pub fn stdout(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }

    /// Everything the server logged so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The one-time set-up secret printed at start (while no admin exists).
    pub fn setup_secret(&self) -> Option<String> {
        self.stdout()
            .iter()
            .rev()
            .find_map(|l| l.split("/setup#").nth(1).map(|s| s.trim().to_owned()))
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }

    /// Sends SIGTERM and waits for the exit status.
    pub async fn terminate(mut self) -> (std::process::ExitStatus, Duration, Workspace) {
        let started = std::time::Instant::now();
        signal(self.pid(), "TERM");
        let status = tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .expect("homeroom did not exit within 10 s of SIGTERM")
            .unwrap();
        (status, started.elapsed(), self.workspace)
    }

    /// Kills the server outright (SIGKILL: no shutdown, no flushing) and hands back its
    /// workspace, to restart on it with `TestApp::start`.
    pub async fn kill(mut self) -> Workspace {
        signal(self.pid(), "KILL");
        tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .expect("homeroom did not die within 10 s of SIGKILL")
            .unwrap();
        self.workspace
    }
}

pub fn signal(pid: u32, name: &str) {
    let ok = std::process::Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "kill -{name} {pid} failed");
}

/// An HTTPS client that trusts exactly the server's generated certificate, with a cookie jar.
pub fn client_trusting(cert: &Path) -> reqwest::Client {
    let pem = std::fs::read(cert).expect("generated certificate");
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .cookie_store(true)
        .use_rustls_tls()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Creates a new database on the server named by HOMEROOM_TEST_POSTGRES.
async fn fresh_postgres_database() -> String {
    use sqlx::Connection;
    let admin_url = std::env::var("HOMEROOM_TEST_POSTGRES").unwrap_or_else(|_| {
        panic!(
            "this test runs on PostgreSQL: set HOMEROOM_TEST_POSTGRES to a server URL, e.g. \
             HOMEROOM_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432/test (the README's test \
             command does this)"
        )
    });
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let name = format!(
        "homeroom_t{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst),
        rand_suffix()
    );
    let mut conn = sqlx::PgConnection::connect(&admin_url)
        .await
        .unwrap_or_else(|e| panic!("cannot reach PostgreSQL at HOMEROOM_TEST_POSTGRES: {e}"));
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create database");
    let mut url = url::Url::parse(&admin_url).expect("HOMEROOM_TEST_POSTGRES is a URL");
    url.set_path(&name);
    url.to_string()
}

fn rand_suffix() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
}

/// A signed-in person: their own cookie jar and CSRF token.
pub struct Actor {
    pub client: reqwest::Client,
    pub base: String,
    pub csrf: String,
    pub user_id: i64,
    /// The session cookie's value, to check it never reaches the logs.
    pub cookie: String,
}

impl Actor {
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("x-csrf-token", &self.csrf);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("request")
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.send(reqwest::Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: serde_json::Value) -> reqwest::Response {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    /// POST that must succeed; returns the JSON answer.
    pub async fn post_ok(&self, path: &str, body: serde_json::Value) -> serde_json::Value {
        let response = self.post(path, body).await;
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(status.is_success(), "POST {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
    }
}

/// The `error.code` of a JSON error answer, with its status.
pub async fn error_code(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    (
        status,
        body["error"]["code"].as_str().unwrap_or("").to_owned(),
    )
}

pub const PASSWORD: &str = "correct horse battery";

impl TestApp {
    fn new_client(&self) -> reqwest::Client {
        client_trusting(&self.workspace.path().join("certs/self-signed.crt"))
    }

    /// Turns a sign-in answer (with its Set-Cookie) into an Actor.
    async fn actor_from(&self, client: reqwest::Client, response: reqwest::Response) -> Actor {
        let status = response.status();
        let cookie = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| {
                v.strip_prefix("homeroom_session=")
                    .map(|rest| rest.split(';').next().unwrap().to_owned())
            })
            .unwrap_or_default();
        let text = response.text().await.unwrap();
        assert!(status.is_success(), "sign-in failed: {status} {text}");
        let me: serde_json::Value = serde_json::from_str(&text).unwrap();
        Actor {
            client,
            base: self.base.clone(),
            csrf: me["csrf_token"].as_str().unwrap().to_owned(),
            user_id: me["user"]["id"].as_i64().unwrap(),
            cookie,
        }
    }

    /// Creates the first admin through the printed set-up link.
    pub async fn admin(&self) -> Actor {
        let secret = self.setup_secret().expect("set-up link printed");
        let client = self.new_client();
        let response = client
            .post(self.url("/api/v1/setup"))
            .json(&serde_json::json!({"secret": secret, "login": "admin", "display_name": "Site Admin", "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        self.actor_from(client, response).await
    }

    pub async fn sign_in(&self, login: &str, password: &str) -> Actor {
        let client = self.new_client();
        let response = client
            .post(self.url("/api/v1/session"))
            .json(&serde_json::json!({"login": login, "password": password}))
            .send()
            .await
            .unwrap();
        self.actor_from(client, response).await
    }

    /// A teacher account made by the admin, who set their password through the link.
    pub async fn teacher(&self, admin: &Actor, login: &str) -> Actor {
        let created = admin
            .post_ok(
                "/api/v1/users",
                serde_json::json!({"login": login, "display_name": login}),
            )
            .await;
        let link = created["set_password_url"].as_str().unwrap();
        let token = link.split('#').nth(1).unwrap();
        let response = self
            .new_client()
            .post(self.url("/api/v1/password-reset"))
            .json(&serde_json::json!({"token": token, "new_password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 204);
        self.sign_in(login, PASSWORD).await
    }

    /// Accepts an invite code as a new account.
    pub async fn join(&self, code: &str, login: &str) -> Actor {
        let client = self.new_client();
        let response = client
            .post(self.url("/api/v1/invites/accept"))
            .json(&serde_json::json!({"code": code, "login": login, "display_name": login, "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        self.actor_from(client, response).await
    }

    /// An anonymous client (no session).
    pub fn anonymous(&self) -> reqwest::Client {
        self.new_client()
    }
}

/// A class with one person in every role, made the way a school makes it.
pub struct ClassFixture {
    pub class_id: i64,
    pub student_id: i64,
    pub teacher: Actor,
    pub family: Actor,
    pub tutor: Actor,
    pub student: Actor,
}

impl ClassFixture {
    pub async fn new(app: &TestApp, admin: &Actor, tag: &str) -> ClassFixture {
        let teacher = app.teacher(admin, &format!("teacher-{tag}")).await;
        let class = admin
            .post_ok(
                "/api/v1/classes",
                serde_json::json!({"name": format!("Class {tag}"), "teacher_id": teacher.user_id}),
            )
            .await;
        let class_id = class["id"].as_i64().unwrap();
        let student = teacher
            .post_ok(
                &format!("/api/v1/classes/{class_id}/students"),
                serde_json::json!({"name": format!("Kid {tag}")}),
            )
            .await;
        let student_id = student["id"].as_i64().unwrap();
        let invite = |role: &'static str| {
            let teacher = &teacher;
            async move {
                let created = teacher
                    .post_ok(
                        &format!("/api/v1/classes/{class_id}/invites"),
                        serde_json::json!({"role": role, "student_id": student_id}),
                    )
                    .await;
                created["code"].as_str().unwrap().to_owned()
            }
        };
        let family = app
            .join(&invite("family").await, &format!("family-{tag}"))
            .await;
        let tutor = app
            .join(&invite("tutor").await, &format!("tutor-{tag}"))
            .await;
        let student = app
            .join(&invite("student").await, &format!("student-{tag}"))
            .await;
        ClassFixture {
            class_id,
            student_id,
            teacher,
            family,
            tutor,
            student,
        }
    }
}

impl ClassFixture {
    /// A family joining through an invite for a new student of the class (not `student`).
    pub async fn family_of_new_student(&self, app: &TestApp, name: &str) -> Actor {
        let class = self.class_id;
        let kid = self
            .teacher
            .post_ok(
                &format!("/api/v1/classes/{class}/students"),
                serde_json::json!({"name": name}),
            )
            .await;
        let invite = self
            .teacher
            .post_ok(
                &format!("/api/v1/classes/{class}/invites"),
                serde_json::json!({"role": "family", "student_id": kid["id"]}),
            )
            .await;
        app.join(
            invite["code"].as_str().unwrap(),
            &format!("{}-family", name.to_lowercase()),
        )
        .await
    }
}

impl Workspace {
    /// A direct connection to the test's database, to set up states a test cannot wait for
    /// (an invite that expired).
    pub async fn database(&self) -> sqlx::AnyPool {
        sqlx::any::install_default_drivers();
        sqlx::AnyPool::connect(&self.database_url)
            .await
            .expect("connect to test database")
    }
}
