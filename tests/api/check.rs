//! The connection check's server side (`POST /api/v1/check/offer`), with a real webrtc-rs
//! receiver: who may run it, what the answer offers per path, the test stream's rate, and the
//! bounds on checks at once.

use std::sync::Arc;
use std::time::Duration;

use homeroom::client::media::new_pc;
use homeroom::client::receive::{Inbox, Receiving};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use serde_json::json;
use webrtc::peer_connection::{PeerConnection, RTCSessionDescription};

use crate::helpers::{error_code, Actor, ClassFixture, Db, TestApp};

/// A receive-only video offer with its candidates, as the check page makes one.
async fn offer(inbox: &Inbox) -> (Arc<dyn PeerConnection>, String) {
    let pc = new_pc(
        Arc::new(Receiving {
            inbox: inbox.clone(),
        }),
        "127.0.0.1:0",
    )
    .await
    .unwrap();
    let init = RTCRtpTransceiverInit {
        direction: RTCRtpTransceiverDirection::Recvonly,
        ..Default::default()
    };
    pc.add_transceiver_from_kind(RtpCodecKind::Video, Some(init))
        .await
        .unwrap();
    let offer = pc.create_offer(None).await.unwrap();
    pc.set_local_description(offer).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    let mut local = pc.local_description().await.unwrap();
    while !local.sdp.contains("a=end-of-candidates") && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        local = pc.local_description().await.unwrap();
    }
    (pc, local.sdp)
}

async fn post_offer(actor: &Actor, sdp: &str, transport: &str) -> reqwest::Response {
    actor
        .post(
            "/api/v1/check/offer",
            json!({"sdp": sdp, "transport": transport}),
        )
        .await
}

fn candidates(sdp: &str, protocol: &str) -> usize {
    sdp.lines()
        .filter(|l| l.starts_with("a=candidate:"))
        .filter(|l| {
            l.split_whitespace()
                .nth(2)
                .is_some_and(|p| p.eq_ignore_ascii_case(protocol))
        })
        .count()
}

/// A family with no class yet runs the check: over UDP the test stream arrives at about its
/// stated rate, and the answer offers UDP candidates only; over TCP, TCP candidates only, on
/// the HTTPS port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_in_person_gets_the_test_stream() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let admin = app.admin().await;
    let class = ClassFixture::new(&app, &admin, "check").await;
    let family = &class.family;

    // Signed out: refused before anything is made.
    let inbox = Inbox::default();
    let (pc, sdp) = offer(&inbox).await;
    let anonymous = app
        .anonymous()
        .post(app.url("/api/v1/check/offer"))
        .json(&json!({"sdp": sdp, "transport": "udp"}))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);

    let response = post_offer(family, &sdp, "udp").await;
    assert_eq!(response.status(), 201);
    let answer: serde_json::Value = response.json().await.unwrap();
    let answer_sdp = answer["sdp"].as_str().unwrap();
    assert!(candidates(answer_sdp, "udp") > 0, "{answer_sdp}");
    assert_eq!(candidates(answer_sdp, "tcp"), 0, "{answer_sdp}");
    assert_eq!(answer["bitrate_bps"], 1_000_000);
    assert_eq!(answer["stream_ms"], 5_000);
    pc.set_remote_description(RTCSessionDescription::answer(answer_sdp.to_owned()).unwrap())
        .await
        .unwrap();
    // The stream runs 5 s once connected; then the server closes the connection.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let received = inbox
        .lock()
        .unwrap()
        .values()
        .next()
        .cloned()
        .expect("a track arrived");
    let (first, last) = (received.first_at.unwrap(), received.last_at.unwrap());
    let seconds = last.duration_since(first).as_secs_f64();
    assert!((4.0..6.5).contains(&seconds), "the stream ran {seconds} s");
    assert_eq!(received.kind, "video");
    // 1 Mbit/s at 30 frames a second in packets of at most 1000 bytes: 5 packets a frame,
    // 150 a second.
    let rate = received.packets as f64 / seconds;
    assert!((120.0..180.0).contains(&rate), "{rate} packets/s");
    let _ = pc.close().await;

    let inbox = Inbox::default();
    let (pc, sdp) = offer(&inbox).await;
    let answer: serde_json::Value = post_offer(family, &sdp, "tcp").await.json().await.unwrap();
    let answer_sdp = answer["sdp"].as_str().unwrap();
    assert!(candidates(answer_sdp, "tcp") > 0, "{answer_sdp}");
    assert_eq!(candidates(answer_sdp, "udp"), 0, "{answer_sdp}");
    // ICE over TCP arrives on the HTTPS port: that is where the answer sends the page.
    let https = url::Url::parse(&app.base)
        .unwrap()
        .port()
        .unwrap()
        .to_string();
    let passive: Vec<&str> = answer_sdp
        .lines()
        .filter(|l| l.contains("tcptype passive"))
        .collect();
    assert!(!passive.is_empty(), "{answer_sdp}");
    for line in passive {
        assert_eq!(line.split(' ').nth(5), Some(https.as_str()), "{line}");
    }
    let _ = pc.close().await;
}

/// Bad offers are refused before a port is taken; a server without ICE-TCP says so for TCP;
/// one person runs at most two checks at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_are_refused_and_bounded() {
    let app = TestApp::spawn_with(Db::Sqlite, "[media]\nice_tcp = false\n").await;
    let admin = app.admin().await;

    assert_eq!(
        error_code(post_offer(&admin, "not sdp", "udp").await).await,
        (400, "bad_sdp".into())
    );
    let audio_only = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:111 opus/48000/2\r\n";
    assert_eq!(
        error_code(post_offer(&admin, audio_only, "udp").await).await,
        (400, "bad_sdp".into())
    );
    let inbox = Inbox::default();
    let (pc, sdp) = offer(&inbox).await;
    assert_eq!(
        error_code(post_offer(&admin, &sdp, "tcp").await).await,
        (409, "transport_unavailable".into())
    );
    assert_eq!(
        error_code(post_offer(&admin, &sdp, "carrier pigeon").await)
            .await
            .0,
        400
    );
    // Two at once for one person; the third waits until one ends (nobody connects to these,
    // so they hold their places for their whole lifetime).
    for _ in 0..2 {
        assert_eq!(post_offer(&admin, &sdp, "udp").await.status(), 201);
    }
    assert_eq!(
        error_code(post_offer(&admin, &sdp, "udp").await).await,
        (429, "checks_busy".into())
    );
    let _ = pc.close().await;
}
