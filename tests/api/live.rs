//! Live rooms end to end: real webrtc-rs peers publish and subscribe through the SFU over our
//! signalling, and the session log lands in the database.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use homeroom::signal::protocol::{ClientMessage, MediaKind, ServerMessage};
use serde_json::json;

use crate::helpers::{error_code, Actor, ClassFixture, Db, TestApp};
use crate::peer::{self, Credential, Received, TestPeer};

/// A room of the class, made by `actor`; tutoring rooms may name their host.
pub(crate) async fn room(actor: &Actor, class_id: i64, kind: &str, host: Option<i64>) -> i64 {
    let body = match host {
        Some(host) => json!({"kind": kind, "name": format!("{kind} room"), "host_user_id": host}),
        None => json!({"kind": kind, "name": format!("{kind} room")}),
    };
    actor
        .post_ok(&format!("/api/v1/classes/{class_id}/rooms"), body)
        .await["id"]
        .as_i64()
        .unwrap()
}

/// `actor` on the signalling socket, joined to the room (the join must succeed).
pub(crate) async fn joined(app: &TestApp, actor: &Actor, room_id: i64) -> TestPeer {
    let mut peer = peer::connect(app, Credential::Cookie(&actor.cookie)).await;
    let reply = peer.join(room_id).await;
    assert!(
        matches!(reply, ServerMessage::Joined { .. }),
        "join refused: {reply:?}"
    );
    peer
}

/// Share of the sequence range [min, max] that arrived, per track.
pub(crate) fn completeness(received: &Received) -> f64 {
    let (Some(min), Some(max)) = (received.distinct.first(), received.distinct.last()) else {
        return 0.0;
    };
    received.distinct.len() as f64 / (max - min + 1) as f64
}

/// Waits until `peer` receives at least `count` tracks that are flowing.
pub(crate) async fn wait_for_tracks(peer: &TestPeer, count: usize, within: Duration) {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        let flowing = peer.received().values().filter(|r| r.packets > 5).count();
        if flowing >= count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "only {:?} after {within:?}",
        peer.received()
            .values()
            .map(|r| (r.kind.clone(), r.packets))
            .collect::<Vec<_>>()
    );
}

