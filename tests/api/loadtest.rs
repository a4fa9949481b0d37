//! Small runs of `homeroom loadtest` against a real server: correctness only, never speed.
//! Besides the runs where everything goes well, the tool must survive a server that refuses
//! joins, joins that time out, and a SIGTERM, each time ending with its summary.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::helpers::{signal, ClassFixture, Db, TestApp, BIN, PASSWORD};

/// A classroom of class "a" for the tool to load.
async fn classroom(app: &TestApp) -> i64 {
    let admin = app.admin().await;
    let class = ClassFixture::new(app, &admin, "a").await;
    room_of(&class, "classroom").await
}

async fn room_of(class: &ClassFixture, kind: &str) -> i64 {
    class
        .teacher
        .post_ok(
            &format!("/api/v1/classes/{}/rooms", class.class_id),
            json!({"kind": kind, "name": "Load"}),
        )
        .await["id"]
        .as_i64()
        .unwrap()
}

/// The tool against `room`, teacher-a publishing and family-a watching, with `extra` args.
fn loadtest(app: &TestApp, room: i64, extra: &[&str]) -> tokio::process::Command {
    let mut command = loadtest_as(app, room, &["--viewer-login", "family-a"]);
    command.args(extra);
    command
}

/// The tool against `room`, teacher-a publishing and `audience` (arguments) watching.
fn loadtest_as(app: &TestApp, room: i64, audience: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(BIN);
    command
        .args([
            "loadtest",
            "--server",
            &app.base,
            "--room",
            &room.to_string(),
        ])
        .args(["--login", "teacher-a"])
        .args(audience)
        .arg("--ca")
        .arg(app.workspace.path().join("certs/self-signed.crt"))
        .args(["--server-pid", &app.pid().to_string()])
        .env("LOADTEST_PASSWORD", PASSWORD)
        .env("RUST_LOG", "warn,rtc=error,rtc_ice=error,webrtc=error")
        .kill_on_drop(true);
    command
}

/// A run of the tool in the background, read line by line.
struct Running {
    child: tokio::process::Child,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    /// What it printed so far.
    stdout: String,
}

impl Running {
    fn start(mut command: tokio::process::Command) -> Running {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Running {
            child,
            lines,
            stdout: String::new(),
        }
    }

    /// Reads the progress until all `viewers` are in with media (60 s at most).
    async fn until_media(&mut self, viewers: usize) {
        let (all, with_media) = (
            format!("subscribers={viewers}/{viewers}"),
            format!("with_media={viewers}"),
        );
        let reading = async {
            while let Some(line) = self.lines.next_line().await.unwrap() {
                self.stdout.push_str(&line);
                self.stdout.push('\n');
                if line.contains(&all) && line.contains(&with_media) {
                    return true;
                }
            }
            false
        };
        let done = tokio::time::timeout(Duration::from_secs(60), reading).await;
        assert!(
            done == Ok(true),
            "not every viewer got media within 60 s:\n{}",
            self.stdout
        );
    }

    /// Stops the run with SIGTERM; its exit status and all it printed.
    ///
    /// A run dropped without it (a failed test) gets a SIGTERM too, and a few seconds to clean
    /// up (a `--throttle` namespace) before the harness kills it.
    async fn terminate(mut self) -> (std::process::ExitStatus, String) {
        signal(self.child.id().unwrap(), "TERM");
        let status = tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(line) = self.lines.next_line().await.unwrap() {
                self.stdout.push_str(&line);
                self.stdout.push('\n');
            }
            self.child.wait().await.unwrap()
        })
        .await
        .expect("the tool exits within 20 s of SIGTERM");
        (status, std::mem::take(&mut self.stdout))
    }
}

/// Runs the tool to its end, which must come within `secs`: its exit status, standard output
/// and standard error.
async fn run_to_end(
    command: &mut tokio::process::Command,
    secs: u64,
) -> (std::process::ExitStatus, String, String) {
    let output = tokio::time::timeout(Duration::from_secs(secs), command.output())
        .await
        .expect("the run ends by itself")
        .unwrap();
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (output.status, text(&output.stdout), text(&output.stderr))
}

