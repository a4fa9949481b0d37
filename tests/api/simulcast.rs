//! Simulcast end to end (docs/signalling.md, "Simulcast and quality"): a webrtc-rs publisher
//! sends its camera as three layers (320x180, 640x360, 1280x720, their keyframes say which),
//! and each viewer gets the layer its link carries. A viewer on a weak link runs inside a
//! network namespace shaped with tc (`netns.rs`); the others on the host. What a viewer gets
//! is read from what arrives (keyframe sizes, RTP numbering, frames a decoder could show),
//! never from what the server says alone.

use std::time::{Duration, Instant};

use homeroom::client::whip::WhipPublisher;
use homeroom::client::{Received, Video};
use homeroom::signal::protocol::{Layer, Quality, ServerMessage};
use serde_json::json;

use crate::helpers::{ClassFixture, Db, TestApp};
use crate::live::{joined, room, wait_for_tracks};
use crate::netns::{namespace, serve_for, viewer_inside};
use crate::peer::{whep_player, TestPeer};
use homeroom::client::netns::{Namespace, NsRuntime};

/// A class and its classroom, with the teacher publishing three layers.
async fn simulcast_class(app: &TestApp) -> (ClassFixture, i64, TestPeer) {
    let admin = app.admin().await;
    let class = ClassFixture::new(app, &admin, "a").await;
    let room_id = room(&class.teacher, class.class_id, "classroom", None).await;
    let mut teacher = joined(app, &class.teacher, room_id).await;
    let reply = teacher.publish_simulcast().await;
    assert!(
        matches!(reply, ServerMessage::Answer { .. }),
        "the simulcast offer was refused: {reply:?}"
    );
    (class, room_id, teacher)
}

/// A class whose teacher publishes three layers, and a family watching from a network
/// namespace whose link is shaped to a rate. Fields drop in order: the viewer, the runtime
/// its sockets live on, the teacher, the server, then the namespace.
struct ShapedClass {
    viewer: TestPeer,
    _runtime: NsRuntime,
    _teacher: TestPeer,
    class: ClassFixture,
    room_id: i64,
    app: TestApp,
    ns: Namespace,
}

impl ShapedClass {
    async fn on(rate: &str) -> ShapedClass {
        let ns = namespace();
        ns.shape(rate).unwrap();
        ShapedClass::inside(ns).await
    }

    async fn inside(ns: Namespace) -> ShapedClass {
        let app = serve_for(&ns, "").await;
        let (class, room_id, teacher) = simulcast_class(&app).await;
        let runtime = ns.runtime().unwrap();
        let mut viewer = viewer_inside(&app, &ns, &runtime, &class.family.cookie).await;
        let reply = viewer.join(room_id).await;
        assert!(matches!(reply, ServerMessage::Joined { .. }), "{reply:?}");
        ShapedClass {
            viewer,
            _runtime: runtime,
            _teacher: teacher,
            class,
            room_id,
            app,
            ns,
        }
    }
}

/// What arrives on the first received track of `kind`.
fn track(received: impl IntoIterator<Item = Received>, kind: &str) -> Option<Received> {
    received.into_iter().find(|r| r.kind == kind)
}

fn video(peer: &TestPeer) -> Option<Received> {
    track(peer.received().into_values(), "video")
}

fn audio(peer: &TestPeer) -> Option<Received> {
    track(peer.received().into_values(), "audio")
}

/// The layer (0 for `l`) of the latest keyframe `peer` got.
fn layer(peer: &TestPeer) -> Option<usize> {
    video(peer)?.keyframe_layer()
}

/// Waits until `done`, checking every 100 ms; fails the test past `within`, saying `what`
/// and `state`.
async fn wait_until(
    within: Duration,
    what: &str,
    mut done: impl FnMut() -> bool,
    state: impl Fn() -> String,
) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "not within {within:?}: {what} ({})",
            state()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The newest RTP sequence number (extended) that arrived on `track`.
fn newest(track: Option<&Received>) -> u32 {
    track.and_then(|t| t.rtp.last()).unwrap_or(0)
}

