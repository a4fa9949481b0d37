//! Which frames of a received video track a decoder could show, and whether what it shows is
//! the picture that was sent.
//!
//! A frame is decodable when all its packets arrived (from the one with the start bit to the
//! one with the marker, every sequence number in between) and the picture resumed at a
//! keyframe: a keyframe, or the next picture after a decodable one. The server numbers every
//! subscriber's VP8 picture ids itself, continuous across whatever it skips, so a picture id
//! that jumps means frames were lost. Packets are gathered per picture for a while (`HOLD`),
//! so retransmissions and reordering are waited for as a browser's jitter buffer does.
//!
//! A decodable frame is broken when it shows something else than the sender's picture: one of
//! its payloads failed its check, or it is a delta frame of another simulcast layer than the
//! keyframe it builds on (a switch of layers that did not wait for a keyframe).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How long a frame's packets are waited for before it is judged without them.
const HOLD: Duration = Duration::from_secs(1);

/// What a received frame's decoder made of the track so far.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FrameCounts {
    /// Frames a decoder shows as sent.
    pub decodable: u64,
    /// Frames a decoder shows wrong (see the module's doc): a broken picture.
    pub broken: u64,
    /// Frames it cannot show: packets missing, or no keyframe since a loss.
    pub undecodable: u64,
}

/// One video packet as the assembler needs it.
#[derive(Debug, Clone, Copy)]
pub(super) struct FramePacket {
    /// The RTP sequence number, extended past its wrap.
    pub(super) seq: u64,
    pub(super) picture_id: u16,
    pub(super) start: bool,
    /// The marker bit: the frame's last packet.
    pub(super) end: bool,
    pub(super) keyframe: bool,
    /// The simulcast layer its payload says it is from; none when the payload is damaged.
    pub(super) layer: Option<u8>,
}

/// A frame whose packets are still being gathered.
#[derive(Debug, Clone)]
struct Partial {
    first: Option<u64>,
    last: Option<u64>,
    packets: u64,
    keyframe: bool,
    layer: Option<u8>,
    intact: bool,
    since: Instant,
}

impl Partial {
    fn complete(&self) -> bool {
        match (self.first, self.last) {
            (Some(first), Some(last)) => last >= first && self.packets == last - first + 1,
            _ => false,
        }
    }
}

/// Gathers a track's packets into frames and judges them in picture order.
#[derive(Debug, Default, Clone)]
pub(super) struct Assembler {
    pending: BTreeMap<i64, Partial>,
    /// The latest picture id seen, extended, to extend the next one from.
    newest: Option<i64>,
    /// The last picture judged.
    judged: Option<i64>,
    /// While pictures decode: the layer of the keyframe they build on.
    chain: Option<Option<u8>>,
    pub(super) counts: FrameCounts,
}

impl Assembler {
    /// Adds a packet (each at most once) and judges the frames that are ready.
    pub(super) fn add(&mut self, packet: FramePacket, now: Instant) {
        let id = self.extend(packet.picture_id);
        if self.judged.is_some_and(|judged| id <= judged) {
            // A late packet of a frame already judged.
            return;
        }
        let frame = self.pending.entry(id).or_insert(Partial {
            first: None,
            last: None,
            packets: 0,
            keyframe: false,
            layer: packet.layer,
            intact: true,
            since: now,
        });
        frame.packets += 1;
        frame.keyframe |= packet.keyframe;
        frame.intact &= packet.layer.is_some() && frame.layer == packet.layer;
        if packet.start {
            frame.first = Some(packet.seq);
        }
        if packet.end {
            frame.last = Some(packet.seq);
        }
        self.judge_ready(now);
    }

    /// A 15-bit picture id as a number that keeps growing, from the newest one seen.
    fn extend(&mut self, picture_id: u16) -> i64 {
        let id = match self.newest {
            None => i64::from(picture_id),
            Some(newest) => {
                let ahead = (i64::from(picture_id) - newest).rem_euclid(1 << 15);
                match ahead < 1 << 14 {
                    true => newest + ahead,
                    false => newest + ahead - (1 << 15),
                }
            }
        };
        self.newest = Some(self.newest.map_or(id, |n| n.max(id)));
        id
    }

