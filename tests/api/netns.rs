//! Viewers on a weak link: a network namespace per test (the library's, with its veth pair to
//! the host and tc shaping), a server that offers media where the namespace reaches it, and a
//! webrtc-rs viewer that runs inside the namespace on a thread of its own. Needs root.
//!
//! These tests add interfaces, which every Chromium on the host sees as a network change:
//! scripts/test.sh runs them (`netns::`, `simulcast::`, `loadtest::throttled`) after the
//! browser tests, not beside them.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use homeroom::client::netns::{Namespace, NsRuntime};

use crate::helpers::{Db, TestApp};
use crate::peer::{Credential, TestPeer};

/// A namespace for one test.
pub fn namespace() -> Namespace {
    Namespace::create().unwrap_or_else(|e| panic!("a network namespace (needs root): {e}"))
}

/// A server on every address that offers media on the host's end of `ns`'s veth pair, where
/// both the namespace and the host reach it. `extra` is more configuration (TOML).
pub async fn serve_for(ns: &Namespace, extra: &str) -> TestApp {
    let interfaces = format!("[\"{}\"]", ns.host_ip);
    let env = [
        ("HOMEROOM_LISTEN", "0.0.0.0:0"),
        ("HOMEROOM_MEDIA_INTERFACES", interfaces.as_str()),
    ];
    TestApp::spawn_with_env(Db::Sqlite, extra, &env).await
}

/// A participant signed in with `cookie`, all of whose sockets (signalling and media) live in
/// `ns`: it reaches the server at the host's end of the veth pair. It runs on `runtime`, which
/// must outlive it.
pub async fn viewer_inside(
    app: &TestApp,
    ns: &Namespace,
    runtime: &NsRuntime,
    cookie: &str,
) -> TestPeer {
    let pem = std::fs::read(app.workspace.path().join("certs/self-signed.crt")).unwrap();
    let tls = homeroom::client::tls_trusting(&pem).unwrap();
    let port = url::Url::parse(&app.base).unwrap().port().unwrap();
    let via = SocketAddr::from((ns.host_ip, port));
    let (base, cookie, bind) = (
        app.base.clone(),
        cookie.to_owned(),
        format!("{}:0", ns.ns_ip),
    );
    runtime
        .spawn(async move {
            TestPeer::open_via(&base, tls, Credential::Cookie(&cookie), &bind, via).await
        })
        .await
        .unwrap()
        .expect("the signalling socket from inside the namespace")
}

/// Code run inside the namespace opens its sockets there: a UDP socket bound to any address
/// reaches the host from the namespace's address, and the host's own address is not its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_run_inside_has_its_sockets_in_the_namespace() {
    let ns = namespace();
    let host = tokio::net::UdpSocket::bind((ns.host_ip, 0)).await.unwrap();
    let to = host.local_addr().unwrap();
    let host_ip = ns.host_ip;
    let runtime = ns.runtime().unwrap();
    let probe = runtime.spawn(async move {
        let socket = tokio::net::UdpSocket::bind("0.0.0.0:0").await.unwrap();
        socket.send_to(b"ping", to).await.unwrap();
        let mut reply = [0u8; 16];
        let (n, _) = socket.recv_from(&mut reply).await.unwrap();
        let foreign = tokio::net::UdpSocket::bind((host_ip, 0)).await.is_err();
        (reply[..n].to_vec(), foreign)
    });
    let mut buf = [0u8; 16];
    let received = tokio::time::timeout(Duration::from_secs(5), host.recv_from(&mut buf));
    let (n, from) = received.await.expect("the ping arrives").unwrap();
    assert_eq!(&buf[..n], b"ping");
    assert_eq!(
        from.ip(),
        ns.ns_ip,
        "the datagram left from the namespace's end"
    );
    host.send_to(b"pong", from).await.unwrap();
    let probe = probe.await.unwrap();
    assert_eq!(probe.0, b"pong");
    assert!(probe.1, "inside, the host's address is not a local one");
}

/// Kilobits per second that arrive inside `ns` when the host sends 2 Mbit/s for 2 s.
async fn rate_inside(ns: &Namespace) -> f64 {
    let (port_tx, port) = tokio::sync::oneshot::channel();
    let bind = (ns.ns_ip, 0);
    let runtime = ns.runtime().unwrap();
    let receiver = runtime.spawn(async move {
        let socket = tokio::net::UdpSocket::bind(bind).await.unwrap();
        let _ = port_tx.send(socket.local_addr().unwrap());
        let (mut bytes, mut buf) = (0usize, [0u8; 1500]);
        let first = tokio::time::timeout(Duration::from_secs(5), socket.recv(&mut buf)).await;
        let started = Instant::now();
        bytes += first.unwrap().unwrap();
        while let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_millis(500), socket.recv(&mut buf)).await
        {
            bytes += n;
        }
        bytes as f64 * 8.0 / 1000.0 / (started.elapsed().as_secs_f64() - 0.5)
    });
    let to = port.await.unwrap();
    let host = tokio::net::UdpSocket::bind((ns.host_ip, 0)).await.unwrap();
    let mut every = tokio::time::interval(Duration::from_millis(4));
    for _ in 0..500 {
        every.tick().await;
        host.send_to(&[7u8; 1000], to).await.unwrap();
    }
    receiver.await.unwrap()
}

/// `shape` holds what the host sends into the namespace to the rate, `unshape` lifts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shaping_holds_the_link_to_its_rate_until_lifted() {
    let ns = namespace();
    ns.shape("400kbit").unwrap();
    let shaped = rate_inside(&ns).await;
    assert!(
        (300.0..520.0).contains(&shaped),
        "{shaped:.0} kbit/s arrived through a 400 kbit/s link"
    );
    ns.unshape().unwrap();
    let open = rate_inside(&ns).await;
    eprintln!("{shaped:.0} kbit/s arrived through the shaped link, {open:.0} once lifted");
    assert!(open > 1500.0, "{open:.0} kbit/s arrived once unshaped");
}