impl Drop for Running {
    fn drop(&mut self) {
        let Some(pid) = self.child.id() else {
            return;
        };
        signal(pid, "TERM");
        for _ in 0..100 {
            if self.child.try_wait().is_ok_and(|status| status.is_some()) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The JSON summary at the end of the tool's output.
fn summary_of(stdout: &str, stderr: &str) -> Value {
    let start = stdout
        .find("\n{")
        .unwrap_or_else(|| panic!("no JSON summary in:\n{stdout}\n{stderr}"));
    serde_json::from_str(&stdout[start + 1..]).expect("the summary is JSON")
}

/// The CPUs each of a process's threads may run on, as the kernel lists them.
fn allowed_cpus(pid: u32) -> Vec<String> {
    let mut lists: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|task| {
            let status = std::fs::read_to_string(task.ok()?.path().join("status")).ok()?;
            let line = status
                .lines()
                .find(|l| l.starts_with("Cpus_allowed_list:"))?;
            Some(line["Cpus_allowed_list:".len()..].trim().to_owned())
        })
        .collect();
    lists.sort();
    lists.dedup();
    lists
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_publisher_twenty_subscribers_all_get_media() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let admin = app.admin().await;
    let class = ClassFixture::new(&app, &admin, "a").await;
    let room = class
        .teacher
        .post_ok(
            &format!("/api/v1/classes/{}/rooms", class.class_id),
            json!({"kind": "classroom", "name": "Load"}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let run = tokio::process::Command::new(BIN)
        .args([
            "loadtest",
            "--server",
            &app.base,
            "--room",
            &room.to_string(),
            "--login",
            "teacher-a",
            "--viewer-login",
            "family-a",
        ])
        .args([
            "--subscribers",
            "20",
            "--ramp",
            "20",
            "--duration",
            "5",
            "--max-loss",
            "1",
        ])
        .arg("--ca")
        .arg(app.workspace.path().join("certs/self-signed.crt"))
        .args(["--server-pid", &app.pid().to_string()])
        .env("LOADTEST_PASSWORD", PASSWORD)
        .env("RUST_LOG", "warn,rtc=error,rtc_ice=error,webrtc=error")
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(90), run)
        .await
        .expect("the run ends by itself")
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "loadtest failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.lines().any(|l| l.starts_with("t=")),
        "progress lines are printed:\n{stdout}"
    );
    let json = &stdout[stdout.find("\n{").expect("a JSON summary") + 1..];
    let summary: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(summary["subscribers_connected"], 20, "{summary}");
    assert_eq!(summary["subscribers_with_media"], 20, "{summary}");
    assert!(summary["loss_pct"].as_f64().unwrap() <= 1.0, "{summary}");
    assert!(
        summary["server_rss_mb"].as_f64().unwrap() > 1.0,
        "{summary}"
    );
    // Join times as the room fills: the first and the last 50 (here, all 20 both times).
    for key in ["join_ms_first50_p95", "join_ms_last50_p95"] {
        assert!(summary[key].as_u64().unwrap() > 0, "{key}: {summary}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_whip_and_whep_too() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let admin = app.admin().await;
    let class = ClassFixture::new(&app, &admin, "a").await;
    let room = class
        .teacher
        .post_ok(
            &format!("/api/v1/classes/{}/rooms", class.class_id),
            json!({"kind": "classroom", "name": "Load"}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let key = class
        .teacher
        .post_ok(&format!("/api/v1/rooms/{room}/stream-keys"), json!({}))
        .await;
    // One family's viewer token serves every WHEP subscriber of the run.
    let token = class
        .family
        .post_ok(&format!("/api/v1/rooms/{room}/viewer-token"), json!({}))
        .await;
    let run = tokio::process::Command::new(BIN)
        .args([
            "loadtest",
            "--whip",
            key["whip_url"].as_str().unwrap(),
            "--whep",
            token["whep_url"].as_str().unwrap(),
        ])
        .args([
            "--subscribers",
            "5",
            "--ramp",
            "10",
            "--duration",
            "3",
            "--max-loss",
            "1",
        ])
        .arg("--ca")
        .arg(app.workspace.path().join("certs/self-signed.crt"))
        .env("LOADTEST_WHIP_KEY", key["stream_key"].as_str().unwrap())
        .env("LOADTEST_WHEP_TOKEN", token["token"].as_str().unwrap())
        .env("RUST_LOG", "warn,rtc=error,rtc_ice=error,webrtc=error")
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the run ends by itself")
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "loadtest failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: serde_json::Value =
        serde_json::from_str(&stdout[stdout.find("\n{").unwrap() + 1..]).unwrap();
    assert_eq!(summary["subscribers_with_media"], 5, "{summary}");
    assert!(summary["loss_pct"].as_f64().unwrap() <= 1.0, "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_room_refuses_joins_and_the_tool_counts_them_by_reason() {
    // The teacher and four viewers fit; four more get `room_full`.
    let app = TestApp::spawn_with(Db::Sqlite, "[limits]\nmax_participants_per_room = 5").await;
    let room = classroom(&app).await;
    let (status, stdout, stderr) = run_to_end(
        &mut loadtest(
            &app,
            room,
            &[
                "--subscribers",
                "8",
                "--ramp",
                "20",
                "--duration",
                "3",
                "--idle-secs",
                "1",
                "--server-cpu",
                "0",
                "--tool-cpu",
                "1",
            ],
        ),
        90,
    )
    .await;
    // Not a crash (101) nor a signal: the verdict, with the summary printed.
    assert_eq!(status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("4 of 8 joins failed (room_full: 4)"),
        "{stderr}"
    );
    let summary = summary_of(&stdout, &stderr);
    assert_eq!(summary["stopped_by"], "duration", "{summary}");
    assert_eq!(
        summary["joins_failed"],
        json!({"room_full": 4}),
        "{summary}"
    );
    assert_eq!(summary["subscribers_started"], 8, "{summary}");
    assert_eq!(summary["subscribers_connected"], 4, "{summary}");
    assert_eq!(summary["subscribers_with_media"], 4, "{summary}");
    // Those who got in were served in full.
    assert!(summary["loss_pct"].as_f64().unwrap() <= 1.0, "{summary}");
    let ratio = summary["delivered_ratio"].as_f64().unwrap();
    assert!((0.97..=1.03).contains(&ratio), "{summary}");
    for key in [
        "server_rss_mb_start",
        "server_rss_mb_joined",
        "server_fds_per_viewer",
        "server_cpu_us_per_packet",
        "tool_cpu_us_per_packet",
        "tool_cpu_pct",
    ] {
        assert!(summary[key].as_f64().unwrap() > 0.0, "{key}: {summary}");
    }
    // Pinned as asked, as the kernel sees it.
    assert_eq!(summary["server_cpus_allowed"], json!(["0"]), "{summary}");
    assert_eq!(summary["tool_cpus_allowed"], json!(["1"]), "{summary}");
    assert_eq!(allowed_cpus(app.pid()), ["0"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guests_past_the_address_limit_are_counted_by_their_http_status() {
    // Two guest sockets from one address; the third and fourth are refused before the
    // upgrade with 429.
    let app = TestApp::spawn_with(Db::Sqlite, "[limits]\nmax_guests_per_ip = 2").await;
    let admin = app.admin().await;
    let class = ClassFixture::new(&app, &admin, "a").await;
    let open_house = room_of(&class, "open_house").await;
    let link = class
        .teacher
        .post_ok(&format!("/api/v1/rooms/{open_house}/guest-link"), json!({}))
        .await;
    let code = link["code"].as_str().unwrap();
    // One argument with `=`: a code may begin with '-', which would read as a flag.
    let guest_link = format!("--guest-link={code}");
    let (status, stdout, stderr) = run_to_end(
        loadtest_as(&app, open_house, &[&guest_link]).args([
            "--subscribers",
            "4",
            "--ramp",
            "5",
            "--duration",
            "2",
        ]),
        60,
    )
    .await;
    assert_eq!(status.code(), Some(1), "{stdout}\n{stderr}");
    let summary = summary_of(&stdout, &stderr);
    assert_eq!(summary["joins_failed"], json!({"http_429": 2}), "{summary}");
    assert_eq!(summary["subscribers_connected"], 2, "{summary}");
    assert_eq!(summary["subscribers_with_media"], 2, "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joins_past_their_deadline_are_counted_not_fatal() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let room = classroom(&app).await;
    let (status, stdout, stderr) = run_to_end(
        &mut loadtest(
            &app,
            room,
            &[
                "--subscribers",
                "3",
                "--ramp",
                "10",
                "--duration",
                "1",
                "--join-timeout",
                "0.001",
            ],
        ),
        60,
    )
    .await;
    assert_eq!(status.code(), Some(1), "{stdout}\n{stderr}");
    let summary = summary_of(&stdout, &stderr);
    assert_eq!(summary["joins_failed"], json!({"timeout": 3}), "{summary}");
    assert_eq!(summary["subscribers_connected"], 0, "{summary}");
    assert_eq!(summary["stopped_by"], "duration", "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_the_run_with_its_summary() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let room = classroom(&app).await;
    let mut run = Running::start(loadtest(
        &app,
        room,
        &["--subscribers", "4", "--ramp", "20", "--duration", "600"],
    ));
    run.until_media(4).await;
    let (status, stdout) = run.terminate().await;
    assert_eq!(status.code(), Some(1), "{stdout}");
    let summary = summary_of(&stdout, "");
    assert_eq!(summary["stopped_by"], "signal", "{summary}");
    assert_eq!(summary["subscribers_connected"], 4, "{summary}");
    assert_eq!(summary["subscribers_with_media"], 4, "{summary}");
    assert!(summary["loss_pct"].as_f64().unwrap() <= 1.0, "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulcast_publisher_serves_every_viewer_a_layer() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let room = classroom(&app).await;
    let (status, stdout, stderr) = run_to_end(
        &mut loadtest(
            &app,
            room,
            &[
                "--simulcast",
                "--subscribers",
                "4",
                "--ramp",
                "10",
                "--duration",
                "5",
            ],
        ),
        90,
    )
    .await;
    assert!(status.success(), "loadtest failed:\n{stdout}\n{stderr}");
    let summary = summary_of(&stdout, &stderr);
    assert_eq!(summary["subscribers_with_media"], 4, "{summary}");
    assert!(summary["loss_pct"].as_f64().unwrap() <= 1.0, "{summary}");
    assert_eq!(summary["corrupt_pct"], 0.0, "{summary}");
    // A viewer gets one layer of three: nothing to compare with what was sent.
    assert!(summary["delivered_ratio"].is_null(), "{summary}");
    let layers = summary["video_at_end"].as_object().unwrap();
    let told: u64 = layers.values().map(|n| n.as_u64().unwrap()).sum();
    assert_eq!(told, 4, "every viewer was told its video: {summary}");
    assert!(!layers.contains_key("off"), "{summary}");
    assert_eq!(summary["audio_only_at_end"], 0, "{summary}");
}

/// The network namespaces there are now.
fn namespaces() -> Vec<String> {
    let listed = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&listed.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

/// `--throttle` puts the first viewers on a shaped link of their own (a network namespace, so
/// the run needs root) and removes it when the run ends, here by SIGTERM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_viewers_run_on_a_shaped_link_that_goes_with_the_run() {
    // The server listens and offers media on every address, the namespace's link included.
    let env = [
        ("HOMEROOM_LISTEN", "0.0.0.0:0"),
        ("HOMEROOM_MEDIA_INTERFACES", "[]"),
    ];
    let app = TestApp::spawn_with_env(Db::Sqlite, "", &env).await;
    let room = classroom(&app).await;
    let mut run = Running::start(loadtest(
        &app,
        room,
        &[
            "--simulcast",
            "--throttle",
            "2:400kbit",
            "--subscribers",
            "3",
            "--ramp",
            "10",
            "--duration",
            "600",
        ],
    ));
    run.until_media(3).await;
    let during = namespaces();
    // Long enough for the server to tell each viewer what it gets.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (status, stdout) = run.terminate().await;
    assert_eq!(status.code(), Some(1), "stopped by a signal: {stdout}");
    let summary = summary_of(&stdout, "");
    let made = summary["throttled_namespace"].as_str().unwrap();
    assert!(during.iter().any(|n| n == made), "{made} not in {during:?}");
    assert!(
        !namespaces().iter().any(|n| n == made),
        "{made} is still there after the run"
    );
    assert_eq!(summary["throttled"], 2, "{summary}");
    assert_eq!(summary["subscribers_with_media"], 3, "{summary}");
    let throttled = summary["throttled_video_at_end"].as_object().unwrap();
    let told: u64 = throttled.values().map(|n| n.as_u64().unwrap()).sum();
    assert_eq!(told, 2, "{summary}");
    assert!(
        summary["throttled_loss_pct"].as_f64().is_some(),
        "{summary}"
    );
}
