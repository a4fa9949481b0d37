//! Which way each media connection took, for `/metrics`: straight over UDP, over ICE-TCP,
//! or through a TURN relay (the built-in one or another). Counted once per connection, when
//! it first reaches "connected", from its selected candidate pair: a relay candidate, or a
//! remote address that is one of the built-in relay's sockets (the SFU may know it only as a
//! peer-reflexive candidate), is the relay; else a TCP candidate is TCP; else UDP.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock, Weak};

use rtc::peer_connection::transport::RTCIceTcpCandidateType;
use webrtc::data_channel::DataChannel;
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionEventHandler, RTCIceCandidate, RTCIceCandidateType,
    RTCIceConnectionState, RTCIceGatheringState, RTCIceProtocol, RTCPeerConnectionIceErrorEvent,
    RTCPeerConnectionIceEvent, RTCPeerConnectionState, RTCSignalingState,
};

use crate::metrics::Metrics;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    Udp,
    Tcp,
    Relay,
}

impl Path {
    const ALL: [Path; 3] = [Path::Udp, Path::Tcp, Path::Relay];

    fn label(self) -> &'static str {
        match self {
            Path::Udp => "udp",
            Path::Tcp => "tcp",
            Path::Relay => "relay",
        }
    }
}

/// Connections that reached "connected", by path (indexed as `Path::ALL`).
static CONNECTED: [AtomicU64; 3] = [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)];

/// The built-in relay's live relay sockets (filled by `turn::relay`).
#[derive(Default)]
pub struct RelayAddresses(RwLock<HashSet<SocketAddr>>);

impl RelayAddresses {
    pub fn insert(&self, addr: SocketAddr) {
        self.0.write().expect("relays lock").insert(addr);
    }

    pub fn remove(&self, addr: SocketAddr) {
        self.0.write().expect("relays lock").remove(&addr);
    }

    pub fn contains(&self, addr: SocketAddr) -> bool {
        self.0.read().expect("relays lock").contains(&addr)
    }
}

/// The path of a connection whose selected pair ends at `remote`.
pub fn classify(
    local: &RTCIceCandidate,
    remote: &RTCIceCandidate,
    relays: &RelayAddresses,
) -> Path {
    let remote_addr = remote
        .address
        .parse::<IpAddr>()
        .ok()
        .map(|ip| SocketAddr::new(ip, remote.port));
    if remote.typ == RTCIceCandidateType::Relay || remote_addr.is_some_and(|a| relays.contains(a)) {
        Path::Relay
    } else if local.protocol == RTCIceProtocol::Tcp || remote.protocol == RTCIceProtocol::Tcp {
        Path::Tcp
    } else {
        Path::Udp
    }
}

/// Puts the counts into `/metrics`.
pub fn report(metrics: &Metrics) {
    for (path, count) in Path::ALL.iter().zip(&CONNECTED) {
        metrics.set_series(
            "homeroom_media_connections",
            "Media connections that came up, by the path they took (udp, tcp, relay).",
            crate::metrics::Kind::Counter,
            &format!("path=\"{}\"", path.label()),
            count.load(Ordering::Relaxed) as i64,
        );
    }
}

/// Wraps a connection's event handler to count its path the first time it connects, and to
/// give its trickled passive TCP candidates the HTTPS port (`media_port/advertise.rs`).
pub(crate) struct PathWatch {
    inner: Arc<dyn PeerConnectionEventHandler>,
    /// The HTTPS port, when ICE over TCP is on.
    tcp_port: Option<u16>,
    pc: OnceLock<Weak<dyn PeerConnection>>,
    counted: AtomicBool,
    relays: Arc<RelayAddresses>,
}

impl PathWatch {
    pub(crate) fn new(
        inner: Arc<dyn PeerConnectionEventHandler>,
        relays: Arc<RelayAddresses>,
        tcp_port: Option<u16>,
    ) -> Arc<PathWatch> {
        Arc::new(PathWatch {
            inner,
            tcp_port,
            pc: OnceLock::new(),
            counted: AtomicBool::new(false),
            relays,
        })
    }

    /// The connection this handler serves, once built.
    pub(crate) fn watch(&self, pc: &Arc<dyn PeerConnection>) {
        let _ = self.pc.set(Arc::downgrade(pc));
    }
}

