//! Synthetic media for test and load clients: VP8-shaped and Opus-shaped RTP whose payloads
//! carry a sequence number and a checksum, and the receive side that checks them.
//!
//! Video packets open with a real VP8 payload descriptor (a 15-bit picture id, the start bit
//! on a frame's first packet) and a VP8 header byte saying key frame or not, so the SFU's
//! keyframe logic and picture-id rewriting work on them as on a browser's. The first frame is
//! a keyframe, and so is the next frame after each keyframe request (PLI, FIR).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rtc::media_stream::MediaStreamTrack;
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::media_stream::Track;
use webrtc::peer_connection::{
    register_default_interceptors, MediaEngine, PeerConnection, PeerConnectionBuilder,
    PeerConnectionEventHandler, RTCConfigurationBuilder, RTCIceServer, RTCIceTransportPolicy,
    Registry, SettingEngineBuilder,
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
    /// RTP sequence numbers missing between consecutive packets (gaps the receiver sees).
    pub seq_gaps: u64,
    last_seq: Option<u16>,
    /// When the latest packet arrived.
    pub last_at: Option<Instant>,
    /// When each keyframe (its first packet) arrived, for video.
    pub keyframes: Vec<Instant>,
}

/// Bytes before the checked payload in a video packet: the VP8 payload descriptor (4) and
/// the VP8 header byte (1).
const VP8_PREFIX: usize = 5;

/// A video payload: VP8 descriptor with picture id `picture_id`, start bit on a frame's first
/// packet, the key-frame bit, then the checked payload.
fn vp8_payload(start: bool, keyframe: bool, picture_id: u16, checked: Vec<u8>) -> Vec<u8> {
    let mut payload = Vec::with_capacity(VP8_PREFIX + checked.len());
    payload.push(0x80 | if start { 0x10 } else { 0 });
    payload.push(0x80);
    payload.push(0x80 | ((picture_id >> 8) as u8 & 0x7f));
    payload.push(picture_id as u8);
    payload.push(if keyframe { 0x00 } else { 0x01 });
    payload.extend_from_slice(&checked);
    payload
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

/// The sequence number of an intact payload.
pub fn check_payload(payload: &[u8]) -> Option<u32> {
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
    entry.last_at = Some(now);
    let seq = packet.header.sequence_number;
    if let Some(last) = entry.last_seq {
        let ahead = seq.wrapping_sub(last) as i16;
        if ahead > 1 {
            entry.seq_gaps += ahead as u64 - 1;
        }
        if ahead <= 0 {
            // Late or repeated: not the newest.
            return check_into(entry, &packet.payload);
        }
    }
    entry.last_seq = Some(seq);
    if entry.kind == "video" {
        let start = packet.payload.first().is_some_and(|b| b & 0x10 != 0);
        let key = packet
            .payload
            .get(VP8_PREFIX - 1)
            .is_some_and(|b| b & 0x01 == 0);
        if start && key {
            entry.keyframes.push(now);
        }
    }
    check_into(entry, &packet.payload);
}

/// Counts an intact checked payload (after the VP8 prefix, for video).
fn check_into(entry: &mut Received, payload: &[u8]) {
    let payload = match entry.kind == "video" {
        true => payload.get(VP8_PREFIX..).unwrap_or_default(),
        false => payload,
    };
    if let Some(seq) = check_payload(payload) {
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
    new_pc_relayed(handler, bind, None).await
}

/// A connection that, with `relay`, gathers only relay candidates on those TURN servers
/// (`iceTransportPolicy: "relay"`), as a browser behind the strictest firewall ends up doing.
pub async fn new_pc_relayed(
    handler: Arc<dyn PeerConnectionEventHandler>,
    bind: &str,
    relay: Option<Vec<crate::config::IceServer>>,
) -> Arc<dyn PeerConnection> {
    let mut configuration = RTCConfigurationBuilder::new();
    if let Some(servers) = relay {
        configuration = configuration
            .with_ice_servers(
                servers
                    .into_iter()
                    .map(|s| RTCIceServer {
                        urls: s.urls,
                        username: s.username.unwrap_or_default(),
                        credential: s.credential.unwrap_or_default(),
                    })
                    .collect(),
            )
            .with_ice_transport_policy(RTCIceTransportPolicy::Relay);
    }
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
            .with_configuration(configuration.build())
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

/// Starts sending on both tracks; returns the tasks. `sent` counts packets (audio, video);
/// `plis` gets the time of every keyframe request, each answered with a keyframe.
pub fn start_sending(
    video: Arc<TrackLocalStaticRTP>,
    video_pt: u8,
    audio: Arc<TrackLocalStaticRTP>,
    audio_pt: u8,
    shape: VideoShape,
    sent: Arc<[AtomicU64; 2]>,
    plis: Arc<Mutex<Vec<Instant>>>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let (per_frame, size) = shape.packets();
    let interval = Duration::from_secs_f64(1.0 / shape.fps.max(1) as f64);
    let keyframe = Arc::new(AtomicBool::new(true));
    vec![
        tokio::spawn(answer_keyframe_requests(
            video.clone(),
            keyframe.clone(),
            plis,
        )),
        tokio::spawn(send_media(
            video,
            video_pt,
            90000 / shape.fps.max(1),
            interval,
            per_frame,
            size,
            sent.clone(),
            Some(keyframe),
        )),
        tokio::spawn(send_media(
            audio,
            audio_pt,
            960,
            Duration::from_millis(20),
            1,
            100,
            sent,
            None,
        )),
    ]
}

/// Reads the video track's RTCP: a keyframe request makes the next frame a keyframe.
async fn answer_keyframe_requests(
    video: Arc<TrackLocalStaticRTP>,
    keyframe: Arc<AtomicBool>,
    plis: Arc<Mutex<Vec<Instant>>>,
) {
    while let Some(TrackLocalEvent::OnRtcpPacket(packets)) = video.poll().await {
        let asks = packets.iter().any(|p| {
            p.as_any().is::<PictureLossIndication>() || p.as_any().is::<FullIntraRequest>()
        });
        if asks {
            plis.lock().unwrap().push(Instant::now());
            keyframe.store(true, Ordering::Relaxed);
        }
    }
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
/// marker bit, and timestamps advance by `ticks` per frame. Video (`keyframe` given) is
/// VP8-shaped, a keyframe whenever `keyframe` was set.
#[allow(clippy::too_many_arguments)]
async fn send_media(
    track: Arc<TrackLocalStaticRTP>,
    payload_type: u8,
    ticks: u32,
    interval: Duration,
    per_frame: usize,
    size: usize,
    sent: Arc<[AtomicU64; 2]>,
    keyframe: Option<Arc<AtomicBool>>,
) {
    let ssrc = track.ssrcs().await.first().copied().unwrap();
    let mut tick = tokio::time::interval(interval);
    let (mut seq, mut timestamp, mut counter) =
        (rand::random::<u16>(), rand::random::<u32>(), 0u32);
    let mut picture_id = rand::random::<u16>() & 0x7fff;
    let slot = keyframe.is_some() as usize;
    loop {
        tick.tick().await;
        let key = keyframe
            .as_ref()
            .is_some_and(|k| k.swap(false, Ordering::Relaxed));
        for i in 0..per_frame {
            let checked = make_payload(counter, size);
            let payload = match keyframe {
                Some(_) => vp8_payload(i == 0, key, picture_id, checked),
                None => checked,
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
        picture_id = (picture_id + 1) & 0x7fff;
    }
}