pub(crate) async fn metric(app: &TestApp, name: &str) -> i64 {
    let text = app.get("/metrics").await.text().await.unwrap();
    text.lines()
        .find_map(|l| {
            l.strip_prefix(&format!("{name} "))
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_publisher_five_subscribers_get_intact_media() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let admin = app.admin().await;
    let class = ClassFixture::new(&app, &admin, "a").await;
    let room_id = room(&class.teacher, class.class_id, "classroom", None).await;
    let mut teacher = joined(&app, &class.teacher, room_id).await;
    assert!(matches!(
        teacher.publish().await,
        ServerMessage::Answer { .. }
    ));

    let mut families = Vec::new();
    for i in 0..5 {
        let code = class
            .teacher
            .post_ok(
                &format!("/api/v1/classes/{}/invites", class.class_id),
                json!({"role": "family", "student_id": class.student_id}),
            )
            .await["code"]
            .as_str()
            .unwrap()
            .to_owned();
        let family = app.join(&code, &format!("parent-{i}")).await;
        families.push(joined(&app, &family, room_id).await);
    }
    for family in &families {
        wait_for_tracks(family, 2, Duration::from_secs(10)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    for (i, family) in families.iter().enumerate() {
        let received = family.received();
        assert_eq!(received.len(), 2, "family {i}: {received:?}");
        for track in received.values() {
            assert_eq!(
                track.packets, track.intact,
                "family {i}: a {} payload was damaged",
                track.kind
            );
            assert!(
                track.distinct.len() > if track.kind == "video" { 250 } else { 140 },
                "family {i}: {} too few: {}",
                track.kind,
                track.distinct.len()
            );
            let share = completeness(track);
            assert!(
                share >= 0.99,
                "family {i}: {} {:.2}% delivered",
                track.kind,
                share * 100.0
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_subscriber_gets_a_keyframe_request_once_it_can_receive() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let admin = app.admin().await;
    let class = ClassFixture::new(&app, &admin, "a").await;
    let room_id = room(&class.teacher, class.class_id, "classroom", None).await;
    let mut teacher = joined(&app, &class.teacher, room_id).await;
    teacher.publish().await;
    let first = joined(&app, &class.family, room_id).await;
    wait_for_tracks(&first, 2, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(600)).await;

    // The request goes out once the late subscriber can receive (its connection is up and its
    // answer applied: "Continuous media" in docs/signalling.md), so the bound includes its ICE and
    // DTLS set-up on loopback.
    let asked_at = Instant::now();
    let _late = joined(&app, &class.student, room_id).await;
    let deadline = asked_at + Duration::from_secs(2);
    loop {
        if teacher
            .plis
            .lock()
            .unwrap()
            .iter()
            .any(|t| *t >= asked_at && *t <= deadline)
        {
            break;
        }
        assert!(
            Instant::now() < deadline + Duration::from_millis(100),
            "no PLI at the publisher within 2 s of the late join"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tutoring_room_of_four_sees_and_hears_each_other() {
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
    let mut teacher = joined(&app, &class.teacher, room_id).await;
    // The student and the family wait until the tutor lets them in.
    let mut student = peer::connect(&app, Credential::Cookie(&class.student.cookie)).await;
    let mut family = peer::connect(&app, Credential::Cookie(&class.family.cookie)).await;
    for peer in [&mut student, &mut family] {
        let ServerMessage::Joined {
            waiting, abilities, ..
        } = peer.join(room_id).await
        else {
            panic!("refused")
        };
        assert!(waiting);
        assert!(!abilities.publish, "nobody publishes from the waiting room");
        let refused = peer.publish().await;
        assert!(
            matches!(refused, ServerMessage::Error { ref code, .. } if code == "not_admitted"),
            "{refused:?}"
        );
    }
    for id in [student.participant_id, family.participant_id] {
        let reply = tutor
            .request(|rid| ClientMessage::Admit {
                id: rid,
                participant_id: id,
            })
            .await;
        assert!(matches!(reply, ServerMessage::Ok { .. }), "{reply:?}");
    }
    for peer in [&mut student, &mut family] {
        assert!(peer
            .wait_for(Duration::from_secs(5), |m| *m == ServerMessage::Admitted)
            .await
            .is_some());
    }
    for peer in [&mut tutor, &mut teacher, &mut student, &mut family] {
        assert!(matches!(peer.publish().await, ServerMessage::Answer { .. }));
    }
    let peers = [&tutor, &teacher, &student, &family];
    for peer in peers {
        wait_for_tracks(peer, 6, Duration::from_secs(15)).await;
    }
    for peer in peers {
        let received = peer.received();
        let from: BTreeSet<String> = received
            .keys()
            .map(|t| t.split('-').next().unwrap().to_owned())
            .collect();
        let others: BTreeSet<String> = peers
            .iter()
            .filter(|p| p.participant_id != peer.participant_id)
            .map(|p| p.participant_id.to_string())
            .collect();
        assert_eq!(
            from, others,
            "participant {} receives exactly the other three",
            peer.participant_id
        );
        for kind in ["audio", "video"] {
            assert_eq!(
                received
                    .values()
                    .filter(|r| r.kind == kind && r.intact > 5)
                    .count(),
                3,
                "{kind}: {received:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outsiders_guests_and_family_publishers_are_refused() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let admin = app.admin().await;
    let a = ClassFixture::new(&app, &admin, "a").await;
    let b = ClassFixture::new(&app, &admin, "b").await;
    let classroom = room(&a.teacher, a.class_id, "classroom", None).await;
    let open_house = room(&a.teacher, a.class_id, "open_house", None).await;
    let mut teacher = joined(&app, &a.teacher, classroom).await;
    teacher.publish().await;

    // A family of another class: the room does not exist for them.
    let mut outsider = peer::connect(&app, Credential::Cookie(&b.family.cookie)).await;
    let refused = outsider.join(classroom).await;
    assert!(
        matches!(&refused, ServerMessage::Error { code, .. } if code == "room_not_found"),
        "{refused:?}"
    );
    let unknown = outsider.join(999_999).await;
    assert!(
        matches!(&unknown, ServerMessage::Error { code, .. } if code == "room_not_found"),
        "{unknown:?}"
    );

    // A guest of the open house may not enter the classroom.
    let link = a
        .teacher
        .post_ok(&format!("/api/v1/rooms/{open_house}/guest-link"), json!({}))
        .await;
    let token = app
        .anonymous()
        .post(app.url("/api/v1/guest-token"))
        .json(&json!({"code": link["code"], "display_name": "Grandma"}))
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    let mut guest = peer::connect(&app, Credential::Token(token["token"].as_str().unwrap())).await;
    let refused = guest.join(classroom).await;
    assert!(
        matches!(&refused, ServerMessage::Error { code, .. } if code == "not_allowed"),
        "{refused:?}"
    );

    // A family may watch but not publish.
    let mut family = joined(&app, &a.family, classroom).await;
    let refused = family.publish().await;
    assert!(
        matches!(&refused, ServerMessage::Error { code, .. } if code == "not_allowed"),
        "{refused:?}"
    );

    // A forged or expired token does not open a socket.
    let bad = app
        .anonymous()
        .get(app.url("/api/v1/ws?token=forged.token"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(bad).await, (410, "token_invalid".into()));
    let nobody = app
        .anonymous()
        .get(app.url("/api/v1/ws"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(nobody).await, (401, "unauthorized".into()));

    wait_for_tracks(&family, 2, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        outsider.received().is_empty() && guest.received().is_empty(),
        "nothing reaches the refused"
    );
    assert!(
        outsider.subscriber.lock().unwrap().is_none() && guest.subscriber.lock().unwrap().is_none()
    );
    // The teacher receives nothing from the family.
    assert!(teacher.received().is_empty(), "{:?}", teacher.received());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_messages_get_errors_and_the_connection_stays_usable() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let admin = app.admin().await;
    let class = ClassFixture::new(&app, &admin, "a").await;
    let room_id = room(&class.teacher, class.class_id, "classroom", None).await;
    let mut teacher = joined(&app, &class.teacher, room_id).await;

    let big = format!(
        r#"{{"type":"chat","id":5,"text":"{}"}}"#,
        "x".repeat(70_000)
    );
    let cases = [
        ("{not json".to_owned(), "bad_json"),
        (r#"{"type":"teleport","id":1}"#.to_owned(), "unknown_type"),
        (r#"{"type":"chat","id":2}"#.to_owned(), "bad_message"),
        (
            r#"{"type":"offer","id":3,"sdp":"v=0 this is not sdp"}"#.to_owned(),
            "bad_sdp",
        ),
        (big, "too_large"),
        (
            format!(r#"{{"type":"chat","id":6,"text":"{}"}}"#, "y".repeat(1001)),
            "message_too_long",
        ),
    ];
    for (text, code) in cases {
        teacher.send_raw(&text);
        let error = teacher
            .wait_for(Duration::from_secs(5), |m| {
                matches!(m, ServerMessage::Error { .. })
            })
            .await;
        assert!(
            matches!(&error, Some(ServerMessage::Error { code: c, .. }) if c == code),
            "{code}: {error:?}"
        );
        assert!(matches!(
            teacher.request(|id| ClientMessage::Ping { id }).await,
            ServerMessage::Pong { .. }
        ));
    }
    // Still a working participant: chat goes through.
    let reply = teacher
        .request(|id| ClientMessage::Chat {
            id,
            text: "still here".into(),
        })
        .await;
    assert!(matches!(reply, ServerMessage::Ok { .. }), "{reply:?}");
}

async fn publisher_cut_is_noticed_and_logged(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.admin().await;
    let class = ClassFixture::new(&app, &admin, "a").await;
    let room_id = room(&class.teacher, class.class_id, "classroom", None).await;
    let mut teacher = joined(&app, &class.teacher, room_id).await;
    teacher.publish().await;
    let mut family = joined(&app, &class.family, room_id).await;
    let mut student = joined(&app, &class.student, room_id).await;
    wait_for_tracks(&family, 2, Duration::from_secs(10)).await;
    assert!(matches!(
        family
            .request(|id| ClientMessage::Chat {
                id,
                text: "Hello from home".into()
            })
            .await,
        ServerMessage::Ok { .. }
    ));
    assert!(matches!(
        family
            .request(|id| ClientMessage::Hand { id, raised: true })
            .await,
        ServerMessage::Ok { .. }
    ));
    let promoted = teacher
        .request(|id| ClientMessage::Promote {
            id,
            participant_id: 0,
            presenter: true,
        })
        .await;
    assert!(
        matches!(&promoted, ServerMessage::Error { code, .. } if code == "no_such_participant"),
        "{promoted:?}"
    );
    let student_id = student.participant_id;
    assert!(matches!(
        teacher
            .request(|id| ClientMessage::Mute {
                id,
                participant_id: student_id,
                kind: MediaKind::Audio,
                muted: true,
            })
            .await,
        ServerMessage::Ok { .. }
    ));
    let refused = family
        .request(|id| ClientMessage::Kick {
            id,
            participant_id: student_id,
        })
        .await;
    assert!(
        matches!(&refused, ServerMessage::Error { code, .. } if code == "not_allowed"),
        "{refused:?}"
    );

    let teacher_id = teacher.participant_id;
    let cut = Instant::now();
    teacher.vanish().await;
    // Viewers see the count drop within 2 s; the teacher's tracks stay on their connections
    // for the reconnect grace and are announced gone only after it.
    for peer in [&mut family, &mut student] {
        let left = peer
            .wait_for(
                Duration::from_secs(2),
                |m| matches!(m, ServerMessage::ParticipantCount { count } if *count == 2),
            )
            .await;
        assert!(
            left.is_some(),
            "subscribers learn within 2 s that the publisher is gone (waited {:?})",
            cut.elapsed()
        );
    }
    let unpublished = family
        .wait_for(Duration::from_secs(15), |m| matches!(m, ServerMessage::TrackUnpublished { participant_id, .. } if *participant_id == teacher_id))
        .await;
    assert!(
        unpublished.is_some() && cut.elapsed() >= Duration::from_secs(9),
        "the tracks end after the reconnect grace (waited {:?})",
        cut.elapsed()
    );
    family.leave().await;
    student.leave().await;

    // The session ended with the room empty, and its log has every event in order.
    let db = app.workspace.database().await;
    let deadline = Instant::now() + Duration::from_secs(5);
    let (session_id, ended): (i64, Option<i64>) = loop {
        let row: (i64, Option<i64>) =
            sqlx::query_as("SELECT id, ended_at FROM live_sessions WHERE room_id = $1")
                .bind(room_id)
                .fetch_one(&db)
                .await
                .unwrap();
        if row.1.is_some() || Instant::now() > deadline {
            break row;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(ended.is_some(), "the session is closed");
    let events: Vec<(i64, String, String)> = sqlx::query_as(
        "SELECT seq, kind, actor_name FROM session_events WHERE session_id = $1 ORDER BY seq",
    )
    .bind(session_id)
    .fetch_all(&db)
    .await
    .unwrap();
    let kinds: Vec<&str> = events.iter().map(|(_, k, _)| k.as_str()).collect();
    let seqs: Vec<i64> = events.iter().map(|(s, _, _)| *s).collect();
    assert_eq!(
        seqs,
        (1..=events.len() as i64).collect::<Vec<_>>(),
        "gapless order"
    );
    let expected = [
        "join",
        "publish",
        "publish",
        "join",
        "join",
        "chat",
        "hand",
        "mute",
        "unpublish",
        "unpublish",
        "leave",
        "leave",
        "leave",
    ];
    let mut sorted_tail: Vec<&str> = kinds.clone();
    // The two tracks' publish events may come in either order; everything else is fixed.
    sorted_tail.sort_unstable();
    let mut expected_sorted = expected.to_vec();
    expected_sorted.sort_unstable();
    assert_eq!(sorted_tail, expected_sorted, "{kinds:?}");
    assert_eq!(kinds[0], "join");
    assert_eq!(&kinds[5..8], &["chat", "hand", "mute"], "{kinds:?}");
    assert_eq!(events[0].2, "teacher-a");
}

crate::both_backends!(publisher_cut_is_noticed_and_logged);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_leave_cycles_leave_nothing_behind() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let admin = app.admin().await;
    let class = ClassFixture::new(&app, &admin, "a").await;
    let room_id = room(&class.teacher, class.class_id, "classroom", None).await;
    let mut teacher = joined(&app, &class.teacher, room_id).await;
    teacher.publish().await;
    let warm = joined(&app, &class.family, room_id).await;
    wait_for_tracks(&warm, 2, Duration::from_secs(10)).await;
    warm.leave().await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let fds = || {
        std::fs::read_dir(format!("/proc/{}/fd", app.pid()))
            .unwrap()
            .count()
    };
    let cycle = || async {
        let batch = (0..10).map(|_| joined(&app, &class.family, room_id));
        let peers = futures_util::future::join_all(batch).await;
        futures_util::future::join_all(peers.into_iter().map(TestPeer::leave)).await;
    };
    // One round first: the database pool opens its connections for ten joins at once.
    cycle().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (fds_before, tasks_before) = (fds(), metric(&app, "homeroom_tasks").await);
    assert_eq!(metric(&app, "homeroom_participants").await, 1);
    for round in 0..20 {
        let mut batch = Vec::new();
        for _ in 0..10 {
            batch.push(joined(&app, &class.family, room_id));
        }
        let peers = futures_util::future::join_all(batch).await;
        if round == 0 {
            assert_eq!(metric(&app, "homeroom_participants").await, 11);
        }
        futures_util::future::join_all(peers.into_iter().map(TestPeer::leave)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        metric(&app, "homeroom_participants").await,
        1,
        "only the teacher is left"
    );
    assert_eq!(
        metric(&app, "homeroom_peer_connections").await,
        1,
        "only the teacher's publisher connection"
    );
    let (fds_after, tasks_after) = (fds(), metric(&app, "homeroom_tasks").await);
    assert!(
        fds_after <= fds_before + 5,
        "file descriptors: {fds_before} before, {fds_after} after 200 cycles"
    );
    assert!(
        tasks_after <= tasks_before + 10,
        "tasks: {tasks_before} before, {tasks_after} after 200 cycles"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_and_node_limits_are_clear_errors() {
    let app = TestApp::spawn_with(
        Db::Sqlite,
        "[limits]\nmax_participants_per_room = 2\nmax_rooms_per_node = 1",
    )
    .await;
    let admin = app.admin().await;
    let class = ClassFixture::new(&app, &admin, "a").await;
    let first = room(&class.teacher, class.class_id, "classroom", None).await;
    let second = room(&class.teacher, class.class_id, "open_house", None).await;
    let _teacher = joined(&app, &class.teacher, first).await;
    let _family = joined(&app, &class.family, first).await;
    let mut student = peer::connect(&app, Credential::Cookie(&class.student.cookie)).await;
    let full = student.join(first).await;
    assert!(
        matches!(&full, ServerMessage::Error { code, .. } if code == "room_full"),
        "{full:?}"
    );
    // The refused participant can still use the connection.
    assert!(matches!(
        student.request(|id| ClientMessage::Ping { id }).await,
        ServerMessage::Pong { .. }
    ));

    let mut admin_peer = peer::connect(&app, Credential::Cookie(&admin.cookie)).await;
    let busy = admin_peer.join(second).await;
    assert!(
        matches!(&busy, ServerMessage::Error { code, .. } if code == "node_full"),
        "{busy:?}"
    );
    // A viewer of a room that is not live yet is told so.
    let mut family = peer::connect(&app, Credential::Cookie(&class.family.cookie)).await;
    let idle = family.join(second).await;
    assert!(
        matches!(&idle, ServerMessage::Error { code, .. } if code == "not_live"),
        "{idle:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscribers_keyframe_request_reaches_the_publisher() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let admin = app.admin().await;
    let class = ClassFixture::new(&app, &admin, "a").await;
    let room_id = room(&class.teacher, class.class_id, "classroom", None).await;
    let mut teacher = joined(&app, &class.teacher, room_id).await;
    teacher.publish().await;
    let family = joined(&app, &class.family, room_id).await;
    wait_for_tracks(&family, 2, Duration::from_secs(10)).await;
    // Let the keyframe requests of the join itself pass.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let video = family
        .received()
        .into_iter()
        .find(|(_, r)| r.kind == "video")
        .map(|(id, _)| id)
        .unwrap();
    let asked_at = Instant::now();
    family.request_keyframe(&video).await.expect("PLI sent");
    let deadline = asked_at + Duration::from_millis(500);
    while !teacher.plis.lock().unwrap().iter().any(|t| *t >= asked_at) {
        assert!(
            Instant::now() < deadline,
            "the subscriber's PLI did not reach the publisher within 500 ms"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn a_finished_session_shows_in_the_class_log_with_attendance(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.admin().await;
    let class = ClassFixture::new(&app, &admin, "a").await;
    let other = ClassFixture::new(&app, &admin, "b").await;
    let room_id = room(&class.teacher, class.class_id, "classroom", None).await;
    let mut teacher = joined(&app, &class.teacher, room_id).await;
    teacher.publish().await;
    // The family comes, goes, and comes back; the student stays.
    let family = joined(&app, &class.family, room_id).await;
    wait_for_tracks(&family, 2, Duration::from_secs(10)).await;
    family.leave().await;
    let mut family = joined(&app, &class.family, room_id).await;
    let student = joined(&app, &class.student, room_id).await;
    assert!(matches!(
        family
            .request(|id| ClientMessage::Chat {
                id,
                text: "Thank you!".into()
            })
            .await,
        ServerMessage::Ok { .. }
    ));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(matches!(
        teacher.request(|id| ClientMessage::End { id }).await,
        ServerMessage::Ok { .. }
    ));
    for peer in [family, student] {
        peer.vanish().await;
    }

    let sessions_path = format!("/api/v1/classes/{}/sessions", class.class_id);
    let deadline = Instant::now() + Duration::from_secs(5);
    let sessions = loop {
        let sessions: serde_json::Value = class
            .teacher
            .get(&sessions_path)
            .await
            .json()
            .await
            .unwrap();
        if sessions[0]["ended_at"].is_i64() || Instant::now() > deadline {
            break sessions;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(sessions.as_array().unwrap().len(), 1, "{sessions}");
    assert_eq!(sessions[0]["room_name"], "classroom room");
    assert_eq!(sessions[0]["end_reason"], "ended_by_host");
    assert_eq!(sessions[0]["attendees"], 3);
    assert!(sessions[0]["peak_participants"].as_i64().unwrap() >= 3);
    let session_id = sessions[0]["id"].as_i64().unwrap();
    // It is in the class timeline too, with its attendance count.
    let timeline: serde_json::Value = class
        .family
        .get(&format!("/api/v1/classes/{}/timeline", class.class_id))
        .await
        .json()
        .await
        .unwrap();
    let item = timeline["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["kind"] == "session")
        .expect("the session is in the timeline");
    assert_eq!(item["session"]["id"], session_id);
    assert_eq!(
        item["session"]["attendees"], 1,
        "a family counts only itself"
    );
    let teacher_view: serde_json::Value = class
        .teacher
        .get(&format!("/api/v1/classes/{}/timeline", class.class_id))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(teacher_view["items"][0]["session"]["attendees"], 3);
    let log_path = format!("/api/v1/sessions/{session_id}");

    // The teacher sees everyone, with the family's two stays, and the chat.
    let log: serde_json::Value = class.teacher.get(&log_path).await.json().await.unwrap();
    assert_eq!(log["attendance_visible"], "all");
    let names: Vec<&str> = log["attendance"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["teacher-a", "family-a", "student-a"], "{log}");
    let family_row = &log["attendance"][1];
    assert_eq!(
        family_row["intervals"].as_array().unwrap().len(),
        2,
        "{family_row}"
    );
    let total: i64 = family_row["intervals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i[1].as_i64().unwrap() - i[0].as_i64().unwrap())
        .sum();
    assert_eq!(family_row["total_ms"].as_i64().unwrap(), total);
    assert_eq!(log["chat"][0]["text"], "Thank you!");
    assert_eq!(log["chat"][0]["name"], "family-a");

    // The family sees only its own attendance; the student none; another class nothing.
    let log: serde_json::Value = class.family.get(&log_path).await.json().await.unwrap();
    assert_eq!(log["attendance_visible"], "own");
    assert_eq!(log["attendance"].as_array().unwrap().len(), 1);
    assert_eq!(log["attendance"][0]["name"], "family-a");
    let log: serde_json::Value = class.student.get(&log_path).await.json().await.unwrap();
    assert_eq!(log["attendance"].as_array().unwrap().len(), 0);
    assert_eq!(log["chat"].as_array().unwrap().len(), 1);
    assert_eq!(
        error_code(other.family.get(&log_path).await).await,
        (404, "not_found".into())
    );
    assert_eq!(
        error_code(other.teacher.get(&sessions_path).await).await,
        (404, "not_found".into())
    );

    // CSV: the teacher exports everyone, per session and per date range; the family its own
    // rows; the student nothing.
    let csv = class
        .teacher
        .get(&format!("{log_path}/attendance.csv"))
        .await;
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = csv.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "session_id,room,session_started,participant,joined,left,minutes"
    );
    assert_eq!(lines.len(), 1 + 4, "{csv}");
    assert!(lines.iter().filter(|l| l.contains(",family-a,")).count() == 2);
    let today = csv.lines().nth(1).unwrap().split(',').nth(2).unwrap()[..10].to_owned();
    let ranged = class
        .teacher
        .get(&format!(
            "/api/v1/classes/{}/attendance.csv?from={today}&to={today}",
            class.class_id
        ))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(ranged, csv);
    let empty = class
        .teacher
        .get(&format!(
            "/api/v1/classes/{}/attendance.csv?to=2000-01-01",
            class.class_id
        ))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(empty.lines().count(), 1);
    let own = class
        .family
        .get(&format!("{log_path}/attendance.csv"))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(own.lines().count(), 1 + 2, "{own}");
    assert!(own.lines().skip(1).all(|l| l.contains(",family-a,")));
    assert_eq!(
        error_code(
            class
                .student
                .get(&format!("{log_path}/attendance.csv"))
                .await
        )
        .await,
        (403, "not_allowed".into())
    );
}

crate::both_backends!(a_finished_session_shows_in_the_class_log_with_attendance);
