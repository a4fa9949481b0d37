//! Email against a real SMTP server (Python's aiosmtpd, pinned in the schemathesis venv that
//! scripts/test.sh installs), which writes what it receives into a Maildir: an invitation
//! arrives with its join link, a password link reaches its account's address; the digest lists only the posts its reader may see, and its
//! one-click stop link (RFC 8058) turns the digest off.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::both_backends;
use crate::helpers::{ClassFixture, Db, TestApp, PASSWORD};

struct SmtpServer {
    port: u16,
    maildir: tempfile::TempDir,
    _child: tokio::process::Child,
}

impl SmtpServer {
    async fn start() -> SmtpServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let maildir = tempfile::tempdir().unwrap();
        let python = crate::schemathesis::venv().join("bin/python");
        let child = tokio::process::Command::new(python)
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(maildir.path().join("box"))
            .kill_on_drop(true)
            .spawn()
            .expect("aiosmtpd starts (run ./scripts/test.sh to install it)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "aiosmtpd did not listen");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        SmtpServer {
            port,
            maildir,
            _child: child,
        }
    }

    fn config(&self) -> String {
        format!(
            "[email]\nsmtp_host = \"127.0.0.1\"\nsmtp_port = {}\nsecurity = \"none\"\n\
             from = \"Homeroom <school@example.org>\"\n",
            self.port
        )
    }

    /// The messages to `to` received so far, decoded.
    fn to(&self, to: &str) -> Vec<Mail> {
        let dir: PathBuf = self.maildir.path().join("box/new");
        let mut found: Vec<Mail> = std::fs::read_dir(&dir)
            .map(|d| d.flatten().map(|e| Mail::read(&e.path())).collect())
            .unwrap_or_default();
        found.retain(|m| m.header("X-RcptTo").is_some_and(|r| r.contains(to)));
        found
    }

    async fn wait_for(&self, to: &str, count: usize) -> Vec<Mail> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let found = self.to(to);
            if found.len() >= count {
                return found;
            }
            assert!(Instant::now() < deadline, "no email to {to} within 15 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

struct Mail {
    headers: Vec<(String, String)>,
    body: String,
}

impl Mail {
    fn read(path: &Path) -> Mail {
        let text = std::fs::read_to_string(path).unwrap().replace("\r\n", "\n");
        let (head, body) = text.split_once("\n\n").unwrap();
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in head.lines() {
            match (line.starts_with([' ', '\t']), headers.last_mut()) {
                (true, Some(last)) => last.1.push_str(line.trim_start()),
                _ => {
                    let (name, value) = line.split_once(':').unwrap();
                    headers.push((name.to_owned(), value.trim().to_owned()));
                }
            }
        }
        let mut mail = Mail {
            headers,
            body: body.to_owned(),
        };
        if mail
            .header("Content-Transfer-Encoding")
            .is_some_and(|e| e.eq_ignore_ascii_case("quoted-printable"))
        {
            mail.body = quoted_printable(&mail.body);
        }
        mail
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// RFC 2045 quoted-printable: soft line breaks and `=XX` bytes.
fn quoted_printable(text: &str) -> String {
    let joined = text.replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 3 <= bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
            if let Ok(b) = u8::from_str_radix(hex, 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

both_backends!(invitations_and_digests_arrive_by_email);

async fn invitations_and_digests_arrive_by_email(db: Db) {
    let smtp = SmtpServer::start().await;
    let app = TestApp::spawn_with(db, &smtp.config()).await;
    let admin = app.admin().await;
    let class = ClassFixture::new(&app, &admin, "mail").await;

    // A teacher emails a new invitation; it arrives with the link that joins.
    let invite = class
        .teacher
        .post_ok(
            &format!("/api/v1/classes/{}/invites", class.class_id),
            json!({"role": "family", "student_id": class.student_id}),
        )
        .await;
    let response = class
        .teacher
        .post(
            &format!("/api/v1/classes/{}/invites/email", class.class_id),
            json!({"code": invite["code"], "email": "grandma@example.org"}),
        )
        .await;
    assert_eq!(response.status(), 202);
    let mail = &smtp.wait_for("grandma@example.org", 1).await[0];
    assert_eq!(mail.header("Subject"), Some("Join Class mail on Homeroom"));
    let link = invite["join_url"].as_str().unwrap();
    assert!(mail.body.contains(link), "{}", mail.body);
    // Bad input changes nothing: a wrong code, a bad address, a family asking.
    let refused = [
        (
            &class.teacher,
            json!({"code": "AAAA-AAAA-AAAA", "email": "x@example.org"}),
            404,
        ),
        (
            &class.teacher,
            json!({"code": invite["code"], "email": "not an address"}),
            400,
        ),
        (
            &class.family,
            json!({"code": invite["code"], "email": "x@example.org"}),
            403,
        ),
    ];
    for (actor, body, status) in refused {
        let path = format!("/api/v1/classes/{}/invites/email", class.class_id);
        assert_eq!(actor.post(&path, body).await.status(), status);
    }

    // A family with an address; posts it may and may not see.
    let kid = class
        .teacher
        .post_ok(
            &format!("/api/v1/classes/{}/students", class.class_id),
            json!({"name": "Ana"}),
        )
        .await["id"]
        .clone();
    let code = class
        .teacher
        .post_ok(
            &format!("/api/v1/classes/{}/invites", class.class_id),
            json!({"role": "family", "student_id": kid}),
        )
        .await["code"]
        .clone();
    let response = app
        .anonymous()
        .post(app.url("/api/v1/invites/accept"))
        .json(
            &json!({"code": code, "login": "ana-family", "display_name": "Ana's family",
            "email": "ana.family@example.org", "password": PASSWORD}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let reader = app.sign_in("ana-family", PASSWORD).await;

    // A password link goes to the account's own address, sent by the one who made it.
    let link = admin
        .post_ok(
            &format!("/api/v1/users/{}/password-reset", reader.user_id),
            json!({}),
        )
        .await["reset_url"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = link.split('#').nth(1).unwrap();
    let path = "/api/v1/password-resets/email";
    assert_eq!(
        class
            .teacher
            .post(path, json!({"token": token}))
            .await
            .status(),
        404
    );
    assert_eq!(
        admin.post(path, json!({"token": token})).await.status(),
        202
    );
    let reset = &smtp.wait_for("ana.family@example.org", 1).await[0];
    assert!(reset.body.contains(&link), "{}", reset.body);
    let posts = class.class_id;
    for body in [
        json!({"body": "Field trip on Friday"}),
        json!({"body": "Kid mail read aloud", "visibility": "students", "student_ids": [class.student_id]}),
        json!({"body": "Ana built a bridge", "visibility": "students", "student_ids": [kid]}),
        json!({"body": "Draft about the fair", "draft": true}),
    ] {
        class
            .teacher
            .post_ok(&format!("/api/v1/classes/{posts}/posts"), body)
            .await;
    }
    let response = reader
        .send(
            reqwest::Method::PUT,
            "/api/v1/notifications/settings",
            Some(json!({"settings": {"utc_offset": 60, "digest": "daily"}})),
        )
        .await;
    assert_eq!(response.status(), 200);
    let mails = smtp.wait_for("ana.family@example.org", 2).await;
    let digest = mails
        .iter()
        .find(|m| {
            m.header("Subject")
                .is_some_and(|s| s.starts_with("Class updates"))
        })
        .expect("the digest");
    assert!(
        digest.body.contains("Field trip on Friday"),
        "{}",
        digest.body
    );
    assert!(
        digest.body.contains("Ana built a bridge"),
        "{}",
        digest.body
    );
    assert!(
        !digest.body.contains("Kid mail read aloud"),
        "another child's post: {}",
        digest.body
    );
    assert!(
        !digest.body.contains("Draft about the fair"),
        "a draft: {}",
        digest.body
    );

    // One click (RFC 8058): the mail client posts to the List-Unsubscribe address.
    assert_eq!(
        digest.header("List-Unsubscribe-Post"),
        Some("List-Unsubscribe=One-Click")
    );
    let stop = digest.header("List-Unsubscribe").unwrap();
    let stop = stop.trim_start_matches('<').trim_end_matches('>');
    let forged = stop.replace("token=", "token=1");
    let client = app.anonymous();
    let answer = |url: String| {
        client
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("List-Unsubscribe=One-Click")
            .send()
    };
    assert_eq!(answer(forged).await.unwrap().status(), 404);
    assert_eq!(answer(stop.to_owned()).await.unwrap().status(), 204);
    let settings: serde_json::Value = reader
        .get("/api/v1/notifications/settings")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(settings["settings"]["digest"], "off");
}
