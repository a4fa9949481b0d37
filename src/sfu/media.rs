//! Making peer connections: codecs, interceptors (NACKs to publishers, RTCP reports, TWCC), the one media
//! port (`media_port/`), NAT 1:1 and ICE over TCP. Every connection of the SFU is built here,
//! the same way.
//!
//! The SFU's connections gather host candidates (UDP, and TCP with ICE-TCP) and nothing
//! else: no STUN or TURN server. Clients relay through TURN when they must; the server is
//! reached directly, and allocating on a relay for itself would only cost the relay.
//!
//! Only codecs every viewer can decode are registered: Opus, VP8 and H.264 constrained
//! baseline. A publisher offering none of them is refused (`sdp::check_offer`) rather than
//! forwarded to viewers who would see a black picture.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rtc::crypto::SignatureScheme;
use rtc::ice::mdns::MulticastDnsMode;
use rtc::interceptor::{NackGeneratorBuilder, Slot};
use rtc::peer_connection::certificate::{CertificateParams, RTCCertificate};
use rtc::peer_connection::configuration::interceptor_registry::{
    configure_rtcp_reports, configure_simulcast_extension_headers, configure_twcc_receiver_only,
};
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpHeaderExtensionCapability, RtpCodecKind,
};
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCConfigurationBuilder, RTCIceCandidateType, RTCSessionDescription, Registry,
    SettingEngineBuilder,
};

use super::error::RoomError;
use super::media_port::advertise::advertise_tcp_port;
use super::media_port::{MediaPort, PortRuntime};
use super::paths::{PathWatch, RelayAddresses};
use super::quality::estimate::{ask_for_feedback, congestion_control, Bandwidth};
use crate::config::{LimitsConfig, MediaConfig};

/// The network side of media, from `[media]` in the config.
pub struct MediaSettings {
    port: MediaPort,
    /// The address candidates are gathered on: the one configured interface, or all of them.
    bind_ip: IpAddr,
    public_ip: Option<IpAddr>,
    ice_tcp: bool,
    /// The built-in TURN relay's sockets, to tell relayed connections apart in `/metrics`.
    pub relays: Arc<RelayAddresses>,
    /// How long a connection may take to come up before its participant is dropped
    /// (`limits.media_connect_timeout_secs`): one that never answers must not hold a port.
    pub connect_timeout: Duration,
    /// How long a subscriber offer waits for its answer before it is rolled back and made
    /// again (`limits.subscriber_answer_timeout_secs`).
    pub answer_timeout: Duration,
    /// The DTLS certificate of every connection: made once, rather than a key pair per
    /// connection on the join path. Browsers check it against the SDP fingerprint only.
    certificate: RTCCertificate,
}

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// What the client sent (a description, a candidate) was refused: its fault, not the
    /// server's.
    #[error("{0}")]
    Refused(String),
    /// The WebRTC stack failed at something the server asked of it.
    #[error("{0}")]
    WebRtc(#[from] webrtc::error::Error),
}

impl MediaError {
    /// A description the client sent could not be applied.
    pub fn refused(e: impl std::fmt::Display) -> MediaError {
        MediaError::Refused(format!("the offer was refused: {e}"))
    }
}

/// Whose fault a media failure is: the client's description, or the server's own (which is
/// logged).
impl From<MediaError> for RoomError {
    fn from(e: MediaError) -> Self {
        match e {
            MediaError::Refused(message) => RoomError::BadSdp(message),
            MediaError::WebRtc(e) => {
                tracing::error!(error = %e, "media failure");
                RoomError::Internal
            }
        }
    }
}

/// The codecs of every connection: Opus, VP8 and H.264 constrained baseline, each video codec
/// with its RTX (browsers drop RTX for a codec without one).
pub fn media_engine() -> Result<MediaEngine, webrtc::error::Error> {
    let mut media = MediaEngine::default();
    let feedback = |typ: &str, parameter: &str| RTCPFeedback {
        typ: typ.to_owned(),
        parameter: parameter.to_owned(),
    };
    let video_feedback = vec![
        feedback("goog-remb", ""),
        feedback("ccm", "fir"),
        feedback("nack", ""),
        feedback("nack", "pli"),
    ];
    let codec = |mime: &str, clock_rate, channels, fmtp: &str, rtcp_feedback, payload_type| {
        RTCRtpCodecParameters {
            rtp_codec: RTCRtpCodec {
                mime_type: mime.to_owned(),
                clock_rate,
                channels,
                sdp_fmtp_line: fmtp.to_owned(),
                rtcp_feedback,
            },
            payload_type,
        }
    };
    media.register_codec(
        codec(
            "audio/opus",
            48000,
            2,
            "minptime=10;useinbandfec=1",
            vec![],
            111,
        ),
        RtpCodecKind::Audio,
    )?;
    for (mime, fmtp, pt) in [
        ("video/VP8", "", 96),
        (
            "video/H264",
            "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
            125,
        ),
    ] {
        media.register_codec(
            codec(mime, 90000, 0, fmtp, video_feedback.clone(), pt),
            RtpCodecKind::Video,
        )?;
        media.register_codec(
            codec("video/rtx", 90000, 0, &format!("apt={pt}"), vec![], pt + 1),
            RtpCodecKind::Video,
        )?;
    }
    Ok(media)
}

