//! WHIP ingest: an encoder publishes with a stream key; viewers on the signalling socket get
//! its media; a revoked key changes nothing.

use std::time::{Duration, Instant};

use homeroom::client::whip::WhipPublisher;
use homeroom::client::VideoShape;
use homeroom::signal::protocol::ServerMessage;
use serde_json::json;

use crate::helpers::{error_code, ClassFixture, Db, TestApp};
use crate::peer::{self, Credential};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encoder_publishes_over_whip_and_families_watch_over_signalling_and_whep() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let admin = app.admin().await;
    let class = ClassFixture::new(&app, &admin, "a").await;
    let other = ClassFixture::new(&app, &admin, "b").await;
    let room = class
        .teacher
        .post_ok(
            &format!("/api/v1/classes/{}/rooms", class.class_id),
            json!({"kind": "classroom", "name": "Assembly"}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let keys = format!("/api/v1/rooms/{room}/stream-keys");

    // Only those who may go live make keys; outsiders do not learn the room exists.
    assert_eq!(
        error_code(class.family.post(&keys, json!({})).await).await,
        (403, "not_allowed".into())
    );
    assert_eq!(
        error_code(other.teacher.post(&keys, json!({})).await).await,
        (404, "not_found".into())
    );

    let created = class.teacher.post_ok(&keys, json!({})).await;
    let key = created["stream_key"].as_str().unwrap().to_owned();
    let url = created["whip_url"].as_str().unwrap().to_owned();
    assert!(url.ends_with(&format!("/whip/{room}")));
    let pem = std::fs::read(app.workspace.path().join("certs/self-signed.crt")).unwrap();

    // A revoked key is refused and changes nothing.
    let revoked = class.teacher.post_ok(&keys, json!({})).await;
    let revoked_id = revoked["id"].as_i64().unwrap();
    assert_eq!(
        class
            .teacher
            .send(
                reqwest::Method::DELETE,
                &format!("{keys}/{revoked_id}"),
                None
            )
            .await
            .status(),
        204
    );
    let refused = WhipPublisher::start(
        &url,
        revoked["stream_key"].as_str().unwrap(),
        &pem,
        "127.0.0.1:0",
        VideoShape::default(),
    )
    .await;
    let refusal = refused.err().expect("a revoked key is refused");
    assert!(
        refusal.contains("401") && refusal.contains("stream_key_invalid"),
        "{refusal}"
    );
    let rooms: serde_json::Value = class
        .teacher
        .get(&format!("/api/v1/classes/{}/rooms", class.class_id))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rooms[0]["live"], false, "no session was started");

    // The real key starts the session as the teacher's encoder.
    let encoder = WhipPublisher::start(&url, &key, &pem, "127.0.0.1:0", VideoShape::default())
        .await
        .expect("WHIP publish");
    assert!(encoder.resource.contains(&format!("/whip/{room}/")));
    let mut family = peer::connect(&app, Credential::Cookie(&class.family.cookie)).await;
    // A family gets no list of participants: the encoder counts among those here.
    let ServerMessage::Joined {
        participants,
        participant_count,
        ..
    } = family.join(room).await
    else {
        panic!("family refused")
    };
    assert!(
        participants.is_empty() && participant_count == 2,
        "{participants:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while family.received().values().filter(|r| r.intact > 30).count() < 2 {
        assert!(Instant::now() < deadline, "{:?}", family.received());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        family.received().values().all(|r| r.packets == r.intact),
        "payloads arrive intact"
    );

    // A standard WHEP player watches too, with the family's viewer token.
    let nobody = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap()
        .post(app.url(&format!("/whep/{room}")))
        .header("content-type", "application/sdp")
        .body("v=0")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(nobody).await, (401, "unauthorized".into()));
    let outsider_token = other
        .family
        .post(&format!("/api/v1/rooms/{room}/viewer-token"), json!({}))
        .await;
    assert_eq!(error_code(outsider_token).await, (404, "not_found".into()));
    let player = peer::whep_player(&app, &class.family, room).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while player.received().values().filter(|r| r.intact > 30).count() < 2 {
        assert!(
            Instant::now() < deadline,
            "WHEP player got {:?}",
            player.received()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(player.received().values().all(|r| r.packets == r.intact));
    assert_eq!(player.stop().await.unwrap(), 200);

    // DELETE ends the encoder's part; the family sees it leave (one fewer here).
    assert_eq!(encoder.stop().await.unwrap(), 200);
    let left = family
        .wait_for(Duration::from_secs(3), |m| {
            matches!(m, ServerMessage::ParticipantCount { count: 1 })
        })
        .await;
    assert!(left.is_some());
}
