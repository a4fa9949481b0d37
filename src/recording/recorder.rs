//! From a published track's RTP to frames: a small jitter buffer puts packets back in order
//! (retransmissions arrive late), VP8 packets are assembled into frames (Opus packets are
//! frames), and RTP time becomes nanoseconds on the file's clock. This is plain data with no
//! I/O; `mod.rs` runs it in one task per recorded track.
//!
//! A video frame with a packet missing cannot be decoded, nor can what follows it until the
//! next keyframe: such frames are dropped and a keyframe is asked for.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rtc::rtp;
use rtc::rtp::codec::vp8::Vp8Packet;
use rtc::rtp::packetizer::Depacketizer;

use super::journal::{Frame, TrackKind};

/// Packets held for reordering at most this long, or this many.
const REORDER_WAIT: Duration = Duration::from_millis(150);
const REORDER_DEPTH: usize = 128;

/// Puts packets back in sequence order. Released packets come with whether any packet before
/// them was given up on.
#[derive(Default)]
pub struct JitterBuffer {
    held: BTreeMap<u64, (Instant, rtp::Packet)>,
    /// The extended sequence number expected next.
    next: Option<u64>,
    /// The last extended sequence number seen, to extend 16-bit ones across wraps.
    last: Option<u64>,
}

impl JitterBuffer {
    fn extend(&mut self, seq: u16) -> u64 {
        let ext = match self.last {
            None => (1 << 16) + seq as u64,
            Some(last) => {
                let delta = seq.wrapping_sub(last as u16) as i16 as i64;
                (last as i64 + delta).max(0) as u64
            }
        };
        if self.last.is_none_or(|l| ext > l) {
            self.last = Some(ext);
        }
        ext
    }

    pub fn push(&mut self, packet: rtp::Packet, now: Instant) {
        let ext = self.extend(packet.header.sequence_number);
        if self.next.is_some_and(|n| ext < n) {
            return; // Too late, or a duplicate of one already released.
        }
        self.next.get_or_insert(ext);
        self.held.entry(ext).or_insert((now, packet));
    }

    /// The packets that are ready: in order, or given up waiting for.
    pub fn pop(&mut self, now: Instant) -> Option<(rtp::Packet, bool)> {
        let (&first, (arrived, _)) = self.held.first_key_value()?;
        let next = self.next.unwrap_or(first);
        let in_order = first == next;
        let overdue =
            now.duration_since(*arrived) >= REORDER_WAIT || self.held.len() > REORDER_DEPTH;
        if !in_order && !overdue {
            return None;
        }
        let (_, packet) = self.held.remove(&first).expect("first exists");
        self.next = Some(first + 1);
        Some((packet, !in_order))
    }

    /// Everything held, at the end of the track.
    pub fn drain(&mut self) -> Vec<(rtp::Packet, bool)> {
        let mut out = Vec::new();
        while let Some(p) = self.pop(Instant::now() + REORDER_WAIT) {
            out.push(p);
        }
        out
    }
}

/// RTP timestamps extended past their 32-bit wrap, relative to the track's first packet.
#[derive(Default)]
struct Clock {
    first: Option<u32>,
    last: u32,
    ticks: i64,
}

impl Clock {
    fn ticks(&mut self, ts: u32) -> i64 {
        if self.first.is_none() {
            self.first = Some(ts);
            self.last = ts;
        }
        self.ticks += ts.wrapping_sub(self.last) as i32 as i64;
        self.last = ts;
        self.ticks
    }
}

/// Turns one track's ordered packets into frames.
pub struct Assembler {
    kind: TrackKind,
    number: u8,
    clock_rate: u64,
    /// Where the track's first packet falls on the file's clock.
    base_ns: u64,
    clock: Clock,
    buf: Vec<u8>,
    frame_ts: Option<u32>,
    started: bool,
    broken: bool,
    /// Until the first keyframe (and after a loss), video frames cannot be decoded.
    needs_keyframe: bool,
}

/// What one packet gave.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Assembled {
    pub frame: Option<Frame>,
    /// A frame was lost: ask the publisher for a keyframe.
    pub keyframe_needed: bool,
}

impl Assembler {
    pub fn new(kind: TrackKind, number: u8, clock_rate: u32, base_ns: u64) -> Assembler {
        Assembler {
            kind,
            number,
            clock_rate: clock_rate.max(1) as u64,
            base_ns,
            clock: Clock::default(),
            buf: Vec::new(),
            frame_ts: None,
            started: false,
            broken: false,
            needs_keyframe: kind == TrackKind::Video,
        }
    }

    fn ts_ns(&mut self, ts: u32) -> u64 {
        let ticks = self.clock.ticks(ts).max(0) as u64;
        self.base_ns + ticks * 1_000_000_000 / self.clock_rate
    }

