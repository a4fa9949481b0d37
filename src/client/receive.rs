//! The receive side of the synthetic media: every packet of every received track is counted
//! and its payload checked (sequence number and checksum, after the VP8 prefix for video).
//! Video frames are judged as a decoder would (`frames.rs`), and a keyframe's picture size
//! says which simulcast layer arrives. Padding-only packets (the server probes a link's
//! bandwidth with them) are no media: they count in the RTP numbering and nowhere else.
//!
//! On a simulcast track the payload numbers run per layer: what was seen is kept per run of
//! one layer (from a switch to the next), so loss is counted within each run, never across
//! the jump between two layers' numbers.
//!
//! This runs once per packet per subscriber, so in a load run it is the tool's own hot path:
//! the payload is checked before the inbox is locked, the track's entry is found without
//! allocating, and what was seen goes into a bitmap (`SeqSet`), not a tree.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rtc::rtp;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};

use super::frames::{Assembler, FrameCounts, FramePacket};
use super::media::check_payload;
use super::seq_set::SeqSet;
use super::simulcast::layer_of;
use super::vp8;

/// What one received track delivered.
#[derive(Debug, Default, Clone)]
pub struct Received {
    pub kind: String,
    /// Media packets (padding-only ones are not).
    pub packets: u64,
    pub intact: u64,
    /// Sequence numbers written into payloads by the test publisher, seen at least once, in
    /// the current run (see the module's doc).
    pub distinct: SeqSet,
    /// The distinct numbers and the spans of the runs before the current one.
    earlier: (u64, u64),
    /// The layer of the current run (`layer_of` its numbers).
    run_layer: Option<usize>,
    /// When the first packet arrived.
    pub first_at: Option<Instant>,
    /// RFC 3550 interarrival jitter, in milliseconds.
    pub jitter_ms: f64,
    last: Option<(Instant, u32)>,
    /// RTP sequence numbers missing between consecutive packets (gaps the receiver sees).
    pub seq_gaps: u64,
    last_seq: Option<u16>,
    /// When the latest packet arrived.
    pub last_at: Option<Instant>,
    /// When each keyframe (its first packet) arrived, for video.
    pub keyframes: Vec<Instant>,
    /// The picture size the latest keyframe stated.
    pub keyframe_size: Option<(u16, u16)>,
    /// RTP sequence numbers seen, as the server numbered them (extended past their wrap),
    /// padding-only packets included: loss on the way from the server is what is missing.
    pub rtp: SeqSet,
    /// The extended number of the newest packet.
    newest: Option<u64>,
    /// Padding-only packets.
    pub padding: u64,
    frames: Assembler,
}

/// Receive-side statistics, by track id.
pub type Inbox = Arc<Mutex<HashMap<String, Received>>>;

/// A received track's counts without the set of what was seen: cheap to take every second.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tally {
    pub video: bool,
    pub packets: u64,
    pub intact: u64,
    /// Distinct checked sequence numbers seen, and the range they span (first to last).
    pub distinct: u64,
    pub span: u64,
    pub first_at: Option<Instant>,
    pub jitter_ms: f64,
}

impl Received {
    pub fn tally(&self) -> Tally {
        Tally {
            video: self.kind == "video",
            packets: self.packets,
            intact: self.intact,
            distinct: self.earlier.0 + self.distinct.len() as u64,
            span: self.earlier.1 + span(&self.distinct),
            first_at: self.first_at,
            jitter_ms: self.jitter_ms,
        }
    }

    /// What a decoder made of the video so far.
    pub fn frames(&self) -> FrameCounts {
        self.frames.counts
    }

    /// The share of the RTP sequence numbers in `range` that never arrived.
    pub fn rtp_loss(&self, range: Range<u32>) -> f64 {
        match range.len() {
            0 => 0.0,
            n => 1.0 - self.rtp.count_in(range) as f64 / n as f64,
        }
    }

    /// The layer the latest keyframe was from (0 for `l`), by its picture size.
    pub fn keyframe_layer(&self) -> Option<usize> {
        super::simulcast::layer_by_size(self.keyframe_size?)
    }

    /// The RTP sequence number `seq` extended from the newest one, and whether it is newer.
    fn extend(&mut self, seq: u16) -> (u64, bool) {
        let Some(newest) = self.newest else {
            // Far enough from zero that a late packet never goes below it.
            let extended = (1 << 16) + u64::from(seq);
            self.newest = Some(extended);
            return (extended, true);
        };
        let ahead = seq.wrapping_sub(newest as u16) as i16;
        let extended = newest.saturating_add_signed(i64::from(ahead));
        if ahead > 0 {
            self.newest = Some(extended);
        }
        (extended, ahead > 0)
    }