/// The header extension in which a browser says how loud each audio packet is (RFC 6464).
pub const AUDIO_LEVEL_URI: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";

/// Which way media goes on a connection of the SFU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// A publisher's: the SFU receives (simulcast too).
    Receives,
    /// A viewer's: the SFU sends, paced to an estimate of the viewer's link.
    Sends,
}

/// A peer connection of the SFU, on the media port.
pub struct Connection {
    pub pc: Arc<dyn PeerConnection>,
    /// The estimate of the viewer's link, on a connection the SFU sends on.
    pub bandwidth: Option<Arc<Bandwidth>>,
    runtime: Arc<PortRuntime>,
    /// The HTTPS port ICE over TCP arrives on, told to clients (`media_port/advertise.rs`).
    tcp_port: Option<u16>,
}

impl Connection {
    /// Applies a local description; the media port routes its ICE checks here from now on.
    pub async fn set_local_description(
        &self,
        description: RTCSessionDescription,
    ) -> Result<(), webrtc::error::Error> {
        self.runtime.claim_description(&description.sdp);
        self.pc.set_local_description(description).await
    }

    /// Runs media work of this connection on its media reactor, apart from signalling, HTTP
    /// and the database.
    pub fn spawn<F>(&self, task: F) -> tokio::task::JoinHandle<()>
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.runtime.spawn_media(task)
    }

    /// The local description's SDP as clients are told it (TCP candidates on the HTTPS port).
    pub async fn local_sdp(&self) -> Option<String> {
        let sdp = self.pc.local_description().await?.sdp;
        Some(self.advertised(sdp))
    }

    /// The same once ICE gathering has finished (at most 2 s): for WHIP, WHEP and the
    /// connection check, where candidates cannot trickle from the server.
    pub async fn gathered_sdp(&self) -> Option<String> {
        let sdp = gathered_description(&self.pc).await?.sdp;
        Some(self.advertised(sdp))
    }

    fn advertised(&self, sdp: String) -> String {
        match self.tcp_port {
            Some(port) => advertise_tcp_port(&sdp, port),
            None => sdp,
        }
    }
}

