//! Synthetic media for test and load clients: VP8-shaped and Opus-shaped RTP whose payloads
//! carry a sequence number and a checksum, and the receive side that checks them. Video
//! payloads start with a VP8 payload descriptor and frame tag (a keyframe every
//! `KEYFRAME_EVERY` frames), so a recorder can assemble frames and find keyframes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rtc::media_stream::MediaStreamTrack;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::media_stream::Track;
use webrtc::peer_connection::{
    register_default_interceptors, MediaEngine, PeerConnection, PeerConnectionBuilder,
    PeerConnectionEventHandler, Registry, SettingEngineBuilder,
};

/// What one received track delivered.
#[derive(Debug, Default, Clone)]
pub struct Received {
    pub kind: String,
    pub packets: u64,
    pub intact: u64,
    /// Sequence numbers written into payloads by the test publisher, seen at least once.
    pub distinct: std::collections::BTreeSet<u32>,
    /// When the first packet arrived.
    pub first_at: Option<Instant>,
    /// RFC 3550 interarrival jitter, in milliseconds.
    pub jitter_ms: f64,
    last: Option<(Instant, u32)>,
}

/// Receive-side statistics, by track id.
pub type Inbox = Arc<Mutex<HashMap<String, Received>>>;

/// The shape of the synthetic video: frames per second and bits per second.
#[derive(Debug, Clone, Copy)]
pub struct VideoShape {
    pub fps: u32,
    pub bitrate_bps: u32,
}

impl Default for VideoShape {
    fn default() -> Self {
        VideoShape {
            fps: 30,
            bitrate_bps: 720_000,
        }
    }
}

impl VideoShape {
    /// Packets per frame and payload bytes per packet, at most ~1100 bytes each.
    fn packets(&self) -> (usize, usize) {
        let per_frame_bytes = (self.bitrate_bps / 8 / self.fps.max(1)).max(100) as usize;
        let packets = per_frame_bytes.div_ceil(1100);
        (packets, per_frame_bytes / packets)
    }
}

/// A payload: 4 bytes of sequence number, 4 of checksum over the rest, then filler.
pub fn make_payload(seq: u32, len: usize) -> Vec<u8> {
    let mut payload = vec![0u8; len.max(16)];
    for (i, b) in payload.iter_mut().enumerate().skip(8) {
        *b = (seq as usize).wrapping_mul(31).wrapping_add(i) as u8;
    }
    payload[..4].copy_from_slice(&seq.to_be_bytes());
    let sum = checksum(&payload[8..]);
    payload[4..8].copy_from_slice(&sum.to_be_bytes());
    payload
}

fn checksum(bytes: &[u8]) -> u32 {
    bytes
        .iter()
        .fold(2166136261u32, |h, b| (h ^ *b as u32).wrapping_mul(16777619))
}

/// Frames from one keyframe to the next in synthetic video.
pub const KEYFRAME_EVERY: u32 = 10;

/// The VP8 payload descriptor and, on a frame's first packet, the frame tag (RFC 7741, 4.2;
/// RFC 6386, 9.1: the tag's first bit is 0 on a keyframe).
fn vp8_prefix(first_of_frame: bool, keyframe: bool) -> [u8; 2] {
    match (first_of_frame, keyframe) {
        (true, true) => [0x10, 0x00],
        (true, false) => [0x10, 0x01],
        (false, _) => [0x00, 0x00],
    }
}

/// The sequence number of an intact payload (after a VP8 prefix, on video).
pub fn check_payload(payload: &[u8]) -> Option<u32> {
    check_at(payload).or_else(|| check_at(payload.get(2..)?))
}

fn check_at(payload: &[u8]) -> Option<u32> {
    if payload.len() < 16 {
        return None;
    }
    let seq = u32::from_be_bytes(payload[..4].try_into().unwrap());
    let sum = u32::from_be_bytes(payload[4..8].try_into().unwrap());
    (checksum(&payload[8..]) == sum).then_some(seq)
}

/// Counts what each received track delivers.
pub fn record(inbox: &Inbox, track_id: &str, packet: &rtp::Packet) {
    let now = Instant::now();
    let mut inbox = inbox.lock().unwrap();
    let entry = inbox.entry(track_id.to_owned()).or_default();
    entry.packets += 1;
    entry.first_at.get_or_insert(now);
    let clock = if entry.kind == "audio" {
        48_000.0
    } else {
        90_000.0
    };
    if let Some((at, ts)) = entry.last {
        let arrival = now.duration_since(at).as_secs_f64() * clock;
        let sent = packet.header.timestamp.wrapping_sub(ts) as i32 as f64;
        let d = (arrival - sent).abs() / clock * 1000.0;
        entry.jitter_ms += (d - entry.jitter_ms) / 16.0;
    }
    entry.last = Some((now, packet.header.timestamp));
    if let Some(seq) = check_payload(&packet.payload) {
        entry.intact += 1;
        entry.distinct.insert(seq);
    }
}