    /// Starts a new run when the newest packet is from another layer than the run's.
    fn follow_layer(&mut self, layer: Option<usize>) {
        if layer == self.run_layer {
            return;
        }
        if !self.distinct.is_empty() {
            self.earlier.0 += self.distinct.len() as u64;
            self.earlier.1 += span(&self.distinct);
            self.distinct = SeqSet::default();
        }
        self.run_layer = layer;
    }
}

/// How many numbers a set's first to last covers.
fn span(set: &SeqSet) -> u64 {
    match (set.first(), set.last()) {
        (Some(first), Some(last)) => u64::from(last - first) + 1,
        _ => 0,
    }
}

/// The tallies of every track in an inbox.
pub fn tallies(inbox: &Inbox) -> Vec<Tally> {
    inbox
        .lock()
        .unwrap()
        .values()
        .map(Received::tally)
        .collect()
}

/// Distinct intact packets in an inbox whose payload sequence numbers are in `video` or
/// `audio`, by the track's kind.
pub fn seen_between(inbox: &Inbox, video: Range<u32>, audio: Range<u32>) -> u64 {
    inbox
        .lock()
        .unwrap()
        .values()
        .map(|r| {
            let range = match r.kind == "video" {
                true => video.clone(),
                false => audio.clone(),
            };
            r.distinct.count_in(range) as u64
        })
        .sum()
}

/// A connection's handler that receives and checks every track it is given, into `inbox`.
pub struct Receiving {
    pub inbox: Inbox,
}

#[async_trait::async_trait]
impl webrtc::peer_connection::PeerConnectionEventHandler for Receiving {
    async fn on_track(&self, remote: Arc<dyn TrackRemote>) {
        tokio::spawn(receive(remote, self.inbox.clone()));
    }
}

/// Reads a received track until it ends, recording every packet.
pub async fn receive(remote: Arc<dyn TrackRemote>, inbox: Inbox) {
    let track_id = remote.track_id().await.to_string();
    let kind = format!("{:?}", remote.kind().await).to_lowercase();
    let video = kind == "video";
    inbox
        .lock()
        .unwrap()
        .entry(track_id.clone())
        .or_default()
        .kind = kind;
    while let Some(event) = remote.poll().await {
        if let TrackRemoteEvent::OnRtpPacket(packet) = event {
            record(&inbox, &track_id, video, &packet);
        }
    }
}

