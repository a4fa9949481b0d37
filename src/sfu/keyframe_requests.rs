//! An interceptor that lets keyframe requests (PLI, FIR) and NACKs through to the application.
//!
//! The `webrtc` crate stops inbound RTCP at the end of its interceptor chain unless a packet
//! is marked for delivery. Receiver reports and transport feedback are the interceptors'
//! business; a keyframe request is about media this program relays, so only the application
//! can answer it: the SFU forwards it to the publisher, and test clients count the requests
//! the SFU sends them. A NACK is the SFU's to answer too: it resends what it wrote from the
//! track's history and passes on to the publisher the ones for packets it never had.

use std::time::Instant;

use rtc::interceptor::{Attribute, Packet, Registry, Slot, TaggedPacket};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;

use super::rtcp_filter::{ReadRtcp, RtcpFilter};

/// Last in the chain, so every other interceptor has seen the RTCP first.
const SLOT: usize = 14_000;

/// Adds the interceptor to a registry.
pub fn register(registry: Registry) -> Registry {
    registry.with(Slot::from(SLOT), RtcpFilter::new(KeyframeRequests))
}

pub struct KeyframeRequests;

fn is_delivered(packet: &dyn rtc::rtcp::Packet) -> bool {
    let any = packet.as_any();
    any.is::<PictureLossIndication>()
        || any.is::<FullIntraRequest>()
        || any.is::<TransportLayerNack>()
}

impl ReadRtcp for KeyframeRequests {
    fn read(&mut self, _now: Instant, msg: &mut TaggedPacket) -> bool {
        let Packet::Rtcp(packets) = &mut msg.message.packet else {
            return true;
        };
        packets.retain(|p| is_delivered(p.as_ref()));
        if packets.is_empty() {
            return false;
        }
        msg.message.add(Attribute::DeliverToApplication);
        true
    }
}
