//! Security of live rooms and signalling, end to end: a right that ends (membership, sign-in
//! session) ends the live participation at once; a waiting participant gets nothing of the
//! room; room tokens serve one purpose in one room; outsiders learn nothing of a room; every
//! message type has a rate; guests cannot take the node; the frame limit; acknowledged chat
//! survives `kill -9`.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use homeroom::signal::protocol::{ClientMessage, ServerMessage};
use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::both_backends;
use crate::helpers::{error_code, Actor, ClassFixture, Db, TestApp, PASSWORD};
use crate::live::{joined, room};
use crate::peer::{self, Credential, TestPeer};

/// Waits until `peer` receives at least `count` flowing tracks.
async fn wait_for_tracks(peer: &TestPeer, count: usize) {
    for _ in 0..300 {
        if peer.received().values().filter(|r| r.packets > 5).count() >= count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("tracks never flowed");
}

fn packets(peer: &TestPeer) -> u64 {
    peer.received().values().map(|r| r.packets).sum()
}

/// How many are in the room now, as the class's room list says.
async fn participants(actor: &Actor, class_id: i64, room_id: i64) -> i64 {
    let rooms: serde_json::Value = actor
        .get(&format!("/api/v1/classes/{class_id}/rooms"))
        .await
        .json()
        .await
        .unwrap();
    rooms
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == room_id)
        .unwrap()["participants"]
        .as_i64()
        .unwrap()
}

async fn chat(peer: &mut TestPeer, text: &str) -> ServerMessage {
    peer.request(|id| ClientMessage::Chat {
        id,
        text: text.into(),
    })
    .await
}

fn is_error(message: &ServerMessage, want: &str) -> bool {
    matches!(message, ServerMessage::Error { code, .. } if code == want)
}

pub(crate) async fn guest_token(app: &TestApp, code: &serde_json::Value, name: &str) -> String {
    let token: serde_json::Value = app
        .anonymous()
        .post(app.url("/api/v1/guest-token"))
        .json(&json!({"code": code, "display_name": name}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    token["token"].as_str().unwrap().to_owned()
}

/// A bare signalling socket that does only what the test says (never answers an offer).
pub(crate) struct RawSocket {
    pub(crate) stream: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

impl RawSocket {
    pub(crate) async fn open(app: &TestApp, credential: Credential<'_>) -> RawSocket {
        let pem = std::fs::read(app.workspace.path().join("certs/self-signed.crt")).unwrap();
        let tls: Arc<rustls::ClientConfig> = homeroom::client::tls_trusting(&pem).unwrap();
        let ws_base = app.base.replacen("https://", "wss://", 1);
        let url = match credential {
            Credential::Token(token) => format!("{ws_base}/api/v1/ws?token={token}"),
            Credential::Cookie(_) => format!("{ws_base}/api/v1/ws"),
        };
        let mut request = url.into_client_request().unwrap();
        if let Credential::Cookie(cookie) = credential {
            request.headers_mut().insert(
                "cookie",
                format!("homeroom_session={cookie}").parse().unwrap(),
            );
        }
        let (stream, _) = tokio_tungstenite::connect_async_tls_with_config(
            request,
            None,
            false,
            Some(tokio_tungstenite::Connector::Rustls(tls)),
        )
        .await
        .expect("socket opens");
        RawSocket { stream }
    }

    pub(crate) async fn send(&mut self, text: String) {
        self.stream
            .send(Message::Text(text.into()))
            .await
            .expect("send");
    }

    /// The next server message, or how the socket ended: `Err(close code)`.
    pub(crate) async fn next(&mut self, within: Duration) -> Result<ServerMessage, Option<u16>> {
        loop {
            match tokio::time::timeout(within, self.stream.next()).await {
                Err(_) => panic!("nothing within {within:?}"),
                Ok(Some(Ok(Message::Text(text)))) => {
                    return Ok(serde_json::from_str(&text).expect("protocol"))
                }
                Ok(Some(Ok(Message::Close(frame)))) => return Err(frame.map(|f| u16::from(f.code))),
                Ok(Some(Ok(_))) => continue,
                Ok(Some(Err(_)) | None) => return Err(None),
            }
        }
    }

    /// Skips messages until one matches, or the socket ends.
    pub(crate) async fn until(
        &mut self,
        within: Duration,
        want: impl Fn(&ServerMessage) -> bool,
    ) -> Result<ServerMessage, Option<u16>> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let message = self.next(left.max(Duration::from_millis(1))).await?;
            if want(&message) {
                return Ok(message);
            }
        }
    }
}

// ---- 1. Removal and sign-out end live participation at once ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_member_is_dropped_from_the_live_room_at_once() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let admin = app.admin().await;
    let class = ClassFixture::new(&app, &admin, "a").await;
    let room_id = room(&class.teacher, class.class_id, "classroom", None).await;
    let mut teacher = joined(&app, &class.teacher, room_id).await;
    assert!(matches!(
        teacher.publish().await,
        ServerMessage::Answer { .. }
    ));
    let mut family = joined(&app, &class.family, room_id).await;
    wait_for_tracks(&family, 2).await;

    let removed = class
        .teacher
        .send(
            reqwest::Method::DELETE,
            &format!(
                "/api/v1/classes/{}/members/{}",
                class.class_id, class.family.user_id
            ),
            None,
        )
        .await;
    assert_eq!(removed.status(), 204);
    let kicked = family
        .wait_for(Duration::from_secs(3), |m| {
            matches!(m, ServerMessage::Kicked { .. })
        })
        .await;
    assert!(
        matches!(&kicked, Some(ServerMessage::Kicked { reason }) if reason == "removed_from_class"),
        "{kicked:?}"
    );
    let family_id = family.participant_id;
    assert!(teacher
        .wait_for(Duration::from_secs(3), |m| matches!(
            m,
            ServerMessage::ParticipantLeft { participant_id, .. } if *participant_id == family_id
        ))
        .await
        .is_some());
    assert_eq!(
        participants(&class.teacher, class.class_id, room_id).await,
        1
    );
    // Its media stopped: nothing more arrives.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = packets(&family);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        packets(&family),
        before,
        "media still flows to a removed member"
    );
}

