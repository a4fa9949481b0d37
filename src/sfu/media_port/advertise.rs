//! ICE over TCP arrives on the HTTPS port, but the `webrtc` crate names a connection's passive
//! TCP candidate after the listener it bound itself, an ephemeral port, before the runtime
//! swapped that listener for the streams the HTTPS listener routes to it (`runtime.rs`,
//! `tcp.rs`). Inside the connection that name stays: its ICE agent finds the local candidate
//! of an incoming check by it, so the routed streams carry it as their local address. What
//! the server tells clients, its descriptions and trickled candidates, carries the HTTPS port
//! instead, where clients can reach it.

use std::sync::Arc;

use rtc::peer_connection::transport::RTCIceTcpCandidateType;
use webrtc::data_channel::DataChannel;
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::RTCIceProtocol;
use webrtc::peer_connection::{
    PeerConnectionEventHandler, RTCIceConnectionState, RTCIceGatheringState,
    RTCPeerConnectionIceErrorEvent, RTCPeerConnectionIceEvent, RTCPeerConnectionState,
    RTCSignalingState,
};

/// `text`, an SDP or one candidate, with the port of every passive TCP candidate set to
/// `port`.
pub fn advertise_tcp_port(text: &str, port: u16) -> String {
    text.split("\r\n")
        .map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let passive_tcp = line.contains("candidate:")
                && fields.len() > 9
                && fields[2].eq_ignore_ascii_case("tcp")
                && fields.windows(2).any(|w| w == ["tcptype", "passive"]);
            if !passive_tcp {
                return line.to_owned();
            }
            let port = port.to_string();
            let mut fields = fields;
            fields[5] = &port;
            fields.join(" ")
        })
        .collect::<Vec<_>>()
        .join("\r\n")
}

/// A connection's event handler whose trickled passive TCP candidates carry the HTTPS port.
pub struct Advertised {
    inner: Arc<dyn PeerConnectionEventHandler>,
    tcp_port: u16,
}

impl Advertised {
    pub fn wrap(
        inner: Arc<dyn PeerConnectionEventHandler>,
        tcp_port: u16,
    ) -> Arc<dyn PeerConnectionEventHandler> {
        Arc::new(Advertised { inner, tcp_port })
    }
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Advertised {
    async fn on_negotiation_needed(&self) {
        self.inner.on_negotiation_needed().await
    }

    async fn on_ice_candidate(&self, mut event: RTCPeerConnectionIceEvent) {
        let candidate = &mut event.candidate;
        if candidate.protocol == RTCIceProtocol::Tcp
            && candidate.tcp_type == RTCIceTcpCandidateType::Passive
        {
            candidate.port = self.tcp_port;
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

    #[test]
    fn passive_tcp_candidates_name_the_https_port() {
        let sdp = "m=video 9 UDP/TLS/RTP/SAVPF 96\r\n\
            a=candidate:1 1 udp 2130706431 10.0.0.1 40000 typ host\r\n\
            a=candidate:2 1 tcp 2124414975 10.0.0.1 45007 typ host tcptype passive\r\n\
            a=candidate:2 1 tcp 2128609279 10.0.0.1 9 typ host tcptype active\r\n";
        let advertised = advertise_tcp_port(sdp, 8443);
        assert!(advertised.contains("tcp 2124414975 10.0.0.1 8443 typ host tcptype passive\r\n"));
        assert!(advertised.contains("udp 2130706431 10.0.0.1 40000 typ host\r\n"));
        assert!(advertised.contains("10.0.0.1 9 typ host tcptype active\r\n"));
        let trickled = "candidate:2 1 tcp 2124414975 10.0.0.1 45007 typ host tcptype passive";
        assert_eq!(
            advertise_tcp_port(trickled, 8443),
            "candidate:2 1 tcp 2124414975 10.0.0.1 8443 typ host tcptype passive"
        );
    }
}