/// The share of the RTP numbers the server sent on `track` after `from` that never arrived.
fn loss_since(track: &Received, from: u32) -> f64 {
    track.rtp_loss(from + 1..newest(Some(track)) + 1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shaped_viewer_gets_the_low_layer_and_moves_up_when_the_link_recovers() {
    let ShapedClass {
        viewer: shaped,
        ns,
        app,
        class,
        room_id,
        ..
    } = &ShapedClass::on("400kbit").await;
    let open = joined(app, &class.student, *room_id).await;
    let state = || {
        format!(
            "shaped viewer: layer {:?}, {:?}; open viewer: layer {:?}",
            layer(shaped),
            video(shaped).map(|v| v.frames()),
            layer(&open)
        )
    };
    wait_until(
        Duration::from_secs(10),
        "the shaped viewer gets the low layer and the open one the high layer",
        || layer(shaped) == Some(0) && layer(&open) == Some(2),
        state,
    )
    .await;

    // Settled on the low layer, it loses (almost) nothing of what the server sends it.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let from = newest(video(shaped).as_ref());
    tokio::time::sleep(Duration::from_secs(5)).await;
    let settled = video(shaped).expect("video");
    let (loss, packets) = (loss_since(&settled, from), newest(Some(&settled)) - from);
    eprintln!(
        "on 400 kbit/s: {packets} RTP packets in 5 s, {:.2}% lost",
        loss * 100.0
    );
    assert!(loss < 0.02, "{:.2}% lost on the low layer", loss * 100.0);
    assert!(packets >= 140, "only {packets} packets in 5 s");
    assert_eq!(layer(shaped), Some(0), "it stayed on the low layer");
    let before = settled.frames();

    // The link recovers: it moves up.
    ns.unshape().unwrap();
    wait_until(
        Duration::from_secs(15),
        "the viewer moves up to at least the medium layer once the link is free",
        || layer(shaped) >= Some(1),
        state,
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = video(shaped).unwrap().frames();
    eprintln!("shaped viewer: {before:?} before the link recovered, {after:?} at the end");
    assert_eq!(
        after.broken, 0,
        "a picture broke across a switch: {after:?}"
    );
    assert!(
        after.decodable >= before.decodable + 45,
        "few frames decoded after moving up: {before:?} then {after:?}"
    );
    let open_frames = video(&open).unwrap().frames();
    assert_eq!(open_frames.broken, 0, "{open_frames:?}");
    assert!(open_frames.decodable > 200, "{open_frames:?}");
}

/// A viewer whose link loses packets at random (5 %, no queue) gets its lost video packets
/// resent from the track's history: its video arrives (almost) whole while its audio, which
/// is never resent, shows the link's loss.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_on_a_lossy_link_gets_its_lost_video_packets_resent() {
    let setup = ShapedClass::inside(namespace()).await;
    let viewer = &setup.viewer;
    wait_until(
        Duration::from_secs(15),
        "video and audio arrive",
        || video(viewer).is_some_and(|v| v.packets > 100) && audio(viewer).is_some(),
        || format!("{:?}", viewer.received().keys()),
    )
    .await;
    // The link turns lossy once media flows (setting up through loss only takes longer).
    setup.ns.lose(5).unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (video_from, audio_from) = (
        newest(video(viewer).as_ref()),
        newest(audio(viewer).as_ref()),
    );
    tokio::time::sleep(Duration::from_secs(10)).await;
    // What the last round trip may still bring.
    let (video_to, audio_to) = (
        newest(video(viewer).as_ref()),
        newest(audio(viewer).as_ref()),
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (seen, heard) = (video(viewer).unwrap(), audio(viewer).unwrap());
    let video_loss = seen.rtp_loss(video_from + 1..video_to + 1);
    let audio_loss = heard.rtp_loss(audio_from + 1..audio_to + 1);
    eprintln!(
        "5 % loss: video {} packets, {:.2}% lost; audio {} packets, {:.2}% lost",
        video_to - video_from,
        video_loss * 100.0,
        audio_to - audio_from,
        audio_loss * 100.0
    );
    assert!(
        audio_loss > 0.02,
        "the link lost too little to tell: {audio_loss}"
    );
    // Even on the low layer (about 30 packets a second) 5 % would be over 12 packets lost.
    assert!(video_to - video_from >= 250, "too little video to tell");
    assert!(
        video_loss < 0.015,
        "{:.2}% of the video lost: its NACKs were not answered",
        video_loss * 100.0
    );
    let metrics = setup.app.get("/metrics").await.text().await.unwrap();
    let resent = metrics
        .lines()
        .find_map(|l| l.strip_prefix("homeroom_packets_resent_total "))
        .and_then(|v| v.parse::<u64>().ok())
        .expect("the resent counter");
    assert!(resent > 0, "no packet resent: {metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_on_60_kbit_falls_back_to_audio_only() {
    let mut setup = ShapedClass::on("60kbit").await;
    let shaped = &mut setup.viewer;
    let weak = shaped
        .wait_for(Duration::from_secs(30), |m| {
            matches!(
                m,
                ServerMessage::Reception {
                    weak: true,
                    video: Layer::Off,
                    ..
                }
            )
        })
        .await;
    assert!(
        weak.is_some(),
        "no reception saying weak and video off: {:?}",
        shaped.received()
    );

    // Video stops; the audio goes on, (almost) whole.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let audio_from = newest(audio(shaped).as_ref());
    let video_from = video(shaped).map(|v| v.packets);
    tokio::time::sleep(Duration::from_secs(10)).await;
    let heard = audio(shaped).expect("audio");
    let (loss, packets) = (
        loss_since(&heard, audio_from),
        newest(Some(&heard)) - audio_from,
    );
    eprintln!(
        "audio on 60 kbit/s: {packets} packets in 10 s, {:.2}% lost",
        loss * 100.0
    );
    assert!(loss < 0.02, "{:.2}% of the audio lost", loss * 100.0);
    assert!(packets >= 450, "only {packets} audio packets in 10 s");
    assert_eq!(
        video(shaped).map(|v| v.packets),
        video_from,
        "video packets arrived in audio only"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_that_chooses_low_gets_low_and_audio_only_gets_no_video() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let (class, room_id, _teacher) = simulcast_class(&app).await;
    let mut low = joined(&app, &class.family, room_id).await;
    let mut listener = joined(&app, &class.student, room_id).await;
    for (peer, quality) in [
        (&mut low, Quality::Low),
        (&mut listener, Quality::AudioOnly),
    ] {
        let reply = peer.set_quality(quality).await;
        assert!(matches!(reply, ServerMessage::Ok { .. }), "{reply:?}");
    }
    for (peer, quality, video) in [
        (&mut low, Quality::Low, Layer::Low),
        (&mut listener, Quality::AudioOnly, Layer::Off),
    ] {
        let told = peer
            .wait_for(Duration::from_secs(5), |m| {
                matches!(m, ServerMessage::Reception { quality: q, video: v, .. }
                    if *q == quality && *v == video)
            })
            .await;
        assert!(told.is_some(), "no reception saying {quality:?}, {video:?}");
    }
    wait_until(
        Duration::from_secs(5),
        "the viewer that chose low gets low keyframes",
        || layer(&low) == Some(0),
        || format!("layer {:?}", layer(&low)),
    )
    .await;

    tokio::time::sleep(Duration::from_millis(500)).await;
    let (audio_from, video_from) = (
        audio(&listener).map_or(0, |a| a.packets),
        video(&listener).map(|v| v.packets),
    );
    let low_from = video(&low).unwrap().frames();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        video(&listener).map(|v| v.packets),
        video_from,
        "video arrived in audio only"
    );
    let heard = audio(&listener).map_or(0, |a| a.packets) - audio_from;
    assert!(heard >= 120, "only {heard} audio packets in 3 s");
    let frames = video(&low).unwrap().frames();
    assert_eq!(frames.broken, 0, "{frames:?}");
    assert!(
        frames.decodable >= low_from.decodable + 60,
        "{low_from:?} then {frames:?}"
    );
    assert_eq!(layer(&low), Some(0), "it stayed on low");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whip_encoder_sends_three_layers_and_a_whep_player_gets_video() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let admin = app.admin().await;
    let class = ClassFixture::new(&app, &admin, "a").await;
    let room_id = room(&class.teacher, class.class_id, "classroom", None).await;
    let key = class
        .teacher
        .post_ok(&format!("/api/v1/rooms/{room_id}/stream-keys"), json!({}))
        .await;
    let pem = std::fs::read(app.workspace.path().join("certs/self-signed.crt")).unwrap();
    let encoder = WhipPublisher::start(
        key["whip_url"].as_str().unwrap(),
        key["stream_key"].as_str().unwrap(),
        &pem,
        "127.0.0.1:0",
        Video::Simulcast,
    )
    .await
    .expect("WHIP publishes three layers");
    // A WHEP player takes the tracks there are when it comes: a family on the signalling
    // socket sees them first.
    let family = joined(&app, &class.family, room_id).await;
    wait_for_tracks(&family, 2, Duration::from_secs(10)).await;
    let player = whep_player(&app, &class.family, room_id).await;
    let shown = || track(player.received().into_values(), "video");
    wait_until(
        Duration::from_secs(10),
        "the WHEP player decodes video of one of the layers",
        || shown().is_some_and(|v| v.keyframe_layer().is_some() && v.frames().decodable >= 60),
        || format!("{:?}", shown()),
    )
    .await;
    let video = shown().unwrap();
    assert_eq!(video.frames().broken, 0, "{:?}", video.frames());
    assert_eq!(video.packets, video.intact, "payloads arrive intact");
    let heard = track(player.received().into_values(), "audio");
    assert!(heard.is_some_and(|a| a.intact > 100), "audio arrives too");
    assert_eq!(player.stop().await.unwrap(), 200);
    assert_eq!(encoder.stop().await.unwrap(), 200);
}
