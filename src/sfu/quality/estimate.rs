//! The bandwidth estimate of one receiving connection: Google Congestion Control as the rtc
//! crate implements it, fed by the receiver's transport-wide congestion control feedback, and
//! a pacer that spreads what the SFU sends over time instead of in bursts.
//!
//! The crate keeps its estimator inside the interceptor chain, out of the application's reach,
//! so [`Estimator`] wraps it and publishes each new value to a [`Bandwidth`] the subscriber's
//! quality loop reads.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use rtc::interceptor::{
    BandwidthEstimator, CongestionControlBuilder, EstimatorStats, Gcc, PacerBuilder, PacketReport,
    Registry, Slot, TwccSenderBuilder,
};
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpHeaderExtensionCapability, RtpCodecKind,
};
use webrtc::peer_connection::MediaEngine;

use super::resend::{self, ResendBudget};
use crate::sfu::rtcp_filter::RtcpFilter;

/// Where a new viewer's estimate starts: enough for a medium layer, so a family on good Wi-Fi
/// sees a sharp picture within seconds, while a weak link shows itself within a second or two
/// and is stepped down.
const INITIAL_BPS: f64 = 1_500_000.0;
/// Low enough to tell a link that carries audio only.
const MIN_BPS: f64 = 30_000.0;
const MAX_BPS: f64 = 20_000_000.0;
/// The pacer releases up to this multiple of the estimate, and never less than
/// [`PACING_FLOOR`]: it smooths a keyframe's burst on a fast link. It is one queue for audio
/// and video that refuses new packets when full, so paced at a weak link's rate it would hold
/// video sent before the estimate fell and refuse the audio behind it; a weak link is served
/// by sending it less (a lower layer, or audio only), not by queueing.
const PACING_HEADROOM: f64 = 2.5;
const PACING_FLOOR: f64 = 1_000_000.0;
/// Packets the pacer may hold for one connection before it refuses more: about half a second
/// at the floor (its default, 4096, would let one viewer hold megabytes).
const PACER_QUEUE: usize = 64;

const TRANSPORT_CC_URI: &str =
    "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";

/// The latest estimate of one link.
#[derive(Debug)]
pub struct Bandwidth {
    bps: AtomicU64,
}

impl Bandwidth {
    pub fn new(bps: u64) -> Bandwidth {
        Bandwidth {
            bps: AtomicU64::new(bps),
        }
    }

    pub fn bps(&self) -> u64 {
        self.bps.load(Ordering::Relaxed)
    }
}

/// GCC, publishing its target after every change.
struct Estimator {
    gcc: Gcc,
    shared: Arc<Bandwidth>,
}

impl Estimator {
    fn publish(&self) {
        self.shared
            .bps
            .store(self.gcc.target_bitrate() as u64, Ordering::Relaxed);
    }
}

impl BandwidthEstimator for Estimator {
    fn on_reports(&mut self, now: Instant, reports: &[PacketReport]) {
        self.gcc.on_reports(now, reports);
        self.publish();
    }

    /// What the pacer is asked for; the estimate itself is in [`Bandwidth`].
    fn target_bitrate(&self) -> f64 {
        (self.gcc.target_bitrate() * PACING_HEADROOM).max(PACING_FLOOR)
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.gcc.handle_timeout(now);
        self.publish();
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.gcc.poll_timeout()
    }

    fn stats(&self) -> EstimatorStats {
        self.gcc.stats()
    }
}

/// Asks every connection's far end for transport-wide feedback (the `transport-cc` feedback
/// and header extension). A publisher's browser uses it for its own uplink estimate; the SFU
/// uses it on the connections it sends on.
pub fn ask_for_feedback(media: &mut MediaEngine) -> Result<(), webrtc::error::Error> {
    for kind in [RtpCodecKind::Video, RtpCodecKind::Audio] {
        media.register_feedback(
            RTCPFeedback {
                typ: "transport-cc".to_owned(),
                parameter: String::new(),
            },
            kind,
        );
        media.register_header_extension(
            RTCRtpHeaderExtensionCapability {
                uri: TRANSPORT_CC_URI.to_owned(),
            },
            kind,
            None,
        )?;
    }
    Ok(())
}

/// Adds congestion control to a sending connection's interceptors: transport-wide sequence
/// numbers on what leaves, the estimator fed by the feedback, the pacer, and a budget for
/// retransmissions (`resend.rs`).
pub fn congestion_control(registry: Registry) -> (Registry, Arc<Bandwidth>) {
    let shared = Arc::new(Bandwidth::new(INITIAL_BPS as u64));
    let estimator = Estimator {
        gcc: Gcc::new(INITIAL_BPS, MIN_BPS, MAX_BPS),
        shared: shared.clone(),
    };
    let registry = registry
        .with(
            Slot::CongestionControl,
            CongestionControlBuilder::new(estimator).build(),
        )
        .with(
            Slot::Pacer,
            PacerBuilder::new()
                .with_target_bitrate((INITIAL_BPS * PACING_HEADROOM).max(PACING_FLOOR))
                .with_queue_limit(PACER_QUEUE)
                .build(),
        )
        .with(Slot::TwccSender, TwccSenderBuilder::new().build())
        .with(
            resend::SLOT,
            RtcpFilter::new(ResendBudget::new(shared.clone())),
        );
    (registry, shared)
}
