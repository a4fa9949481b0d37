//! Recordings end to end: a webrtc-rs publisher is recorded through the real SFU, the WebM file
//! is read back with a demuxer, a server killed mid-recording finalises it at its next start,
//! who may list, watch and download follows the session log's rules, and the retention
//! cleaner deletes old recordings.

use std::time::{Duration, Instant};

use homeroom::signal::protocol::{ClientMessage, ServerMessage};
use matroska_demuxer::{Frame, MatroskaFile, TrackType};
use serde_json::{json, Value};

use crate::helpers::{error_code, Actor, ClassFixture, Db, TestApp, PASSWORD};
use crate::live::{joined, room};
use crate::peer::{Credential, TestPeer};

/// Packets per synthetic video frame at the default shape (720 kbit/s at 30 fps).
const PACKETS_PER_FRAME: u64 = 3;

async fn ok(peer: &mut TestPeer, make: impl FnOnce(u64) -> ClientMessage) {
    let reply = peer.request(make).await;
    assert!(matches!(reply, ServerMessage::Ok { .. }), "{reply:?}");
}

/// The session's recordings once none is still being written.
async fn finished(actor: &Actor, session_id: i64) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let list: Vec<Value> = actor
            .get(&format!("/api/v1/sessions/{session_id}/recordings"))
            .await
            .json()
            .await
            .unwrap();
        if !list.is_empty() && list.iter().all(|r| r["state"] != "recording") {
            return list;
        }
        assert!(Instant::now() < deadline, "not finalised: {list:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What a demuxer reads of a WebM file.
struct Demuxed {
    tracks: Vec<(TrackType, String)>,
    duration_s: f64,
    video_frames: u64,
    audio_frames: u64,
    first_video_key: bool,
}

fn demux(bytes: Vec<u8>) -> Demuxed {
    let mut mkv = MatroskaFile::open(std::io::Cursor::new(bytes)).expect("a Matroska file");
    let tracks: Vec<(TrackType, String)> = mkv
        .tracks()
        .iter()
        .map(|t| (t.track_type(), t.codec_id().to_owned()))
        .collect();
    let number = |kind| {
        mkv.tracks()
            .iter()
            .find(|t| t.track_type() == kind)
            .map(|t| t.track_number().get())
    };
    let (video, audio) = (number(TrackType::Video), number(TrackType::Audio));
    let scale = mkv.info().timestamp_scale().get() as f64;
    let duration_s = mkv.info().duration().expect("a duration") * scale / 1e9;
    let (mut video_frames, mut audio_frames, mut first_video_key) = (0, 0, None);
    let mut frame = Frame::default();
    while mkv.next_frame(&mut frame).expect("frames parse") {
        if Some(frame.track) == video {
            video_frames += 1;
            first_video_key.get_or_insert(frame.is_keyframe == Some(true));
        } else if Some(frame.track) == audio {
            audio_frames += 1;
        }
    }
    Demuxed {
        tracks,
        duration_s,
        video_frames,
        audio_frames,
        first_video_key: first_video_key == Some(true),
    }
}

async fn bytes(actor: &Actor, path: &str) -> Vec<u8> {
    let response = actor.get(path).await;
    assert_eq!(response.status(), 200, "{path}");
    response.bytes().await.unwrap().to_vec()
}

/// 10 s of synthetic VP8 and Opus, recorded: the file parses, has both tracks, starts with a
/// keyframe, lasts 10 s, and holds at least 95% of the frames sent. Everyone in the room is
/// told, a late joiner too, and the session log says who started and stopped it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_publisher_makes_a_webm_file_that_plays_back() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let admin = app.admin().await;
    let class = ClassFixture::new(&app, &admin, "rec").await;
    let room_id = room(&class.teacher, class.class_id, "classroom", None).await;
    let mut teacher = joined(&app, &class.teacher, room_id).await;
    let mut family = joined(&app, &class.family, room_id).await;
    // Only the host records.
    let refused = family
        .request(|id| ClientMessage::StartRecording { id })
        .await;
    assert!(
        matches!(&refused, ServerMessage::Error { code, .. } if code == "not_allowed"),
        "{refused:?}"
    );
    ok(&mut teacher, |id| ClientMessage::StartRecording { id }).await;
    let told = family
        .wait_for(Duration::from_secs(5), |m| {
            matches!(m, ServerMessage::Recording { .. })
        })
        .await;
    assert!(
        matches!(&told, Some(ServerMessage::Recording { recording: true, by, .. }) if by == "teacher-rec"),
        "{told:?}"
    );
    let mut late = crate::peer::connect(&app, Credential::Cookie(&class.student.cookie)).await;
    let late_joined = late.join(room_id).await;
    let ServerMessage::Joined {
        recording: true,
        session_id,
        ..
    } = late_joined
    else {
        panic!("a late joiner is not told of the recording: {late_joined:?}");
    };

    let reply = teacher.publish().await;
    assert!(matches!(reply, ServerMessage::Answer { .. }), "{reply:?}");
    // Ten seconds from when media flows (the SFU publishes a track at its first packet).
    let count = || [0, 1].map(|i| teacher.sent[i].load(std::sync::atomic::Ordering::Relaxed));
    for _ in 0..2 {
        let published = family
            .wait_for(Duration::from_secs(10), |m| {
                matches!(m, ServerMessage::TrackPublished { .. })
            })
            .await;
        assert!(published.is_some(), "the tracks are published");
    }
    let before = count();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let after = count();
    let sent = [after[0] - before[0], after[1] - before[1]];
    ok(&mut teacher, |id| ClientMessage::StopRecording { id }).await;

    let list = finished(&class.teacher, session_id).await;
    assert_eq!(list.len(), 1);
    let recording = &list[0];
    assert_eq!(recording["state"], "ready", "{recording}");
    assert_eq!(recording["started_by_name"], "teacher-rec");
    assert_eq!(recording["stopped_by_name"], "teacher-rec");
    let files = recording["files"].as_array().unwrap();
    assert_eq!(files.len(), 1, "one camera file: {files:?}");
    let file_id = files[0]["id"].as_i64().unwrap();
    let webm = bytes(
        &class.teacher,
        &format!("/api/v1/recording-files/{file_id}/download"),
    )
    .await;
    let got = demux(webm.clone());
    let kinds: Vec<&str> = got.tracks.iter().map(|(_, codec)| codec.as_str()).collect();
    assert_eq!(kinds, vec!["V_VP8", "A_OPUS"], "{:?}", got.tracks);
    assert!(got.first_video_key, "the video starts with a keyframe");
    assert!(
        (got.duration_s - 10.0).abs() <= 0.5,
        "lasts {} s",
        got.duration_s
    );
    let video_sent = sent[1] / PACKETS_PER_FRAME;
    assert!(
        got.video_frames * 100 >= video_sent * 95 && got.audio_frames * 100 >= sent[0] * 95,
        "kept {} of {video_sent} video and {} of {} audio frames",
        got.video_frames,
        got.audio_frames,
        sent[0]
    );

    // Seeking: a range answers with just that range.
    let range = class
        .family
        .client
        .get(app.url(&format!("/api/v1/recording-files/{file_id}")))
        .header("range", "bytes=100-199")
        .send()
        .await
        .unwrap();
    assert_eq!(range.status(), 206);
    assert_eq!(range.bytes().await.unwrap().as_ref(), &webm[100..200]);

    // The log says who started and stopped it, and the session points at it.
    let log: Value = class
        .teacher
        .get(&format!("/api/v1/sessions/{session_id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(log["recording_id"], recording["id"]);
    let db = app.workspace.database().await;
    let kinds: Vec<(String, String)> = sqlx::query_as(
        "SELECT kind, actor_name FROM session_events WHERE session_id = $1 AND kind LIKE 'recording%' ORDER BY seq",
    )
    .bind(session_id)
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(
        kinds,
        vec![
            ("recording_started".into(), "teacher-rec".into()),
            ("recording_stopped".into(), "teacher-rec".into())
        ]
    );
}

/// A room set to record every session records from its host's arrival; `kill -9` five seconds
/// in: at the next start the recording is finalised and plays about those five seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_cut_by_kill_9_is_finalised_at_the_next_start() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let admin = app.admin().await;
    let class = ClassFixture::new(&app, &admin, "kill").await;
    let room_id = room(&class.teacher, class.class_id, "classroom", None).await;
    let set = class
        .teacher
        .send(
            reqwest::Method::PATCH,
            &format!("/api/v1/rooms/{room_id}"),
            Some(json!({"record_sessions": true})),
        )
        .await;
    assert_eq!(set.status(), 200);
    assert_eq!(set.json::<Value>().await.unwrap()["record_sessions"], true);
    let mut teacher = crate::peer::connect(&app, Credential::Cookie(&class.teacher.cookie)).await;
    let reply = teacher.join(room_id).await;
    assert!(
        matches!(
            reply,
            ServerMessage::Joined {
                recording: true,
                ..
            }
        ),
        "recording from the start: {reply:?}"
    );
    teacher.publish().await;
    // Five seconds from when media flows (the SFU publishes a track at its first packet).
    for _ in 0..2 {
        let published = teacher
            .wait_for(Duration::from_secs(10), |m| {
                matches!(m, ServerMessage::TrackPublished { .. })
            })
            .await;
        assert!(published.is_some(), "the tracks are published");
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let workspace = app.kill().await;
    teacher.vanish().await;

    let app = TestApp::start(workspace).await;
    let teacher = app.sign_in("teacher-kill", PASSWORD).await;
    let sessions: Vec<Value> = teacher
        .get(&format!("/api/v1/classes/{}/sessions", class.class_id))
        .await
        .json()
        .await
        .unwrap();
    let session_id = sessions[0]["id"].as_i64().unwrap();
    assert!(
        sessions[0]["recording_id"].is_i64(),
        "listed: {}",
        sessions[0]
    );
    let list = finished(&teacher, session_id).await;
    assert_eq!(list[0]["state"], "ready");
    assert_eq!(list[0]["stop_reason"], "server_restart");
    let file_id = list[0]["files"][0]["id"].as_i64().unwrap();
    let got = demux(
        bytes(
            &teacher,
            &format!("/api/v1/recording-files/{file_id}/download"),
        )
        .await,
    );
    assert!(got.first_video_key);
    assert!(
        (4.0..=5.5).contains(&got.duration_s),
        "plays {} s of the 5 recorded",
        got.duration_s
    );
}

/// Refused with a clear error when the disk is under its floor; nothing is recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recording_refuses_to_start_on_a_full_disk() {
    let app = TestApp::spawn_with(Db::Sqlite, "[recording]\nmin_free_mb = 1000000000").await;
    let admin = app.admin().await;
    let class = ClassFixture::new(&app, &admin, "full").await;
    let room_id = room(&class.teacher, class.class_id, "classroom", None).await;
    let mut teacher = joined(&app, &class.teacher, room_id).await;
    let reply = teacher
        .request(|id| ClientMessage::StartRecording { id })
        .await;
    match reply {
        ServerMessage::Error { code, message, .. } => {
            assert_eq!(code, "recording_refused");
            assert!(message.contains("MB free"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

/// Who may list, watch and download a classroom session's recording, on both databases; then
/// the retention cleaner deletes it once it is past retention, and the session says so.
async fn permissions_and_retention(db: Db) {
    let app = TestApp::spawn_with(db, "[recording]\ncleanup_interval_secs = 1").await;
    let admin = app.admin().await;
    let class = ClassFixture::new(&app, &admin, "perm").await;
    let other = ClassFixture::new(&app, &admin, "other").await;
    let outsider = app.teacher(&admin, "outsider").await;
    let room_id = room(&class.teacher, class.class_id, "classroom", None).await;
    let mut teacher = joined(&app, &class.teacher, room_id).await;
    ok(&mut teacher, |id| ClientMessage::StartRecording { id }).await;
    teacher.publish().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    ok(&mut teacher, |id| ClientMessage::End { id }).await;
    let sessions: Vec<Value> = class
        .teacher
        .get(&format!("/api/v1/classes/{}/sessions", class.class_id))
        .await
        .json()
        .await
        .unwrap();
    let session_id = sessions[0]["id"].as_i64().unwrap();
    let recording = finished(&class.teacher, session_id).await.remove(0);
    assert_eq!(recording["stop_reason"], "session_ended");
    let recording_id = recording["id"].as_i64().unwrap();
    let file_id = recording["files"][0]["id"].as_i64().unwrap();

    let paths = [
        format!("/api/v1/sessions/{session_id}/recordings"),
        format!("/api/v1/recordings/{recording_id}"),
        format!("/api/v1/recording-files/{file_id}"),
        format!("/api/v1/recording-files/{file_id}/download"),
    ];
    // (who, list and watch, download)
    let table: [(&str, &Actor, u16, u16); 6] = [
        ("teacher", &class.teacher, 200, 200),
        ("family", &class.family, 200, 403),
        ("student", &class.student, 200, 403),
        ("tutor", &class.tutor, 404, 404),
        ("family of another class", &other.family, 404, 404),
        ("outsider", &outsider, 404, 404),
    ];
    for (who, actor, watch, download) in table {
        for (i, path) in paths.iter().enumerate() {
            let want = if i == 3 { download } else { watch };
            let (status, _) = error_code(actor.get(path).await).await;
            assert_eq!(status, want, "{who} GET {path}");
        }
    }
    // A guest (an open-house link, no account) gets what a missing recording gets.
    for path in &paths {
        let status = app
            .anonymous()
            .get(app.url(path))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 404, "guest GET {path}");
    }
    // Publishing to the timeline: the teacher, not a family.
    let publish = format!("/api/v1/recordings/{recording_id}/publish");
    let (status, _) = error_code(class.family.post(&publish, json!({"note": "x"})).await).await;
    assert_eq!(status, 403);
    let published = class
        .teacher
        .post_ok(
            &publish,
            json!({"note": "Our kite day, for those at work."}),
        )
        .await;
    let post: Value = class
        .family
        .get(&format!("/api/v1/posts/{}", published["post_id"]))
        .await
        .json()
        .await
        .unwrap();
    assert!(
        post["html"]
            .as_str()
            .unwrap()
            .contains(&format!("href=\"/recording/{recording_id}\"")),
        "{post}"
    );

    // Retention: 61 days later the cleaner deletes it, and the session says so.
    let db = app.workspace.database().await;
    let long_ago = homeroom::store::now_ms() - 61 * 86_400_000;
    sqlx::query("UPDATE recordings SET ended_at = $1 WHERE id = $2")
        .bind(long_ago)
        .bind(recording_id)
        .execute(&db)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let log = loop {
        let log: Value = class
            .family
            .get(&format!("/api/v1/sessions/{session_id}"))
            .await
            .json()
            .await
            .unwrap();
        if log["recording_deleted_at"].is_i64() {
            break log;
        }
        assert!(Instant::now() < deadline, "not deleted: {log}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(log["recording_id"].is_null());
    let listed: Vec<Value> = class
        .family
        .get(&format!("/api/v1/sessions/{session_id}/recordings"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed[0]["state"], "deleted");
    assert!(listed[0]["files"].as_array().unwrap().is_empty());
    assert_eq!(
        class.teacher.get(&paths[2]).await.status(),
        404,
        "the file is gone"
    );
    let folder = app.workspace.path().join("data/recordings");
    let left: Vec<_> = std::fs::read_dir(&folder).unwrap().collect();
    assert!(left.is_empty(), "files left in {}", folder.display());
}

crate::both_backends!(permissions_and_retention);
