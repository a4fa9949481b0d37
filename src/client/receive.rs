//! The receive side of the synthetic media: every packet of every received track is counted
//! and its payload checked (sequence number and checksum, after the VP8 prefix for video).
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

use super::media::{check_payload, VP8_PREFIX};
use super::seq_set::SeqSet;

/// What one received track delivered.
#[derive(Debug, Default, Clone)]
pub struct Received {
    pub kind: String,
    pub packets: u64,
    pub intact: u64,
    /// Sequence numbers written into payloads by the test publisher, seen at least once.
    pub distinct: SeqSet,
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
        let span = match (self.distinct.first(), self.distinct.last()) {
            (Some(first), Some(last)) => u64::from(last - first) + 1,
            _ => 0,
        };
        Tally {
            video: self.kind == "video",
            packets: self.packets,
            intact: self.intact,
            distinct: self.distinct.len() as u64,
            span,
            first_at: self.first_at,
            jitter_ms: self.jitter_ms,
        }
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
    let checked = match video {
        true => packet.payload.get(VP8_PREFIX..).and_then(check_payload),
        false => check_payload(&packet.payload),
    };
    let mut inbox = inbox.lock().unwrap();
    let Some(entry) = inbox.get_mut(track_id) else {
        return;
    };
    entry.packets += 1;
    if let Some(seq) = checked {
        entry.intact += 1;
        entry.distinct.insert(seq);
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
    let seq = packet.header.sequence_number;
    if let Some(last) = entry.last_seq {
        let ahead = seq.wrapping_sub(last) as i16;
        if ahead > 1 {
            entry.seq_gaps += ahead as u64 - 1;
        }
        if ahead <= 0 {
            // Late or repeated: not the newest.
            return;
        }
    }
    entry.last_seq = Some(seq);
    if video {
        let start = packet.payload.first().is_some_and(|b| b & 0x10 != 0);
        let key = packet
            .payload
            .get(VP8_PREFIX - 1)
            .is_some_and(|b| b & 0x01 == 0);
        if start && key {
            entry.keyframes.push(now);
        }
    }
}
