//! One subscriber's copy of one track: the numbering it sees. The SFU skips packets for a
//! subscriber on purpose (audio-only, a muted track, a full queue, a connection not up yet)
//! and switches a track to another source (a teacher who reconnected); a receiver that follows
//! the standards would read either as loss and wait for packets that never come. So each
//! outgoing track owns its sequence numbers, timestamps and VP8 picture ids (and TL0PICIDX):
//! after a skip or a switch it resumes at a keyframe, numbered straight on from the last
//! packet it wrote. Between such resumptions the mapping is a fixed offset, so real loss
//! upstream stays visible as loss and its NACKs can be mapped back to the source's numbers.
//!
//! Plain data, no I/O: the subscriber's writer task feeds it and acts on its verdicts.

use std::time::{Duration, Instant};

use rtc::rtp;

use super::payload::{is_keyframe_start, rewrite_vp8, Vp8Descriptor};

/// How long a resumption waits for a keyframe before asking for one again.
const KEYFRAME_REASK: Duration = Duration::from_secs(1);
/// Outgoing sequence numbers remembered as written, to tell which NACKs the SFU can answer
/// from the track's history and which must go to the publisher.
const HISTORY: usize = 1024;

/// The codecs the SFU forwards (see `media.rs`), as far as forwarding cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Opus,
    Vp8,
    H264,
}

impl Codec {
    pub fn from_mime(mime: &str) -> Option<Codec> {
        match mime.to_ascii_lowercase().as_str() {
            "audio/opus" => Some(Codec::Opus),
            "video/vp8" => Some(Codec::Vp8),
            "video/h264" => Some(Codec::H264),
            _ => None,
        }
    }

    fn is_video(self) -> bool {
        self != Codec::Opus
    }
}

/// How long a packet may wait in a subscriber's queue.
pub const MAX_QUEUE_AGE: std::time::Duration = std::time::Duration::from_millis(500);

/// Packets dropped because they waited longer than [`MAX_QUEUE_AGE`], for /metrics.
pub static STALE_DROPS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A packet of a published track on its way to one subscriber.
#[derive(Debug, Clone)]
pub struct Forwarded {
    pub packet: rtp::Packet,
    /// When the fan-out queued it: a packet that waited longer than [`MAX_QUEUE_AGE`] for
    /// its subscriber is dropped.
    pub queued_at: Instant,
    /// Which source of the track sent it; it changes when the track is switched (another
    /// encoding, or a reconnected publisher).
    pub generation: u32,
    /// The encoding it belongs to, for keyframe requests and NACKs.
    pub slot: u8,
    /// Packets of this track were skipped for this subscriber just before this one.
    pub resync: bool,
}

/// What to do with a packet.
#[derive(Debug, PartialEq)]
pub enum Verdict {
    Write(rtp::Packet),
    Drop,
    /// Drop it, and ask the publisher for a keyframe: the picture cannot resume without one.
    DropAndAskKeyframe,
}

/// The mapping in force since the last resumption.
#[derive(Debug, Clone, Copy)]
struct Run {
    generation: u32,
    /// The source sequence number the run began at, and the highest seen since.
    first_in: u16,
    highest_in: u16,
    seq_offset: u16,
    ts_offset: u32,
    picture_id_offset: u16,
    tl0_offset: u8,
}

impl Run {
    /// Whether a source number not ahead of the run's highest belongs to it (a late packet
    /// from before the run does not).
    fn covers(&self, seq_in: u16) -> bool {
        seq_in.wrapping_sub(self.first_in) <= self.highest_in.wrapping_sub(self.first_in)
    }

    /// Numbers a source packet as this run writes it; for VP8, the picture id and TL0PICIDX
    /// it now carries.
    fn renumber(&self, codec: Codec, packet: &mut rtp::Packet) -> (Option<u16>, Option<u8>) {
        packet.header.sequence_number = packet.header.sequence_number.wrapping_add(self.seq_offset);
        packet.header.timestamp = packet.header.timestamp.wrapping_add(self.ts_offset);
        match codec {
            Codec::Vp8 => rewrite_vp8(packet, self.picture_id_offset, self.tl0_offset),
            _ => (None, None),
        }
    }
}

/// The newest packet written.
#[derive(Debug, Clone, Copy)]
struct Last {
    seq: u16,
    timestamp: u32,
    at: Instant,
    picture_id: Option<u16>,
    tl0: Option<u8>,
}