    /// Judges frames in picture order: the oldest once it is complete and next in line, or
    /// once it has waited `HOLD`.
    fn judge_ready(&mut self, now: Instant) {
        while let Some((&id, frame)) = self.pending.first_key_value() {
            let next = self.judged.is_none_or(|judged| id == judged + 1);
            let ready = frame.complete() && next;
            if !ready && now.duration_since(frame.since) < HOLD {
                return;
            }
            let frame = self.pending.pop_first().expect("a first entry").1;
            self.judge(frame, next);
            self.judged = Some(id);
        }
    }

    fn judge(&mut self, frame: Partial, next: bool) {
        if !frame.complete() {
            self.chain = None;
            self.counts.undecodable += 1;
            return;
        }
        if frame.keyframe {
            self.chain = Some(frame.layer);
        } else if !next || self.chain.is_none() {
            self.chain = None;
            self.counts.undecodable += 1;
            return;
        }
        match frame.intact && self.chain == Some(frame.layer) {
            true => self.counts.decodable += 1,
            false => self.counts.broken += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds frames of `packets` packets each, numbered on from `seq` and `picture`.
    struct Feed {
        assembler: Assembler,
        seq: u64,
        picture: u16,
        now: Instant,
    }

    impl Feed {
        fn new() -> Feed {
            Feed {
                assembler: Assembler::default(),
                seq: 100,
                picture: 32_760,
                now: Instant::now(),
            }
        }

        /// A frame; the packets at the indexes in `lose` do not arrive.
        fn frame(&mut self, packets: u64, keyframe: bool, layer: u8, lose: &[u64]) {
            for i in 0..packets {
                if !lose.contains(&i) {
                    let packet = FramePacket {
                        seq: self.seq + i,
                        picture_id: self.picture,
                        start: i == 0,
                        end: i + 1 == packets,
                        keyframe,
                        layer: Some(layer),
                    };
                    self.assembler.add(packet, self.now);
                }
            }
            self.seq += packets;
            self.picture = (self.picture + 1) & 0x7fff;
            self.now += Duration::from_millis(33);
        }

        /// Lets every frame still waiting be judged.
        fn settle(&mut self) -> FrameCounts {
            self.now += HOLD;
            self.assembler.judge_ready(self.now);
            self.assembler.counts
        }
    }

    #[test]
    fn whole_frames_from_a_keyframe_on_decode_across_the_picture_id_wrap() {
        let mut feed = Feed::new();
        feed.frame(3, false, 1, &[]);
        feed.frame(3, true, 1, &[]);
        for _ in 0..20 {
            feed.frame(3, false, 1, &[]);
        }
        let counts = feed.settle();
        assert_eq!(
            counts,
            FrameCounts {
                decodable: 21,
                broken: 0,
                undecodable: 1
            }
        );
    }

    #[test]
    fn a_lost_packet_stops_the_picture_until_the_next_keyframe() {
        let mut feed = Feed::new();
        feed.frame(2, true, 1, &[]);
        feed.frame(2, false, 1, &[1]);
        feed.frame(2, false, 1, &[]);
        feed.frame(2, true, 1, &[]);
        feed.frame(2, false, 1, &[]);
        let counts = feed.settle();
        assert_eq!((counts.decodable, counts.undecodable), (3, 2));
    }

    #[test]
    fn a_lost_frame_is_seen_in_the_picture_ids() {
        let mut feed = Feed::new();
        feed.frame(1, true, 1, &[]);
        feed.frame(1, false, 1, &[0]);
        feed.frame(1, false, 1, &[]);
        let counts = feed.settle();
        assert_eq!((counts.decodable, counts.undecodable), (1, 1));
    }

    #[test]
    fn a_switch_of_layers_at_a_delta_frame_is_a_broken_picture() {
        let mut feed = Feed::new();
        feed.frame(1, true, 1, &[]);
        feed.frame(1, false, 1, &[]);
        feed.frame(3, false, 3, &[]);
        feed.frame(3, true, 3, &[]);
        feed.frame(3, false, 3, &[]);
        let counts = feed.settle();
        assert_eq!((counts.decodable, counts.broken), (4, 1));
    }

    #[test]
    fn a_late_packet_completes_its_frame_in_time() {
        let mut feed = Feed::new();
        let now = feed.now;
        for (seq, start, end) in [(1, true, false), (3, false, true), (2, false, false)] {
            let packet = FramePacket {
                seq,
                picture_id: 5,
                start,
                end,
                keyframe: true,
                layer: Some(0),
            };
            feed.assembler.add(packet, now);
        }
        assert_eq!(feed.assembler.counts.decodable, 1);
    }
}
