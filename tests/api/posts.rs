//! Class updates: safe Markdown, who sees a post, the student draft → review flow, comments.

use reqwest::Method;
use serde_json::json;

use crate::both_backends;
use crate::helpers::{error_code, ClassFixture, Db, TestApp};

both_backends!(posts_are_safe_private_and_reviewed);

async fn posts_are_safe_private_and_reviewed(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.admin().await;
    let a = ClassFixture::new(&app, &admin, "a").await;
    let b = ClassFixture::new(&app, &admin, "b").await;
    let posts = format!("/api/v1/classes/{}/posts", a.class_id);
    // A second family in class A, of another child.
    let mia_family = a.family_of_new_student(&app, "Mia").await;

    // Markdown is rendered without scripts, event handlers or javascript: links.
    let public = a
        .teacher
        .post_ok(&posts, json!({"body": "**Fractions!**\n\n<script>alert(1)</script>\n\n<img src=x onerror=\"alert(2)\">\n\n[see this](javascript:alert(3))", "targets": ["Adds fractions"]}))
        .await;
    let html = public["html"].as_str().unwrap();
    assert!(html.contains("<strong>Fractions!</strong>"), "{html}");
    for bad in ["<script", "onerror", "javascript:", "alert("] {
        assert!(!html.contains(bad), "{bad} in {html}");
    }
    assert!(html.contains("see this"), "the link text stays: {html}");
    assert_eq!(public["targets"], json!(["Adds fractions"]));

    // A post for one child's family: invisible to the others, exactly like a missing post.
    let private = a
        .teacher
        .post_ok(&posts, json!({"body": "Kid a read a whole chapter.", "visibility": "students", "student_ids": [a.student_id]}))
        .await;
    let private_path = format!("/api/v1/posts/{}", private["id"]);
    // Teachers edit; families cannot.
    let edit = json!({"body": "Kid a read **two** chapters.", "visibility": "students", "student_ids": [a.student_id], "targets": ["Reads fluently"]});
    let edited = a
        .teacher
        .send(Method::PUT, &private_path, Some(edit.clone()))
        .await;
    assert_eq!(edited.status(), 200);
    let edited: serde_json::Value = edited.json().await.unwrap();
    assert!(edited["html"]
        .as_str()
        .unwrap()
        .contains("<strong>two</strong>"));
    assert_eq!(edited["targets"], json!(["Reads fluently"]));
    assert_eq!(
        error_code(a.family.send(Method::PUT, &private_path, Some(edit)).await).await,
        (403, "not_allowed".into())
    );
    assert_eq!(a.family.get(&private_path).await.status(), 200);
    assert_eq!(
        a.student.get(&private_path).await.status(),
        200,
        "the featured student sees it"
    );
    let missing = error_code(mia_family.get("/api/v1/posts/999999").await).await;
    assert_eq!(missing, (404, "not_found".into()));
    assert_eq!(
        error_code(mia_family.get(&private_path).await).await,
        missing
    );
    assert_eq!(error_code(b.family.get(&private_path).await).await, missing);
    let listed: serde_json::Value = mia_family.get(&posts).await.json().await.unwrap();
    assert_eq!(
        listed.as_array().unwrap().len(),
        1,
        "only the class-wide post: {listed}"
    );
    assert_eq!(error_code(b.family.get(&posts).await).await, missing);

    // A student's draft waits for review, comes back with a note, and is published.
    let draft = a
        .student
        .post_ok(&posts, json!({"body": "I built a volcano."}))
        .await;
    assert_eq!(draft["state"], "draft");
    let draft_path = format!("/api/v1/posts/{}", draft["id"]);
    let fixed = a
        .student
        .send(
            Method::PUT,
            &draft_path,
            Some(json!({"body": "I built a volcano that erupts."})),
        )
        .await;
    assert_eq!(fixed.status(), 200, "a student edits their own draft");
    assert_eq!(
        error_code(a.family.get(&draft_path).await).await,
        missing,
        "families do not see drafts"
    );
    assert_eq!(
        a.student
            .post(&format!("{draft_path}/submit"), json!({}))
            .await
            .status(),
        204
    );
    let queue: serde_json::Value = a
        .teacher
        .get(&format!("{posts}?state=pending"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(queue[0]["id"], draft["id"]);
    assert_eq!(
        error_code(a.family.get(&format!("{posts}?state=pending")).await)
            .await
            .0,
        403
    );
    assert_eq!(
        a.teacher
            .post(
                &format!("{draft_path}/return"),
                json!({"note": "Add a photo of it"})
            )
            .await
            .status(),
        204
    );
    let returned: serde_json::Value = a.student.get(&draft_path).await.json().await.unwrap();
    assert_eq!(returned["state"], "returned");
    assert_eq!(returned["review_note"], "Add a photo of it");
    assert_eq!(
        error_code(
            a.teacher
                .post(
                    &format!("{draft_path}/approve"),
                    json!({"revision": returned["revision"]})
                )
                .await
        )
        .await
        .1,
        "wrong_state"
    );
    assert_eq!(
        a.student
            .post(&format!("{draft_path}/submit"), json!({}))
            .await
            .status(),
        204
    );
    assert_eq!(
        a.teacher
            .post(
                &format!("{draft_path}/approve"),
                json!({"revision": returned["revision"]})
            )
            .await
            .status(),
        204
    );
    assert_eq!(a.family.get(&draft_path).await.status(), 200);
    let late = a
        .student
        .send(
            Method::PUT,
            &draft_path,
            Some(json!({"body": "changed after publication"})),
        )
        .await;
    assert_eq!(
        error_code(late).await,
        (403, "not_allowed".into()),
        "published posts are the teacher's to edit"
    );

    // Families comment, teachers reply, students only read; teachers see how many families
    // have seen a post.
    let comments = format!("{private_path}/comments");
    assert_eq!(
        a.family
            .post(&comments, json!({"body": "So proud!"}))
            .await
            .status(),
        201
    );
    assert_eq!(
        a.teacher
            .post(
                &comments,
                json!({"body": "Thank you for reading with them."})
            )
            .await
            .status(),
        201
    );
    assert_eq!(
        error_code(a.student.post(&comments, json!({"body": "hi"})).await).await,
        (403, "not_allowed".into())
    );
    // Reading a post records nothing; the family's page reports what it showed.
    let seen: serde_json::Value = a.teacher.get(&private_path).await.json().await.unwrap();
    assert_eq!(seen["comments"].as_array().unwrap().len(), 2);
    assert_eq!(seen["family_views"], 0);
    a.family
        .post_ok(
            &format!("/api/v1/classes/{}/seen", a.class_id),
            json!({"post_ids": [seen["id"]]}),
        )
        .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let seen: serde_json::Value = a.teacher.get(&private_path).await.json().await.unwrap();
        if seen["family_views"] == 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the report was never written"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let family_view: serde_json::Value = a.family.get(&private_path).await.json().await.unwrap();
    assert!(family_view.get("family_views").is_none());

    // Only the author or a teacher deletes.
    assert_eq!(
        error_code(a.family.send(Method::DELETE, &private_path, None).await)
            .await
            .0,
        403
    );
    assert_eq!(
        a.teacher
            .send(Method::DELETE, &private_path, None)
            .await
            .status(),
        204
    );
    assert_eq!(a.family.get(&private_path).await.status(), 404);
}

both_backends!(the_timeline_pages_every_item_once_while_posts_arrive);

async fn the_timeline_pages_every_item_once_while_posts_arrive(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.admin().await;
    let a = ClassFixture::new(&app, &admin, "a").await;
    let posts = format!("/api/v1/classes/{}/posts", a.class_id);
    let mut expected = Vec::new();
    for i in 0..7 {
        let post = a
            .teacher
            .post_ok(&posts, json!({"body": format!("Update {i}")}))
            .await;
        expected.push(format!("post:{}", post["id"]));
    }
    // A finished session among the posts, written as the SFU writes it.
    let room = a
        .teacher
        .post_ok(
            &format!("/api/v1/classes/{}/rooms", a.class_id),
            json!({"kind": "classroom", "name": "Morning"}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let db = app.workspace.database().await;
    let middle: i64 = sqlx::query_scalar("SELECT published_at FROM posts WHERE body = 'Update 3'")
        .fetch_one(&db)
        .await
        .unwrap();
    let session: i64 = sqlx::query_scalar(
        "INSERT INTO live_sessions (room_id, started_at, ended_at, peak_participants) VALUES ($1, $2, $3, 2) RETURNING id",
    )
    .bind(room)
    .bind(middle)
    .bind(middle + 60_000)
    .fetch_one(&db)
    .await
    .unwrap();
    expected.push(format!("session:{session}"));

    let timeline = format!("/api/v1/classes/{}/timeline", a.class_id);
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for page_number in 0.. {
        let path = match &cursor {
            Some(c) => format!("{timeline}?limit=3&cursor={c}"),
            None => format!("{timeline}?limit=3"),
        };
        let page: serde_json::Value = a.family.get(&path).await.json().await.unwrap();
        for item in page["items"].as_array().unwrap() {
            let id = match item["kind"].as_str().unwrap() {
                "post" => format!("post:{}", item["post"]["id"]),
                _ => format!("session:{}", item["session"]["id"]),
            };
            seen.push(id);
        }
        // New posts keep arriving while the family scrolls.
        a.teacher
            .post_ok(&posts, json!({"body": format!("Late news {page_number}")}))
            .await;
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "an item came twice: {seen:?}");
    expected.sort();
    assert_eq!(unique, expected, "every item that existed, exactly once");
    // The session sits where it happened: right after the post published at the same moment.
    let position = |id: &str| seen.iter().position(|s| s == id).unwrap();
    let session_at = position(&format!("session:{session}"));
    assert!(session_at > 0 && seen[session_at - 1].starts_with("post:"));

    let bad = a.family.get(&format!("{timeline}?cursor=nonsense")).await;
    assert_eq!(error_code(bad).await, (400, "invalid_cursor".into()));
    assert_eq!(
        error_code(a.tutor.get(&timeline).await).await.0,
        403,
        "tutors do not read the timeline"
    );
}

both_backends!(a_private_feed_follows_the_class_until_revoked);

async fn a_private_feed_follows_the_class_until_revoked(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.admin().await;
    let a = ClassFixture::new(&app, &admin, "a").await;
    let posts = format!("/api/v1/classes/{}/posts", a.class_id);
    a.teacher
        .post_ok(
            &posts,
            json!({"body": "## Our **fractions** week\n\nPhotos <b>soon</b> & more"}),
        )
        .await;
    a.teacher
        .post_ok(&posts, json!({"body": "Only for Kid a's family", "visibility": "students", "student_ids": [a.student_id]}))
        .await;
    let link = a
        .family
        .post_ok(
            &format!("/api/v1/classes/{}/feed-token", a.class_id),
            json!({}),
        )
        .await;
    let url = link["feed_url"].as_str().unwrap().to_owned();
    assert!(url.contains("/feeds/") && url.ends_with(".atom"));
    let reader = app.anonymous();
    let response = reader.get(&url).send().await.unwrap();
    assert_eq!(
        response.headers()["content-type"],
        "application/atom+xml; charset=utf-8"
    );
    let atom = response.text().await.unwrap();
    assert!(atom.contains("<title>Our fractions week</title>"), "{atom}");
    assert!(
        atom.contains("&lt;strong&gt;fractions&lt;/strong&gt;"),
        "content is escaped HTML: {atom}"
    );
    assert!(
        atom.contains("Only for Kid a"),
        "the family's own child's post is in its feed"
    );
    // Another family of the class reads only what it may see.
    let mia_family = a.family_of_new_student(&app, "Mia").await;
    let mia_url = mia_family
        .post_ok(
            &format!("/api/v1/classes/{}/feed-token", a.class_id),
            json!({}),
        )
        .await["feed_url"]
        .as_str()
        .unwrap()
        .to_owned();
    let mia_atom = reader
        .get(&mia_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        mia_atom.contains("fractions") && !mia_atom.contains("Only for Kid a"),
        "{mia_atom}"
    );

    // A new link replaces the old; revoking ends it; a tutor cannot make one.
    let replaced = a
        .family
        .post_ok(
            &format!("/api/v1/classes/{}/feed-token", a.class_id),
            json!({}),
        )
        .await;
    assert_eq!(reader.get(&url).send().await.unwrap().status(), 404);
    let new_url = replaced["feed_url"].as_str().unwrap();
    assert_eq!(reader.get(new_url).send().await.unwrap().status(), 200);
    assert_eq!(
        a.family
            .send(
                reqwest::Method::DELETE,
                &format!("/api/v1/classes/{}/feed-token", a.class_id),
                None
            )
            .await
            .status(),
        204
    );
    assert_eq!(reader.get(new_url).send().await.unwrap().status(), 404);
    assert_eq!(
        error_code(
            a.tutor
                .post(
                    &format!("/api/v1/classes/{}/feed-token", a.class_id),
                    json!({})
                )
                .await
        )
        .await
        .0,
        403
    );
    assert!(
        !app.logs().contains(
            new_url
                .split("/feeds/")
                .nth(1)
                .unwrap()
                .trim_end_matches(".atom")
        ),
        "the secret stays out of the log"
    );
}

both_backends!(student_work_uploads_are_checked_and_private);

fn png(len: usize) -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    bytes.resize(len, 7);
    bytes
}

async fn upload(
    actor: &crate::helpers::Actor,
    class_id: i64,
    name: &str,
    bytes: Vec<u8>,
) -> reqwest::Response {
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

async fn student_work_uploads_are_checked_and_private(db: Db) {
    let app = TestApp::spawn_with(db, "[limits]\nmax_upload_mb = 1").await;
    let admin = app.admin().await;
    let a = ClassFixture::new(&app, &admin, "a").await;
    let b = ClassFixture::new(&app, &admin, "b").await;
    let files = app.workspace.path().join("data/files");
    let stored = || std::fs::read_dir(&files).map(|d| d.count()).unwrap_or(0);

    // Refused: a name that lies about the content, a type not allowed, anything too large.
    let lying = upload(
        &a.teacher,
        a.class_id,
        "drawing.png",
        b"%PDF-1.4\n%fake pdf".to_vec(),
    )
    .await;
    assert_eq!(error_code(lying).await, (400, "type_mismatch".into()));
    let html = upload(
        &a.teacher,
        a.class_id,
        "notes.pdf",
        b"<html><script>alert(1)</script></html>".to_vec(),
    )
    .await;
    assert_eq!(error_code(html).await, (400, "type_not_allowed".into()));
    let huge = upload(&a.teacher, a.class_id, "poster.png", png(2 * 1024 * 1024)).await;
    assert_eq!(error_code(huge).await, (413, "too_large".into()));
    assert_eq!(stored(), 0, "nothing refused is on disk");

    // Accepted, then shown only to those who see the post.
    let drawing = upload(&a.teacher, a.class_id, "drawing.png", png(4000)).await;
    assert_eq!(drawing.status(), 201);
    let drawing: serde_json::Value = drawing.json().await.unwrap();
    assert_eq!(drawing["content_type"], "image/png");
    let post = a
        .teacher
        .post_ok(
            &format!("/api/v1/classes/{}/posts", a.class_id),
            json!({"body": "Kid a's drawing", "visibility": "students", "student_ids": [a.student_id], "attachment_ids": [drawing["id"]]}),
        )
        .await;
    assert_eq!(post["attachments"][0]["id"], drawing["id"]);
    let file = format!("/api/v1/attachments/{}", drawing["id"]);
    let got = a.family.get(&file).await;
    assert_eq!(got.status(), 200);
    assert_eq!(got.headers()["content-type"], "image/png");
    assert_eq!(got.headers()["x-content-type-options"], "nosniff");
    assert_eq!(got.bytes().await.unwrap().to_vec(), png(4000));
    let missing = error_code(b.family.get("/api/v1/attachments/999999").await).await;
    assert_eq!(missing, (404, "not_found".into()));
    assert_eq!(
        error_code(b.family.get(&file).await).await,
        missing,
        "another class's family"
    );
    let mia_family = a.family_of_new_student(&app, "Mia").await;
    assert_eq!(
        error_code(mia_family.get(&file).await).await,
        missing,
        "a family of another child"
    );
    // A real photo gets a thumbnail for phones.
    let mut photo = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut photo, 1000, 600);
        encoder.set_color(png::ColorType::Rgb);
        let mut writer = encoder.write_header().unwrap();
        writer
            .write_image_data(&vec![200u8; 1000 * 600 * 3])
            .unwrap();
    }
    let photo: serde_json::Value = upload(&a.teacher, a.class_id, "class-photo.png", photo)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(photo["has_thumbnail"], true);
    assert_eq!(
        drawing["has_thumbnail"], false,
        "the fake PNG does not decode; it is kept without one"
    );
    let small = a
        .teacher
        .get(&format!("/api/v1/attachments/{}/thumbnail", photo["id"]))
        .await;
    assert_eq!(small.headers()["content-type"], "image/png");
    let small = small.bytes().await.unwrap().to_vec();
    let info = png::Decoder::new(std::io::Cursor::new(small))
        .read_info()
        .unwrap()
        .info()
        .clone();
    assert_eq!((info.width, info.height), (480, 288));
    assert_eq!(
        error_code(
            mia_family
                .get(&format!("/api/v1/attachments/{}/thumbnail", photo["id"]))
                .await
        )
        .await,
        missing
    );

    // Someone else's upload cannot be attached.
    let again = a
        .teacher
        .post(
            &format!("/api/v1/classes/{}/posts", a.class_id),
            json!({"body": "x", "attachment_ids": [drawing["id"]]}),
        )
        .await;
    assert_eq!(error_code(again).await, (400, "unknown_attachment".into()));
    assert_eq!(stored(), 3, "the drawing, the photo and its thumbnail");
}
