//! Security of class content (issue #18): posts, drafts, comments and uploads follow
//! membership, approval publishes the version the teacher read, tutoring logs stay with the
//! people in the session, image bombs, feeds that stay well-formed and never load remote
//! images, refused posts that keep their uploads, and partial files that never stay.

use std::io::Write;
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{error_code, Actor, ClassFixture, Db, TestApp, PASSWORD};

/// Uploads one file as a multipart form.
async fn upload(actor: &Actor, class_id: i64, name: &str, bytes: Vec<u8>) -> reqwest::Response {
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned()),
    );
    actor
        .client
        .post(format!(
            "{}/api/v1/classes/{class_id}/attachments",
            actor.base
        ))
        .header("x-csrf-token", &actor.csrf)
        .multipart(form)
        .send()
        .await
        .unwrap()
}

async fn upload_ok(actor: &Actor, class_id: i64, name: &str, bytes: Vec<u8>) -> Value {
    let response = upload(actor, class_id, name, bytes).await;
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, 201, "upload {name}: {text}");
    serde_json::from_str(&text).unwrap()
}

/// A real grey PNG of this size.
fn grey_png(width: u32, height: u32) -> Vec<u8> {
    let mut bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut bytes, width, height);
        encoder.set_color(png::ColorType::Grayscale);
        let mut writer = encoder.write_header().unwrap();
        writer
            .write_image_data(&vec![90u8; (width * height) as usize])
            .unwrap();
    }
    bytes
}

fn png_size(bytes: &[u8]) -> (u32, u32) {
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes.to_vec()));
    let reader = decoder.read_info().unwrap();
    let info = reader.info();
    (info.width, info.height)
}

async fn status(response: reqwest::Response) -> u16 {
    response.status().as_u16()
}

