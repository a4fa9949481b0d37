//! The live room's people and protocol over real sockets: who hears about whom (lists to hosts,
//! coalesced counts to everyone else), moderation that can be undone and removals that stick,
//! silent and slow clients let go, fuzzed messages answered with errors only, and the order of
//! the last messages when a session ends.

use std::time::{Duration, Instant};

use homeroom::signal::protocol::{ClientMessage, MediaKind, ServerMessage};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;
use serde_json::json;

use crate::helpers::{Actor, ClassFixture, Db, TestApp};
use crate::live::{joined, room};
use crate::peer::{self, Credential, TestPeer};
use crate::security_live::{guest_token, RawSocket};

#[path = "../../src/signal/fuzz_messages.rs"]
#[allow(dead_code)]
mod fuzz_messages;

/// `actor` on a new socket, and the answer to its `join`.
async fn enter(
    app: &TestApp,
    credential: Credential<'_>,
    room_id: i64,
) -> (TestPeer, ServerMessage) {
    let mut peer = peer::connect(app, credential).await;
    let reply = peer.join(room_id).await;
    (peer, reply)
}

/// Everything `peer` has been sent so far that is not a reply it waited for.
fn drain(peer: &mut TestPeer) -> Vec<ServerMessage> {
    let mut seen = Vec::new();
    while let Ok(message) = peer.events.try_recv() {
        seen.push(message);
    }
    seen
}

fn counts(messages: &[ServerMessage]) -> Vec<u64> {
    messages
        .iter()
        .filter_map(|m| match m {
            ServerMessage::ParticipantCount { count } => Some(*count),
            _ => None,
        })
        .collect()
}

fn is_error(message: &ServerMessage, want: &str) -> bool {
    matches!(message, ServerMessage::Error { code, .. } if code == want)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_get_the_list_and_everyone_else_a_coalesced_count() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let admin = app.admin().await;
    let class = ClassFixture::new(&app, &admin, "a").await;
    let open_house = room(&class.teacher, class.class_id, "open_house", None).await;
    let mut teacher = joined(&app, &class.teacher, open_house).await;
    let link = class
        .teacher
        .post_ok(&format!("/api/v1/rooms/{open_house}/guest-link"), json!({}))
        .await;
    let token = guest_token(&app, &link["code"], "Grandma").await;
    let names = ["teacher-a", "family-a", "student-a", "tutor-a", "Grandma"];

    // A guest, then the family on several devices and the student: none gets a list.
    let mut viewers = Vec::new();
    let mut seen: Vec<Vec<ServerMessage>> = Vec::new();
    let (guest, reply) = enter(&app, Credential::Token(&token), open_house).await;
    viewers.push(guest);
    seen.push(vec![reply]);
    for i in 0..8 {
        let actor = if i % 2 == 0 {
            &class.family
        } else {
            &class.student
        };
        let (viewer, reply) = enter(&app, Credential::Cookie(&actor.cookie), open_house).await;
        let ServerMessage::Joined {
            participants,
            participant_count,
            ..
        } = &reply
        else {
            panic!("refused: {reply:?}")
        };
        assert!(participants.is_empty(), "{participants:?}");
        assert_eq!(
            *participant_count,
            i + 3,
            "the teacher, the guest and those so far"
        );
        viewers.push(viewer);
        seen.push(vec![reply]);
    }
    // Once the counts have gone out (the last at most a second after the last join), one more
    // join costs each viewer one count, and the host its name.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    for (viewer, seen) in viewers.iter_mut().zip(&mut seen) {
        seen.extend(drain(viewer));
    }
    drain(&mut teacher);
    let (_tutor, _) = enter(&app, Credential::Cookie(&class.tutor.cookie), open_house).await;
    assert!(teacher
        .wait_for(Duration::from_secs(2), |m| matches!(
            m,
            ServerMessage::ParticipantJoined { participant } if participant.display_name == "tutor-a"
        ))
        .await
        .is_some());
    tokio::time::sleep(Duration::from_millis(300)).await;
    for (viewer, seen) in viewers.iter_mut().zip(&mut seen) {
        let got = drain(viewer);
        assert_eq!(counts(&got), [11], "one count for one join: {got:?}");
        assert_eq!(got.len(), 1, "nothing else: {got:?}");
        seen.extend(got);
    }

    // Five joins at once: counts coalesce to at most one a second, the last one right.
    let burst = Instant::now();
    let mut more = Vec::new();
    for _ in 0..5 {
        more.push(enter(&app, Credential::Cookie(&class.family.cookie), open_house).await);
    }
    let took = burst.elapsed();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    for (viewer, seen) in viewers.iter_mut().zip(&mut seen) {
        let got = counts(&drain(viewer));
        assert!(
            got.len() as u64 <= 2 + took.as_secs(),
            "{got:?} for 5 joins in {took:?}"
        );
        assert_eq!(got.last(), Some(&16), "{got:?}");
        seen.extend(
            got.into_iter()
                .map(|count| ServerMessage::ParticipantCount { count }),
        );
    }
    let hosts_heard = drain(&mut teacher)
        .iter()
        .filter(|m| matches!(m, ServerMessage::ParticipantJoined { .. }))
        .count();
    assert_eq!(hosts_heard, 5, "the host hears of every join");

    // Nobody but the host ever saw another participant's name.
    for seen in &seen {
        let text = serde_json::to_string(seen).unwrap();
        for name in names {
            assert!(!text.contains(name), "{name} reached a viewer: {text}");
        }
    }
}

