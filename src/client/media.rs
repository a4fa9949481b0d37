//! Synthetic media for test and load clients: the checked payload every packet carries (a
//! sequence number and a checksum, which `receive.rs` checks), how fast and in what shape a
//! publisher sends, and the client's peer connections.
//!
//! The packets themselves are made in `sender.rs` (VP8 layout in `vp8.rs`), the tracks of a
//! publisher in `publish.rs`, its simulcast layers in `simulcast.rs`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rtc::interceptor::{NackGeneratorBuilder, NackResponderBuilder, Slot};
use rtc::peer_connection::configuration::interceptor_registry::{
    configure_rtcp_reports, configure_simulcast_extension_headers, configure_twcc_receiver_only,
};
use rtc::rtp_transceiver::rtp_sender::{RTCPFeedback, RtpCodecKind};
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCConfigurationBuilder, RTCIceServer, RTCIceTransportPolicy, Registry, SettingEngineBuilder,
};

/// How fast a synthetic publisher sends: its full shape, or while throttled a trickle of one
/// one-packet frame a second on each track. The trickle keeps the tracks alive (a track exists
/// for the server from its first packet on), so a run can measure what connected but idle
/// viewers cost before the media starts in earnest.
#[derive(Debug, Clone, Default)]
pub struct Throttle(Arc<AtomicBool>);

impl Throttle {
    /// A throttle that holds the sender to the trickle until `release`.
    pub fn trickle() -> Throttle {
        Throttle(Arc::new(AtomicBool::new(true)))
    }

    pub fn release(&self) {
        self.0.store(false, Ordering::Relaxed);
    }

    pub(super) fn trickling(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// The shape of the synthetic video: frames per second and bits per second.
#[derive(Debug, Clone, Copy)]
pub struct VideoShape {
    pub fps: u32,
    pub bitrate_bps: u32,
}

impl Default for VideoShape {
    fn default() -> Self {
        VideoShape {
            fps: 30,
            bitrate_bps: 720_000,
        }
    }
}

/// A payload: 4 bytes of sequence number, 4 of checksum over the sequence number and the
/// filler, then filler.
pub fn make_payload(seq: u32, len: usize) -> Vec<u8> {
    let mut payload = vec![0u8; len.max(16)];
    for (i, b) in payload.iter_mut().enumerate().skip(8) {
        *b = (seq as usize).wrapping_mul(31).wrapping_add(i) as u8;
    }
    payload[..4].copy_from_slice(&seq.to_be_bytes());
    let sum = checksum(seq, &payload[8..]);
    payload[4..8].copy_from_slice(&sum.to_be_bytes());
    payload
}

/// FNV-1a over 8-byte words (then the bytes left over), folded to 32 bits. Each step is a
/// bijection of the state for given input, so a payload that differs in any one word always
/// ends in a different 64-bit state; a word at a time costs an eighth of a byte at a time,
/// which matters on the receive side, where every packet of every subscriber is checked.
fn checksum(seq: u32, bytes: &[u8]) -> u32 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut words = bytes.chunks_exact(8);
    let mut h = (0xcbf2_9ce4_8422_2325u64 ^ u64::from(seq)).wrapping_mul(PRIME);
    for word in &mut words {
        let word = u64::from_le_bytes(word.try_into().expect("8 bytes"));
        h = (h ^ word).wrapping_mul(PRIME);
    }
    for b in words.remainder() {
        h = (h ^ u64::from(*b)).wrapping_mul(PRIME);
    }
    (h ^ (h >> 32)) as u32
}

/// The sequence number of an intact payload: none when any byte differs from what
/// `make_payload` wrote.
pub fn check_payload(payload: &[u8]) -> Option<u32> {
    if payload.len() < 16 {
        return None;
    }
    let seq = u32::from_be_bytes(payload[..4].try_into().expect("4 bytes"));
    let sum = u32::from_be_bytes(payload[4..8].try_into().expect("4 bytes"));
    (checksum(seq, &payload[8..]) == sum).then_some(seq)
}

/// The rtc crate's default interceptors (`register_default_interceptors`: NACK, RTCP
/// reports, transport-wide congestion control feedback, and the header extensions that name
/// simulcast streams), except that a lost packet is asked for once. The crate's generator
/// repeats its NACKs every 100 ms whatever the round trip; on a link with 300 ms of queue a
/// browser asks once per round trip, while the crate's asks three times, and every resent
/// copy then takes room on the link that lost the packet.
fn interceptors(media: &mut MediaEngine) -> Result<Registry, String> {
    for parameter in ["", "pli"] {
        let feedback = RTCPFeedback {
            typ: "nack".into(),
            parameter: parameter.into(),
        };
        media.register_feedback(feedback, RtpCodecKind::Video);
    }
    let registry = Registry::new()
        .with(Slot::NackResponder, NackResponderBuilder::new().build())
        .with(
            Slot::NackGenerator,
            NackGeneratorBuilder::new()
                .with_max_nacks_per_packet(1)
                .build(),
        );
    configure_simulcast_extension_headers(media).map_err(|e| e.to_string())?;
    let registry = configure_twcc_receiver_only(registry, media).map_err(|e| e.to_string())?;
    Ok(configure_rtcp_reports(registry))
}

/// A client peer connection on loopback, with the keyframe-request interceptor so the
/// publisher can count the PLIs it is sent.
pub async fn new_pc(
    handler: Arc<dyn PeerConnectionEventHandler>,
    bind: &str,
) -> Result<Arc<dyn PeerConnection>, String> {
    new_pc_relayed(handler, bind, None).await
}

/// A connection that, with `relay`, gathers only relay candidates on those TURN servers
/// (`iceTransportPolicy: "relay"`), as a browser behind the strictest firewall ends up doing.
pub async fn new_pc_relayed(
    handler: Arc<dyn PeerConnectionEventHandler>,
    bind: &str,
    relay: Option<Vec<crate::config::IceServer>>,
) -> Result<Arc<dyn PeerConnection>, String> {
    let mut configuration = RTCConfigurationBuilder::new();
    if let Some(servers) = relay {
        configuration = configuration
            .with_ice_servers(
                servers
                    .into_iter()
                    .map(|s| RTCIceServer {
                        urls: s.urls,
                        username: s.username.unwrap_or_default(),
                        credential: s.credential.unwrap_or_default(),
                    })
                    .collect(),
            )
            .with_ice_transport_policy(RTCIceTransportPolicy::Relay);
    }
    let mut media = MediaEngine::default();
    media.register_default_codecs().map_err(|e| e.to_string())?;
    let registry = crate::sfu::keyframe_requests::register(interceptors(&mut media)?);
    let settings = SettingEngineBuilder::new()
        .with_include_loopback_candidate(true)
        .build();
    let pc = PeerConnectionBuilder::new()
        .with_configuration(configuration.build())
        .with_media_engine(media)
        .with_interceptor_registry(registry)
        .with_setting_engine(settings)
        .with_handler(handler)
        .with_udp_addrs(vec![bind.to_owned()])
        .build()
        .await
        .map_err(|e| format!("peer connection: {e}"))?;
    Ok(Arc::new(pc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_checks_and_any_changed_byte_is_caught() {
        for len in [16, 100, 1037, 1100] {
            let payload = make_payload(77, len);
            assert_eq!(check_payload(&payload), Some(77));
            for i in 0..payload.len() {
                let mut bad = payload.clone();
                bad[i] ^= 0x20;
                assert_eq!(check_payload(&bad), None, "byte {i} of {len}");
            }
        }
        assert_eq!(check_payload(&[0; 15]), None);
    }
}