async fn json_of(response: reqwest::Response) -> Value {
    let status = response.status();
    let text = response.text().await.unwrap();
    assert!(status.is_success(), "{status} {text}");
    serde_json::from_str(&text).unwrap()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

both_backends!(removed_members_lose_posts_comments_uploads_and_drafts);

/// Items 1 and 8: authorship never stands in for membership.
async fn removed_members_lose_posts_comments_uploads_and_drafts(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.admin().await;
    let a = ClassFixture::new(&app, &admin, "a").await;
    let class = a.class_id;
    let posts = format!("/api/v1/classes/{class}/posts");

    // The student's work: a published post with a photo, a draft, and an upload not yet used.
    let photo = upload_ok(&a.student, class, "volcano.png", grey_png(600, 300)).await;
    assert_eq!(photo["has_thumbnail"], true);
    let published = a
        .student
        .post_ok(
            &posts,
            json!({"body": "My volcano", "attachment_ids": [photo["id"]]}),
        )
        .await;
    let published_path = format!("/api/v1/posts/{}", published["id"]);
    assert_eq!(
        status(
            a.student
                .post(&format!("{published_path}/submit"), json!({}))
                .await
        )
        .await,
        204
    );
    assert_eq!(
        status(
            a.teacher
                .post(
                    &format!("{published_path}/approve"),
                    json!({"revision": published["revision"]})
                )
                .await
        )
        .await,
        204
    );
    let draft = a
        .student
        .post_ok(&posts, json!({"body": "Rocks, a first try"}))
        .await;
    let draft_path = format!("/api/v1/posts/{}", draft["id"]);
    let spare = upload_ok(&a.student, class, "rock.png", grey_png(40, 40)).await;
    // The teacher's post, on which the family comments.
    let teacher_post = a
        .teacher
        .post_ok(&posts, json!({"body": "Science fair on Friday"}))
        .await;
    let teacher_path = format!("/api/v1/posts/{}", teacher_post["id"]);
    assert_eq!(
        status(
            a.family
                .post(
                    &format!("{teacher_path}/comments"),
                    json!({"body": "We will come"})
                )
                .await
        )
        .await,
        201
    );

    // While a member, the student reads and works on all of it.
    let photo_path = format!("/api/v1/attachments/{}", photo["id"]);
    let spare_path = format!("/api/v1/attachments/{}", spare["id"]);
    for path in [&published_path, &draft_path, &photo_path, &spare_path] {
        assert_eq!(status(a.student.get(path).await).await, 200, "{path}");
    }

    // Removed, the student keeps nothing: not their own posts with the families' comments,
    // not their draft, not their uploads.
    let members = format!("/api/v1/classes/{class}/members");
    assert_eq!(
        status(
            a.teacher
                .send(
                    Method::DELETE,
                    &format!("{members}/{}", a.student.user_id),
                    None
                )
                .await
        )
        .await,
        204
    );
    let not_found = (404, "not_found".to_owned());
    let thumbnail_path = format!("{photo_path}/thumbnail");
    for path in [
        &published_path,
        &draft_path,
        &photo_path,
        &thumbnail_path,
        &spare_path,
    ] {
        assert_eq!(
            error_code(a.student.get(path).await).await,
            not_found,
            "GET {path}"
        );
    }
    let edit = json!({"body": "Rocks, edited after leaving"});
    assert_eq!(
        error_code(a.student.send(Method::PUT, &draft_path, Some(edit)).await).await,
        not_found,
        "a removed student edits no draft"
    );
    assert_eq!(
        error_code(
            a.student
                .post(&format!("{draft_path}/submit"), json!({}))
                .await
        )
        .await,
        not_found,
        "a removed student hands in nothing"
    );
    assert_eq!(
        error_code(a.student.send(Method::DELETE, &published_path, None).await).await,
        not_found
    );
    assert_eq!(
        error_code(
            a.student
                .post(
                    &posts,
                    json!({"body": "Still here?", "attachment_ids": [spare["id"]]})
                )
                .await
        )
        .await,
        not_found
    );

    // A removed family no longer reads or comments.
    assert_eq!(
        status(
            a.teacher
                .send(
                    Method::DELETE,
                    &format!("{members}/{}", a.family.user_id),
                    None
                )
                .await
        )
        .await,
        204
    );
    assert_eq!(
        error_code(a.family.get(&teacher_path).await).await,
        not_found
    );
    assert_eq!(
        error_code(
            a.family
                .post(
                    &format!("{teacher_path}/comments"),
                    json!({"body": "Still reading?"})
                )
                .await
        )
        .await,
        not_found
    );

    // A removed teacher loses their own post and the comments on it.
    assert_eq!(
        status(
            admin
                .send(
                    Method::DELETE,
                    &format!("{members}/{}", a.teacher.user_id),
                    None
                )
                .await
        )
        .await,
        204
    );
    assert_eq!(
        error_code(a.teacher.get(&teacher_path).await).await,
        not_found
    );
    assert_eq!(
        error_code(
            a.teacher
                .send(
                    Method::PUT,
                    &teacher_path,
                    Some(json!({"body": "Edited after leaving"}))
                )
                .await
        )
        .await,
        not_found
    );
    assert_eq!(
        error_code(a.teacher.send(Method::DELETE, &teacher_path, None).await).await,
        not_found
    );

    // Nothing was lost for the class: its admin still sees all of it, unchanged.
    let kept = json_of(admin.get(&teacher_path).await).await;
    assert_eq!(kept["body"], "Science fair on Friday");
    assert_eq!(kept["comments"].as_array().unwrap().len(), 1);
    let kept = json_of(admin.get(&draft_path).await).await;
    assert_eq!(
        (kept["body"].as_str(), kept["state"].as_str()),
        (Some("Rocks, a first try"), Some("draft"))
    );
    assert_eq!(status(admin.get(&photo_path).await).await, 200);
}

both_backends!(approval_publishes_the_revision_the_teacher_read);

/// Item 2: a handed-in post is frozen for its author; approval names the revision read.
async fn approval_publishes_the_revision_the_teacher_read(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.admin().await;
    let a = ClassFixture::new(&app, &admin, "a").await;
    let posts = format!("/api/v1/classes/{}/posts", a.class_id);
    let draft = a
        .student
        .post_ok(&posts, json!({"body": "I built a volcano."}))
        .await;
    let path = format!("/api/v1/posts/{}", draft["id"]);
    assert_eq!(
        status(a.student.post(&format!("{path}/submit"), json!({})).await).await,
        204
    );

    // Handed in, the post is frozen for its author.
    let late = a
        .student
        .send(
            Method::PUT,
            &path,
            Some(json!({"body": "Something the teacher never read"})),
        )
        .await;
    assert_eq!(error_code(late).await, (409, "wrong_state".into()));
    let read = json_of(a.teacher.get(&path).await).await;
    assert_eq!(read["body"], "I built a volcano.");
    assert_eq!(read["state"], "pending");
    let seen = read["revision"].as_i64().unwrap();

    // The post changes after this teacher read it (another teacher's edit bumps the
    // revision): approving what was read publishes nothing.
    let edited = json_of(
        a.teacher
            .send(
                Method::PUT,
                &path,
                Some(json!({"body": "I built a volcano that erupts."})),
            )
            .await,
    )
    .await;
    assert_eq!(edited["revision"].as_i64().unwrap(), seen + 1);
    let approve = format!("{path}/approve");
    assert_eq!(
        error_code(a.teacher.post(&approve, json!({"revision": seen})).await).await,
        (409, "post_changed".into())
    );
    assert_eq!(
        error_code(a.family.get(&path).await).await.0,
        404,
        "nothing was published"
    );
    assert_eq!(
        error_code(a.teacher.post(&approve, json!({})).await).await,
        (400, "bad_json".into()),
        "approval always names a revision"
    );

    // Returned, the student edits and hands in again; an approval of the earlier reading
    // still publishes nothing, one of the new text does.
    let before_return = json_of(a.teacher.get(&path).await).await["revision"].clone();
    assert_eq!(
        status(
            a.teacher
                .post(&format!("{path}/return"), json!({"note": "Add a photo"}))
                .await
        )
        .await,
        204
    );
    let redone = json_of(
        a.student
            .send(
                Method::PUT,
                &path,
                Some(json!({"body": "My volcano erupts with baking soda."})),
            )
            .await,
    )
    .await;
    assert_eq!(
        status(a.student.post(&format!("{path}/submit"), json!({})).await).await,
        204
    );
    assert_eq!(
        error_code(
            a.teacher
                .post(&approve, json!({"revision": before_return}))
                .await
        )
        .await,
        (409, "post_changed".into())
    );
    assert_eq!(
        status(
            a.teacher
                .post(&approve, json!({"revision": redone["revision"]}))
                .await
        )
        .await,
        204
    );
    let published = json_of(a.family.get(&path).await).await;
    assert_eq!(published["body"], "My volcano erupts with baking soda.");
    assert_eq!(published["state"], "published");
    assert_eq!(
        error_code(
            a.teacher
                .post(&approve, json!({"revision": redone["revision"]}))
                .await
        )
        .await,
        (409, "wrong_state".into())
    );
}

both_backends!(tutoring_logs_belong_to_the_people_in_the_session);

/// Item 3: a tutoring session's log and chat belong to its participants, their families, the
/// host and the teachers; classroom logs keep the class-wide rule.
async fn tutoring_logs_belong_to_the_people_in_the_session(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.admin().await;
    let a = ClassFixture::new(&app, &admin, "a").await;
    let class = a.class_id;
    let mia_family = a.family_of_new_student(&app, "Mia").await;
    let code = a
        .teacher
        .post_ok(
            &format!("/api/v1/classes/{class}/invites"),
            json!({"role": "tutor", "student_id": a.student_id}),
        )
        .await["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let other_tutor = app.join(&code, "tutor-other").await;
    let rooms = format!("/api/v1/classes/{class}/rooms");
    let tutoring = a
        .teacher
        .post_ok(
            &rooms,
            json!({"kind": "tutoring", "name": "Fractions help", "host_user_id": a.tutor.user_id}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let classroom = a
        .teacher
        .post_ok(&rooms, json!({"kind": "classroom", "name": "Morning"}))
        .await["id"]
        .as_i64()
        .unwrap();

    // Two finished sessions, written as the SFU writes them.
    let db = app.workspace.database().await;
    let start = now_ms() - 3_600_000;
    let session = |room: i64, at: i64| {
        let db = db.clone();
        async move {
            sqlx::query_scalar::<_, i64>(
                "INSERT INTO live_sessions (room_id, started_at, ended_at, peak_participants) VALUES ($1, $2, $3, 2) RETURNING id",
            )
            .bind(room)
            .bind(at)
            .bind(at + 600_000)
            .fetch_one(&db)
            .await
            .unwrap()
        }
    };
    let tutored = session(tutoring, start).await;
    let class_session = session(classroom, start + 1_000_000).await;
    let events = [
        (tutored, 1, Some(a.tutor.user_id), "tutor-a", "join", ""),
        (tutored, 2, Some(a.student.user_id), "student-a", "join", ""),
        (
            tutored,
            3,
            Some(a.tutor.user_id),
            "tutor-a",
            "chat",
            r#"{"text":"Kid a, your fractions are improving"}"#,
        ),
        (
            tutored,
            4,
            Some(a.student.user_id),
            "student-a",
            "leave",
            "",
        ),
        (tutored, 5, Some(a.tutor.user_id), "tutor-a", "leave", ""),
        (
            class_session,
            1,
            Some(a.teacher.user_id),
            "teacher-a",
            "join",
            "",
        ),
        (
            class_session,
            2,
            Some(a.teacher.user_id),
            "teacher-a",
            "chat",
            r#"{"text":"Welcome, everyone"}"#,
        ),
        (
            class_session,
            3,
            Some(a.teacher.user_id),
            "teacher-a",
            "leave",
            "",
        ),
    ];
    for (session, seq, user, name, kind, detail) in events {
        sqlx::query(
            "INSERT INTO session_events (session_id, seq, at, user_id, actor_name, kind, detail) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(session)
        .bind(seq)
        .bind(start + seq * 1_000 + if session == tutored { 0 } else { 1_000_000 })
        .bind(user)
        .bind(name)
        .bind(kind)
        .bind(detail)
        .execute(&db)
        .await
        .unwrap();
    }

    let log = format!("/api/v1/sessions/{tutored}");
    let chat_of = |log: &Value| {
        log["chat"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["text"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    // The people in it: the host, the student who took part, that student's family, and the
    // teacher (and admin).
    for (who, actor) in [
        ("host", &a.tutor),
        ("student", &a.student),
        ("student's family", &a.family),
        ("teacher", &a.teacher),
        ("admin", &admin),
    ] {
        let seen = json_of(actor.get(&log).await).await;
        assert_eq!(
            chat_of(&seen),
            vec!["Kid a, your fractions are improving"],
            "{who}"
        );
    }
    let family_view = json_of(a.family.get(&log).await).await;
    assert_eq!(family_view["attendance_visible"], "own");
    // Everyone else: the answer a missing session gets.
    let missing = error_code(mia_family.get("/api/v1/sessions/999999").await).await;
    assert_eq!(missing, (404, "not_found".into()));
    for (who, actor) in [
        ("another family", &mia_family),
        ("another tutor", &other_tutor),
    ] {
        assert_eq!(error_code(actor.get(&log).await).await, missing, "{who}");
        assert_eq!(
            error_code(actor.get(&format!("{log}/attendance.csv")).await).await,
            missing,
            "{who}: attendance"
        );
    }
    let listed = |list: &Value| {
        list.as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_i64().unwrap())
            .collect::<Vec<_>>()
    };
    let sessions = format!("/api/v1/classes/{class}/sessions");
    assert_eq!(
        listed(&json_of(mia_family.get(&sessions).await).await),
        vec![class_session]
    );
    assert_eq!(
        listed(&json_of(a.family.get(&sessions).await).await),
        vec![class_session, tutored]
    );
    let timeline_sessions = |page: &Value| {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["kind"] == "session")
            .map(|i| i["session"]["id"].as_i64().unwrap())
            .collect::<Vec<_>>()
    };
    let timeline = format!("/api/v1/classes/{class}/timeline");
    assert_eq!(
        timeline_sessions(&json_of(mia_family.get(&timeline).await).await),
        vec![class_session]
    );
    assert_eq!(
        timeline_sessions(&json_of(a.family.get(&timeline).await).await),
        vec![class_session, tutored]
    );
    let csv = mia_family
        .get(&format!("/api/v1/classes/{class}/attendance.csv"))
        .await
        .text()
        .await
        .unwrap();
    assert!(!csv.contains("Fractions help"), "{csv}");

    // Classroom logs keep today's rules: every family of the class reads the chat; a tutor
    // who does not host reads nothing.
    let class_log = json_of(
        mia_family
            .get(&format!("/api/v1/sessions/{class_session}"))
            .await,
    )
    .await;
    assert_eq!(chat_of(&class_log), vec!["Welcome, everyone"]);
    assert_eq!(
        error_code(
            other_tutor
                .get(&format!("/api/v1/sessions/{class_session}"))
                .await
        )
        .await,
        (403, "not_allowed".into())
    );
}

/// A small PNG that declares 11000x11000 RGB pixels (363 MB decoded); made once.
fn image_bomb() -> Vec<u8> {
    static BOMB: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BOMB.get_or_init(|| {
        let mut bytes = Vec::new();
        {
            let mut encoder = png::Encoder::new(&mut bytes, 11_000, 11_000);
            encoder.set_color(png::ColorType::Rgb);
            encoder.set_compression(png::Compression::Best);
            let mut writer = encoder.write_header().unwrap();
            let mut stream = writer.stream_writer().unwrap();
            let row = vec![0u8; 33_000];
            for _ in 0..11_000 {
                stream.write_all(&row).unwrap();
            }
            stream.finish().unwrap();
            writer.finish().unwrap();
        }
        bytes
    })
    .clone()
}

/// The server's peak resident memory so far, in kB.
fn peak_rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/<pid>/status")
}

both_backends!(image_bombs_are_refused_before_they_decode);

/// Item 4: images over 40 megapixels are refused from their header; small images are never
/// enlarged into their thumbnail.
async fn image_bombs_are_refused_before_they_decode(db: Db) {
    let bomb = tokio::task::spawn_blocking(image_bomb).await.unwrap();
    assert!(bomb.len() < 2_000_000, "a small file: {} bytes", bomb.len());
    assert_eq!(png_size(&bomb), (11_000, 11_000));
    let app = TestApp::spawn(db).await;
    let admin = app.admin().await;
    let a = ClassFixture::new(&app, &admin, "a").await;
    let before = peak_rss_kb(app.pid());
    let answers = futures_util::future::join_all((0..4).map(|i| {
        let bomb = bomb.clone();
        let student = &a.student;
        async move {
            error_code(upload(student, a.class_id, &format!("bomb-{i}.png"), bomb).await).await
        }
    }))
    .await;
    let after = peak_rss_kb(app.pid());
    assert!(
        after.saturating_sub(before) < 150 * 1024,
        "the server grew from {before} kB to {after} kB: {answers:?}"
    );
    for answer in answers {
        assert_eq!(answer, (400, "image_too_large".into()));
    }
    let data = app.workspace.path().join("data");
    for dir in ["files", "tmp"] {
        let left = std::fs::read_dir(data.join(dir))
            .map(|d| d.count())
            .unwrap_or(0);
        assert_eq!(left, 0, "nothing refused stays in {dir}");
    }

    // A small image keeps its size in its thumbnail; a large one is scaled down.
    let icon = upload_ok(&a.student, a.class_id, "icon.png", grey_png(100, 50)).await;
    let thumbnail = |id: &Value| format!("/api/v1/attachments/{id}/thumbnail");
    let small = a
        .student
        .get(&thumbnail(&icon["id"]))
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(png_size(&small), (100, 50), "never enlarged");
    let wide = upload_ok(&a.student, a.class_id, "wide.png", grey_png(1200, 300)).await;
    let small = a
        .student
        .get(&thumbnail(&wide["id"]))
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(png_size(&small), (480, 120));
}

/// Every `<img …>` tag of an HTML text.
fn img_tags(html: &str) -> Vec<String> {
    html.match_indices("<img")
        .map(|(at, _)| {
            let end = html[at..]
                .find('>')
                .map(|e| at + e + 1)
                .unwrap_or(html.len());
            html[at..end].to_owned()
        })
        .collect()
}

both_backends!(feeds_stay_well_formed_and_images_stay_home);

/// Item 5: control characters never break the feed, and no image is loaded from elsewhere.
async fn feeds_stay_well_formed_and_images_stay_home(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.admin().await;
    let a = ClassFixture::new(&app, &admin, "a").await;
    let b = ClassFixture::new(&app, &admin, "b").await;
    let class = a.class_id;
    let posts = format!("/api/v1/classes/{class}/posts");

    // A post stored with control characters (as before they were refused) still gives a
    // well-formed feed, without them.
    let db = app.workspace.database().await;
    let now = now_ms();
    sqlx::query(
        "INSERT INTO posts (class_id, author_id, body, visibility, state, created_at, updated_at, published_at)
         VALUES ($1, $2, $3, 'class', 'published', $4, $4, $4)",
    )
    .bind(class)
    .bind(a.teacher.user_id)
    .bind("Old \u{1}news\u{b} from \u{fffe}last\u{1b} year")
    .bind(now)
    .execute(&db)
    .await
    .unwrap();

    let link = a
        .family
        .post_ok(&format!("/api/v1/classes/{class}/feed-token"), json!({}))
        .await;
    let feed_url = link["feed_url"].as_str().unwrap().to_owned();
    let feed = || async {
        let atom = app
            .anonymous()
            .get(&feed_url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let document = roxmltree::Document::parse(&atom)
            .unwrap_or_else(|e| panic!("the feed is not well-formed XML ({e}): {atom:?}"));
        document
            .descendants()
            .filter(|n| n.has_tag_name("content"))
            .map(|n| n.text().unwrap_or_default().to_owned())
            .collect::<Vec<String>>()
    };
    let contents = feed().await;
    assert!(
        contents
            .iter()
            .any(|c| c.contains("Old news from last year")),
        "{contents:?}"
    );

    // Control characters are refused at the edge; tabs and line ends are text. NUL is refused
    // in every JSON string before any handler sees it (`invalid_text`).
    for (body, code) in [
        ("Bell\u{7} rings", "invalid_characters"),
        ("Escape \u{1b}[31mred", "invalid_characters"),
        ("Null\u{0}", "invalid_text"),
    ] {
        assert_eq!(
            error_code(a.teacher.post(&posts, json!({"body": body})).await).await,
            (400, code.into()),
            "{body:?}"
        );
    }
    let fine = a
        .teacher
        .post_ok(&posts, json!({"body": "Line one\r\n\tLine two"}))
        .await;
    assert_eq!(fine["body"], "Line one\n\tLine two");
    assert_eq!(
        error_code(
            a.family
                .post(
                    &format!("/api/v1/posts/{}/comments", fine["id"]),
                    json!({"body": "Hi\u{8}"})
                )
                .await
        )
        .await,
        (400, "invalid_characters".into())
    );

    // Images: only the class's own attachments; remote ones and other classes' are dropped,
    // links stay.
    let chart = upload_ok(&a.teacher, class, "chart.png", grey_png(30, 20)).await;
    let elsewhere = upload_ok(&b.teacher, b.class_id, "other.png", grey_png(30, 20)).await;
    let body = format!(
        "Our week\n\n![x](https://evil.example/a.png)\n\n<img src=\"https://evil.example/b.png\">\n\n\
         ![tracker](//evil.example/c.png)\n\n![chart](/api/v1/attachments/{chart}/thumbnail)\n\n\
         ![other class](/api/v1/attachments/{other})\n\n[more photos](https://evil.example/album)",
        chart = chart["id"],
        other = elsewhere["id"],
    );
    let post = a.teacher.post_ok(&posts, json!({"body": body})).await;
    let own_image = format!("/api/v1/attachments/{}/thumbnail", chart["id"]);
    let check = |html: &str, place: &str| {
        let images = img_tags(html);
        assert_eq!(images.len(), 1, "{place}: only our own image: {html}");
        assert!(images[0].contains(&own_image), "{place}: {html}");
        assert!(
            html.contains("href=\"https://evil.example/album\""),
            "{place}: links stay: {html}"
        );
    };
    check(post["html"].as_str().unwrap(), "the post");
    let page = json_of(
        a.family
            .get(&format!("/api/v1/classes/{class}/timeline"))
            .await,
    )
    .await;
    let shown = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["post"]["id"] == post["id"])
        .unwrap();
    check(shown["post"]["html"].as_str().unwrap(), "the timeline");

    // The feed shows no remote image either.
    let contents = feed().await;
    let ours = contents
        .iter()
        .find(|c| c.contains("Our week"))
        .expect("the post is in the feed");
    check(ours, "the feed");
    assert!(!contents
        .iter()
        .any(|c| img_tags(c).iter().any(|i| i.contains("evil.example"))));
}

both_backends!(a_refused_post_keeps_the_authors_uploads);

/// Item 6: a post refused for one bad attachment id consumes nothing.
async fn a_refused_post_keeps_the_authors_uploads(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.admin().await;
    let a = ClassFixture::new(&app, &admin, "a").await;
    let class = a.class_id;
    let posts = format!("/api/v1/classes/{class}/posts");
    let photo = upload_ok(&a.student, class, "work.png", grey_png(50, 50)).await;
    let second = upload_ok(&a.student, class, "work2.png", grey_png(60, 50)).await;
    let teachers = upload_ok(&a.teacher, class, "sheet.png", grey_png(70, 50)).await;

    for ids in [
        json!([photo["id"], 999_999]),
        json!([photo["id"], second["id"], teachers["id"]]),
    ] {
        let refused = a
            .student
            .post(&posts, json!({"body": "My work", "attachment_ids": ids}))
            .await;
        assert_eq!(
            error_code(refused).await,
            (400, "unknown_attachment".into())
        );
    }
    let db = app.workspace.database().await;
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM posts")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(stored, 0, "a refused post is not stored");

    // The uploads are still the student's, free to attach to the corrected post.
    let fixed = a
        .student
        .post_ok(
            &posts,
            json!({"body": "My work", "attachment_ids": [photo["id"], second["id"], photo["id"]]}),
        )
        .await;
    let attached: Vec<&Value> = fixed["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| &x["id"])
        .collect();
    assert_eq!(attached, vec![&photo["id"], &second["id"]]);
    assert_eq!(
        status(
            a.student
                .get(&format!("/api/v1/attachments/{}", photo["id"]))
                .await
        )
        .await,
        200
    );
    // And the teacher's upload, refused on the student's post, is still the teacher's.
    let teacher_post = a
        .teacher
        .post_ok(
            &posts,
            json!({"body": "Worksheet", "attachment_ids": [teachers["id"]]}),
        )
        .await;
    assert_eq!(teacher_post["attachments"][0]["id"], teachers["id"]);
}

/// Starts a chunked upload over a raw TLS connection, sends part of the body, and returns the
/// open connection (dropping it drops the connection mid-body).
fn start_chunked_upload(app: &TestApp, actor: &Actor, class_id: i64) -> impl Drop {
    use std::sync::Arc;
    let url = url::Url::parse(&app.base).unwrap();
    let host = url.host_str().unwrap().to_owned();
    let port = url.port().unwrap();
    let pem = std::fs::read(app.workspace.path().join("certs/self-signed.crt")).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from(host.clone()).unwrap();
    let connection = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let socket = std::net::TcpStream::connect((host.as_str(), port)).unwrap();
    let mut tls = rustls::StreamOwned::new(connection, socket);
    write!(
        tls,
        "POST /api/v1/classes/{class_id}/attachments HTTP/1.1\r\nHost: {host}:{port}\r\n\
         Cookie: homeroom_session={}\r\nX-CSRF-Token: {}\r\n\
         Content-Type: multipart/form-data; boundary=cut-short\r\nTransfer-Encoding: chunked\r\n\r\n",
        actor.cookie, actor.csrf
    )
    .unwrap();
    let mut chunk =
        b"--cut-short\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.png\"\r\n\
                      Content-Type: image/png\r\n\r\n\x89PNG\r\n\x1a\n"
            .to_vec();
    chunk.resize(chunk.len() + 256 * 1024, 7);
    for _ in 0..2 {
        write!(tls, "{:x}\r\n", chunk.len()).unwrap();
        tls.write_all(&chunk).unwrap();
        tls.write_all(b"\r\n").unwrap();
        tls.flush().unwrap();
        chunk = vec![7; 256 * 1024];
    }
    struct Open(rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>);
    impl Drop for Open {
        fn drop(&mut self) {
            let _ = self.0.sock.shutdown(std::net::Shutdown::Both);
        }
    }
    Open(tls)
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..100 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what} did not happen within 10 s");
}

fn entries(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

both_backends!(partial_uploads_never_stay);

/// Item 7: uploads are written in `tmp/` and moved into place when complete; a dropped
/// connection leaves nothing, and what a crash leaves is deleted at the next start.
async fn partial_uploads_never_stay(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.admin().await;
    let a = ClassFixture::new(&app, &admin, "a").await;
    let data = app.workspace.path().join("data");
    let (tmp, files) = (data.join("tmp"), data.join("files"));

    // While the body arrives it is in tmp/, never in files/; when the connection drops
    // mid-body, nothing is left.
    let open = start_chunked_upload(&app, &a.student, a.class_id);
    eventually("the partial upload appearing in tmp/", || {
        !entries(&tmp).is_empty()
    })
    .await;
    assert!(entries(&files).is_empty(), "{:?}", entries(&files));
    drop(open);
    eventually("the partial upload being deleted", || {
        entries(&tmp).is_empty()
    })
    .await;
    assert!(entries(&files).is_empty(), "{:?}", entries(&files));

    // A complete upload ends in files/ with nothing left in tmp/.
    upload_ok(&a.student, a.class_id, "done.png", grey_png(20, 20)).await;
    assert!(entries(&tmp).is_empty(), "{:?}", entries(&tmp));
    assert_eq!(entries(&files).len(), 2, "the file and its thumbnail");

    // What a crash leaves in tmp/ is gone after the next start.
    let (_, _, workspace) = app.terminate().await;
    std::fs::write(tmp.join("upload-crashed"), vec![1u8; 4096]).unwrap();
    std::fs::create_dir_all(tmp.join("half-made")).unwrap();
    std::fs::write(tmp.join("half-made/part"), b"x").unwrap();
    let app = TestApp::start(workspace).await;
    assert!(entries(&tmp).is_empty(), "{:?}", entries(&tmp));
    assert_eq!(entries(&files).len(), 2, "complete files stay");
    let student = app.sign_in("student-a", PASSWORD).await;
    upload_ok(&student, a.class_id, "again.png", grey_png(21, 20)).await;
}