/// Counts the path of `pc`'s selected candidate pair. The pair may be settled a moment after
/// "connected" is reported, so it is looked for a few times.
async fn count(pc: Weak<dyn PeerConnection>, relays: Arc<RelayAddresses>) {
    for _ in 0..20 {
        let Some(pc) = pc.upgrade() else {
            return;
        };
        if let Some(path) = selected_path(&pc, &relays).await {
            let index = Path::ALL.iter().position(|p| *p == path).unwrap_or(0);
            CONNECTED[index].fetch_add(1, Ordering::Relaxed);
            tracing::debug!(path = path.label(), "media connection up");
            return;
        }
        drop(pc);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    tracing::debug!("media connection up, but its candidate pair was not found");
}

/// The path of the selected pair of `pc`'s transport, when there is one.
async fn selected_path(pc: &Arc<dyn PeerConnection>, relays: &RelayAddresses) -> Option<Path> {
    for transceiver in pc.get_transceivers().await {
        let mut transports = Vec::new();
        if let Ok(Some(receiver)) = transceiver.receiver().await {
            transports.push(receiver.transport().await);
        }
        if let Ok(Some(sender)) = transceiver.sender().await {
            transports.push(sender.transport().await);
        }
        for transport in transports.into_iter().flatten().flatten() {
            if let Ok(Some(pair)) = transport
                .ice_transport()
                .get_selected_candidate_pair()
                .await
            {
                return Some(classify(pair.local(), pair.remote(), relays));
            }
        }
    }
    None
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for PathWatch {
    async fn on_negotiation_needed(&self) {
        self.inner.on_negotiation_needed().await
    }

    async fn on_ice_candidate(&self, mut event: RTCPeerConnectionIceEvent) {
        let candidate = &mut event.candidate;
        if let Some(port) = self.tcp_port {
            if candidate.protocol == RTCIceProtocol::Tcp
                && candidate.tcp_type == RTCIceTcpCandidateType::Passive
            {
                candidate.port = port;
            }
        }
        self.inner.on_ice_candidate(event).await
    }

    async fn on_ice_candidate_error(&self, event: RTCPeerConnectionIceErrorEvent) {
        self.inner.on_ice_candidate_error(event).await
    }

    async fn on_signaling_state_change(&self, state: RTCSignalingState) {
        self.inner.on_signaling_state_change(state).await
    }

    async fn on_ice_connection_state_change(&self, state: RTCIceConnectionState) {
        self.inner.on_ice_connection_state_change(state).await
    }

    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        self.inner.on_ice_gathering_state_change(state).await
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        // Counted in a task of its own: the connection's driver is waiting for this handler.
        if state == RTCPeerConnectionState::Connected && !self.counted.swap(true, Ordering::Relaxed)
        {
            if let Some(pc) = self.pc.get() {
                tokio::spawn(count(pc.clone(), self.relays.clone()));
            }
        }
        self.inner.on_connection_state_change(state).await
    }

    async fn on_data_channel(&self, data_channel: Arc<dyn DataChannel>) {
        self.inner.on_data_channel(data_channel).await
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        self.inner.on_track(track).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(
        typ: RTCIceCandidateType,
        protocol: RTCIceProtocol,
        addr: &str,
    ) -> RTCIceCandidate {
        let addr: SocketAddr = addr.parse().unwrap();
        RTCIceCandidate {
            typ,
            protocol,
            address: addr.ip().to_string(),
            port: addr.port(),
            ..Default::default()
        }
    }

    #[test]
    fn paths_by_candidate() {
        let relays = RelayAddresses::default();
        relays.insert("127.0.0.1:40000".parse().unwrap());
        let host = candidate(
            RTCIceCandidateType::Host,
            RTCIceProtocol::Udp,
            "127.0.0.1:50000",
        );
        let tcp = candidate(
            RTCIceCandidateType::Host,
            RTCIceProtocol::Tcp,
            "127.0.0.1:50000",
        );
        let relay = candidate(
            RTCIceCandidateType::Relay,
            RTCIceProtocol::Udp,
            "192.0.2.1:3",
        );
        let prflx = candidate(
            RTCIceCandidateType::Prflx,
            RTCIceProtocol::Udp,
            "127.0.0.1:40000",
        );
        let client = candidate(
            RTCIceCandidateType::Host,
            RTCIceProtocol::Udp,
            "127.0.0.1:9",
        );
        assert_eq!(classify(&host, &client, &relays), Path::Udp);
        assert_eq!(classify(&tcp, &client, &relays), Path::Tcp);
        assert_eq!(classify(&host, &relay, &relays), Path::Relay);
        assert_eq!(classify(&host, &prflx, &relays), Path::Relay);
    }
}
