//! Families on networks that block video calls (issue #17): the connection check page on a
//! normal network and in a network namespace whose outgoing UDP is dropped, and a family in
//! such a namespace watching a teacher over ICE-TCP and, with ICE-TCP off, through the built-in
//! TURN relay over TCP. The server listens on every address and serves media on the host's end
//! of the namespace's veth pair; the family's Chromium runs inside the namespace
//! (`ip netns exec`), the teacher's on the host. Scenarios: `network.mjs`.

use std::path::Path;

use serde_json::{json, Value};

use super::helpers::{ClassFixture, Db, TestApp, PASSWORD};
use super::netns::NetNs;
use super::{room, run_script, script, tools};

const METRICS_TOKEN: &str = "network-test-metrics-token";

/// Where the server is and what the family does: the app, the class's names and the
/// scenario's config (without the scenario's own keys).
pub(super) struct Setup {
    pub(super) app: TestApp,
    pub(super) config: Value,
}

/// A server with a class (a teacher, a family, a classroom). With `ns`, it listens on every
/// address and serves media on the namespace's host side, and the family's browser runs in
/// the namespace. `extra` is more configuration (TOML).
pub(super) async fn setup(tag: &str, ns: Option<&NetNs>, extra: &str) -> Setup {
    let host_ip = ns.map(|ns| ns.host_ip.to_string());
    let interfaces = host_ip.as_ref().map(|ip| format!("[\"{ip}\"]"));
    let mut env = Vec::new();
    if let Some(interfaces) = &interfaces {
        env.push(("HOMEROOM_LISTEN", "0.0.0.0:0"));
        env.push(("HOMEROOM_MEDIA_INTERFACES", interfaces.as_str()));
    }
    let extra = format!("metrics_token = \"{METRICS_TOKEN}\"\n{extra}");
    let app = TestApp::spawn_with_env(Db::Sqlite, &extra, &env).await;
    let admin = app.admin().await;
    let class = ClassFixture::new(&app, &admin, tag).await;
    let classroom = room(&class, "classroom", None).await;
    let (chromium, _) = tools();
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/artifacts");
    let mut config = json!({
        "base": app.base,
        "chromium": chromium,
        "artifacts": artifacts,
        "password": PASSWORD,
        "teacher": format!("teacher-{tag}"),
        "family": format!("family-{tag}"),
        "classroom": classroom,
        "name": tag,
    });
    if let (Some(ns), Some(ip)) = (ns, host_ip) {
        let port = url::Url::parse(&app.base).unwrap().port().unwrap();
        config["family_base"] = json!(format!("https://{ip}:{port}"));
        config["ns_chromium"] = json!(ns.chromium_wrapper(app.workspace.path(), &chromium));
    }
    Setup { app, config }
}

/// The built-in TURN relay on free ports, told to clients at `host`.
fn relay_at(host: &str) -> String {
    format!("[turn]\nenabled = true\nudp_port = 0\ntcp_port = 0\npublic_host = \"{host}\"\n")
}

pub(super) fn with(config: &Value, extra: Value) -> Value {
    let mut config = config.clone();
    config
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    config
}

/// `homeroom_media_connections{path="…"}` from /metrics, read with the metrics token.
async fn media_connections(app: &TestApp, path: &str) -> u64 {
    let text = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let series = format!("homeroom_media_connections{{path=\"{path}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&series))
        .and_then(|n| n.trim().parse::<f64>().ok())
        .map(|n| n as u64)
        .unwrap_or(0)
}

/// Where UDP is dropped and the school has no relay, the check says UDP is blocked and TCP
/// works, and advises mobile data and asking the school for the relay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_page_where_udp_is_dropped() {
    let ns = NetNs::new();
    ns.drop_outbound_udp();
    let Setup { app: _app, config } = setup("checkudp", Some(&ns), "").await;
    let config = with(
        &config,
        json!({
            "scenario": "check",
            "expect": {"udp": "blocked", "tcp": "ok", "relay": "off"},
            "verdict": "check_verdict_tcp",
            "verdict_es": "Su red bloquea las videollamadas por UDP",
            "advice": ["check_advice_enable_relay"],
            "texts": ["Your network blocks video calls", "try mobile data", "Ask the school to enable the relay"],
            "report": ["Video connection (UDP): Blocked", "Video over TCP: Works", "Your network blocks video calls"],
        }),
    );
    run_script(&script("network.mjs"), &config, 150).await;
    assert!(
        ns.dropped_udp_packets() > 0,
        "the namespace's rule never dropped a UDP packet: the check did not try UDP"
    );
}