#[derive(Debug)]
pub struct OutgoingTrack {
    codec: Codec,
    clock_rate: u32,
    run: Option<Run>,
    last: Option<Last>,
    /// Packets were skipped: the next one written starts a new run (at a keyframe for video).
    resume: bool,
    asked_at: Option<Instant>,
    /// `written[seq % HISTORY] == Some(seq)`: that outgoing packet was written.
    written: Vec<Option<u16>>,
}

impl OutgoingTrack {
    pub fn new(codec: Codec, clock_rate: u32) -> OutgoingTrack {
        OutgoingTrack {
            codec,
            clock_rate: clock_rate.max(1),
            run: None,
            last: None,
            resume: true,
            asked_at: None,
            written: vec![None; HISTORY],
        }
    }

    /// A packet was skipped before reaching this track (connection not up, not announced yet).
    pub fn skipped(&mut self) {
        self.resume = true;
    }

    pub fn process(&mut self, item: Forwarded, now: Instant) -> Verdict {
        let Forwarded {
            mut packet,
            queued_at,
            generation,
            resync,
            ..
        } = item;
        // Late media is worth nothing live: a subscriber this far behind skips to the next
        // keyframe rather than playing old packets (and keeping them in memory).
        if now.saturating_duration_since(queued_at) > MAX_QUEUE_AGE {
            self.resume = true;
            STALE_DROPS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return Verdict::Drop;
        }
        if resync || self.run.is_none_or(|run| run.generation != generation) {
            self.resume = true;
        }
        if self.resume {
            if self.codec.is_video() && !is_keyframe_start(self.codec, &packet.payload) {
                let ask = self
                    .asked_at
                    .is_none_or(|at| now.duration_since(at) >= KEYFRAME_REASK);
                if ask {
                    self.asked_at = Some(now);
                    return Verdict::DropAndAskKeyframe;
                }
                return Verdict::Drop;
            }
            self.start_run(&packet, generation, now);
        }
        let run = self.run.as_mut().expect("a run has started");
        let seq_in = packet.header.sequence_number;
        let ahead = seq_in.wrapping_sub(run.highest_in) as i16;
        if ahead > 0 {
            run.highest_in = seq_in;
        } else if !run.covers(seq_in) {
            // A late packet from before this run: its number belongs to the old mapping.
            return Verdict::Drop;
        }
        let (picture_id, tl0) = run.renumber(self.codec, &mut packet);
        let seq = packet.header.sequence_number;
        self.written[seq as usize % HISTORY] = Some(seq);
        let newer = self
            .last
            .is_none_or(|last| (seq.wrapping_sub(last.seq) as i16) > 0);
        if newer {
            self.last = Some(Last {
                seq,
                timestamp: packet.header.timestamp,
                at: now,
                picture_id: picture_id.or(self.last.and_then(|l| l.picture_id)),
                tl0: tl0.or(self.last.and_then(|l| l.tl0)),
            });
        }
        Verdict::Write(packet)
    }

    /// Begins a run at this packet: numbered straight on from the last one written.
    fn start_run(&mut self, packet: &rtp::Packet, generation: u32, now: Instant) {
        let seq_in = packet.header.sequence_number;
        let mut run = Run {
            generation,
            first_in: seq_in,
            highest_in: seq_in,
            seq_offset: 0,
            ts_offset: 0,
            picture_id_offset: 0,
            tl0_offset: 0,
        };
        if let Some(last) = self.last {
            run.seq_offset = last.seq.wrapping_add(1).wrapping_sub(seq_in);
            let elapsed_ticks = (now.duration_since(last.at).as_secs_f64() * self.clock_rate as f64)
                .max(1.0) as u32;
            run.ts_offset = last
                .timestamp
                .wrapping_add(elapsed_ticks)
                .wrapping_sub(packet.header.timestamp);
            if let Some(vp8) = (self.codec == Codec::Vp8)
                .then(|| Vp8Descriptor::parse(&packet.payload))
                .flatten()
            {
                if let (Some(out), Some(pid)) = (last.picture_id, vp8.picture_id(&packet.payload)) {
                    run.picture_id_offset = out.wrapping_add(1).wrapping_sub(pid) & 0x7fff;
                }
                if let (Some(out), Some(tl0)) = (last.tl0, vp8.tl0(&packet.payload)) {
                    run.tl0_offset = out.wrapping_add(1).wrapping_sub(tl0);
                }
            }
        }
        self.run = Some(run);
        self.resume = false;
        self.asked_at = None;
    }

