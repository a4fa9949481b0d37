//! The synthetic sender: one RTP stream's packets (a video or audio track, or one simulcast
//! layer of a video track), numbered and paced as an encoder's, keyframes on request.
//!
//! A stream's packets are made by `Stream::frame`, without I/O, so the receive side's tests
//! can feed exactly what a publisher sends to the receiver.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};

use super::media::{make_payload, Throttle, VideoShape};
use super::vp8::vp8_payload;

/// A track's frames: `per_frame` packets of `size` payload bytes every `interval`, the
/// timestamp advancing by `ticks` per frame.
#[derive(Debug, Clone, Copy)]
pub(super) struct Frames {
    pub(super) ticks: u32,
    pub(super) interval: Duration,
    pub(super) per_frame: usize,
    pub(super) size: usize,
}

impl Frames {
    /// Video of `shape`: packets of at most ~1100 bytes, on a 90 kHz clock.
    pub(super) fn video(shape: VideoShape) -> Frames {
        let fps = shape.fps.max(1);
        let per_frame_bytes = (shape.bitrate_bps / 8 / fps).max(100) as usize;
        let per_frame = per_frame_bytes.div_ceil(1100);
        Frames {
            ticks: 90000 / fps,
            interval: Duration::from_secs_f64(1.0 / fps as f64),
            per_frame,
            size: per_frame_bytes / per_frame,
        }
    }

    /// Opus-shaped audio: one packet of `size` bytes every 20 ms, on a 48 kHz clock.
    pub(super) fn audio(size: usize) -> Frames {
        Frames {
            ticks: 960,
            interval: Duration::from_millis(20),
            per_frame: 1,
            size,
        }
    }
}

/// What makes a stream video: the picture size its keyframes state, and the flag a keyframe
/// request sets (the next frame is then a keyframe; the first one always is).
#[derive(Debug, Clone)]
pub(super) struct Picture {
    pub(super) size: (u16, u16),
    pub(super) keyframe: Arc<AtomicBool>,
}

impl Picture {
    pub(super) fn new(size: (u16, u16)) -> Picture {
        Picture {
            size,
            keyframe: Arc::new(AtomicBool::new(true)),
        }
    }
}

/// One RTP stream and where its numbering stands.
pub(super) struct Stream {
    ssrc: u32,
    payload_type: u8,
    /// Header extensions every packet carries, by negotiated id (a simulcast layer's mid and
    /// rid, so the server knows the stream before it knows its SSRC).
    extensions: Vec<(u8, Bytes)>,
    pub(super) frames: Frames,
    /// Video (VP8-shaped), or audio (the checked payload alone).
    pub(super) picture: Option<Picture>,
    seq: u16,
    timestamp: u32,
    /// The payload sequence number of the next packet (`make_payload`).
    counter: u32,
    picture_id: u16,
}

impl Stream {
    /// A stream whose payloads are numbered from `first`; RTP numbering starts anywhere.
    pub(super) fn new(
        ssrc: u32,
        payload_type: u8,
        frames: Frames,
        picture: Option<Picture>,
        first: u32,
    ) -> Stream {
        Stream {
            ssrc,
            payload_type,
            extensions: Vec::new(),
            frames,
            picture,
            seq: rand::random(),
            timestamp: rand::random(),
            counter: first,
            picture_id: rand::random::<u16>() & 0x7fff,
        }
    }

    pub(super) fn with_extensions(mut self, extensions: Vec<(u8, Bytes)>) -> Stream {
        self.extensions = extensions;
        self
    }

    /// The next frame's packets, `count` of them; the last has the marker bit.
    pub(super) fn frame(&mut self, count: usize, keyframe: bool) -> Vec<rtp::Packet> {
        let mut packets = Vec::with_capacity(count);
        for i in 0..count {
            let checked = make_payload(self.counter, self.frames.size);
            let payload = match &self.picture {
                Some(picture) => {
                    vp8_payload(i == 0, keyframe, self.picture_id, picture.size, &checked)
                }
                None => checked,
            };
            let mut header = rtp::header::Header {
                version: 2,
                payload_type: self.payload_type,
                sequence_number: self.seq,
                timestamp: self.timestamp,
                ssrc: self.ssrc,
                marker: i + 1 == count,
                ..Default::default()
            };
            for (id, value) in &self.extensions {
                // Ids and values come from the negotiation and `simulcast.rs`: always valid.
                let _ = header.set_extension(*id, value.clone());
            }
            packets.push(rtp::Packet {
                header,
                payload: payload.into(),
            });
            self.seq = self.seq.wrapping_add(1);
            self.counter = self.counter.wrapping_add(1);
        }
        self.skip();
        self.picture_id = (self.picture_id + 1) & 0x7fff;
        packets
    }

    /// A frame time passes with no frame sent.
    pub(super) fn skip(&mut self) {
        self.timestamp = self.timestamp.wrapping_add(self.frames.ticks);
    }

    /// Whether the next frame must be a keyframe (and it is then no longer asked for).
    fn keyframe_due(&self) -> bool {
        self.picture
            .as_ref()
            .is_some_and(|p| p.keyframe.swap(false, Ordering::Relaxed))
    }
}

/// Sends `stream` on `track` until the track is gone. While `throttle` holds, one frame a
/// second goes out, of one packet. `sent` counts packets per kind (audio, video).
pub(super) async fn send(
    track: Arc<TrackLocalStaticRTP>,
    mut stream: Stream,
    throttle: Throttle,
    sent: Arc<[AtomicU64; 2]>,
) {
    let mut tick = tokio::time::interval(stream.frames.interval);
    let per_second = (1.0 / stream.frames.interval.as_secs_f64())
        .round()
        .max(1.0) as u64;
    let slot = stream.picture.is_some() as usize;
    for frame in 0u64.. {
        tick.tick().await;
        let count = match throttle.trickling() {
            true if frame % per_second != 0 => {
                stream.skip();
                continue;
            }
            true => 1,
            false => stream.frames.per_frame,
        };
        let keyframe = stream.keyframe_due();
        for packet in stream.frame(count, keyframe) {
            if track.write_rtp(packet).await.is_ok() {
                sent[slot].fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Reads a video track's RTCP: a keyframe request (PLI, FIR) makes the next frame of the
/// stream it names a keyframe; `plis` gets the time of each.
pub(super) async fn answer_keyframe_requests(
    video: Arc<TrackLocalStaticRTP>,
    pictures: Vec<(u32, Arc<AtomicBool>)>,
    plis: Arc<Mutex<Vec<Instant>>>,
) {
    while let Some(TrackLocalEvent::OnRtcpPacket(packets)) = video.poll().await {
        let asked: Vec<u32> = packets
            .iter()
            .filter(|p| {
                p.as_any().is::<PictureLossIndication>() || p.as_any().is::<FullIntraRequest>()
            })
            .flat_map(|p| p.destination_ssrc())
            .collect();
        if asked.is_empty() {
            continue;
        }
        plis.lock().unwrap().push(Instant::now());
        for (ssrc, keyframe) in &pictures {
            if asked.contains(ssrc) {
                keyframe.store(true, Ordering::Relaxed);
            }
        }
    }
}
