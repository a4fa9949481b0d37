//! The tests' WebRTC participant is the library's client (`homeroom::client`), the same one
//! the load tool uses; this connects it to a test server, trusting its generated certificate.

pub use homeroom::client::{Credential, Participant as TestPeer, Received};

use crate::helpers::TestApp;

pub async fn connect(app: &TestApp, credential: Credential<'_>) -> TestPeer {
    let pem =
        std::fs::read(app.workspace.path().join("certs/self-signed.crt")).expect("certificate");
    let tls = homeroom::client::tls_trusting(&pem).expect("certificate parses");
    TestPeer::connect(&app.base, tls, credential, "127.0.0.1:0")
        .await
        .expect("signalling socket")
}