    /// What the viewer's NACK for these outgoing numbers asks of the SFU, in the source's
    /// numbers: packets this track wrote are resent from the track's history; the others were
    /// lost before the SFU, and only the publisher can resend them. Numbers outside the
    /// current run are left out (their mapping is gone).
    pub fn answer(&self, nacked: impl IntoIterator<Item = u16>) -> Answer {
        let mut answer = Answer::default();
        let (Some(run), Some(last)) = (self.run, self.last) else {
            return answer;
        };
        answer.source = run.generation;
        let first_out = run.first_in.wrapping_add(run.seq_offset);
        let span = last.seq.wrapping_sub(first_out);
        for seq in nacked {
            if seq.wrapping_sub(first_out) > span {
                continue;
            }
            let source_seq = seq.wrapping_sub(run.seq_offset);
            match self.written[seq as usize % HISTORY] == Some(seq) {
                true => answer.resend.push(source_seq),
                false => answer.lost.push(source_seq),
            }
        }
        answer
    }

    /// A source packet of the current run numbered as it was written, to resend it.
    pub fn again(&self, mut packet: rtp::Packet) -> Option<rtp::Packet> {
        let run = self.run?;
        if !run.covers(packet.header.sequence_number) {
            return None;
        }
        run.renumber(self.codec, &mut packet);
        Some(packet)
    }
}

/// See [`OutgoingTrack::answer`].
#[derive(Debug, Default)]
pub struct Answer {
    /// The source (input and encoding) of the run the numbers belong to.
    pub source: u32,
    pub resend: Vec<u16>,
    pub lost: Vec<u16>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A VP8 packet with a 15-bit picture id and a TL0PICIDX.
    fn vp8(seq: u16, ts: u32, pid: u16, tl0: u8, keyframe: bool, start: bool) -> rtp::Packet {
        let payload = vec![
            0x80 | if start { 0x10 } else { 0 },
            0xc0,
            0x80 | (pid >> 8) as u8,
            pid as u8,
            tl0,
            if keyframe { 0x00 } else { 0x01 },
            0xaa,
        ];
        rtp::Packet {
            header: rtp::header::Header {
                sequence_number: seq,
                timestamp: ts,
                ..Default::default()
            },
            payload: payload.into(),
        }
    }

    /// A packet that is never stale, whatever time the test processes it at (staleness has
    /// its own test).
    fn item(packet: rtp::Packet, generation: u32, resync: bool) -> Forwarded {
        Forwarded {
            packet,
            queued_at: Instant::now() + Duration::from_secs(3600),
            generation,
            slot: 0,
            resync,
        }
    }

    fn written(verdict: Verdict) -> rtp::Packet {
        match verdict {
            Verdict::Write(packet) => packet,
            other => panic!("expected a write, got {other:?}"),
        }
    }

    fn pid_tl0(packet: &rtp::Packet) -> (u16, u8) {
        let d = Vp8Descriptor::parse(&packet.payload).unwrap();
        (
            d.picture_id(&packet.payload).unwrap(),
            d.tl0(&packet.payload).unwrap(),
        )
    }

    #[test]
    fn video_waits_for_a_keyframe_and_asks_once() {
        let now = Instant::now();
        let mut track = OutgoingTrack::new(Codec::Vp8, 90_000);
        assert_eq!(
            track.process(item(vp8(10, 0, 5, 1, false, true), 0, false), now),
            Verdict::DropAndAskKeyframe
        );
        assert_eq!(
            track.process(item(vp8(11, 0, 5, 1, false, false), 0, false), now),
            Verdict::Drop,
            "one request per second while waiting"
        );
        let first = written(track.process(item(vp8(12, 3000, 6, 1, true, true), 0, false), now));
        assert_eq!(
            first.header.sequence_number, 12,
            "the first run keeps the source's numbers"
        );
        written(track.process(item(vp8(13, 3000, 6, 1, false, false), 0, false), now));
    }

    #[test]
    fn a_packet_that_waited_too_long_is_dropped_and_the_track_resumes_at_a_keyframe() {
        let start = Instant::now();
        let mut track = OutgoingTrack::new(Codec::Vp8, 90_000);
        written(track.process(item(vp8(1, 0, 1, 1, true, true), 0, false), start));
        let stale = Forwarded {
            queued_at: start,
            ..item(vp8(2, 0, 1, 1, false, false), 0, false)
        };
        let late = start + MAX_QUEUE_AGE + Duration::from_millis(1);
        assert_eq!(track.process(stale, late), Verdict::Drop);
        assert_eq!(
            track.process(item(vp8(3, 3000, 2, 1, false, true), 0, false), late),
            Verdict::DropAndAskKeyframe,
            "after a stale drop the track waits for a keyframe"
        );
        written(track.process(item(vp8(4, 6000, 3, 2, true, true), 0, false), late));
    }

