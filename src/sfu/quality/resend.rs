//! A budget for retransmissions on a sending connection. The SFU answers a viewer's NACKs
//! from the track's history (`sfu/history.rs`); on a link that has just collapsed, the
//! receiver asks for hundreds of video packets, and resending them all would keep the link
//! full long after the video itself stopped (audio and signalling starve behind them). So
//! NACKs are trimmed, in the connection's interceptor chain before they reach the SFU, to
//! what a share of the link's estimate can carry.

use std::sync::Arc;
use std::time::Instant;

use rtc::interceptor::{Packet, Slot, TaggedPacket};
use rtc::rtcp::transport_feedbacks::transport_layer_nack::{
    nack_pairs_from_sequence_numbers, TransportLayerNack,
};

use super::estimate::Bandwidth;
use crate::sfu::rtcp_filter::ReadRtcp;

/// After the pacer, before the interceptor that hands NACKs to the SFU (`keyframe_requests.rs`).
pub const SLOT: Slot = Slot::Custom(3_500);
/// The share of the estimate above [`FLOOR_BPS`] retransmissions may use.
const SHARE: f64 = 0.15;
/// Below this a link carries audio and little else (audio is not resent): every byte spent on
/// resending video would be taken from the audio and the signalling.
const FLOOR_BPS: f64 = 100_000.0;
/// What one retransmission is counted as (a full video packet).
const PACKET_BYTES: f64 = 1_200.0;
/// The budget saved up at most, in seconds of it: a burst of loss on a good link is answered.
const BURST_SECS: f64 = 0.5;

pub struct ResendBudget {
    bandwidth: Arc<Bandwidth>,
    tokens: f64,
    at: Option<Instant>,
}

impl ResendBudget {
    pub fn new(bandwidth: Arc<Bandwidth>) -> ResendBudget {
        ResendBudget {
            bandwidth,
            tokens: 0.0,
            at: None,
        }
    }

    /// How many packets may be resent now; takes them from the budget.
    fn allow(&mut self, now: Instant, wanted: usize) -> usize {
        let rate = (self.bandwidth.bps() as f64 - FLOOR_BPS).max(0.0) / 8.0 * SHARE;
        let elapsed = self.at.map_or(BURST_SECS, |at| {
            now.saturating_duration_since(at).as_secs_f64()
        });
        self.at = Some(now);
        // At least one packet's worth, or a slowish link could never afford one.
        let cap = match rate > 0.0 {
            true => (rate * BURST_SECS).max(PACKET_BYTES),
            false => 0.0,
        };
        self.tokens = (self.tokens + rate * elapsed).min(cap);
        let allowed = ((self.tokens / PACKET_BYTES) as usize).min(wanted);
        self.tokens -= allowed as f64 * PACKET_BYTES;
        allowed
    }
}

impl ReadRtcp for ResendBudget {
    fn read(&mut self, now: Instant, msg: &mut TaggedPacket) -> bool {
        let Packet::Rtcp(packets) = &mut msg.message.packet else {
            return true;
        };
        let mut kept = Vec::with_capacity(packets.len());
        for packet in packets.drain(..) {
            let Some(nack) = packet.as_any().downcast_ref::<TransportLayerNack>() else {
                kept.push(packet);
                continue;
            };
            let wanted: Vec<u16> = nack.nacks.iter().flat_map(|p| p.packet_list()).collect();
            let allowed = self.allow(now, wanted.len());
            if allowed > 0 {
                kept.push(Box::new(TransportLayerNack {
                    sender_ssrc: nack.sender_ssrc,
                    media_ssrc: nack.media_ssrc,
                    nacks: nack_pairs_from_sequence_numbers(&wanted[..allowed]),
                }));
            }
        }
        *packets = kept;
        !packets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_weak_link_resends_a_trickle_and_a_fast_one_a_burst() {
        let start = Instant::now();
        let audio_only = Arc::new(Bandwidth::new(80_000));
        let mut budget = ResendBudget::new(audio_only);
        for tenth in 1..=100 {
            let at = start + Duration::from_millis(tenth * 100);
            assert_eq!(budget.allow(at, 200), 0, "nothing below 100 kbit/s");
        }
        let weak = Arc::new(Bandwidth::new(180_000));
        let mut budget = ResendBudget::new(weak);
        // 180 kbit/s: 1.5 kB/s for resends: nothing at once, then a packet every 0.8 s.
        assert_eq!(budget.allow(start, 200), 0);
        let mut resent = 0;
        for tenth in 1..=100 {
            resent += budget.allow(start + Duration::from_millis(tenth * 100), 200);
        }
        assert!((11..=13).contains(&resent), "about one a second: {resent}");
        let fast = Arc::new(Bandwidth::new(4_000_000));
        let mut budget = ResendBudget::new(fast);
        assert_eq!(
            budget.allow(start, 200),
            30,
            "half a second of 15% of 3.9 Mbit/s"
        );
    }
}
