//! The tests' WebRTC participant is the library's client (`homeroom::client`), the same one
//! the load tool uses; this connects it to a test server, trusting its generated certificate.

pub use homeroom::client::{Credential, Participant as TestPeer, Received};

use homeroom::client::whep::WhepViewer;

use crate::helpers::{Actor, TestApp};

pub async fn connect(app: &TestApp, credential: Credential<'_>) -> TestPeer {
    let pem =
        std::fs::read(app.workspace.path().join("certs/self-signed.crt")).expect("certificate");
    let tls = homeroom::client::tls_trusting(&pem).expect("certificate parses");
    TestPeer::connect(&app.base, tls, credential, "127.0.0.1:0")
        .await
        .expect("signalling socket")
}

/// A WHEP player of the room, with a viewer token of `actor`'s.
pub async fn whep_player(app: &TestApp, actor: &Actor, room_id: i64) -> WhepViewer {
    let pem =
        std::fs::read(app.workspace.path().join("certs/self-signed.crt")).expect("certificate");
    let token = actor
        .post_ok(
            &format!("/api/v1/rooms/{room_id}/viewer-token"),
            serde_json::json!({}),
        )
        .await;
    WhepViewer::start(
        token["whep_url"].as_str().unwrap(),
        token["token"].as_str().unwrap(),
        &pem,
        "127.0.0.1:0",
    )
    .await
    .expect("WHEP playback")
}