    #[test]
    fn a_skip_resumes_straight_on_at_the_next_keyframe() {
        let start = Instant::now();
        let mut track = OutgoingTrack::new(Codec::Vp8, 90_000);
        written(track.process(item(vp8(100, 9000, 300, 7, true, true), 0, false), start));
        written(track.process(item(vp8(101, 12000, 301, 8, false, true), 0, false), start));
        // 400 packets skipped (audio-only for a while), then a resync flag on the next one.
        let later = start + Duration::from_secs(3);
        assert_eq!(
            track.process(item(vp8(502, 300000, 420, 40, false, true), 0, true), later),
            Verdict::DropAndAskKeyframe
        );
        let resumed =
            written(track.process(item(vp8(503, 303000, 421, 41, true, true), 0, false), later));
        assert_eq!(
            resumed.header.sequence_number, 102,
            "no gap in sequence numbers"
        );
        assert_eq!(
            pid_tl0(&resumed),
            (302, 9),
            "picture id and TL0PICIDX go straight on"
        );
        let ticks = resumed.header.timestamp.wrapping_sub(12000);
        assert!(
            (269_000..=271_000).contains(&ticks),
            "timestamps follow the clock: {ticks}"
        );
        let next = written(track.process(
            item(vp8(504, 306000, 422, 41, false, true), 0, false),
            later,
        ));
        assert_eq!(next.header.sequence_number, 103);
        assert_eq!(pid_tl0(&next), (303, 9));
    }

    #[test]
    fn a_new_source_continues_the_numbering() {
        let start = Instant::now();
        let mut track = OutgoingTrack::new(Codec::Vp8, 90_000);
        written(track.process(
            item(vp8(65535, 1000, 32767, 255, true, true), 0, false),
            start,
        ));
        // The teacher reconnected: another SSRC, other numbers, generation 1.
        let switched = written(track.process(item(vp8(7, 5, 12, 3, true, true), 1, false), start));
        assert_eq!(switched.header.sequence_number, 0, "wraps around, no gap");
        assert_eq!(
            pid_tl0(&switched),
            (0, 0),
            "15-bit picture id and TL0PICIDX wrap"
        );
        // A late packet of the old source is not written over the new numbering.
        assert_eq!(
            track.process(
                item(vp8(65535, 1000, 32767, 255, false, false), 1, false),
                start
            ),
            Verdict::Drop
        );
    }

    #[test]
    fn real_loss_stays_visible_and_nacks_map_back() {
        let now = Instant::now();
        let mut track = OutgoingTrack::new(Codec::Vp8, 90_000);
        written(track.process(item(vp8(100, 0, 1, 0, true, true), 0, false), now));
        track.skipped();
        written(track.process(item(vp8(200, 3000, 2, 0, true, true), 0, false), now));
        // 201 was lost upstream: the subscriber sees the gap and NACKs it.
        let after = written(track.process(item(vp8(202, 3000, 2, 0, false, false), 0, false), now));
        assert_eq!(after.header.sequence_number, 103);
        let answer = track.answer([102, 101, 103, 999]);
        assert_eq!(
            answer.lost,
            vec![201],
            "only the unwritten one goes upstream"
        );
        assert_eq!(
            answer.resend,
            vec![200, 202],
            "the written ones, in source numbers"
        );
        // Resent from the track's history, it is numbered as it was written.
        let again = track
            .again(vp8(202, 3000, 2, 0, false, false))
            .expect("of this run");
        assert_eq!(again.header, after.header);
        assert_eq!(again.payload, after.payload);
        assert!(
            track.again(vp8(100, 0, 1, 0, true, true)).is_none(),
            "an earlier run"
        );
        // A late arrival of 201 fills exactly the gap.
        let late = written(track.process(item(vp8(201, 3000, 2, 0, false, false), 0, false), now));
        assert_eq!(late.header.sequence_number, 102);
    }

    #[test]
    fn audio_resumes_at_once() {
        let now = Instant::now();
        let mut track = OutgoingTrack::new(Codec::Opus, 48_000);
        let opus = |seq| rtp::Packet {
            header: rtp::header::Header {
                sequence_number: seq,
                ..Default::default()
            },
            payload: vec![1, 2, 3].into(),
        };
        written(track.process(item(opus(1), 0, false), now));
        let resumed = written(track.process(item(opus(50), 0, true), now));
        assert_eq!(resumed.header.sequence_number, 2);
    }
}
