//! The API document against the running server, checked by schemathesis (an independent
//! property-based API tester from PyPI, installed by scripts/test.sh): the document validates,
//! and generated requests, signed out and signed in as an admin, get no 5xx, no status code the
//! document does not list, and no answer that breaks its schema or content type.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::helpers::{ClassFixture, Db, TestApp};

/// How many cases schemathesis makes per operation and phase: enough to reach every
/// operation's error paths, small enough for the suite's time budget.
const MAX_EXAMPLES: &str = "8";

/// The venv scripts/test.sh makes (schemathesis, and aiosmtpd for `notify_email`).
pub fn venv() -> PathBuf {
    let dir = std::env::var("HOMEROOM_TEST_SCHEMATHESIS_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/schemathesis/.venv")
        });
    assert!(
        dir.join("bin/schemathesis").exists(),
        "schemathesis is missing in {}: run ./scripts/test.sh (it installs it from \
         tests/schemathesis/requirements.txt)",
        dir.display()
    );
    dir
}

async fn run(app: &TestApp, label: &str, config: &Path, headers: &[String], extra: &[&str]) {
    let venv = venv();
    let hooks_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/schemathesis");
    let report = app
        .workspace
        .path()
        .join(format!("schemathesis-{label}.txt"));
    let mut command = tokio::process::Command::new(venv.join("bin/schemathesis"));
    command
        .arg("--config-file")
        .arg(config)
        .arg("run")
        .arg(app.url("/api/v1/openapi.json"))
        .args(["--tls-verify", "false", "--workers", "1", "--no-color"])
        .args(["--max-examples", MAX_EXAMPLES])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        ])
        .args(["--seed", "20261125"])
        // Its crash cache goes to the test's own folder, not the checkout.
        .current_dir(app.workspace.path())
        .env("SCHEMATHESIS_HOOKS", "hooks")
        .env("PYTHONPATH", &hooks_dir)
        .stdout(std::fs::File::create(&report).unwrap())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    for header in headers {
        command.args(["-H", header]);
    }
    command.args(extra);
    let status = tokio::time::timeout(std::time::Duration::from_secs(600), command.status())
        .await
        .expect("schemathesis finished within 10 minutes")
        .expect("schemathesis runs");
    let output = std::fs::read_to_string(&report).unwrap_or_default();
    assert!(
        status.success(),
        "schemathesis ({label}) found problems:\n{output}"
    );
    assert!(
        output.contains("Tested:"),
        "schemathesis ({label}) tested nothing:\n{output}"
    );
    let summary = output.split("SUMMARY").nth(1).unwrap_or_default();
    eprintln!("schemathesis ({label}):{summary}");
}

async fn api_document_survives_schemathesis(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.admin().await;
    // Something to find: a class with a teacher, a student, a family, a room and a post,
    // whose ids schemathesis uses for path parameters so it gets past 404 to the real work.
    let class = ClassFixture::new(&app, &admin, "st").await;
    let room = class
        .teacher
        .post_ok(
            &format!("/api/v1/classes/{}/rooms", class.class_id),
            serde_json::json!({"kind": "classroom", "name": "Morning"}),
        )
        .await;
    let post = class
        .teacher
        .post_ok(
            &format!("/api/v1/classes/{}/posts", class.class_id),
            serde_json::json!({"body": "Our volcano models", "student_ids": [class.student_id]}),
        )
        .await;
    let config = app.workspace.path().join("schemathesis.toml");
    std::fs::write(
        &config,
        format!(
            "[parameters]\n\"path.class_id\" = {}\n\"path.room_id\" = {}\n\"path.post_id\" = {}\n\"path.user_id\" = {}\n",
            class.class_id, room["id"], post["id"], class.family.user_id
        ),
    )
    .unwrap();

    let document = app.workspace.path().join("openapi.json");
    let text = app.get("/api/v1/openapi.json").await.text().await.unwrap();
    std::fs::write(&document, text).unwrap();
    let validated = tokio::process::Command::new(venv().join("bin/openapi-spec-validator"))
        .arg(&document)
        .output()
        .await
        .expect("openapi-spec-validator runs");
    assert!(
        validated.status.success(),
        "the OpenAPI document does not validate:\n{}{}",
        String::from_utf8_lossy(&validated.stdout),
        String::from_utf8_lossy(&validated.stderr)
    );

    // Signed out, every operation is refused before its own work begins, the same on both
    // databases: that pass runs once, beside the admin's.
    let signed_out = async {
        if db == Db::Sqlite {
            run(&app, "signed-out", &config, &[], &[]).await;
        }
    };
    let admin_headers = [
        format!("Cookie: homeroom_session={}", admin.cookie),
        format!("X-CSRF-Token: {}", admin.csrf),
    ];
    let signed_in = run(
        &app,
        "admin",
        &config,
        &admin_headers,
        // Signing out would end the session the rest of the run stands on. The class event
        // stream never ends by design (each call would wait out the request timeout); its
        // tests are in class_events.rs.
        &[
            "--exclude-operation-id",
            "sign_out",
            "--exclude-operation-id",
            "events",
        ],
    );
    tokio::join!(signed_out, signed_in);
}

crate::both_backends!(api_document_survives_schemathesis);