/// Whether `peer` receives packets of `track_id` now (over 600 ms).
async fn flowing(peer: &TestPeer, track_id: &str) -> bool {
    let packets = || peer.received().get(track_id).map_or(0, |r| r.packets);
    let before = packets();
    tokio::time::sleep(Duration::from_millis(600)).await;
    packets() > before + 3
}

async fn ok(peer: &mut TestPeer, make: impl FnOnce(u64) -> ClientMessage) {
    let reply = peer.request(make).await;
    assert!(matches!(reply, ServerMessage::Ok { .. }), "{reply:?}");
}

fn mute(participant_id: u64, muted: bool) -> impl FnOnce(u64) -> ClientMessage {
    move |id| ClientMessage::Mute {
        id,
        participant_id,
        kind: MediaKind::Video,
        muted,
    }
}

/// The host mutes or unmutes `participant_id`'s video, and the viewer is told.
async fn set_muted(host: &mut TestPeer, viewer: &mut TestPeer, participant_id: u64, muted: bool) {
    ok(host, mute(participant_id, muted)).await;
    let told = viewer
        .wait_for(
            Duration::from_secs(2),
            |m| matches!(m, ServerMessage::TrackMuted { muted: now, .. } if *now == muted),
        )
        .await;
    assert!(told.is_some(), "track_muted {muted} did not come");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_unmute_and_whom_they_remove_stays_out() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let admin = app.admin().await;
    let class = ClassFixture::new(&app, &admin, "a").await;
    let classroom = room(&class.teacher, class.class_id, "classroom", None).await;
    let mut teacher = joined(&app, &class.teacher, classroom).await;
    let mut student = joined(&app, &class.student, classroom).await;
    let mut family = joined(&app, &class.family, classroom).await;
    let student_id = student.participant_id;
    ok(&mut teacher, |id| ClientMessage::Promote {
        id,
        participant_id: student_id,
        presenter: true,
    })
    .await;
    assert!(matches!(
        student.publish().await,
        ServerMessage::Answer { .. }
    ));
    let Some(ServerMessage::TrackPublished { track }) = family
        .wait_for(Duration::from_secs(5), |m| {
            matches!(m, ServerMessage::TrackPublished { track } if track.kind == MediaKind::Video)
        })
        .await
    else {
        panic!("the student's video was not announced")
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !flowing(&family, &track.track_id).await {
        assert!(
            Instant::now() < deadline,
            "the student's video never arrived"
        );
    }

    // Muted: nothing arrives, and the student cannot undo it. Unmuted: it flows again.
    set_muted(&mut teacher, &mut family, student_id, true).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !flowing(&family, &track.track_id).await,
        "muted video still flows"
    );
    let refused = student.request(mute(student_id, false)).await;
    assert!(is_error(&refused, "not_allowed"), "{refused:?}");
    set_muted(&mut teacher, &mut family, student_id, false).await;
    let deadline = Instant::now() + Duration::from_secs(3);
    while !flowing(&family, &track.track_id).await {
        assert!(Instant::now() < deadline, "unmuted video did not come back");
    }

    // Removed: kicked now, refused at the next join (any device of the account).
    let family_id = family.participant_id;
    ok(&mut teacher, |id| ClientMessage::Kick {
        id,
        participant_id: family_id,
    })
    .await;
    assert!(family
        .wait_for(Duration::from_secs(2), |m| matches!(
            m,
            ServerMessage::Kicked { .. }
        ))
        .await
        .is_some());
    let (_, again) = enter(&app, Credential::Cookie(&class.family.cookie), classroom).await;
    assert!(is_error(&again, "removed"), "{again:?}");
    let (_, other) = enter(&app, Credential::Cookie(&class.student.cookie), classroom).await;
    assert!(matches!(other, ServerMessage::Joined { .. }), "{other:?}");

    // A guest token is for its own open house; a removed guest's token stays out.
    let house = room(&class.teacher, class.class_id, "open_house", None).await;
    let other_house = room(&class.teacher, class.class_id, "open_house", None).await;
    let mut host = joined(&app, &class.teacher, house).await;
    let _other_host = joined(&app, &class.teacher, other_house).await;
    let link = class
        .teacher
        .post_ok(&format!("/api/v1/rooms/{house}/guest-link"), json!({}))
        .await;
    let token = guest_token(&app, &link["code"], "Uncle").await;
    let (_, elsewhere) = enter(&app, Credential::Token(&token), other_house).await;
    assert!(is_error(&elsewhere, "not_allowed"), "{elsewhere:?}");
    let (guest, _) = enter(&app, Credential::Token(&token), house).await;
    let guest_id = guest.participant_id;
    ok(&mut host, |id| ClientMessage::Kick {
        id,
        participant_id: guest_id,
    })
    .await;
    let (_, back) = enter(&app, Credential::Token(&token), house).await;
    assert!(is_error(&back, "removed"), "{back:?}");
}

