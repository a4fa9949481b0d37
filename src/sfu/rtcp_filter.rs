//! An interceptor that only looks at inbound RTCP: the SFU's two (keyframe requests passed to
//! the application, retransmissions within a budget) differ in what they do with a compound
//! packet, not in how they sit in the chain.

use std::collections::VecDeque;
use std::time::Instant;

use rtc::interceptor::{Interceptor, Packet, StreamInfo, TaggedPacket};
use rtc::sansio::Protocol;

/// What a filter does with one inbound RTCP packet (a compound one, with its attributes).
pub trait ReadRtcp: Send + Sync {
    /// False drops the packet.
    fn read(&mut self, now: Instant, packet: &mut TaggedPacket) -> bool;
}

/// Runs a [`ReadRtcp`] on inbound RTCP; everything else passes untouched.
pub struct RtcpFilter<R> {
    filter: R,
    read: VecDeque<TaggedPacket>,
    write: VecDeque<TaggedPacket>,
}

impl<R: ReadRtcp> RtcpFilter<R> {
    pub fn new(filter: R) -> RtcpFilter<R> {
        RtcpFilter {
            filter,
            read: VecDeque::new(),
            write: VecDeque::new(),
        }
    }
}

impl<R: ReadRtcp> Protocol<TaggedPacket, TaggedPacket, ()> for RtcpFilter<R> {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = rtc::shared::error::Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        let rtcp = matches!(msg.message.packet, Packet::Rtcp(_));
        if !rtcp || self.filter.read(msg.now, &mut msg) {
            self.read.push_back(msg);
        }
        Ok(())
    }

    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.read.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.write.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.write.pop_front()
    }
}

impl<R: ReadRtcp> Interceptor for RtcpFilter<R> {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}
