//! The one media port: every participant's media on a single UDP socket of the server, and a
//! viewer that stops reading costs the server neither memory nor the other viewers' media.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use homeroom::client::VideoShape;
use homeroom::signal::protocol::ServerMessage;

use crate::helpers::{ClassFixture, Db, TestApp};
use crate::live::{completeness, joined, metric, room, wait_for_tracks};
use crate::peer::{Credential, TestPeer};

/// The inodes of the UDP sockets in the network namespace of process `pid`.
fn udp_inodes(pid: u32) -> HashSet<String> {
    let mut inodes = HashSet::new();
    for table in ["udp", "udp6"] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
        for line in text.lines().skip(1) {
            if let Some(inode) = line.split_whitespace().nth(9) {
                inodes.insert(inode.to_owned());
            }
        }
    }
    inodes
}

/// How many of process `pid`'s descriptors are UDP sockets.
fn udp_sockets_of(pid: u32) -> usize {
    let udp = udp_inodes(pid);
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("the server's descriptors")
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .filter_map(|target| {
            let target = target.to_string_lossy().into_owned();
            Some(
                target
                    .strip_prefix("socket:[")?
                    .strip_suffix(']')?
                    .to_owned(),
            )
        })
        .filter(|inode| udp.contains(inode))
        .count()
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// A live class: its teacher publishing `shape`, `viewers` connections of one family account
/// watching, that family's cookie and the room.
struct Live {
    _teacher: TestPeer,
    viewers: Vec<TestPeer>,
    family_cookie: String,
    room_id: i64,
}

async fn class_with_viewers(app: &TestApp, viewers: usize, shape: VideoShape) -> Live {
    let admin = app.admin().await;
    let class = ClassFixture::new(app, &admin, "a").await;
    let room_id = room(&class.teacher, class.class_id, "classroom", None).await;
    let mut teacher = joined(app, &class.teacher, room_id).await;
    assert!(matches!(
        teacher.publish_shaped(shape).await,
        ServerMessage::Answer { .. }
    ));
    let mut watching = Vec::new();
    for _ in 0..viewers {
        watching.push(joined(app, &class.family, room_id).await);
    }
    Live {
        _teacher: teacher,
        viewers: watching,
        family_cookie: class.family.cookie.clone(),
        room_id,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_viewers_share_one_udp_socket_and_all_get_intact_media() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let live = class_with_viewers(&app, 50, VideoShape::default()).await;
    let viewers = &live.viewers;
    for viewer in viewers {
        wait_for_tracks(viewer, 2, Duration::from_secs(30)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        udp_sockets_of(app.pid()),
        1,
        "the server holds exactly one UDP socket, whatever the number of connections"
    );
    for (i, viewer) in viewers.iter().enumerate() {
        let received = viewer.received();
        assert_eq!(received.len(), 2, "viewer {i}: {received:?}");
        for track in received.values() {
            assert_eq!(
                track.packets, track.intact,
                "viewer {i}: a {} payload was damaged",
                track.kind
            );
            assert!(
                track.distinct.len() > 50,
                "viewer {i}: {} too few: {}",
                track.kind,
                track.distinct.len()
            );
            let share = completeness(track);
            assert!(
                share >= 0.98,
                "viewer {i}: {} {:.1}% delivered",
                track.kind,
                share * 100.0
            );
        }
    }
}

/// A firewall rule that drops what arrives for one local UDP port, as if the socket there had
/// stopped reading; removed when dropped, also when the test fails.
struct Stalled {
    table: String,
}

impl Stalled {
    fn port(port: u16) -> Stalled {
        let table = format!("homeroom_stall_{}_{port}", std::process::id());
        let script = format!(
            "table inet {table} {{\n chain input {{\n  type filter hook input priority -10; policy accept;\n  udp dport {port} drop\n }}\n}}\n"
        );
        nft(&["-f", "-"], Some(&script));
        Stalled { table }
    }
}

impl Drop for Stalled {
    fn drop(&mut self) {
        nft(&["delete", "table", "inet", &self.table], None);
    }
}

fn nft(args: &[&str], stdin: Option<&str>) {
    use std::io::Write;
    let mut child = std::process::Command::new("nft")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("nft (nftables) is needed for this test; the test suite runs as root");
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success(), "nft {args:?} failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_that_stops_reading_costs_no_memory_and_no_one_else_media() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let shape = VideoShape {
        fps: 30,
        bitrate_bps: 1_000_000,
    };
    let live = class_with_viewers(&app, 4, shape).await;
    let viewers = &live.viewers;
    // The stalled viewer's media arrives on a port of its own, chosen here.
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let pem = std::fs::read(app.workspace.path().join("certs/self-signed.crt")).unwrap();
    let tls = homeroom::client::tls_trusting(&pem).unwrap();
    let bind = format!("127.0.0.1:{port}");
    let mut stalled = TestPeer::connect(
        &app.base,
        tls,
        Credential::Cookie(&live.family_cookie),
        &bind,
    )
    .await
    .expect("signalling");
    assert!(matches!(
        stalled.join(live.room_id).await,
        ServerMessage::Joined { .. }
    ));
    for viewer in viewers.iter().chain([&stalled]) {
        wait_for_tracks(viewer, 2, Duration::from_secs(20)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = rss_kib(app.pid());
    let counts_before: Vec<_> = viewers.iter().map(|v| v.received()).collect();

    let rule = Stalled::port(port);
    let mut peak = before;
    let until = Instant::now() + Duration::from_secs(20);
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_secs(1)).await;
        peak = peak.max(rss_kib(app.pid()));
    }
    drop(rule);
    eprintln!("server RSS {before} KiB before, at most {peak} KiB while a viewer stalled for 20 s");
    assert!(
        peak < before + 50 * 1024,
        "the server's RSS grew from {before} KiB to {peak} KiB while a viewer stopped reading"
    );
    for (i, (viewer, earlier)) in viewers.iter().zip(counts_before).enumerate() {
        for (id, track) in viewer.received() {
            let start = earlier
                .get(&id)
                .and_then(|t| t.distinct.last())
                .unwrap_or(0);
            let last = track.distinct.last().filter(|last| *last > start);
            let Some(last) = last else {
                panic!(
                    "viewer {i}: nothing on {} while another viewer stalled",
                    track.kind
                );
            };
            let during = track.distinct.count_in(start + 1..last + 1);
            let share = during as f64 / (last - start) as f64;
            assert!(
                share >= 0.99,
                "viewer {i}: {} {:.2}% delivered while another viewer stalled",
                track.kind,
                share * 100.0
            );
            assert!(
                during > 400,
                "viewer {i}: {} only {during} packets in 20 s",
                track.kind
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_server_refuses_new_viewers_with_node_full_but_lets_hosts_in() {
    let app = TestApp::spawn_with(Db::Sqlite, "[limits]\nmax_participants_per_node = 2").await;
    let admin = app.admin().await;
    let class = ClassFixture::new(&app, &admin, "a").await;
    let room_id = room(&class.teacher, class.class_id, "classroom", None).await;
    let teacher = joined(&app, &class.teacher, room_id).await;
    let _family = joined(&app, &class.family, room_id).await;
    let mut student = crate::peer::connect(&app, Credential::Cookie(&class.student.cookie)).await;
    let full = student.join(room_id).await;
    assert!(
        matches!(&full, ServerMessage::Error { code, .. } if code == "node_full"),
        "{full:?}"
    );
    let refused = metric(&app, "homeroom_viewers_refused_total{reason=\"count\"}").await;
    assert_eq!(refused, 1);
    // The teacher's connection drops; the host gets back into the full server.
    teacher.vanish().await;
    let _back = joined(&app, &class.teacher, room_id).await;
}

/// The media plane's lateness, not only a count, decides when the server is full: with no
/// lateness allowed at all (the reactors' timers always run a little late), a viewer is refused
/// while the host still gets in, and /metrics shows the lateness that refused it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saturated_media_plane_refuses_new_viewers_with_node_full() {
    let app =
        TestApp::spawn_with_env(Db::Sqlite, "", &[("HOMEROOM_LIMITS_MAX_MEDIA_LAG_MS", "0")]).await;
    let admin = app.admin().await;
    let class = ClassFixture::new(&app, &admin, "a").await;
    let room_id = room(&class.teacher, class.class_id, "classroom", None).await;
    let teacher = joined(&app, &class.teacher, room_id).await;
    let mut family = crate::peer::connect(&app, Credential::Cookie(&class.family.cookie)).await;
    let full = family.join(room_id).await;
    assert!(
        matches!(&full, ServerMessage::Error { code, .. } if code == "node_full"),
        "{full:?}"
    );
    let lag = metric(&app, "homeroom_media_lag_microseconds").await;
    assert!(lag > 0, "media lag {lag} µs");
    let refused = metric(&app, "homeroom_viewers_refused_total{reason=\"lag\"}").await;
    assert_eq!(refused, 1);
    // The host still gets in: its connection drops and it joins again.
    teacher.vanish().await;
    let _back = joined(&app, &class.teacher, room_id).await;
}