/// Where UDP is dropped, a family still decodes the teacher's video, over ICE-TCP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn family_watches_over_ice_tcp_where_udp_is_dropped() {
    let ns = NetNs::new();
    ns.drop_outbound_udp();
    let Setup { app, config } = setup("watchtcp", Some(&ns), "").await;
    let config = with(&config, json!({"scenario": "watch", "expect_via": "tcp"}));
    run_script(&script("network.mjs"), &config, 150).await;
    assert!(ns.dropped_udp_packets() > 0, "the family never tried UDP");
    assert!(
        media_connections(&app, "tcp").await > 0,
        "/metrics counts no TCP connection"
    );
}

/// Where UDP is dropped and the server offers neither ICE-TCP nor a relay, no video arrives:
/// the watch page says "Video does not start?" and links the check, which finds every path
/// blocked or off and says to try mobile data and to ask the school for the relay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_family_without_video_finds_the_check() {
    let ns = NetNs::new();
    ns.drop_outbound_udp();
    let Setup { app: _app, config } =
        setup("stalled", Some(&ns), "[media]\nice_tcp = false\n").await;
    let config = with(
        &config,
        json!({
            "scenario": "stalled",
            "expect": {"udp": "blocked", "tcp": "off", "relay": "off"},
            "verdict": "check_verdict_blocked",
            "verdict_es": "Su red bloquea las videollamadas: pruebe con datos móviles",
            "advice": ["check_advice_enable_relay"],
            "texts": ["Your network blocks video calls: try mobile data", "Ask the school to enable the relay"],
            "report": [
                "Video connection (UDP): Blocked",
                "Video over TCP: Not offered by the school's server",
                "Through the school's relay: The school has not turned on the relay",
            ],
        }),
    );
    run_script(&script("network.mjs"), &config, 170).await;
}

/// With the school's relay on, the check finds UDP, TCP and the relay working on a normal
/// network, and the server counts each path's connection in /metrics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_page_finds_the_relay_on_a_normal_network() {
    let Setup { app, config } = setup("checkrelay", None, &relay_at("127.0.0.1")).await;
    let config = with(
        &config,
        json!({
            "scenario": "check",
            "expect": {"udp": "ok", "tcp": "ok", "relay": "ok"},
            "verdict": "check_verdict_good",
            "verdict_es": "Todo funciona",
            "advice": [],
            "report": [
                "Video connection (UDP): Works",
                "Video over TCP: Works",
                "Through the school's relay: Works",
                "Everything works",
            ],
        }),
    );
    run_script(&script("network.mjs"), &config, 150).await;
    for path in ["udp", "tcp", "relay"] {
        assert!(
            media_connections(&app, path).await > 0,
            "/metrics counts no {path} connection"
        );
    }
}

/// Where UDP is dropped, the check reaches the school's relay over TCP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_page_reaches_the_relay_over_tcp_where_udp_is_dropped() {
    let ns = NetNs::new();
    ns.drop_outbound_udp();
    let relay = relay_at(&ns.host_ip.to_string());
    let Setup { app: _app, config } = setup("checkudprelay", Some(&ns), &relay).await;
    let config = with(
        &config,
        json!({
            "scenario": "check",
            "expect": {"udp": "blocked", "tcp": "ok", "relay": "ok"},
            "relay_over": "tcp",
            "verdict": "check_verdict_tcp",
            "verdict_es": "Su red bloquea las videollamadas por UDP",
            "advice": [],
            "texts": ["Your network blocks video calls", "try mobile data"],
            "report": [
                "Video connection (UDP): Blocked",
                "Video over TCP: Works",
                "Through the school's relay: Works",
            ],
        }),
    );
    run_script(&script("network.mjs"), &config, 150).await;
    assert!(ns.dropped_udp_packets() > 0, "the check never tried UDP");
}

/// Where UDP is dropped and the server offers no ICE-TCP, a family still decodes the teacher's
/// video through the built-in TURN relay over TCP, and /metrics shows the relay path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn family_watches_through_the_relay_where_udp_is_dropped() {
    let ns = NetNs::new();
    ns.drop_outbound_udp();
    let extra = format!(
        "[media]\nice_tcp = false\n{}",
        relay_at(&ns.host_ip.to_string())
    );
    let Setup { app, config } = setup("watchrelay", Some(&ns), &extra).await;
    assert_eq!(media_connections(&app, "relay").await, 0);
    let config = with(&config, json!({"scenario": "watch", "expect_via": "relay"}));
    run_script(&script("network.mjs"), &config, 150).await;
    assert!(ns.dropped_udp_packets() > 0, "the family never tried UDP");
    assert!(
        media_connections(&app, "relay").await > 0,
        "/metrics shows no relayed connection"
    );
}
