//! The built-in TURN relay (issue #17), spoken to by webrtc-rs's TURN client and by a real
//! webrtc-rs viewer: it relays to the server's own media ports and nowhere else, refuses
//! expired and forged credentials and allocations past its limits, carries TURN over TCP and
//! TLS, and `/metrics` shows the relayed path.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use homeroom::config::IceServer;
use homeroom::signal::protocol::ServerMessage;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use tokio::net::UdpSocket;
use turn::client::{Client, ClientConfig};
use webrtc_util::Conn;

use crate::helpers::{ClassFixture, Db, TestApp};
use crate::live::{joined, room};
use crate::peer::{Credential, TestPeer};
use crate::turn_bridge::{Bridge, Upstream};

/// The relay on ports of its own, with small limits.
const TURN: &str = "[turn]\nenabled = true\nudp_port = 0\ntcp_port = 0\ntls_port = 0\n\
                    max_allocations_per_user = 2\nmax_allocations = 3";

crate::both_backends!(expired_and_forged_credentials_are_refused);

/// The built-in relay's entry in a list of ICE servers, and its three addresses.
struct Relay {
    udp: SocketAddr,
    tcp: SocketAddr,
    tls: SocketAddr,
    username: String,
    credential: String,
}

fn relay_of(servers: &[IceServer]) -> Relay {
    let entry = servers
        .iter()
        .find(|s| s.urls.iter().any(|u| u.starts_with("turn:")))
        .expect("a TURN entry");
    let addr = |scheme: &str, transport: &str| -> SocketAddr {
        let url = entry
            .urls
            .iter()
            .find(|u| u.starts_with(scheme) && u.ends_with(transport))
            .unwrap_or_else(|| panic!("no {scheme}…{transport} in {:?}", entry.urls));
        url[scheme.len()..]
            .split('?')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    Relay {
        udp: addr("turn:", "?transport=udp"),
        tcp: addr("turn:", "?transport=tcp"),
        tls: addr("turns:", "?transport=tcp"),
        username: entry.username.clone().unwrap(),
        credential: entry.credential.clone().unwrap(),
    }
}

/// `GET /api/v1/ice-servers` for `actor`.
async fn ice_servers(actor: &crate::helpers::Actor) -> (Vec<IceServer>, serde_json::Value) {
    let body: serde_json::Value = actor.get("/api/v1/ice-servers").await.json().await.unwrap();
    let servers = serde_json::from_value(body["ice_servers"].clone()).unwrap();
    (servers, body["expires_at"].clone())
}

/// A TURN client on a fresh UDP socket, talking to `server`.
async fn turn_client(server: SocketAddr, username: &str, password: &str) -> Client {
    let conn = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let client = Client::new(ClientConfig {
        stun_serv_addr: server.to_string(),
        turn_serv_addr: server.to_string(),
        username: username.to_owned(),
        password: password.to_owned(),
        realm: String::new(),
        software: String::new(),
        rto_in_ms: 0,
        conn,
        vnet: None,
    })
    .await
    .unwrap();
    client.listen().await.unwrap();
    client
}

/// A relay allocation for `username`, or the refusal.
async fn allocate(
    server: SocketAddr,
    username: &str,
    password: &str,
) -> Result<(Client, impl Conn), String> {
    let client = turn_client(server, username, password).await;
    match tokio::time::timeout(Duration::from_secs(10), client.allocate()).await {
        Ok(Ok(relay)) => Ok((client, relay)),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no answer within 10 s".into()),
    }
}

/// One `/metrics` line's value (0 when absent); `series` includes its labels.
async fn metric(app: &TestApp, series: &str) -> i64 {
    let text = app.get("/metrics").await.text().await.unwrap();
    text.lines()
        .find_map(|l| {
            l.strip_prefix(&format!("{series} "))
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap_or(0)
}

/// Waits until `series` reaches at least `want`.
async fn metric_reaches(app: &TestApp, series: &str, want: i64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let value = metric(app, series).await;
        if value >= want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{series} is {value}, wanted {want}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A teacher live in a classroom and publishing; returns the room, the teacher's peer and the
/// server's media address from its answer.
async fn live_teacher(app: &TestApp, class: &ClassFixture) -> (i64, TestPeer, SocketAddr) {
    let room_id = room(&class.teacher, class.class_id, "classroom", None).await;
    let mut teacher = joined(app, &class.teacher, room_id).await;
    assert!(matches!(
        teacher.publish().await,
        ServerMessage::Answer { .. }
    ));
    // The server's end of the teacher's connection, once it is up.
    let pc = teacher.publisher_connection().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let media = loop {
        let mut pair = None;
        for transceiver in pc.get_transceivers().await {
            if let Ok(Some(sender)) = transceiver.sender().await {
                if let Ok(Some(transport)) = sender.transport().await {
                    pair = transport
                        .ice_transport()
                        .get_selected_candidate_pair()
                        .await
                        .ok()
                        .flatten();
                }
            }
        }
        if let Some(pair) = pair {
            let remote = pair.remote();
            break SocketAddr::new(remote.address.parse().unwrap(), remote.port);
        }
        assert!(
            Instant::now() < deadline,
            "the teacher's connection never came up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    (room_id, teacher, media)
}

/// Signs credentials as the server does, with the secret it keeps in the database.
async fn signer(app: &TestApp) -> homeroom::turn::credentials::Credentials {
    let pool = app.workspace.database().await;
    let secret: String = sqlx::query_scalar("SELECT secret FROM server_keys WHERE name = 'turn'")
        .fetch_one(&pool)
        .await
        .unwrap();
    homeroom::turn::credentials::Credentials::new(&secret, Duration::from_secs(60), "homeroom")
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relays_to_the_servers_media_ports_and_nowhere_else() {
    let app = TestApp::spawn_with(Db::Sqlite, TURN).await;
    let admin = app.admin().await;
    let class = ClassFixture::new(&app, &admin, "relay").await;
    let (_, _teacher, media) = live_teacher(&app, &class).await;
    let (servers, _) = ice_servers(&class.family).await;
    let relay = relay_of(&servers);
    let (_client, conn) = allocate(relay.udp, &relay.username, &relay.credential)
        .await
        .expect("a good credential allocates");

    // To the SFU's media port: permitted and relayed.
    conn.send_to(b"hello media", media)
        .await
        .expect("relayed to our media port");
    metric_reaches(&app, "homeroom_turn_relayed_bytes_total", 11).await;
    assert_eq!(metric(&app, "homeroom_turn_allocations").await, 1);

    // To another address: no permission.
    let outside: SocketAddr = "127.0.0.2:9".parse().unwrap();
    let refused = conn.send_to(b"hello stranger", outside).await;
    assert!(refused.is_err(), "a permission for {outside} was granted");

    // To our address on a port that is not a media port: the permission (per address) is
    // granted, but nothing reaches the port.
    let sink = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    assert_ne!(sink.local_addr().unwrap().port(), media.port());
    let before = metric(
        &app,
        "homeroom_turn_refusals_total{reason=\"peer_not_allowed\"}",
    )
    .await;
    let _ = conn.send_to(b"leak", sink.local_addr().unwrap()).await;
    let _ = conn.send_to(b"leak", sink.local_addr().unwrap()).await;
    let mut buf = [0u8; 64];
    let heard = tokio::time::timeout(Duration::from_secs(1), sink.recv_from(&mut buf)).await;
    assert!(
        heard.is_err(),
        "the relay delivered to a port other than the media port"
    );
    assert!(
        metric(
            &app,
            "homeroom_turn_refusals_total{reason=\"peer_not_allowed\"}"
        )
        .await
            > before,
        "refusals were not counted"
    );
}

async fn expired_and_forged_credentials_are_refused(db: Db) {
    let app = TestApp::spawn_with(db, TURN).await;
    let admin = app.admin().await;
    let class = ClassFixture::new(&app, &admin, "creds").await;
    let (servers, expires_at) = ice_servers(&class.family).await;
    let relay = relay_of(&servers);
    let expiry: u64 = relay.username.split(':').next().unwrap().parse().unwrap();
    assert!(
        expiry > unix_now() + 5 * 3600,
        "the default lifetime is 6 hours"
    );
    assert_eq!(expires_at.as_i64(), Some(expiry as i64 * 1000));
    assert!(relay
        .username
        .ends_with(&format!(":u{}", class.family.user_id)));

    // A credential made with the stored secret, but already expired.
    let signer = signer(&app).await;
    let expired = format!("{}:u{}", unix_now() - 60, class.family.user_id);
    assert!(allocate(relay.udp, &expired, &signer.password(&expired))
        .await
        .is_err());

    // Forged: a made-up password, and a real password under someone else's name.
    let forged = format!("{}:u{}", unix_now() + 3600, class.family.user_id);
    assert!(allocate(relay.udp, &forged, "bm90IHRoZSBwYXNzd29yZA==")
        .await
        .is_err());
    let other = format!("{expiry}:u{}", class.teacher.user_id);
    assert!(allocate(relay.udp, &other, &relay.credential)
        .await
        .is_err());

    // The real one works, and a credential the test signs with the stored secret does too:
    // the refusals above were for expiry and forgery, not for the test's own mistakes.
    let (_client, _conn) = allocate(relay.udp, &relay.username, &relay.credential)
        .await
        .unwrap();
    let fresh = format!("{}:u{}", unix_now() + 600, class.teacher.user_id);
    let (_client2, _conn2) = allocate(relay.udp, &fresh, &signer.password(&fresh))
        .await
        .unwrap();

    assert!(metric(&app, "homeroom_turn_refusals_total{reason=\"expired\"}").await >= 1);
    assert!(metric(&app, "homeroom_turn_refusals_total{reason=\"forged\"}").await >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allocations_are_limited_per_user_and_in_total() {
    let app = TestApp::spawn_with(Db::Sqlite, TURN).await;
    let admin = app.admin().await;
    let class = ClassFixture::new(&app, &admin, "limits").await;
    let family = relay_of(&ice_servers(&class.family).await.0);
    let teacher = relay_of(&ice_servers(&class.teacher).await.0);

    let first = allocate(family.udp, &family.username, &family.credential)
        .await
        .unwrap();
    let _second = allocate(family.udp, &family.username, &family.credential)
        .await
        .unwrap();
    let third = allocate(family.udp, &family.username, &family.credential).await;
    assert!(
        third.is_err(),
        "a third allocation for one user was granted"
    );
    // A fresh credential (another expiry) is still the same user.
    let signer = signer(&app).await;
    let fresh = format!("{}:u{}", unix_now() + 700, class.family.user_id);
    let refreshed = allocate(family.udp, &fresh, &signer.password(&fresh)).await;
    assert!(
        refreshed.is_err(),
        "a fresh credential passed the user's limit"
    );
    let _teachers = allocate(teacher.udp, &teacher.username, &teacher.credential)
        .await
        .unwrap();
    let fourth = allocate(teacher.udp, &teacher.username, &teacher.credential).await;
    assert!(fourth.is_err(), "a fourth allocation in all was granted");
    assert_eq!(metric(&app, "homeroom_turn_allocations").await, 3);
    assert!(metric(&app, "homeroom_turn_refusals_total{reason=\"user_limit\"}").await >= 1);
    assert!(metric(&app, "homeroom_turn_refusals_total{reason=\"total_limit\"}").await >= 1);

    // Releasing one makes room again.
    let (client, conn) = first;
    conn.close().await.unwrap();
    client.close().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(&app, "homeroom_turn_allocations").await != 2 {
        assert!(
            Instant::now() < deadline,
            "the released allocation is still counted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    allocate(family.udp, &family.username, &family.credential)
        .await
        .expect("room for an allocation after one was released");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relays_over_tcp_and_tls() {
    let app = TestApp::spawn_with(Db::Sqlite, TURN).await;
    let admin = app.admin().await;
    let class = ClassFixture::new(&app, &admin, "streams").await;
    let (_, _teacher, media) = live_teacher(&app, &class).await;
    let relay = relay_of(&ice_servers(&class.family).await.0);
    let pem = std::fs::read(app.workspace.path().join("certs/self-signed.crt")).unwrap();
    let tls = homeroom::client::tls_trusting(&pem).unwrap();
    for upstream in [Upstream::Tcp(relay.tcp), Upstream::Tls(relay.tls, tls)] {
        let bridge = Bridge::start(upstream).await;
        let (client, conn) = allocate(bridge.addr, &relay.username, &relay.credential)
            .await
            .expect("allocation over a stream");
        let before = metric(&app, "homeroom_turn_relayed_bytes_total").await;
        conn.send_to(b"over a stream", media).await.unwrap();
        metric_reaches(&app, "homeroom_turn_relayed_bytes_total", before + 13).await;
        assert_eq!(metric(&app, "homeroom_turn_allocations").await, 1);
        // A stream client that hangs up loses its allocation at once.
        drop(bridge);
        drop(conn);
        let _ = client.close().await;
        let deadline = Instant::now() + Duration::from_secs(5);
        while metric(&app, "homeroom_turn_allocations").await != 0 {
            assert!(
                Instant::now() < deadline,
                "the hung-up client's allocation lingers"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joined_carries_the_relay_only_when_it_runs() {
    for (config, enabled) in [("", false), (TURN, true)] {
        let app = TestApp::spawn_with(Db::Sqlite, config).await;
        let admin = app.admin().await;
        let class = ClassFixture::new(&app, &admin, "joined").await;
        let room_id = room(&class.teacher, class.class_id, "classroom", None).await;
        let mut teacher =
            crate::peer::connect(&app, Credential::Cookie(&class.teacher.cookie)).await;
        let (listed, expires_at) = ice_servers(&class.family).await;
        let ServerMessage::Joined {
            ice_servers,
            participant_id,
            ..
        } = teacher.join(room_id).await
        else {
            panic!("join refused");
        };
        if !enabled {
            assert!(ice_servers.is_empty(), "{ice_servers:?}");
            assert!(listed.is_empty() && expires_at.is_null());
            continue;
        }
        let relay = relay_of(&ice_servers);
        assert!(relay.username.ends_with(&format!(":p{participant_id}")));
        let entry = ice_servers.iter().find(|s| s.username.is_some()).unwrap();
        assert_eq!(entry.urls.len(), 3, "{:?}", entry.urls);
        assert!(entry.urls[0].ends_with("?transport=udp"));
        assert!(entry.urls[1].ends_with("?transport=tcp"));
        assert!(entry.urls[2].starts_with("turns:"));
        assert_eq!(relay.udp.ip().to_string(), "127.0.0.1");
        assert_eq!(listed.len(), 1);
    }
}

/// The acceptance test's server half: a viewer whose only way in is the relay over TCP
/// watches the teacher, and `/metrics` shows the relayed path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_through_the_tcp_relay_receives_media() {
    let app = TestApp::spawn_with(Db::Sqlite, TURN).await;
    let admin = app.admin().await;
    let class = ClassFixture::new(&app, &admin, "media").await;
    let (room_id, _teacher, _) = live_teacher(&app, &class).await;
    let relay = relay_of(&ice_servers(&class.family).await.0);
    let bridge = Bridge::start(Upstream::Tcp(relay.tcp)).await;
    let through = bridge.addr;
    // Only the TCP relay (through the bridge, since webrtc-rs speaks TURN over UDP only),
    // with the credential `joined` handed out.
    let pick: homeroom::client::RelayPick = Arc::new(move |servers: &[IceServer]| {
        let entry = servers
            .iter()
            .find(|s| s.username.is_some())
            .expect("TURN entry");
        assert!(entry.urls.iter().any(|u| u.ends_with("?transport=tcp")));
        vec![IceServer {
            urls: vec![format!("turn:{through}?transport=udp")],
            username: entry.username.clone(),
            credential: entry.credential.clone(),
        }]
    });
    let pem = std::fs::read(app.workspace.path().join("certs/self-signed.crt")).unwrap();
    let tls = homeroom::client::tls_trusting(&pem).unwrap();
    let before = metric(&app, "homeroom_media_connections{path=\"relay\"}").await;
    let mut viewer = TestPeer::connect_relayed(
        &app.base,
        tls,
        Credential::Cookie(&class.family.cookie),
        "127.0.0.1:0",
        Some(pick),
    )
    .await
    .unwrap();
    assert!(matches!(
        viewer.join(room_id).await,
        ServerMessage::Joined { .. }
    ));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let flowing: Vec<u64> = viewer.received().values().map(|r| r.intact).collect();
        if flowing.len() == 2 && flowing.iter().all(|n| *n > 10) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "through the relay only {flowing:?} arrived"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    metric_reaches(
        &app,
        "homeroom_media_connections{path=\"relay\"}",
        before + 1,
    )
    .await;
    assert!(metric(&app, "homeroom_turn_relayed_bytes_total").await > 10_000);
    // The teacher's own connection came straight over UDP.
    metric_reaches(&app, "homeroom_media_connections{path=\"udp\"}", 1).await;
    viewer.leave().await;
}

/// WHEP players (and WHIP encoders) are told about the relay in `Link` headers (RFC 9725
/// section 4.6), with a credential of their own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whep_answers_carry_the_relay_in_link_headers() {
    let app = TestApp::spawn_with(Db::Sqlite, TURN).await;
    let admin = app.admin().await;
    let class = ClassFixture::new(&app, &admin, "links").await;
    let (room_id, _teacher, _) = live_teacher(&app, &class).await;
    let pc = homeroom::client::media::new_pc(Arc::new(NoEvents), "127.0.0.1:0")
        .await
        .unwrap();
    for kind in [RtpCodecKind::Audio, RtpCodecKind::Video] {
        let init = RTCRtpTransceiverInit {
            direction: RTCRtpTransceiverDirection::Recvonly,
            ..Default::default()
        };
        pc.add_transceiver_from_kind(kind, Some(init))
            .await
            .unwrap();
    }
    let offer = pc.create_offer(None).await.unwrap();
    pc.set_local_description(offer).await.unwrap();
    let sdp = pc.local_description().await.unwrap().sdp;
    let response = class
        .family
        .client
        .post(app.url(&format!("/whep/{room_id}")))
        .header("x-csrf-token", &class.family.csrf)
        .header("content-type", "application/sdp")
        .body(sdp)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let links: Vec<String> = response
        .headers()
        .get_all("link")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert_eq!(links.len(), 3, "{links:?}");
    for link in &links {
        assert!(link.contains("rel=\"ice-server\""), "{link}");
        assert!(link.contains("credential-type=\"password\""), "{link}");
        assert!(
            link.contains("; username=\"") && link.contains(":p"),
            "{link}"
        );
    }
    assert!(links[0].starts_with("<turn:127.0.0.1:") && links[0].contains("?transport=udp>"));
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let _ = pc.close().await;
    class
        .family
        .client
        .delete(app.url(&location))
        .header("x-csrf-token", &class.family.csrf)
        .send()
        .await
        .unwrap();
}

struct NoEvents;

impl webrtc::peer_connection::PeerConnectionEventHandler for NoEvents {}

/// With the relay on and an allocation live, SIGTERM still ends the server cleanly and fast.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_with_the_relay_on_is_clean() {
    let app = TestApp::spawn_with(Db::Sqlite, TURN).await;
    let admin = app.admin().await;
    let class = ClassFixture::new(&app, &admin, "stop").await;
    let relay = relay_of(&ice_servers(&class.family).await.0);
    let _allocation = allocate(relay.udp, &relay.username, &relay.credential)
        .await
        .unwrap();
    let (status, took, _) = app.terminate().await;
    assert!(status.success(), "{status:?}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

/// The SFU's own connections use no TURN server, not even a configured one: the server is
/// reached directly, and only clients are told about relays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_never_allocates_on_a_configured_turn_server() {
    let watcher = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let url = format!("turn:{}?transport=udp", watcher.local_addr().unwrap());
    let config = format!(
        "[[media.ice_servers]]\nurls = [\"{url}\"]\nusername = \"school\"\ncredential = \"pw\""
    );
    let app = TestApp::spawn_with(Db::Sqlite, &config).await;
    let admin = app.admin().await;
    let class = ClassFixture::new(&app, &admin, "external").await;
    let room_id = room(&class.teacher, class.class_id, "classroom", None).await;
    let mut teacher = crate::peer::connect(&app, Credential::Cookie(&class.teacher.cookie)).await;
    let ServerMessage::Joined { ice_servers, .. } = teacher.join(room_id).await else {
        panic!("join refused");
    };
    assert_eq!(ice_servers[0].urls, vec![url.clone()], "clients are told");
    // The teacher publishes and a family watches: the server makes both of its connections.
    assert!(matches!(
        teacher.publish().await,
        ServerMessage::Answer { .. }
    ));
    let _family = joined(&app, &class.family, room_id).await;
    let mut buf = [0u8; 1500];
    let heard = tokio::time::timeout(Duration::from_secs(3), watcher.recv_from(&mut buf)).await;
    assert!(
        heard.is_err(),
        "the server sent to the configured TURN server: {:?}",
        heard.ok()
    );
}
