//! Making peer connections: codecs, interceptors (NACK, RTCP reports, TWCC), the UDP port
//! pool, NAT 1:1 and ICE over TCP. Every connection of the SFU is built here, the same way.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use webrtc::peer_connection::{
    register_default_interceptors, MediaEngine, PeerConnection, PeerConnectionBuilder,
    PeerConnectionEventHandler, RTCConfigurationBuilder, RTCIceCandidateType, RTCIceServer,
    Registry, SettingEngineBuilder,
};

use super::ports::{PortLease, PortPool};
use crate::config::{IceServer, MediaConfig};

/// The network side of media, from `[media]` in the config.
pub struct MediaSettings {
    ports: PortPool,
    /// The address sockets bind to: the one configured interface, or all of them.
    bind_ip: IpAddr,
    public_ip: Option<IpAddr>,
    ice_tcp: bool,
    pub ice_servers: Vec<IceServer>,
    /// How long a connection may take to come up before its participant is dropped
    /// (`limits.media_connect_timeout_secs`): one that never answers must not hold a port.
    pub connect_timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("no free media port in the configured range")]
    NoPort,
    #[error("{0}")]
    WebRtc(#[from] webrtc::error::Error),
}

/// A peer connection with the port it holds; the port returns to the pool when this drops.
pub struct Connection {
    pub pc: Arc<dyn PeerConnection>,
    _port: PortLease,
}

impl MediaSettings {
    pub fn new(config: &MediaConfig, connect_timeout: Duration) -> MediaSettings {
        MediaSettings {
            ports: PortPool::new(config.udp_ports),
            bind_ip: config
                .interfaces
                .first()
                .copied()
                .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            public_ip: config.public_ip,
            ice_tcp: config.ice_tcp,
            ice_servers: config.ice_servers.clone(),
            connect_timeout,
        }
    }

    /// Builds a connection bound to a port of the pool.
    pub async fn connect(
        &self,
        handler: Arc<dyn PeerConnectionEventHandler>,
    ) -> Result<Connection, MediaError> {
        let lease = self
            .ports
            .take(self.bind_ip, self.ice_tcp)
            .ok_or(MediaError::NoPort)?;
        let addr = SocketAddr::new(self.bind_ip, lease.port);
        let mut media = MediaEngine::default();
        media.register_default_codecs()?;
        let registry = super::keyframe_requests::register(register_default_interceptors(
            Registry::new(),
            &mut media,
        )?);
        // Home Wi-Fi drops out for a second now and then; a connection silent for 3 s counts
        // as disconnected, and one that stays silent for 10 s has failed (its publisher leaves).
        let mut settings = SettingEngineBuilder::new().with_ice_timeouts(
            Some(Duration::from_secs(3)),
            Some(Duration::from_secs(10)),
            Some(Duration::from_secs(1)),
        );
        if let Some(ip) = self.public_ip {
            settings = settings.with_nat_1to1_ips(vec![ip.to_string()], RTCIceCandidateType::Host);
        }
        if self.bind_ip.is_loopback() {
            settings = settings.with_include_loopback_candidate(true);
        }
        // The server only answers ICE checks from clients that found it through signalling.
        let configuration = RTCConfigurationBuilder::new()
            .with_ice_servers(
                self.ice_servers
                    .iter()
                    .filter(|s| s.urls.iter().any(|u| u.starts_with("turn")))
                    .map(|s| RTCIceServer {
                        urls: s.urls.clone(),
                        username: s.username.clone().unwrap_or_default(),
                        credential: s.credential.clone().unwrap_or_default(),
                        ..Default::default()
                    })
                    .collect(),
            )
            .build();
        let mut builder = PeerConnectionBuilder::new()
            .with_configuration(configuration)
            .with_media_engine(media)
            .with_interceptor_registry(registry)
            .with_setting_engine(settings.build())
            .with_handler(handler)
            .with_udp_addrs(vec![addr]);
        if self.ice_tcp {
            builder = builder.with_tcp_addrs(vec![addr]);
        }
        let pc: Arc<dyn PeerConnection> = Arc::new(builder.build().await?);
        Ok(Connection { pc, _port: lease })
    }
}

/// The local description once ICE gathering has finished (at most 2 s): for WHIP and WHEP,
/// where candidates cannot trickle from the server and travel in the SDP instead.
pub async fn gathered_description(
    pc: &Arc<dyn PeerConnection>,
) -> Option<webrtc::peer_connection::RTCSessionDescription> {
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    let mut local = pc.local_description().await?;
    while !local.sdp.contains("a=end-of-candidates") && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
        local = pc.local_description().await?;
    }
    Some(local)
}