/// Deactivating an account (admins, on the people page) ends its live participation at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deactivated_account_is_dropped_from_the_live_room_at_once() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let admin = app.admin().await;
    let class = ClassFixture::new(&app, &admin, "d").await;
    let room_id = room(&class.teacher, class.class_id, "classroom", None).await;
    let mut teacher = joined(&app, &class.teacher, room_id).await;
    assert!(matches!(
        teacher.publish().await,
        ServerMessage::Answer { .. }
    ));
    let mut family = joined(&app, &class.family, room_id).await;
    wait_for_tracks(&family, 2).await;

    let deactivated = admin
        .post(
            &format!("/api/v1/users/{}/deactivate", class.family.user_id),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(deactivated.status(), 204);
    let kicked = family
        .wait_for(Duration::from_secs(3), |m| {
            matches!(m, ServerMessage::Kicked { .. })
        })
        .await;
    assert!(
        matches!(&kicked, Some(ServerMessage::Kicked { reason }) if reason == "account_deactivated"),
        "{kicked:?}"
    );
    assert_eq!(
        participants(&class.teacher, class.class_id, room_id).await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_out_ends_that_sessions_participation_and_a_reset_ends_all() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let admin = app.admin().await;
    let class = ClassFixture::new(&app, &admin, "a").await;
    let room_id = room(&class.teacher, class.class_id, "classroom", None).await;
    let _teacher = joined(&app, &class.teacher, room_id).await;
    // The same family on two devices.
    let laptop = &class.family;
    let phone = app.sign_in("family-a", PASSWORD).await;
    let mut on_laptop = joined(&app, laptop, room_id).await;
    let mut on_phone = joined(&app, &phone, room_id).await;
    let viewer = laptop
        .post_ok(&format!("/api/v1/rooms/{room_id}/viewer-token"), json!({}))
        .await;

    let out = laptop
        .send(reqwest::Method::DELETE, "/api/v1/session", None)
        .await;
    assert_eq!(out.status(), 204);
    let kicked = on_laptop
        .wait_for(Duration::from_secs(3), |m| {
            matches!(m, ServerMessage::Kicked { .. })
        })
        .await;
    assert!(
        matches!(&kicked, Some(ServerMessage::Kicked { reason }) if reason == "signed_out"),
        "{kicked:?}"
    );
    // The other device goes on.
    assert!(matches!(
        chat(&mut on_phone, "still here").await,
        ServerMessage::Ok { .. }
    ));
    // The signed-out session's viewer token died with it.
    let play = app
        .anonymous()
        .post(app.url(&format!("/whep/{room_id}")))
        .header(
            "authorization",
            format!("Bearer {}", viewer["token"].as_str().unwrap()),
        )
        .header("content-type", "application/sdp")
        .body("v=0\r\n")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(play).await, (410, "token_invalid".into()));

    // A password reset ends every session, and so every participation.
    let link = class
        .teacher
        .post_ok(
            &format!("/api/v1/users/{}/password-reset", phone.user_id),
            json!({}),
        )
        .await;
    let token = link["reset_url"]
        .as_str()
        .unwrap()
        .split('#')
        .nth(1)
        .unwrap();
    let reset = app
        .anonymous()
        .post(app.url("/api/v1/password-reset"))
        .json(&json!({"token": token, "new_password": "another long password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), 204);
    assert!(on_phone
        .wait_for(Duration::from_secs(3), |m| matches!(
            m,
            ServerMessage::Kicked { reason } if reason == "signed_out"
        ))
        .await
        .is_some());
    assert_eq!(
        participants(&class.teacher, class.class_id, room_id).await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_is_authorised_against_the_current_membership() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let admin = app.admin().await;
    let class = ClassFixture::new(&app, &admin, "a").await;
    let room_id = room(&class.teacher, class.class_id, "classroom", None).await;
    let _teacher = joined(&app, &class.teacher, room_id).await;
    let mut family = joined(&app, &class.family, room_id).await;
    assert!(matches!(
        chat(&mut family, "hello").await,
        ServerMessage::Ok { .. }
    ));
    // The membership disappears behind the server's back (no revocation is sent): the next
    // message finds out.
    let db = app.workspace.database().await;
    sqlx::query("DELETE FROM memberships WHERE user_id = $1 AND class_id = $2")
        .bind(class.family.user_id)
        .bind(class.class_id)
        .execute(&db)
        .await
        .unwrap();
    let refused = chat(&mut family, "am I still here?").await;
    assert!(is_error(&refused, "not_allowed"), "{refused:?}");
    assert!(family
        .wait_for(Duration::from_secs(3), |m| matches!(
            m,
            ServerMessage::Kicked { reason } if reason == "removed_from_class"
        ))
        .await
        .is_some());
}

// ---- 2. Waiting participants get nothing of the room ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_participant_gets_nothing_and_may_do_nothing() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let admin = app.admin().await;
    let class = ClassFixture::new(&app, &admin, "a").await;
    let room_id = room(
        &class.teacher,
        class.class_id,
        "tutoring",
        Some(class.tutor.user_id),
    )
    .await;
    let mut tutor = joined(&app, &class.tutor, room_id).await;
    let mut family = peer::connect(&app, Credential::Cookie(&class.family.cookie)).await;
    let ServerMessage::Joined {
        waiting,
        participants,
        tracks,
        ..
    } = family.join(room_id).await
    else {
        panic!("refused")
    };
    assert!(waiting);
    assert!(
        participants.is_empty() && tracks.is_empty(),
        "{participants:?}"
    );

    assert!(matches!(
        chat(&mut tutor, "only for those let in").await,
        ServerMessage::Ok { .. }
    ));
    let hand = tutor
        .request(|id| ClientMessage::Hand { id, raised: true })
        .await;
    assert!(matches!(hand, ServerMessage::Ok { .. }));
    let _student = {
        let mut student = peer::connect(&app, Credential::Cookie(&class.student.cookie)).await;
        student.join(room_id).await;
        student
    };
    let refused = chat(&mut family, "let me in").await;
    assert!(is_error(&refused, "not_admitted"), "{refused:?}");
    let refused = family
        .request(|id| ClientMessage::Hand { id, raised: true })
        .await;
    assert!(is_error(&refused, "not_admitted"), "{refused:?}");
    let refused = family
        .request(|id| ClientMessage::AudioOnly { id, enabled: true })
        .await;
    assert!(is_error(&refused, "not_admitted"), "{refused:?}");
    assert!(matches!(
        family.request(|id| ClientMessage::Ping { id }).await,
        ServerMessage::Pong { .. }
    ));
    let heard = family
        .wait_for(Duration::from_secs(1), |m| {
            matches!(
                m,
                ServerMessage::Chat { .. }
                    | ServerMessage::ParticipantJoined { .. }
                    | ServerMessage::ParticipantUpdated { .. }
                    | ServerMessage::ParticipantLeft { .. }
                    | ServerMessage::TrackPublished { .. }
                    | ServerMessage::Offer { .. }
            )
        })
        .await;
    assert!(heard.is_none(), "the waiting family heard {heard:?}");
    assert!(tutor
        .wait_for(
            Duration::from_millis(500),
            |m| matches!(m, ServerMessage::Chat { text, .. } if text == "let me in")
        )
        .await
        .is_none());

    // Once admitted: the room as it is, and chat works.
    let family_id = family.participant_id;
    let admitted = tutor
        .request(|id| ClientMessage::Admit {
            id,
            participant_id: family_id,
        })
        .await;
    assert!(matches!(admitted, ServerMessage::Ok { .. }), "{admitted:?}");
    assert!(family
        .wait_for(Duration::from_secs(3), |m| *m == ServerMessage::Admitted)
        .await
        .is_some());
    let tutor_id = tutor.participant_id;
    assert!(family
        .wait_for(Duration::from_secs(3), |m| matches!(
            m,
            ServerMessage::ParticipantJoined { participant } if participant.participant_id == tutor_id && participant.hand_raised
        ))
        .await
        .is_some());
    assert!(matches!(
        chat(&mut family, "thanks").await,
        ServerMessage::Ok { .. }
    ));
}

// ---- 3 and 4. Tokens carry their purpose and room; outsiders get 404 ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_tokens_serve_one_purpose_in_one_room() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let admin = app.admin().await;
    let class = ClassFixture::new(&app, &admin, "a").await;
    let classroom = room(&class.teacher, class.class_id, "classroom", None).await;
    let open_house = room(&class.teacher, class.class_id, "open_house", None).await;
    let other_open_house = room(&class.teacher, class.class_id, "open_house", None).await;

    // A family's viewer token for the classroom does not open the signalling socket.
    let viewer = class
        .family
        .post_ok(
            &format!("/api/v1/rooms/{classroom}/viewer-token"),
            json!({}),
        )
        .await;
    let viewer_token = viewer["token"].as_str().unwrap();
    let socket = app
        .anonymous()
        .get(app.url(&format!("/api/v1/ws?token={viewer_token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(socket).await, (410, "token_invalid".into()));
    // Nor plays another room.
    let _host = joined(&app, &class.teacher, open_house).await;
    let _other_host = joined(&app, &class.teacher, other_open_house).await;
    let whep = |room_id: i64, token: String| {
        let app = &app;
        async move {
            app.anonymous()
                .post(app.url(&format!("/whep/{room_id}")))
                .header("authorization", format!("Bearer {token}"))
                .header("content-type", "application/sdp")
                .body("v=0\r\n")
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(
        error_code(whep(open_house, viewer_token.to_owned()).await).await,
        (410, "token_invalid".into())
    );

    // A guest token is for its own open house's signalling only.
    let link = class
        .teacher
        .post_ok(&format!("/api/v1/rooms/{open_house}/guest-link"), json!({}))
        .await;
    let token = guest_token(&app, &link["code"], "Grandma").await;
    assert_eq!(
        error_code(whep(open_house, token.clone()).await).await,
        (410, "token_invalid".into())
    );
    let mut guest = peer::connect(&app, Credential::Token(&token)).await;
    let refused = guest.join(other_open_house).await;
    assert!(is_error(&refused, "not_allowed"), "{refused:?}");
    assert!(matches!(
        guest.join(open_house).await,
        ServerMessage::Joined { .. }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outsiders_learn_nothing_of_a_room_not_even_its_kind() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let admin = app.admin().await;
    let a = ClassFixture::new(&app, &admin, "a").await;
    let b = ClassFixture::new(&app, &admin, "b").await;
    let tutoring = room(&a.teacher, a.class_id, "tutoring", Some(a.tutor.user_id)).await;
    for outsider in [&b.family, &b.teacher] {
        let asked = outsider
            .post(&format!("/api/v1/rooms/{tutoring}/viewer-token"), json!({}))
            .await;
        assert_eq!(error_code(asked).await, (404, "not_found".into()));
        let played = outsider
            .client
            .post(app.url(&format!("/whep/{tutoring}")))
            .header("x-csrf-token", &outsider.csrf)
            .header("content-type", "application/sdp")
            .body("v=0\r\n")
            .send()
            .await
            .unwrap();
        assert_eq!(error_code(played).await, (404, "not_found".into()));
    }
    // A member still learns why.
    let asked = a
        .family
        .post(&format!("/api/v1/rooms/{tutoring}/viewer-token"), json!({}))
        .await;
    assert_eq!(error_code(asked).await, (400, "not_broadcast".into()));
}

// ---- 5. Per-message-type rate limits ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_hands_is_refused_and_neither_logged_nor_broadcast() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let admin = app.admin().await;
    let class = ClassFixture::new(&app, &admin, "a").await;
    let room_id = room(&class.teacher, class.class_id, "classroom", None).await;
    let mut teacher = peer::connect(&app, Credential::Cookie(&class.teacher.cookie)).await;
    let ServerMessage::Joined { session_id, .. } = teacher.join(room_id).await else {
        panic!("join refused")
    };
    let mut family = joined(&app, &class.family, room_id).await;
    const SENT: u64 = 60;
    for i in 0..SENT {
        family.send_raw(&format!(
            r#"{{"type":"hand","id":{},"raised":{}}}"#,
            1000 + i,
            i % 2 == 0
        ));
    }
    let (mut ok, mut limited) = (0, 0);
    while ok + limited < SENT {
        match family
            .wait_for(Duration::from_secs(5), |m| {
                matches!(m, ServerMessage::Ok { id } if *id >= 1000)
                    || matches!(m, ServerMessage::Error { id: Some(id), .. } if *id >= 1000)
            })
            .await
        {
            Some(ServerMessage::Ok { .. }) => ok += 1,
            Some(ServerMessage::Error { code, .. }) => {
                assert_eq!(code, "rate_limited");
                limited += 1
            }
            _ => panic!("only {ok} ok and {limited} refused of {SENT}"),
        }
    }
    assert!(ok <= 6, "{ok} hands went through");
    let family_id = family.participant_id;
    let mut broadcast = 0;
    while teacher
        .wait_for(Duration::from_millis(500), |m| matches!(
            m,
            ServerMessage::ParticipantUpdated { participant } if participant.participant_id == family_id
        ))
        .await
        .is_some()
    {
        broadcast += 1;
    }
    assert_eq!(broadcast, ok, "only accepted hands reach others");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let db = app.workspace.database().await;
    let logged: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM session_events WHERE session_id = $1 AND kind = 'hand'",
    )
    .bind(session_id)
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(logged as u64, ok, "only accepted hands are logged");
    // The family is still a working participant.
    assert!(matches!(
        family.request(|id| ClientMessage::Ping { id }).await,
        ServerMessage::Pong { .. }
    ));
}

// ---- 6. Guests cannot take the node ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guests_are_bounded_per_room_and_address_and_silent_ones_are_dropped() {
    let app = TestApp::spawn_with(
        Db::Sqlite,
        "[limits]\nmax_guests_per_room = 2\nmax_guests_per_ip = 3\nmedia_connect_timeout_secs = 3\n",
    )
    .await;
    let admin = app.admin().await;
    let class = ClassFixture::new(&app, &admin, "a").await;
    let open_house = room(&class.teacher, class.class_id, "open_house", None).await;
    let mut teacher = joined(&app, &class.teacher, open_house).await;
    assert!(matches!(
        teacher.publish().await,
        ServerMessage::Answer { .. }
    ));
    let link = class
        .teacher
        .post_ok(&format!("/api/v1/rooms/{open_house}/guest-link"), json!({}))
        .await;
    let mut tokens = Vec::new();
    for i in 0..4 {
        tokens.push(guest_token(&app, &link["code"], &format!("Guest {i}")).await);
    }

    // A guest that joins and never answers the server's offer.
    let mut silent = RawSocket::open(&app, Credential::Token(&tokens[0])).await;
    silent
        .send(json!({"type": "join", "id": 1, "room_id": open_house}).to_string())
        .await;
    let reply = silent
        .until(Duration::from_secs(5), |m| {
            matches!(m, ServerMessage::Joined { .. })
        })
        .await;
    assert!(reply.is_ok(), "{reply:?}");
    let mut watching = peer::connect(&app, Credential::Token(&tokens[1])).await;
    assert!(matches!(
        watching.join(open_house).await,
        ServerMessage::Joined { .. }
    ));
    // A third guest in the room is refused.
    let mut third = peer::connect(&app, Credential::Token(&tokens[2])).await;
    let refused = third.join(open_house).await;
    assert!(is_error(&refused, "guests_full"), "{refused:?}");
    // A fourth socket from this address is refused before the upgrade.
    let fourth = || {
        app.anonymous()
            .get(app.url(&format!("/api/v1/ws?token={}", tokens[3])))
            .send()
    };
    assert_eq!(
        error_code(fourth().await.unwrap()).await,
        (429, "too_many_guests".into())
    );

    // The silent guest is dropped once the media connect timeout passes, and frees its place.
    let kicked = silent
        .until(Duration::from_secs(8), |m| {
            matches!(m, ServerMessage::Kicked { .. })
        })
        .await;
    assert!(
        matches!(&kicked, Ok(ServerMessage::Kicked { reason }) if reason == "media_timeout"),
        "{kicked:?}"
    );
    assert!(silent
        .until(Duration::from_secs(3), |_| false)
        .await
        .is_err());
    drop(silent);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        participants(&class.teacher, class.class_id, open_house).await,
        2
    );
    let mut freed = (0, String::new());
    for _ in 0..30 {
        freed = error_code(fourth().await.unwrap()).await;
        if freed.0 != 429 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        freed,
        (400, "not_websocket".into()),
        "the closed socket gave its place back"
    );
    // The guest that answered stays and receives media.
    wait_for_tracks(&watching, 2).await;
    assert!(matches!(
        watching.request(|id| ClientMessage::Ping { id }).await,
        ServerMessage::Pong { .. }
    ));
}

// ---- 7. Frame limit ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_messages_get_too_large_and_far_oversized_ones_close_with_1009() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let admin = app.admin().await;
    let class = ClassFixture::new(&app, &admin, "a").await;
    let mut socket = RawSocket::open(&app, Credential::Cookie(&class.family.cookie)).await;
    let limit = 64 * 1024;
    let chat = |len: usize| format!(r#"{{"type":"chat","id":5,"text":"{}"}}"#, "x".repeat(len));
    // Over the limit but within the margin: an error, and the socket stays.
    socket.send(chat(limit + 1000)).await;
    let reply = socket.next(Duration::from_secs(5)).await;
    assert!(
        matches!(&reply, Ok(m) if is_error(m, "too_large")),
        "{reply:?}"
    );
    socket
        .send(json!({"type": "ping", "id": 6}).to_string())
        .await;
    assert_eq!(
        socket.next(Duration::from_secs(5)).await,
        Ok(ServerMessage::Pong { id: 6 })
    );
    // Twice the limit is not read at all: the socket closes with 1009 (message too big).
    // The server closes while the rest of the message is still on its way, so the client's
    // write can meet a reset connection (which also discards the close frame in flight): then
    // all there is to see is that the socket is gone.
    match socket
        .stream
        .send(Message::Text(chat(2 * limit).into()))
        .await
    {
        Ok(()) => {
            let end = socket.until(Duration::from_secs(5), |_| false).await;
            assert!(
                matches!(end, Err(Some(1009)) | Err(None)),
                "the socket should close (1009): {end:?}"
            );
        }
        Err(e) => {
            assert!(
                matches!(&e, tokio_tungstenite::tungstenite::Error::Io(io)
                    if matches!(io.kind(), std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset)),
                "{e}"
            );
        }
    }
}

// ---- 8. Acknowledged chat is stored ----

both_backends!(acknowledged_chat_survives_kill_9);

async fn acknowledged_chat_survives_kill_9(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.admin().await;
    let class = ClassFixture::new(&app, &admin, "a").await;
    let room_id = room(&class.teacher, class.class_id, "classroom", None).await;
    let mut teacher = peer::connect(&app, Credential::Cookie(&class.teacher.cookie)).await;
    let ServerMessage::Joined { session_id, .. } = teacher.join(room_id).await else {
        panic!("join refused")
    };
    let mut family = joined(&app, &class.family, room_id).await;
    let mut acknowledged = Vec::new();
    for i in 0..5 {
        for (who, peer) in [("teacher", &mut teacher), ("family", &mut family)] {
            let text = format!("{who} {i}");
            let reply = chat(peer, &text).await;
            assert!(matches!(reply, ServerMessage::Ok { .. }), "{reply:?}");
            acknowledged.push(text);
        }
    }
    // The database now stalls on session events: a chat sent meanwhile may be acknowledged
    // only once it is written, which it is not before the kill.
    let pool = app.workspace.database().await;
    let mut stall = pool.begin().await.unwrap();
    if db == Db::Postgres {
        sqlx::query("LOCK TABLE session_events IN EXCLUSIVE MODE")
            .execute(&mut *stall)
            .await
            .unwrap();
    }
    sqlx::query("DELETE FROM session_events WHERE 1 = 0")
        .execute(&mut *stall)
        .await
        .unwrap();
    let student = &class.student;
    let mut late = joined(&app, student, room_id).await;
    for i in 0..3u64 {
        late.send_raw(&format!(
            r#"{{"type":"chat","id":{},"text":"late {i}"}}"#,
            2000 + i
        ));
    }
    while let Some(ServerMessage::Ok { id }) = late
        .wait_for(
            Duration::from_secs(2),
            |m| matches!(m, ServerMessage::Ok { id } if *id >= 2000),
        )
        .await
    {
        acknowledged.push(format!("late {}", id - 2000));
    }

    let workspace = app.kill().await;
    stall.rollback().await.unwrap();
    pool.close().await;
    let app = TestApp::start(workspace).await;
    let get = |path: String| {
        app.client
            .get(app.url(&path))
            .header(
                "cookie",
                format!("homeroom_session={}", class.teacher.cookie),
            )
            .send()
    };
    let log: serde_json::Value = get(format!("/api/v1/sessions/{session_id}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let stored: Vec<&str> = log["chat"]
        .as_array()
        .unwrap_or_else(|| panic!("{log}"))
        .iter()
        .map(|c| c["text"].as_str().unwrap())
        .collect();
    for text in &acknowledged {
        assert!(
            stored.contains(&text.as_str()),
            "acknowledged {text:?} is not in the log: {stored:?}"
        );
    }
}
