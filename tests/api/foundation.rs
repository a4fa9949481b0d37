//! The server foundation: probes, configuration errors, certificates, storage, shutdown.

use std::time::Duration;

use tokio::io::AsyncBufReadExt;

use crate::both_backends;
use crate::helpers::{Db, TestApp, Workspace};

both_backends!(
    serves_health_ready_metrics_and_openapi,
    data_survives_restart,
    sigterm_exits_cleanly
);

async fn serves_health_ready_metrics_and_openapi(db: Db) {
    let app = TestApp::spawn(db).await;
    let health = app.get("/healthz").await;
    assert_eq!(health.status(), 200);
    assert_eq!(health.headers()["x-content-type-options"], "nosniff");
    assert_eq!(app.get("/readyz").await.status(), 200);

    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(
            r#"homeroom_http_requests_total{method="GET",route="/healthz",status="200"} 1"#
        ),
        "{metrics}"
    );

    let doc: serde_json::Value = app.get("/api/v1/openapi.json").await.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert!(doc["paths"]["/healthz"].is_object());

    let missing = app.get("/no/such/page").await;
    assert_eq!(missing.status(), 404);
}

async fn data_survives_restart(db: Db) {
    let app = TestApp::spawn(db).await;
    assert!(
        app.setup_secret().is_some(),
        "a fresh install prints a set-up link"
    );
    let cert_before = std::fs::read(app.workspace.path().join("certs/self-signed.crt")).unwrap();
    let (status, _, workspace) = app.terminate().await;
    assert!(status.success());

    // An admin created from the command line is in the store when the server comes back.
    let mut create = workspace.command(&[
        "admin",
        "create-user",
        "--login",
        "Principal",
        "--name",
        "Ms Head",
        "--admin",
    ]);
    let output = pipe_stdin(&mut create, "a long enough password\n").await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let app = TestApp::start(workspace).await;
    assert_eq!(
        app.setup_secret(),
        None,
        "no set-up link once an admin exists"
    );
    let cert_after = std::fs::read(app.workspace.path().join("certs/self-signed.crt")).unwrap();
    assert_eq!(cert_before, cert_after, "the certificate is reused");

    // The login is taken: the user really was stored.
    let (_, _, workspace) = app.terminate().await;
    let mut again = workspace.command(&[
        "admin",
        "create-user",
        "--login",
        "principal",
        "--name",
        "x",
    ]);
    let output = pipe_stdin(&mut again, "another long password\n").await;
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("taken"));
}

async fn sigterm_exits_cleanly(db: Db) {
    let app = TestApp::spawn(db).await;
    assert_eq!(app.get("/healthz").await.status(), 200);
    let (status, took, workspace) = app.terminate().await;
    assert_eq!(status.code(), Some(0), "exit code after SIGTERM");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    drop(workspace);
}

async fn pipe_stdin(command: &mut tokio::process::Command, input: &str) -> std::process::Output {
    use std::process::Stdio;
    use tokio::io::AsyncWriteExt;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .await
        .unwrap();
    child.wait_with_output().await.unwrap()
}

#[tokio::test]
async fn migrations_are_idempotent() {
    for db in [Db::Sqlite, Db::Postgres] {
        let workspace = Workspace::new(db).await;
        workspace.write_config("");
        for _ in 0..2 {
            let output = workspace.command(&["migrate"]).output().await.unwrap();
            assert!(
                output.status.success(),
                "{db:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
}

#[tokio::test]
async fn config_errors_name_the_key_and_exit_non_zero() {
    let workspace = Workspace::new(Db::Sqlite).await;
    let cases = [
        ("colour = \"blue\"", "colour"),
        ("listen = \"not an address\"", "listen"),
        ("[media]\npublic_ip = \"the school\"", "media.public_ip"),
        (
            "[limits]\nmax_message_bytes = \"big\"",
            "limits.max_message_bytes",
        ),
    ];
    for (text, key) in cases {
        std::fs::write(workspace.path().join("homeroom.toml"), text).unwrap();
        let output = workspace.command(&["check-config"]).output().await.unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{text} was accepted");
        assert!(stderr.contains(key), "{text}: {stderr}");
    }
    // The same through the environment.
    workspace.write_config("");
    let output = workspace
        .command(&["check-config"])
        .env("HOMEROOM_LISTEN", "nowhere")
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("listen"));
}

#[tokio::test]
async fn bad_certificate_files_are_named() {
    let workspace = Workspace::new(Db::Sqlite).await;
    let cert = workspace.path().join("school.crt");
    let key = workspace.path().join("school.key");
    std::fs::write(
        &cert,
        "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    std::fs::write(&key, "nothing").unwrap();
    let tls = format!(
        "[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
        cert.display(),
        key.display()
    );
    std::fs::write(workspace.path().join("homeroom.toml"), &tls).unwrap();
    for args in [&["check-config"][..], &["serve"][..]] {
        let output = workspace
            .command(args)
            .env("HOMEROOM_LISTEN", "127.0.0.1:0")
            .output()
            .await
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !output.status.success(),
            "{args:?} accepted a malformed certificate"
        );
        assert!(stderr.contains("school.crt"), "{stderr}");
    }
    let missing = tls.replace("school.crt", "missing.crt");
    std::fs::write(workspace.path().join("homeroom.toml"), missing).unwrap();
    let output = workspace.command(&["check-config"]).output().await.unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("missing.crt"));
}

#[tokio::test]
async fn plain_http_redirects_and_json_logs() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let app = TestApp::spawn_with(
        Db::Sqlite,
        &format!("log_format = \"json\"\n[tls]\nredirect_from = \"127.0.0.1:{port}\""),
    )
    .await;
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = plain
        .get(format!("http://127.0.0.1:{port}/healthz?x=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 308);
    assert_eq!(
        response.headers()["location"],
        format!("{}/healthz?x=1", app.base)
    );

    assert_eq!(app.get("/healthz").await.status(), 200);
    let logs = app.logs();
    let line = logs
        .lines()
        .find(|l| l.contains("/healthz"))
        .expect("the request is logged");
    let parsed: serde_json::Value = serde_json::from_str(line).expect("log lines are JSON");
    assert_eq!(parsed["fields"]["route"], "/healthz");
}

#[tokio::test]
async fn behind_a_proxy_it_serves_plain_http() {
    let workspace = Workspace::new(Db::Sqlite).await;
    workspace.write_config("[tls]\nbehind_proxy = true");
    let mut child = workspace
        .command(&["serve"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let base = loop {
        let line = lines
            .next_line()
            .await
            .unwrap()
            .expect("the server says where it serves");
        if let Some(url) = line.split("; open ").nth(1) {
            break url.trim_end_matches('/').to_owned();
        }
    };
    assert!(base.starts_with("http://"), "{base}");
    let health = reqwest::get(format!("{base}/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);
    assert!(
        health.headers().get("strict-transport-security").is_none(),
        "HSTS is the proxy's business"
    );
    assert!(
        !workspace.path().join("certs/self-signed.crt").exists(),
        "no certificate is made"
    );
    child.kill().await.unwrap();
}