impl MediaSettings {
    /// Binds the media port: `[media] port`, or the number of the HTTPS port `https` when
    /// none is set.
    pub fn new(
        config: &MediaConfig,
        limits: &LimitsConfig,
        https: SocketAddr,
    ) -> std::io::Result<MediaSettings> {
        let bind_ip = config
            .interfaces
            .first()
            .copied()
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let udp = SocketAddr::new(bind_ip, config.port.unwrap_or(https.port()));
        let port = MediaPort::bind(udp, config.ice_tcp.then_some(https.port())).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("cannot bind the media port {udp} (UDP): {e}"),
            )
        })?;
        let certificate = dtls_certificate()
            .map_err(|e| std::io::Error::other(format!("cannot make the DTLS certificate: {e}")))?;
        Ok(MediaSettings {
            certificate,
            port,
            bind_ip,
            public_ip: config.public_ip,
            ice_tcp: config.ice_tcp,
            relays: Arc::default(),
            connect_timeout: Duration::from_secs(limits.media_connect_timeout_secs),
            answer_timeout: Duration::from_secs(limits.subscriber_answer_timeout_secs),
        })
    }

    /// The media port, for ICE over TCP on the HTTPS listener and for /metrics.
    pub fn port(&self) -> &MediaPort {
        &self.port
    }

    /// Builds a connection on the media port; its local descriptions are applied through
    /// [`Connection::set_local_description`], so the port knows its ICE username fragments.
    pub async fn connect(
        &self,
        handler: Arc<dyn PeerConnectionEventHandler>,
        direction: Direction,
    ) -> Result<Connection, MediaError> {
        let runtime = self.port.runtime();
        let tcp_port = self.port.tcp_port().filter(|_| self.ice_tcp);
        let mut media = media_engine()?;
        ask_for_feedback(&mut media)?;
        // NACK and PLI feedback are offered by `media_engine`; only the publisher's side
        // generates NACKs. A viewer's NACK is answered by the SFU from the track's history
        // (`history.rs`, `output.rs`), not by a responder keeping 1024 packets per viewer.
        let registry = Registry::new();
        let registry = configure_twcc_receiver_only(registry, &mut media)?;
        configure_simulcast_extension_headers(&mut media)?;
        let (registry, bandwidth) = match direction {
            // No receiver reports on a publisher's connection: a browser names each simulcast
            // encoding (MID and RID header extensions) only until a report acknowledges its
            // SSRC, and the webrtc stack forgets which SSRC is which encoding whenever the
            // publisher offers again (a screen share, an ICE restart); without the names it
            // would then drop the camera. Its uplink estimate needs only transport-wide
            // feedback.
            Direction::Receives => {
                // Who is speaking, for the tiles of a tutoring room (`quality/reception.rs`).
                media.register_header_extension(
                    RTCRtpHeaderExtensionCapability {
                        uri: AUDIO_LEVEL_URI.to_owned(),
                    },
                    RtpCodecKind::Audio,
                    None,
                )?;
                let registry =
                    registry.with(Slot::NackGenerator, NackGeneratorBuilder::new().build());
                (registry, None)
            }
            Direction::Sends => {
                let (registry, bandwidth) = congestion_control(configure_rtcp_reports(registry));
                (registry, Some(bandwidth))
            }
        };
        let registry = super::keyframe_requests::register(registry);
        // Home Wi-Fi drops out for a second now and then; a connection silent for 3 s counts
        // as disconnected, and one that stays silent for 10 s has failed (its publisher leaves).
        let mut settings = SettingEngineBuilder::new()
            .with_ice_timeouts(
                Some(Duration::from_secs(3)),
                Some(Duration::from_secs(10)),
                Some(Duration::from_secs(1)),
            )
            // Candidates are the port's addresses; mDNS names would need a socket each.
            .with_multicast_dns_mode(MulticastDnsMode::Disabled);
        if let Some(ip) = self.public_ip {
            settings = settings.with_nat_1to1_ips(vec![ip.to_string()], RTCIceCandidateType::Host);
        }
        if self.bind_ip.is_loopback() {
            settings = settings.with_include_loopback_candidate(true);
        }
        // No ICE servers: host candidates only (see the module's doc), and one certificate.
        let configuration = RTCConfigurationBuilder::new()
            .with_certificates(vec![self.certificate.clone()])
            .build();
        // Trickled TCP candidates name the HTTPS port (media_port/advertise.rs).
        let watch = PathWatch::new(handler, self.relays.clone(), tcp_port);
        // The crate binds an ephemeral socket on this address; the runtime swaps it for the
        // shared port (see media_port/runtime.rs).
        let gather_on = SocketAddr::new(self.bind_ip, 0);
        let mut builder = PeerConnectionBuilder::new()
            .with_configuration(configuration)
            .with_media_engine(media)
            .with_interceptor_registry(registry)
            .with_setting_engine(settings.build())
            .with_handler(watch.clone())
            // Its driver runs on a media reactor, apart from signalling and HTTP. Asking for a
            // "dedicated reactor" (the port's runtime gives it its media reactor) also
            // makes a connection dropped without `close` stop its driver.
            .with_runtime(runtime.clone())
            .with_dedicated_reactor_pool_size(1)
            .with_udp_addrs(vec![gather_on]);
        if self.ice_tcp {
            builder = builder.with_tcp_addrs(vec![gather_on]);
        }
        let pc: Arc<dyn PeerConnection> = Arc::new(builder.build().await?);
        watch.watch(&pc);
        Ok(Connection {
            pc,
            bandwidth,
            runtime,
            tcp_port,
        })
    }
}

/// An ECDSA P-256 certificate, as browsers make for themselves.
fn dtls_certificate() -> Result<RTCCertificate, Box<dyn std::error::Error>> {
    let provider = rtc::crypto::default_provider()?;
    Ok(RTCCertificate::generate(
        provider.crypto(),
        SignatureScheme::EcdsaP256Sha256,
        CertificateParams::new(vec!["homeroom".to_owned()])?,
    )?)
}

/// The local description once ICE gathering has finished (at most 2 s), for clients (WHIP,
/// WHEP) that cannot trickle; the server's own connections use [`Connection::gathered_sdp`].
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
