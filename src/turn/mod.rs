//! The built-in TURN relay (RFC 8656), for families whose networks let nothing else through:
//! off by default (`[turn]`), on a UDP and a TCP port (3478) and optionally TLS.
//!
//! The `turn` crate (webrtc-rs) does the TURN work. Around it:
//! - `credentials`: time-limited REST-API credentials minted per participant, checked
//!   without a lookup; the secret is kept in the database;
//! - `gate`: what the crate has no hooks for: peers other than our own media sockets
//!   refused (never an open relay), allocation limits, refusals counted;
//! - `limits`: the allocation book and the relay's figures;
//! - `peers`: which addresses are our own media sockets;
//! - `relay`: relay sockets, filtered and counted, known to the SFU for `/metrics`;
//! - `stream`: TURN over TCP and TLS, framed into the crate's datagram interface.
//!
//! The SFU itself never uses TURN (`sfu::media`): it is reached directly, and a relay only
//! ever carries a client's traffic to it.

mod config;
pub mod credentials;
mod gate;
mod limits;
mod peers;
mod relay;
pub mod stream;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;
use turn::server::config::{ConnConfig, ServerConfig};
use turn::server::Server;
use webrtc_util::Conn;

pub use config::TurnConfig;
use credentials::Credentials;
use gate::{Gate, GateConn};
use limits::{Allocations, Flow, Transport};
use peers::OwnAddresses;
use relay::RelayPorts;
use stream::StreamConn;

use crate::config::{Config, IceServer};
use crate::metrics::{Kind, Metrics};
use crate::sfu::paths::RelayAddresses;
use crate::store::Store;

/// The realm of every credential.
const REALM: &str = "homeroom";

/// Refusal reasons, all shown in `/metrics` (at zero until one happens).
const REASONS: [&str; 6] = [
    "expired",
    "forged",
    "bad_username",
    "peer_not_allowed",
    "user_limit",
    "total_limit",
];