    /// Takes the next packet in order; `gap`: packets before it were lost.
    pub fn push(&mut self, packet: &rtp::Packet, gap: bool) -> Assembled {
        let ts_ns = self.ts_ns(packet.header.timestamp);
        if self.kind == TrackKind::Audio {
            if packet.payload.is_empty() {
                return Assembled::default();
            }
            let frame = Frame {
                track: self.number,
                ts_ns,
                keyframe: true,
                data: packet.payload.to_vec(),
            };
            return Assembled {
                frame: Some(frame),
                keyframe_needed: false,
            };
        }
        let mut out = Assembled::default();
        if self.frame_ts != Some(packet.header.timestamp) {
            // A new frame; one left without its last packet is lost.
            if !self.buf.is_empty() || self.broken {
                out.keyframe_needed |= self.lose();
            }
            self.buf.clear();
            self.frame_ts = Some(packet.header.timestamp);
            self.started = false;
            self.broken = false;
        }
        self.broken |= gap;
        let mut descriptor = Vp8Packet::default();
        match descriptor.depacketize(&Bytes::clone(&packet.payload)) {
            Ok(payload) => {
                if descriptor.s == 1 && descriptor.pid == 0 && self.buf.is_empty() {
                    self.started = true;
                }
                self.buf.extend_from_slice(&payload);
            }
            Err(_) => self.broken = true,
        }
        if !packet.header.marker {
            return out;
        }
        let whole = self.started && !self.broken && !self.buf.is_empty();
        let data = std::mem::take(&mut self.buf);
        self.frame_ts = None;
        if !whole {
            out.keyframe_needed |= self.lose();
            return out;
        }
        // The VP8 frame tag's first bit is 0 on a keyframe (RFC 6386, 9.1).
        let keyframe = data[0] & 1 == 0;
        if self.needs_keyframe && !keyframe {
            return out;
        }
        self.needs_keyframe = false;
        out.frame = Some(Frame {
            track: self.number,
            ts_ns,
            keyframe,
            data,
        });
        out
    }

    /// A frame was lost: nothing decodes until the next keyframe. True the first time.
    fn lose(&mut self) -> bool {
        self.buf.clear();
        self.broken = false;
        let first = !self.needs_keyframe;
        self.needs_keyframe = true;
        first
    }
}

/// Width and height from a VP8 keyframe's header (RFC 6386, 9.1), when it has one.
pub fn vp8_size(keyframe: &[u8]) -> Option<(u16, u16)> {
    if keyframe.len() < 10 || keyframe[3..6] != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let width = u16::from_le_bytes([keyframe[6], keyframe[7]]) & 0x3fff;
    let height = u16::from_le_bytes([keyframe[8], keyframe[9]]) & 0x3fff;
    (width > 0 && height > 0).then_some((width, height))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(seq: u16, ts: u32, marker: bool, payload: &[u8]) -> rtp::Packet {
        rtp::Packet {
            header: rtp::header::Header {
                sequence_number: seq,
                timestamp: ts,
                marker,
                ..Default::default()
            },
            payload: Bytes::copy_from_slice(payload),
        }
    }

    /// A VP8 frame in two packets: descriptor 0x10 (start of partition 0), then 0x00.
    fn frame(seq: u16, ts: u32, key: bool) -> [rtp::Packet; 2] {
        let tag = if key { 0x00 } else { 0x01 };
        [
            packet(seq, ts, false, &[0x10, tag, 1, 2, 3]),
            packet(seq.wrapping_add(1), ts, true, &[0x00, 4, 5, 6]),
        ]
    }

    #[test]
    fn packets_out_of_order_and_across_the_wrap_come_back_in_order() {
        let mut jitter = JitterBuffer::default();
        let now = Instant::now();
        for seq in [65534u16, 0, 65535, 1] {
            jitter.push(packet(seq, 0, false, &[0]), now);
        }
        let order: Vec<u16> = std::iter::from_fn(|| jitter.pop(now))
            .map(|(p, gap)| {
                assert!(!gap);
                p.header.sequence_number
            })
            .collect();
        assert_eq!(order, vec![65534, 65535, 0, 1]);
        // A missing packet is waited for, then given up on.
        jitter.push(packet(3, 0, false, &[0]), now);
        assert!(jitter.pop(now).is_none());
        let (p, gap) = jitter.pop(now + REORDER_WAIT).unwrap();
        assert_eq!((p.header.sequence_number, gap), (3, true));
    }

    #[test]
    fn frames_start_at_a_keyframe_and_a_loss_waits_for_the_next() {
        let mut video = Assembler::new(TrackKind::Video, 1, 90_000, 0);
        let mut frames = Vec::new();
        let mut asked = 0;
        let mut feed = |a: &mut Assembler, packets: &[rtp::Packet], gap_at: Option<usize>| {
            for (i, p) in packets.iter().enumerate() {
                let out = a.push(p, gap_at == Some(i));
                asked += out.keyframe_needed as u32;
                frames.extend(out.frame);
            }
        };
        feed(&mut video, &frame(10, 0, false), None); // before any keyframe: dropped
        feed(&mut video, &frame(12, 3000, true), None);
        feed(&mut video, &frame(14, 6000, false), None);
        feed(&mut video, &frame(17, 9000, false)[1..], Some(0)); // its first packet lost
        feed(&mut video, &frame(18, 12000, false), None); // undecodable until a keyframe
        feed(&mut video, &frame(20, 15000, true), None);
        let times: Vec<(u64, bool)> = frames.iter().map(|f| (f.ts_ns, f.keyframe)).collect();
        assert_eq!(
            times,
            vec![(33_333_333, true), (66_666_666, false), (166_666_666, true)]
        );
        assert_eq!(frames[0].data, vec![0x00, 1, 2, 3, 4, 5, 6]);
        assert_eq!(asked, 1, "one keyframe request per loss");
    }

    #[test]
    fn keyframe_size_is_read_from_the_vp8_header() {
        let key = [0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01];
        assert_eq!(vp8_size(&key), Some((640, 480)));
        assert_eq!(vp8_size(&[0; 10]), None);
    }
}
