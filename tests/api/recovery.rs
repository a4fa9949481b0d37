//! Media that holds up: what a subscriber receives stays continuous across audio-only, a
//! teacher's reconnect and an ICE restart, and an unanswered offer is made again. Real
//! webrtc-rs peers and a WHEP player through the SFU.

use std::time::{Duration, Instant};

use homeroom::signal::protocol::{ClientMessage, ServerMessage};

use crate::both_backends;
use crate::helpers::{ClassFixture, Db, TestApp};
use crate::live::{joined, room};
use crate::peer::{whep_player, Received, TestPeer};

/// Polls `check` every 20 ms until it holds or `within` passes; how long it took.
async fn within(within: Duration, mut check: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < within {
        if check() {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

fn video(received: &std::collections::HashMap<String, Received>) -> Option<Received> {
    received.values().find(|r| r.kind == "video").cloned()
}

/// A keyframe arrived at or after `since`, and packets keep coming after it.
fn video_back(received: Option<Received>, since: Instant) -> bool {
    received.is_some_and(|r| {
        r.keyframes.iter().any(|k| *k >= since) && r.last_at.is_some_and(|at| at > since)
    })
}

/// A teacher publishing and a family receiving both tracks.
async fn classroom(app: &TestApp) -> (ClassFixture, i64, TestPeer, TestPeer) {
    let admin = app.admin().await;
    let class = ClassFixture::new(app, &admin, "a").await;
    let room_id = room(&class.teacher, class.class_id, "classroom", None).await;
    let mut teacher = joined(app, &class.teacher, room_id).await;
    assert!(matches!(
        teacher.publish().await,
        ServerMessage::Answer { .. }
    ));
    let family = joined(app, &class.family, room_id).await;
    let flowing = within(Duration::from_secs(10), || {
        family.received().values().filter(|r| r.intact > 5).count() == 2
    })
    .await;
    assert!(flowing.is_some(), "family got {:?}", family.received());
    (class, room_id, teacher, family)
}

fn no_gaps(who: &str, received: &std::collections::HashMap<String, Received>) {
    for track in received.values() {
        assert_eq!(
            track.seq_gaps, 0,
            "{who}: the {} track's sequence numbers have gaps",
            track.kind
        );
        assert_eq!(
            track.packets, track.intact,
            "{who}: damaged {} payloads",
            track.kind
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn video_resumes_within_1_s_after_audio_only_with_no_sequence_gap() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let (_class, _room, _teacher, mut family) = classroom(&app).await;
    let audio_only = |enabled| move |id| ClientMessage::AudioOnly { id, enabled };
    assert!(matches!(
        family.request(audio_only(true)).await,
        ServerMessage::Ok { .. }
    ));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = video(&family.received()).unwrap().packets;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let during = video(&family.received()).unwrap().packets;
    assert!(
        during - before <= 2,
        "no video while audio-only: {} packets",
        during - before
    );

    let off = Instant::now();
    assert!(matches!(
        family.request(audio_only(false)).await,
        ServerMessage::Ok { .. }
    ));
    let resumed = within(Duration::from_secs(1), || {
        video_back(video(&family.received()), off)
    })
    .await;
    assert!(
        resumed.is_some(),
        "no keyframe within 1 s of audio-only off: {:?}",
        video(&family.received())
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    no_gaps("family", &family.received());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_keep_their_connections_when_the_teacher_reconnects() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let (class, room_id, teacher, mut family) = classroom(&app).await;
    let player = whep_player(&app, &class.family, room_id).await;
    let playing = within(Duration::from_secs(10), || {
        player.received().values().filter(|r| r.intact > 5).count() == 2
    })
    .await;
    assert!(playing.is_some(), "WHEP player got {:?}", player.received());
    let offers = family.offers.lock().unwrap().len();
    let tracks: Vec<String> = family.received().into_keys().collect();

    // The teacher's client drops out (no goodbye) and comes back 2 s later.
    teacher.vanish().await;
    // The family (not a host) sees the count drop: the teacher, the family and the WHEP
    // player were here.
    assert!(family
        .wait_for(
            Duration::from_secs(3),
            |m| matches!(m, ServerMessage::ParticipantCount { count } if *count == 2)
        )
        .await
        .is_some());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut teacher = joined(&app, &class.teacher, room_id).await;
    assert!(matches!(
        teacher.publish().await,
        ServerMessage::Answer { .. }
    ));
    let back = Instant::now();
    let republished = family
        .wait_for(Duration::from_secs(2), |m| matches!(m, ServerMessage::TrackPublished { track } if tracks.contains(&track.track_id)))
        .await;
    assert!(
        republished.is_some(),
        "the same track ids are announced again"
    );

    let family_back = within(Duration::from_secs(2), || {
        video_back(video(&family.received()), back)
    })
    .await;
    let player_back = within(Duration::from_secs(2), || {
        video_back(video(&player.received()), back)
    })
    .await;
    assert!(
        family_back.is_some(),
        "family: no video within 2 s: {:?}",
        video(&family.received())
    );
    assert!(
        player_back.is_some(),
        "WHEP: no video within 2 s: {:?}",
        video(&player.received())
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        family.offers.lock().unwrap().len(),
        offers,
        "no new offer was needed"
    );
    let mut now: Vec<String> = family.received().into_keys().collect();
    now.sort();
    let mut before = tracks.clone();
    before.sort();
    assert_eq!(now, before, "the same tracks, on the same connection");
    no_gaps("family", &family.received());
    no_gaps("WHEP player", &player.received());
    assert_eq!(player.stop().await.unwrap(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_subscriber_offer_is_made_again_after_the_timeout() {
    let app = TestApp::spawn_with(Db::Sqlite, "[limits]\nsubscriber_answer_timeout_secs = 1").await;
    let admin = app.admin().await;
    let class = ClassFixture::new(&app, &admin, "a").await;
    let room_id = room(&class.teacher, class.class_id, "classroom", None).await;
    let mut teacher = joined(&app, &class.teacher, room_id).await;
    teacher.publish().await;
    let mut family =
        crate::peer::connect(&app, crate::peer::Credential::Cookie(&class.family.cookie)).await;
    family
        .answering
        .store(false, std::sync::atomic::Ordering::Relaxed);
    assert!(matches!(
        family.join(room_id).await,
        ServerMessage::Joined { .. }
    ));
    let offers = family.offers.clone();
    let first = within(Duration::from_secs(5), || {
        !offers.lock().unwrap().is_empty()
    })
    .await;
    assert!(first.is_some(), "an offer comes");
    let first_at = Instant::now();
    let again = within(Duration::from_secs(3), || offers.lock().unwrap().len() >= 2).await;
    let waited = first_at.elapsed();
    assert!(again.is_some(), "the unanswered offer is made again");
    assert!(
        waited >= Duration::from_millis(700),
        "only after the timeout: {waited:?}"
    );
    for offer in offers.lock().unwrap().iter() {
        assert!(
            offer.contains("a=msid-semantic"),
            "every offer has a=msid-semantic"
        );
    }
    // Answering from now on, the next fresh offer brings the media.
    family
        .answering
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let flowing = within(Duration::from_secs(5), || {
        family.received().values().filter(|r| r.intact > 5).count() == 2
    })
    .await;
    assert!(
        flowing.is_some(),
        "media after a re-offer: {:?}",
        family.received()
    );
}

async fn an_ice_restart_keeps_the_participant_and_its_attendance(db: Db) {
    let app = TestApp::spawn(db).await;
    let (class, _room, mut teacher, mut family) = classroom(&app).await;
    let family_id = family.participant_id;
    let ufrag = |sdp: &str| {
        sdp.lines()
            .find(|l| l.starts_with("a=ice-ufrag:"))
            .map(str::to_owned)
    };
    let offers = family.offers.clone();
    let old_ufrag = ufrag(offers.lock().unwrap().last().unwrap());

    // The teacher re-offers its publisher connection with new credentials; the family asks
    // for a restart of its subscriber connection.
    let (published, _) = teacher.ice_restart().await;
    assert!(
        matches!(published, Some(ServerMessage::Answer { .. })),
        "{published:?}"
    );
    let count = offers.lock().unwrap().len();
    let (_, restarted) = family.ice_restart().await;
    assert!(
        matches!(restarted, ServerMessage::Ok { .. }),
        "{restarted:?}"
    );
    let restart = Instant::now();
    let offered = within(Duration::from_secs(2), || {
        offers.lock().unwrap().len() > count
    })
    .await;
    assert!(offered.is_some(), "a restart offer comes");
    assert_ne!(
        ufrag(offers.lock().unwrap().last().unwrap()),
        old_ufrag,
        "new ICE credentials"
    );

    let packets = |peer: &TestPeer| peer.received().values().map(|r| r.packets).sum::<u64>();
    let at_restart = packets(&family);
    let resumed = within(Duration::from_secs(2), || {
        packets(&family) > at_restart + 50
    })
    .await;
    assert!(resumed.is_some(), "media within 2 s of the restart");
    assert!(restart.elapsed() < Duration::from_secs(3));
    assert!(
        family
            .wait_for(Duration::from_millis(200), |m| matches!(
                m,
                ServerMessage::ParticipantLeft { .. }
            ))
            .await
            .is_none(),
        "nobody left"
    );
    let still = family
        .request(|id| ClientMessage::Hand { id, raised: true })
        .await;
    assert!(
        matches!(still, ServerMessage::Ok { .. }),
        "still the same participant: {still:?}"
    );
    let updated = teacher
        .wait_for(Duration::from_secs(2), |m| matches!(m, ServerMessage::ParticipantUpdated { participant } if participant.participant_id == family_id))
        .await;
    assert!(
        updated.is_some(),
        "the hand is the family's, same participant id"
    );

    // One attendance row: one join and no leave for the family.
    let db = app.workspace.database().await;
    let kinds: Vec<(String,)> = sqlx::query_as(
        "SELECT kind FROM session_events WHERE user_id = $1 AND kind IN ('join', 'leave') ORDER BY seq",
    )
    .bind(class.family.user_id)
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(kinds, vec![("join".to_owned(),)], "one attendance row");
}

both_backends!(an_ice_restart_keeps_the_participant_and_its_attendance);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishers_are_told_which_codecs_viewers_decode_and_that_unnamed_simulcast_is_not_taken() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let admin = app.admin().await;
    let class = ClassFixture::new(&app, &admin, "a").await;
    let room_id = room(&class.teacher, class.class_id, "classroom", None).await;
    let mut teacher = joined(&app, &class.teacher, room_id).await;
    let head = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n";
    let vp9 = format!(
        "{head}m=video 9 UDP/TLS/RTP/SAVPF 98\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendonly\r\n\
         a=msid:s cam\r\na=rtpmap:98 VP9/90000\r\n"
    );
    let simulcast = format!(
        "{head}m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendonly\r\n\
         a=msid:s cam\r\na=rtpmap:96 VP8/90000\r\na=ssrc-group:SIM 1 2\r\n"
    );
    for (sdp, says) in [(vp9, "VP8"), (simulcast, "simulcast")] {
        let reply = teacher
            .request(|id| ClientMessage::Offer {
                id,
                sdp,
                sources: Default::default(),
            })
            .await;
        assert!(
            matches!(&reply, ServerMessage::Error { code, message, .. } if code == "bad_sdp" && message.contains(says)),
            "{reply:?}"
        );
    }
    // Still the same participant, able to publish properly.
    assert!(matches!(
        teacher.publish().await,
        ServerMessage::Answer { .. }
    ));
}