/// The running relay.
pub struct Turn {
    credentials: Arc<Credentials>,
    /// What clients are told, e.g. `turn:school.example:3478?transport=udp`.
    urls: Vec<String>,
    allocations: Arc<Allocations>,
    server: Arc<Server>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Turn {
    /// Starts the relay when `[turn] enabled`; a port that cannot be bound stops the server.
    pub async fn start(
        config: &Config,
        store: &Store,
        public_url: &url::Url,
        relays: Arc<RelayAddresses>,
        media_port: u16,
    ) -> anyhow::Result<Option<Turn>> {
        let settings = &config.turn;
        if !settings.enabled {
            return Ok(None);
        }
        let secret = store
            .shared_secret("turn", &hex::encode(rand::random::<[u8; 32]>()))
            .await?;
        let credentials = Arc::new(Credentials::new(
            &secret,
            Duration::from_secs(settings.credential_ttl_secs),
            REALM,
        ));
        let own = OwnAddresses::from_config(&config.media, media_port);
        let allocations = Arc::new(Allocations::new(
            settings.max_allocations,
            settings.max_allocations_per_user,
        ));
        let gate = Arc::new(Gate {
            credentials: credentials.clone(),
            own: own.clone(),
            allocations: allocations.clone(),
        });
        let listen_ip = config
            .media
            .interfaces
            .first()
            .copied()
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let relay_ports = || -> Box<RelayPorts> {
            Box::new(RelayPorts {
                ip: own.relay_ip(),
                ports: settings.relay_ports,
                own: own.clone(),
                allocations: allocations.clone(),
                relays: relays.clone(),
            })
        };
        let mut conn_configs = Vec::new();
        let mut tasks = Vec::new();
        let mut streams = Vec::new();

        let udp_addr = SocketAddr::new(listen_ip, settings.udp_port);
        let udp = UdpSocket::bind(udp_addr)
            .await
            .with_context(|| format!("cannot listen for TURN on UDP {udp_addr}"))?;
        let udp_port = udp.local_addr()?.port();
        conn_configs.push(ConnConfig {
            conn: Arc::new(GateConn::new(Arc::new(udp), Transport::Udp, gate.clone())),
            relay_addr_generator: relay_ports(),
        });

        let tcp_addr = SocketAddr::new(listen_ip, settings.tcp_port);
        let tcp = TcpListener::bind(tcp_addr)
            .await
            .with_context(|| format!("cannot listen for TURN on TCP {tcp_addr}"))?;
        let tcp_port = tcp.local_addr()?.port();
        streams.push((tcp, None, Transport::Tcp));

        let mut tls_port = None;
        if let Some(port) = settings.tls_port {
            let tls_addr = SocketAddr::new(listen_ip, port);
            let listener = TcpListener::bind(tls_addr)
                .await
                .with_context(|| format!("cannot listen for TURN over TLS on {tls_addr}"))?;
            tls_port = Some(listener.local_addr()?.port());
            // The HTTPS certificate; TURN clients negotiate no application protocol.
            let mut tls = (*crate::tls::server_config(&config.tls)?).clone();
            tls.alpn_protocols.clear();
            let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
            streams.push((listener, Some(acceptor), Transport::Tls));
        }

        let (hung_up_tx, mut hung_up) = mpsc::unbounded_channel::<Flow>();
        for (listener, acceptor, transport) in streams {
            let local = listener.local_addr()?;
            let conn = StreamConn::new(local);
            let (peers_tx, mut peers) = mpsc::unbounded_channel();
            tasks.push(conn.serve(listener, acceptor, 2 * settings.max_allocations, peers_tx));
            let hung_up_tx = hung_up_tx.clone();
            tasks.push(tokio::spawn(async move {
                while let Some(remote) = peers.recv().await {
                    let _ = hung_up_tx.send(Flow {
                        transport,
                        local,
                        remote,
                    });
                }
            }));
            conn_configs.push(ConnConfig {
                conn: Arc::new(GateConn::new(
                    conn as Arc<dyn Conn + Send + Sync>,
                    transport,
                    gate.clone(),
                )),
                relay_addr_generator: relay_ports(),
            });
        }

        let (closed_tx, mut closed) = mpsc::channel(64);
        let server = Arc::new(
            Server::new(ServerConfig {
                conn_configs,
                realm: REALM.to_owned(),
                auth_handler: credentials.clone(),
                channel_bind_timeout: Duration::ZERO,
                alloc_close_notify: Some(closed_tx),
            })
            .await
            .context("cannot start the TURN server")?,
        );
        // Allocations the server ended leave the book.
        tasks.push(tokio::spawn({
            let allocations = allocations.clone();
            async move {
                while let Some(info) = closed.recv().await {
                    allocations.closed(
                        info.five_tuple.dst_addr,
                        info.five_tuple.src_addr,
                        &info.username,
                    );
                }
            }
        }));
        // A stream client that hung up cannot refresh: its allocation goes at once (when its
        // user has no other; else it expires with its lifetime).
        tasks.push(tokio::spawn({
            let allocations = allocations.clone();
            let server = server.clone();
            async move {
                while let Some(flow) = hung_up.recv().await {
                    if let Some(username) = allocations.sole_user_of(flow) {
                        let _ = server.delete_allocations_by_username(username).await;
                    }
                }
            }
        }));

        let host = public_host(config, public_url);
        let mut urls = vec![
            format!("turn:{host}:{udp_port}?transport=udp"),
            format!("turn:{host}:{tcp_port}?transport=tcp"),
        ];
        if let Some(port) = tls_port {
            urls.push(format!("turns:{host}:{port}?transport=tcp"));
        }
        tracing::info!(udp_port, tcp_port, ?tls_port, %host, "TURN relay listening");
        Ok(Some(Turn {
            credentials,
            urls,
            allocations,
            server,
            tasks,
        }))
    }

    /// The relay as an ICE server, with a fresh credential for `who` (e.g. `p12` for
    /// participant 12), and when that credential expires (unix seconds).
    pub fn ice_server(&self, who: &str) -> (IceServer, u64) {
        let (username, credential, expiry) = self.credentials.mint(who, SystemTime::now());
        let server = IceServer {
            urls: self.urls.clone(),
            username: Some(username),
            credential: Some(credential),
        };
        (server, expiry)
    }

    /// Puts the relay's figures into `/metrics`.
    pub fn report(&self, metrics: &Metrics) {
        metrics.set_gauge(
            "homeroom_turn_allocations",
            "Relay allocations on the built-in TURN server.",
            self.allocations.live() as i64,
        );
        metrics.set_series(
            "homeroom_turn_relayed_bytes_total",
            "Payload bytes the built-in TURN server relayed, both directions.",
            Kind::Counter,
            "",
            self.allocations.relayed_bytes.load(Ordering::Relaxed) as i64,
        );
        let refusals = self.allocations.refusals();
        for reason in REASONS {
            metrics.set_series(
                "homeroom_turn_refusals_total",
                "Requests the built-in TURN server refused, by reason.",
                Kind::Counter,
                &format!("reason=\"{reason}\""),
                refusals.get(reason).copied().unwrap_or(0) as i64,
            );
        }
    }

    /// Ends every allocation and stops listening (giving up after a second: shutdown must
    /// not wait on the relay).
    pub async fn close(&self) {
        let _ = tokio::time::timeout(Duration::from_secs(1), self.server.close()).await;
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// The ICE servers a client is told: the configured ones and, when the relay runs, the
/// built-in one with a fresh credential for `who`; with the built-in credential's expiry.
pub fn ice_servers(state: &crate::state::AppState, who: &str) -> (Vec<IceServer>, Option<u64>) {
    let mut servers = state.config.media.ice_servers.clone();
    let expiry = state.turn.as_ref().map(|turn| {
        let (server, expiry) = turn.ice_server(who);
        servers.push(server);
        expiry
    });
    (servers, expiry)
}

/// The host clients reach the relay at: `turn.public_host`, else the configured public URL's
/// host, else `media.public_ip`, else the host of the address printed at start.
fn public_host(config: &Config, public_url: &url::Url) -> String {
    if let Some(host) = &config.turn.public_host {
        return host.clone();
    }
    let url_host = |url: &url::Url| url.host_str().map(str::to_owned);
    if let Some(host) = config.public_url.as_ref().and_then(url_host) {
        return host;
    }
    if let Some(ip) = config.media.public_ip {
        return match ip {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => format!("[{v6}]"),
        };
    }
    url_host(public_url).unwrap_or_else(|| "localhost".to_owned())
}
