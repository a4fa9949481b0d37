//! The bandwidth estimate of one receiving connection: Google Congestion Control as the rtc
//! crate implements it, fed by the receiver's transport-wide congestion control feedback, and
//! a pacer that spreads what the SFU sends over time instead of in bursts.
//!
//! The crate keeps its estimator inside the interceptor chain, out of the application's reach,
//! so [`Estimator`] wraps it and publishes each new value to a [`Bandwidth`] the subscriber's
//! quality loop reads.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rtc::interceptor::{
    BandwidthEstimator, CongestionControlBuilder, EstimatorStats, Gcc, PacerBuilder, PacketReport,
    Registry, Slot, TwccSenderBuilder,
};
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpHeaderExtensionCapability, RtpCodecKind,
};
use webrtc::peer_connection::MediaEngine;

use super::collapse::Collapse;
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

/// After a collapse, the share of what the link carried that the estimate is capped at: a
/// link filled to the brim queues and loses; GCC backs off to the same share of what arrives.
const COLLAPSE_SHARE: f64 = 0.85;

/// Without feedback for this long, the link is taken to be in trouble.
const FEEDBACK_TIMEOUT: Duration = Duration::from_secs(1);

/// GCC, publishing its target after every change, under a cap of its own for when feedback
/// stops: GCC only moves on feedback, and a link so congested that the receiver's reports
/// are lost would otherwise keep the last (high) estimate for as long as it stays that way.
/// A link that collapses is capped at once at what it carried (`collapse.rs`); from there the
/// cap grows as after silence, so video comes back to a link that collapsed only after some
/// seconds: GCC's own estimate rises while only audio is sent, which proves nothing.
struct Estimator {
    gcc: Gcc,
    collapse: Collapse,
    shared: Arc<Bandwidth>,
    last_report: Option<Instant>,
    /// Halved for each second without feedback; grows back by 8% a second with it.
    cap: f64,
    capped_at: Option<Instant>,
}

impl Estimator {
    fn estimate(&self) -> f64 {
        self.gcc.target_bitrate().min(self.cap)
    }

    fn publish(&self) {
        self.shared
            .bps
            .store(self.estimate() as u64, Ordering::Relaxed);
    }

    /// Moves the cap at most once a second: down without feedback, up with it.
    fn update_cap(&mut self, now: Instant) {
        if self
            .capped_at
            .is_some_and(|at| now.saturating_duration_since(at) < FEEDBACK_TIMEOUT)
        {
            return;
        }
        self.capped_at = Some(now);
        let silent = self
            .last_report
            .is_some_and(|at| now.saturating_duration_since(at) >= FEEDBACK_TIMEOUT);
        self.cap = match silent {
            true => (self.estimate() / 2.0).max(MIN_BPS),
            false => (self.cap * 1.08).min(MAX_BPS),
        };
    }
}

impl BandwidthEstimator for Estimator {
    fn on_reports(&mut self, now: Instant, reports: &[PacketReport]) {
        self.gcc.on_reports(now, reports);
        if let Some(carried) = self.collapse.on_reports(reports) {
            tracing::debug!(
                carried,
                gcc = self.gcc.target_bitrate(),
                "the link collapsed"
            );
            let below = carried * COLLAPSE_SHARE;
            // Never above the estimate it cuts (which the cap already bounds).
            self.cap = self.estimate().min(below.max(MIN_BPS));
            self.capped_at = Some(now);
        }
        if !reports.is_empty() {
            self.last_report = Some(now);
        }
        self.update_cap(now);
        self.publish();
    }

    /// What the pacer is asked for; the estimate itself is in [`Bandwidth`].
    fn target_bitrate(&self) -> f64 {
        (self.estimate() * PACING_HEADROOM).max(PACING_FLOOR)
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.gcc.handle_timeout(now);
        self.update_cap(now);
        self.publish();
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let check = self.capped_at.map(|at| at + FEEDBACK_TIMEOUT);
        match (self.gcc.poll_timeout(), check) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
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
        collapse: Collapse::default(),
        shared: shared.clone(),
        last_report: None,
        cap: MAX_BPS,
        capped_at: None,
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