/// Reads a received track until it ends, recording every packet.
pub async fn receive(remote: Arc<dyn TrackRemote>, inbox: Inbox) {
    let track_id = remote.track_id().await.to_string();
    let kind = format!("{:?}", remote.kind().await).to_lowercase();
    inbox
        .lock()
        .unwrap()
        .entry(track_id.clone())
        .or_default()
        .kind = kind;
    while let Some(event) = remote.poll().await {
        if let TrackRemoteEvent::OnRtpPacket(packet) = event {
            record(&inbox, &track_id, &packet);
        }
    }
}

/// A client peer connection on loopback, with the keyframe-request interceptor so the
/// publisher can count the PLIs it is sent.
pub async fn new_pc(
    handler: Arc<dyn PeerConnectionEventHandler>,
    bind: &str,
) -> Arc<dyn PeerConnection> {
    let mut media = MediaEngine::default();
    media.register_default_codecs().unwrap();
    let registry = crate::sfu::keyframe_requests::register(
        register_default_interceptors(Registry::new(), &mut media).unwrap(),
    );
    let settings = SettingEngineBuilder::new()
        .with_include_loopback_candidate(true)
        .build();
    Arc::new(
        PeerConnectionBuilder::new()
            .with_media_engine(media)
            .with_interceptor_registry(registry)
            .with_setting_engine(settings)
            .with_handler(handler)
            .with_udp_addrs(vec![bind.to_owned()])
            .build()
            .await
            .unwrap(),
    )
}

/// The two tracks a synthetic publisher sends.
pub fn publisher_tracks() -> (Arc<TrackLocalStaticRTP>, Arc<TrackLocalStaticRTP>) {
    (
        local_track("video/VP8", 90000, 0, RtpCodecKind::Video),
        local_track("audio/opus", 48000, 2, RtpCodecKind::Audio),
    )
}

/// Starts sending on both tracks; returns the tasks. `sent` counts packets (audio, video).
pub fn start_sending(
    video: Arc<TrackLocalStaticRTP>,
    video_pt: u8,
    audio: Arc<TrackLocalStaticRTP>,
    audio_pt: u8,
    shape: VideoShape,
    sent: Arc<[AtomicU64; 2]>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let (per_frame, size) = shape.packets();
    let interval = Duration::from_secs_f64(1.0 / shape.fps.max(1) as f64);
    vec![
        tokio::spawn(send_media(
            video,
            video_pt,
            90000 / shape.fps.max(1),
            interval,
            per_frame,
            size,
            sent.clone(),
            1,
        )),
        tokio::spawn(send_media(
            audio,
            audio_pt,
            960,
            Duration::from_millis(20),
            1,
            100,
            sent,
            0,
        )),
    ]
}

fn local_track(
    mime: &str,
    clock_rate: u32,
    channels: u16,
    kind: RtpCodecKind,
) -> Arc<TrackLocalStaticRTP> {
    let ssrc: u32 = rand::random();
    let codec = RTCRtpCodec {
        mime_type: mime.into(),
        clock_rate,
        channels,
        ..Default::default()
    };
    Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
        format!("stream-{ssrc}"),
        format!("track-{ssrc}"),
        format!("track-{ssrc}"),
        kind,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                ..Default::default()
            },
            codec,
            ..Default::default()
        }],
    )))
}

/// Sends frames of `per_frame` packets every `interval`; the last packet of a frame has the
/// marker bit, and timestamps advance by `ticks` per frame.
#[allow(clippy::too_many_arguments)]
async fn send_media(
    track: Arc<TrackLocalStaticRTP>,
    payload_type: u8,
    ticks: u32,
    interval: Duration,
    per_frame: usize,
    size: usize,
    sent: Arc<[AtomicU64; 2]>,
    slot: usize,
) {
    let ssrc = track.ssrcs().await.first().copied().unwrap();
    let mut tick = tokio::time::interval(interval);
    let (mut seq, mut timestamp, mut counter) =
        (rand::random::<u16>(), rand::random::<u32>(), 0u32);
    let video = slot == 1;
    for frame in 0u32.. {
        tick.tick().await;
        for i in 0..per_frame {
            let payload = match video {
                true => {
                    let mut payload = vp8_prefix(i == 0, frame % KEYFRAME_EVERY == 0).to_vec();
                    payload.extend(make_payload(counter, size.saturating_sub(2)));
                    payload
                }
                false => make_payload(counter, size),
            };
            let packet = rtp::Packet {
                header: rtp::header::Header {
                    version: 2,
                    payload_type,
                    sequence_number: seq,
                    timestamp,
                    ssrc,
                    marker: i + 1 == per_frame,
                    ..Default::default()
                },
                payload: payload.into(),
            };
            seq = seq.wrapping_add(1);
            counter += 1;
            if track.write_rtp(packet).await.is_ok() {
                sent[slot].fetch_add(1, Ordering::Relaxed);
            }
        }
        timestamp = timestamp.wrapping_add(ticks);
    }
}