async fn end(teacher: &mut TestPeer) {
    ok(teacher, |id| ClientMessage::End { id }).await;
}

async fn session_log(actor: &Actor, session_id: i64) -> serde_json::Value {
    actor
        .get(&format!("/api/v1/sessions/{session_id}"))
        .await
        .json()
        .await
        .unwrap()
}

/// The host's `participant_left` for `participant_id`, if it comes within `ms`.
async fn heard_leave(host: &mut TestPeer, participant_id: u64, ms: u64) -> Option<ServerMessage> {
    host.wait_for(Duration::from_millis(ms), |m| {
        matches!(m, ServerMessage::ParticipantLeft { participant_id: p, .. } if *p == participant_id)
    })
    .await
}

async fn a_silent_client_leaves_at_the_idle_timeout(db: Db) {
    let app = TestApp::spawn_with(db, "[limits]\nidle_timeout_secs = 2").await;
    let admin = app.admin().await;
    let class = ClassFixture::new(&app, &admin, "a").await;
    let classroom = room(&class.teacher, class.class_id, "classroom", None).await;
    let mut teacher = joined(&app, &class.teacher, classroom).await;
    // The family's network vanishes after its join: the socket stays open, nothing arrives.
    let mut family = RawSocket::open(&app, Credential::Cookie(&class.family.cookie)).await;
    let before = homeroom::store::now_ms();
    // The server's idle clock starts when the join arrives: no earlier than this.
    let sent_join = Instant::now();
    family
        .send(json!({"type": "join", "id": 1, "room_id": classroom}).to_string())
        .await;
    let Ok(ServerMessage::Joined {
        participant_id,
        session_id,
        ..
    }) = family.next(Duration::from_secs(5)).await
    else {
        panic!("the family could not join")
    };
    let last_message = homeroom::store::now_ms();
    let silent_since = Instant::now();
    // The teacher keeps talking (a ping every 300 ms) and hears the family go.
    let left = loop {
        let reply = teacher.request(|id| ClientMessage::Ping { id }).await;
        assert!(
            matches!(reply, ServerMessage::Pong { .. }),
            "the teacher was let go"
        );
        if let Some(left) = heard_leave(&mut teacher, participant_id, 300).await {
            break left;
        }
        assert!(
            silent_since.elapsed() < Duration::from_secs(4),
            "the silent family is still in the room"
        );
    };
    let gone_after = sent_join.elapsed();
    assert!(
        gone_after >= Duration::from_millis(1900),
        "gone after {gone_after:?}"
    );
    assert!(
        matches!(&left, ServerMessage::ParticipantLeft { reason, .. } if reason == "idle_timeout"),
        "{left:?}"
    );
    assert_eq!(to_the_end(&mut family).await.1, Some(4002));

    // Its attendance ends with its last message, not when the server noticed.
    end(&mut teacher).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    let row = loop {
        let log = session_log(&class.teacher, session_id).await;
        let row = log["attendance"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == "family-a")
            .cloned();
        if let Some(row) = row.filter(|_| log["ended_at"].is_i64() || Instant::now() > deadline) {
            break row;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let intervals = row["intervals"].as_array().unwrap();
    assert_eq!(intervals.len(), 1, "{row}");
    let (from, to) = (
        intervals[0][0].as_i64().unwrap(),
        intervals[0][1].as_i64().unwrap(),
    );
    assert!(
        before <= from && from <= to && to <= last_message,
        "{row}: joined after {before}, last heard by {last_message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_client_leaves_at_the_idle_timeout_sqlite() {
    a_silent_client_leaves_at_the_idle_timeout(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_client_leaves_at_the_idle_timeout_postgres() {
    a_silent_client_leaves_at_the_idle_timeout(Db::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_disconnected_as_too_slow() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;

    let app = TestApp::spawn(Db::Sqlite).await;
    let admin = app.admin().await;
    let class = ClassFixture::new(&app, &admin, "a").await;
    let classroom = room(&class.teacher, class.class_id, "classroom", None).await;
    let mut teacher = joined(&app, &class.teacher, classroom).await;
    let mut family = RawSocket::open(&app, Credential::Cookie(&class.family.cookie)).await;
    family
        .send(json!({"type": "join", "id": 1, "room_id": classroom}).to_string())
        .await;
    let Ok(ServerMessage::Joined { participant_id, .. }) =
        family.next(Duration::from_secs(5)).await
    else {
        panic!("the family could not join")
    };
    // It keeps sending (each gets an error back) and never reads again.
    let started = Instant::now();
    let mut sent = 0;
    let left = loop {
        for _ in 0..2000 {
            if family.stream.send(Message::Text("x".into())).await.is_err() {
                break;
            }
            sent += 1;
        }
        if let Some(left) = heard_leave(&mut teacher, participant_id, 20).await {
            break left;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "still in the room after {sent} messages"
        );
    };
    assert!(
        matches!(&left, ServerMessage::ParticipantLeft { reason, .. } if reason == "too_slow"),
        "{left:?}"
    );
    // And its connection is gone: sending soon fails.
    let deadline = Instant::now() + Duration::from_secs(5);
    while family.stream.send(Message::Text("x".into())).await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "the server kept the connection of a too slow client"
        );
    }
    eprintln!(
        "disconnected after {sent} unread messages, {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_fuzzed_messages_get_only_errors_and_the_room_goes_on() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let admin = app.admin().await;
    let class = ClassFixture::new(&app, &admin, "a").await;
    let classroom = room(&class.teacher, class.class_id, "classroom", None).await;
    let mut teacher = joined(&app, &class.teacher, classroom).await;
    let mut family = joined(&app, &class.family, classroom).await;

    let examples =
        fuzz_messages::documented_client_messages(include_str!("../../docs/signalling.md"));
    let types = homeroom::signal::connection::KNOWN_TYPES;
    let strategy = fuzz_messages::any_message(examples, types);
    let mut runner = TestRunner::deterministic();
    let mut fuzzed = Vec::new();
    while fuzzed.len() < 10_000 {
        let text = strategy.new_tree(&mut runner).unwrap().current();
        // A message that happens to be valid would act (leave, end): only broken ones.
        if serde_json::from_str::<ClientMessage>(&text).is_err() {
            fuzzed.push(text);
        }
    }
    let started = Instant::now();
    for text in &fuzzed {
        family.send_raw(text);
    }
    let mut errors = 0;
    while errors < fuzzed.len() {
        let message = tokio::time::timeout(Duration::from_secs(10), family.events.recv())
            .await
            .unwrap_or_else(|_| panic!("only {errors} errors came back"))
            .expect("the socket stays open");
        match message {
            ServerMessage::Error { .. } => errors += 1,
            ServerMessage::Ok { .. }
            | ServerMessage::Pong { .. }
            | ServerMessage::Answer { .. }
            | ServerMessage::Joined { .. }
            | ServerMessage::Kicked { .. }
            | ServerMessage::Ended { .. } => {
                panic!("a fuzzed message was answered with {message:?}")
            }
            _ => {}
        }
    }
    eprintln!(
        "{errors} errors for {} fuzzed messages in {:?}",
        fuzzed.len(),
        started.elapsed()
    );

    // The room works on: the family chats, the teacher publishes and the family receives it.
    ok(&mut family, |id| ClientMessage::Chat {
        id,
        text: "still here".into(),
    })
    .await;
    assert!(teacher
        .wait_for(
            Duration::from_secs(2),
            |m| matches!(m, ServerMessage::Chat { text, .. } if text == "still here")
        )
        .await
        .is_some());
    assert!(matches!(
        teacher.publish().await,
        ServerMessage::Answer { .. }
    ));
    let deadline = Instant::now() + Duration::from_secs(10);
    while family.received().values().filter(|r| r.packets > 5).count() < 2 {
        assert!(Instant::now() < deadline, "no media after the fuzzing");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Messages up to the close: `Err(code)` last.
async fn to_the_end(socket: &mut RawSocket) -> (Vec<ServerMessage>, Option<u16>) {
    let mut messages = Vec::new();
    loop {
        match socket.next(Duration::from_secs(5)).await {
            Ok(message) => messages.push(message),
            Err(code) => return (messages, code),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_end_the_host_gets_ok_then_ended_then_the_close() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let admin = app.admin().await;
    let class = ClassFixture::new(&app, &admin, "a").await;
    let classroom = room(&class.teacher, class.class_id, "classroom", None).await;
    let mut sockets = Vec::new();
    for actor in [&class.teacher, &class.family, &class.student] {
        let mut socket = RawSocket::open(&app, Credential::Cookie(&actor.cookie)).await;
        socket
            .send(json!({"type": "join", "id": 1, "room_id": classroom}).to_string())
            .await;
        let joined = socket
            .until(Duration::from_secs(5), |m| {
                matches!(
                    m,
                    ServerMessage::Joined { .. } | ServerMessage::Error { .. }
                )
            })
            .await;
        assert!(
            matches!(joined, Ok(ServerMessage::Joined { .. })),
            "{joined:?}"
        );
        sockets.push(socket);
    }
    sockets[0]
        .send(json!({"type": "end", "id": 2}).to_string())
        .await;
    let (host, code) = to_the_end(&mut sockets[0]).await;
    assert_eq!(
        host[host.len().saturating_sub(2)..],
        [
            ServerMessage::Ok { id: 2 },
            ServerMessage::Ended {
                reason: "ended_by_host".into()
            }
        ],
        "{host:?}"
    );
    assert_eq!(code, Some(4000));
    for socket in &mut sockets[1..] {
        let (got, code) = to_the_end(socket).await;
        assert!(
            matches!(got.last(), Some(ServerMessage::Ended { reason }) if reason == "ended_by_host"),
            "nothing after ended: {got:?}"
        );
        assert_eq!(code, Some(4000));
    }
}

#[tokio::test]
async fn the_server_raises_its_open_files_limit() {
    let workspace = crate::helpers::Workspace::new(Db::Sqlite).await;
    workspace.write_config("");
    let mut hard = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given.
    assert_eq!(
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut hard) },
        0
    );
    let low = hard.rlim_max.min(256);
    let mut command = workspace.command(&["check-config"]);
    // SAFETY: only setrlimit, which is async-signal-safe, runs between fork and exec.
    unsafe {
        command.pre_exec(move || {
            let lowered = libc::rlimit {
                rlim_cur: low,
                rlim_max: hard.rlim_max,
            };
            match libc::setrlimit(libc::RLIMIT_NOFILE, &lowered) {
                0 => Ok(()),
                _ => Err(std::io::Error::last_os_error()),
            }
        });
    }
    let output = command.output().await.unwrap();
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(low < hard.rlim_max, "the hard limit is too low to test");
    let raised = format!("from={low} to={}", hard.rlim_max);
    assert!(log.contains(&raised), "{log}");
}