/// Counts one packet of a track.
fn record(inbox: &Inbox, track_id: &str, video: bool, packet: &rtp::Packet) {
    let now = Instant::now();
    let padding = packet.payload.is_empty();
    let view = video.then(|| vp8::read(&packet.payload)).flatten();
    let checked = match video {
        true => view.and_then(|v| check_payload(v.checked)),
        false => check_payload(&packet.payload),
    };
    let mut inbox = inbox.lock().unwrap();
    let Some(entry) = inbox.get_mut(track_id) else {
        return;
    };
    let seq = packet.header.sequence_number;
    let (extended, newest) = entry.extend(seq);
    let fresh = entry.rtp.insert(extended as u32);
    if let Some(last) = entry.last_seq.filter(|_| newest) {
        entry.seq_gaps += u64::from(seq.wrapping_sub(last)) - 1;
    }
    if newest {
        entry.last_seq = Some(seq);
    }
    if padding {
        entry.padding += 1;
        return;
    }
    entry.packets += 1;
    let layer = checked.map(layer_of);
    if newest {
        if let Some(layer) = layer {
            entry.follow_layer(layer);
        }
    }
    if let Some(checked) = checked {
        entry.intact += 1;
        if layer == Some(entry.run_layer) {
            entry.distinct.insert(checked);
        }
    }
    entry.first_at.get_or_insert(now);
    let clock = if video { 90_000.0 } else { 48_000.0 };
    if let Some((at, ts)) = entry.last {
        let arrival = now.duration_since(at).as_secs_f64() * clock;
        let sent = packet.header.timestamp.wrapping_sub(ts) as i32 as f64;
        let d = (arrival - sent).abs() / clock * 1000.0;
        entry.jitter_ms += (d - entry.jitter_ms) / 16.0;
    }
    entry.last = Some((now, packet.header.timestamp));
    entry.last_at = Some(now);
    let Some(view) = view else {
        return;
    };
    if fresh {
        let frame = FramePacket {
            seq: extended,
            picture_id: view.picture_id,
            start: view.start,
            end: packet.header.marker,
            keyframe: view.keyframe,
            layer: layer.map(|l| l.map_or(0, |l| l as u8 + 1)),
        };
        entry.frames.add(frame, now);
    }
    if newest && view.start && view.keyframe {
        entry.keyframes.push(now);
        entry.keyframe_size = view.size;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::sender::{Frames, Picture, Stream};
    use crate::client::simulcast::{self, Naming, LAYERS};
    use crate::client::VideoShape;

    /// Numbers packets as the server does for one subscriber: its own RTP sequence numbers
    /// and picture ids, straight on whatever stream they come from.
    struct Server {
        seq: u16,
        picture_id: u16,
    }

    impl Server {
        fn forward(&mut self, inbox: &Inbox, packets: Vec<rtp::Packet>) {
            let mut last_picture = None;
            for mut packet in packets {
                let picture = u16::from_be_bytes([packet.payload[2] & 0x7f, packet.payload[3]]);
                if last_picture.is_some_and(|p| p != picture) {
                    self.picture_id = (self.picture_id + 1) & 0x7fff;
                }
                last_picture = Some(picture);
                let mut payload = packet.payload.to_vec();
                payload[2] = 0x80 | (self.picture_id >> 8) as u8;
                payload[3] = self.picture_id as u8;
                packet.payload = payload.into();
                packet.header.sequence_number = self.seq;
                self.seq = self.seq.wrapping_add(1);
                record(inbox, "v", true, &packet);
            }
            self.picture_id = (self.picture_id + 1) & 0x7fff;
        }

        /// A padding-only packet, as the server probes with.
        fn pad(&mut self, inbox: &Inbox) {
            let packet = rtp::Packet {
                header: rtp::header::Header {
                    version: 2,
                    padding: true,
                    sequence_number: self.seq,
                    ..Default::default()
                },
                payload: Default::default(),
            };
            self.seq = self.seq.wrapping_add(1);
            record(inbox, "v", true, &packet);
        }
    }

    fn video_inbox() -> Inbox {
        let inbox = Inbox::default();
        inbox.lock().unwrap().entry("v".into()).or_default().kind = "video".into();
        inbox
    }

    #[test]
    fn padding_only_packets_count_in_the_numbering_and_nowhere_else() {
        let inbox = video_inbox();
        let shape = VideoShape::default();
        let mut stream = Stream::new(
            7,
            96,
            Frames::video(shape),
            Some(Picture::new((320, 180))),
            0,
        );
        let mut server = Server {
            seq: 65_530,
            picture_id: 1,
        };
        server.forward(&inbox, stream.frame(3, true));
        for _ in 0..5 {
            server.pad(&inbox);
        }
        server.forward(&inbox, stream.frame(3, false));
        let received = inbox.lock().unwrap()["v"].clone();
        assert_eq!(
            (received.packets, received.intact, received.padding),
            (6, 6, 5)
        );
        assert_eq!(received.seq_gaps, 0);
        assert_eq!(received.rtp.len(), 11);
        assert_eq!(received.rtp_loss(65_536 + 65_530..65_536 + 65_541), 0.0);
        assert_eq!(received.keyframe_size, Some((320, 180)));
        assert_eq!(received.frames().decodable, 2);
    }

    #[test]
    fn a_switch_of_layers_counts_loss_per_run_and_breaks_no_picture_at_a_keyframe() {
        let inbox = video_inbox();
        let naming = Naming {
            mid_id: 1,
            rid_id: 2,
            mid: "0".into(),
        };
        let mut layers = simulcast::streams([1, 2, 3], 96, &naming);
        let mut server = Server {
            seq: 10,
            picture_id: 100,
        };
        let per_frame = |stream: &Stream| stream.frames.per_frame;
        let low = per_frame(&layers[0]);
        server.forward(&inbox, layers[0].frame(low, true));
        for _ in 0..10 {
            server.forward(&inbox, layers[0].frame(low, false));
        }
        let high = per_frame(&layers[2]);
        server.forward(&inbox, layers[2].frame(high, true));
        for _ in 0..10 {
            server.forward(&inbox, layers[2].frame(high, false));
        }
        let received = inbox.lock().unwrap()["v"].clone();
        assert_eq!(received.keyframe_size, Some(LAYERS[2].size));
        assert_eq!(received.keyframe_layer(), Some(2));
        let tally = received.tally();
        assert_eq!(tally.distinct, tally.span, "no loss across the switch");
        assert_eq!(tally.distinct, (11 * low + 11 * high) as u64);
        let frames = received.frames();
        assert_eq!((frames.decodable, frames.broken), (22, 0));

        // Back to the low layer without a keyframe: the picture breaks until one comes.
        server.forward(&inbox, layers[0].frame(low, false));
        server.forward(&inbox, layers[0].frame(low, false));
        server.forward(&inbox, layers[0].frame(low, true));
        let frames = inbox.lock().unwrap()["v"].frames();
        assert_eq!((frames.decodable, frames.broken), (23, 2));
    }
}
