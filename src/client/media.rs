//! Synthetic media for test and load clients: VP8-shaped and Opus-shaped RTP whose payloads
//! carry a sequence number and a checksum (`receive.rs` checks them), and the client's peer
//! connections.
//!
//! Video packets open with a real VP8 payload descriptor (a 15-bit picture id, the start bit
//! on a frame's first packet) and a VP8 header byte saying key frame or not, so the SFU's
//! keyframe logic and picture-id rewriting work on them as on a browser's. The first frame is
//! a keyframe, and so is the next frame after each keyframe request (PLI, FIR).

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
use webrtc::media_stream::Track;
use webrtc::peer_connection::{
    register_default_interceptors, MediaEngine, PeerConnection, PeerConnectionBuilder,
    PeerConnectionEventHandler, RTCConfigurationBuilder, RTCIceServer, RTCIceTransportPolicy,
    Registry, SettingEngineBuilder,
};

/// Bytes before the checked payload in a video packet: the VP8 payload descriptor (4) and
/// the VP8 header byte (1).
pub(super) const VP8_PREFIX: usize = 5;

/// A video payload: VP8 descriptor with picture id `picture_id`, start bit on a frame's first
/// packet, the key-frame bit, then the checked payload.
pub(crate) fn vp8_payload(
    start: bool,
    keyframe: bool,
    picture_id: u16,
    checked: Vec<u8>,
) -> Vec<u8> {
    let mut payload = Vec::with_capacity(VP8_PREFIX + checked.len());
    payload.push(0x80 | if start { 0x10 } else { 0 });
    payload.push(0x80);
    payload.push(0x80 | ((picture_id >> 8) as u8 & 0x7f));
    payload.push(picture_id as u8);
    payload.push(if keyframe { 0x00 } else { 0x01 });
    payload.extend_from_slice(&checked);
    payload
}

/// How fast a synthetic publisher sends: its full shape, or while throttled a trickle of one
/// one-packet frame a second on each track. The trickle keeps the tracks alive (a track exists
/// for the server from its first packet on), so a run can measure what connected but idle
/// viewers cost before the media starts in earnest.
#[derive(Debug, Clone, Default)]
pub struct Throttle(Arc<AtomicBool>);

impl Throttle {
    /// A throttle that holds the sender to the trickle until `release`.
    pub fn trickle() -> Throttle {
        Throttle(Arc::new(AtomicBool::new(true)))
    }

    pub fn release(&self) {
        self.0.store(false, Ordering::Relaxed);
    }

    fn trickling(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

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

/// A payload: 4 bytes of sequence number, 4 of checksum over the sequence number and the
/// filler, then filler.
pub fn make_payload(seq: u32, len: usize) -> Vec<u8> {
    let mut payload = vec![0u8; len.max(16)];
    for (i, b) in payload.iter_mut().enumerate().skip(8) {
        *b = (seq as usize).wrapping_mul(31).wrapping_add(i) as u8;
    }
    payload[..4].copy_from_slice(&seq.to_be_bytes());
    let sum = checksum(seq, &payload[8..]);
    payload[4..8].copy_from_slice(&sum.to_be_bytes());
    payload
}

/// FNV-1a over 8-byte words (then the bytes left over), folded to 32 bits. Each step is a
/// bijection of the state for given input, so a payload that differs in any one word always
/// ends in a different 64-bit state; a word at a time costs an eighth of a byte at a time,
/// which matters on the receive side, where every packet of every subscriber is checked.
fn checksum(seq: u32, bytes: &[u8]) -> u32 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut words = bytes.chunks_exact(8);
    let mut h = (0xcbf2_9ce4_8422_2325u64 ^ u64::from(seq)).wrapping_mul(PRIME);
    for word in &mut words {
        let word = u64::from_le_bytes(word.try_into().expect("8 bytes"));
        h = (h ^ word).wrapping_mul(PRIME);
    }
    for b in words.remainder() {
        h = (h ^ u64::from(*b)).wrapping_mul(PRIME);
    }
    (h ^ (h >> 32)) as u32
}

/// The sequence number of an intact payload: none when any byte differs from what
/// `make_payload` wrote.
pub fn check_payload(payload: &[u8]) -> Option<u32> {
    if payload.len() < 16 {
        return None;
    }
    let seq = u32::from_be_bytes(payload[..4].try_into().expect("4 bytes"));
    let sum = u32::from_be_bytes(payload[4..8].try_into().expect("4 bytes"));
    (checksum(seq, &payload[8..]) == sum).then_some(seq)
}

/// A client peer connection on loopback, with the keyframe-request interceptor so the
/// publisher can count the PLIs it is sent.
pub async fn new_pc(
    handler: Arc<dyn PeerConnectionEventHandler>,
    bind: &str,
) -> Result<Arc<dyn PeerConnection>, String> {
    new_pc_relayed(handler, bind, None).await
}

/// A connection that, with `relay`, gathers only relay candidates on those TURN servers
/// (`iceTransportPolicy: "relay"`), as a browser behind the strictest firewall ends up doing.
pub async fn new_pc_relayed(
    handler: Arc<dyn PeerConnectionEventHandler>,
    bind: &str,
    relay: Option<Vec<crate::config::IceServer>>,
) -> Result<Arc<dyn PeerConnection>, String> {
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
    media.register_default_codecs().map_err(|e| e.to_string())?;
    let registry = crate::sfu::keyframe_requests::register(
        register_default_interceptors(Registry::new(), &mut media).map_err(|e| e.to_string())?,
    );
    let settings = SettingEngineBuilder::new()
        .with_include_loopback_candidate(true)
        .build();
    let pc = PeerConnectionBuilder::new()
        .with_configuration(configuration.build())
        .with_media_engine(media)
        .with_interceptor_registry(registry)
        .with_setting_engine(settings)
        .with_handler(handler)
        .with_udp_addrs(vec![bind.to_owned()])
        .build()
        .await
        .map_err(|e| format!("peer connection: {e}"))?;
    Ok(Arc::new(pc))
}

/// The two tracks a synthetic publisher sends.
pub fn publisher_tracks() -> (Arc<TrackLocalStaticRTP>, Arc<TrackLocalStaticRTP>) {
    (
        local_track("video/VP8", 90000, 0, RtpCodecKind::Video),
        local_track("audio/opus", 48000, 2, RtpCodecKind::Audio),
    )
}

/// Starts sending on both tracks at the pace `throttle` sets; returns the tasks. `sent`
/// counts packets (audio, video); `plis` gets the time of every keyframe request, each
/// answered with a keyframe.
#[allow(clippy::too_many_arguments)]
pub fn start_sending(
    video: Arc<TrackLocalStaticRTP>,
    video_pt: u8,
    audio: Arc<TrackLocalStaticRTP>,
    audio_pt: u8,
    shape: VideoShape,
    throttle: Throttle,
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
            Frames {
                ticks: 90000 / shape.fps.max(1),
                interval,
                per_frame,
                size,
            },
            throttle.clone(),
            sent.clone(),
            Some(keyframe),
        )),
        tokio::spawn(send_media(
            audio,
            audio_pt,
            Frames {
                ticks: 960,
                interval: Duration::from_millis(20),
                per_frame: 1,
                size: 100,
            },
            throttle,
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

/// A track's frames: `per_frame` packets of `size` payload bytes every `interval`, the
/// timestamp advancing by `ticks` per frame.
struct Frames {
    ticks: u32,
    interval: Duration,
    per_frame: usize,
    size: usize,
}

/// Sends `frames`; the last packet of a frame has the marker bit. Video (`keyframe` given) is
/// VP8-shaped, a keyframe whenever `keyframe` was set. While `throttle` holds, one frame a
/// second goes out, of one packet.
async fn send_media(
    track: Arc<TrackLocalStaticRTP>,
    payload_type: u8,
    frames: Frames,
    throttle: Throttle,
    sent: Arc<[AtomicU64; 2]>,
    keyframe: Option<Arc<AtomicBool>>,
) {
    let Some(ssrc) = track.ssrcs().await.first().copied() else {
        return;
    };
    let mut tick = tokio::time::interval(frames.interval);
    let per_second = (1.0 / frames.interval.as_secs_f64()).round().max(1.0) as u64;
    let (mut seq, mut timestamp, mut counter) =
        (rand::random::<u16>(), rand::random::<u32>(), 0u32);
    let mut picture_id = rand::random::<u16>() & 0x7fff;
    let slot = keyframe.is_some() as usize;
    for frame in 0u64.. {
        tick.tick().await;
        let per_frame = match throttle.trickling() {
            true if frame % per_second != 0 => {
                timestamp = timestamp.wrapping_add(frames.ticks);
                continue;
            }
            true => 1,
            false => frames.per_frame,
        };
        let key = keyframe
            .as_ref()
            .is_some_and(|k| k.swap(false, Ordering::Relaxed));
        for i in 0..per_frame {
            let checked = make_payload(counter, frames.size);
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
        timestamp = timestamp.wrapping_add(frames.ticks);
        picture_id = (picture_id + 1) & 0x7fff;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_checks_and_any_changed_byte_is_caught() {
        for len in [16, 100, 1037, 1100] {
            let payload = make_payload(77, len);
            assert_eq!(check_payload(&payload), Some(77));
            for i in 0..payload.len() {
                let mut bad = payload.clone();
                bad[i] ^= 0x20;
                assert_eq!(check_payload(&bad), None, "byte {i} of {len}");
            }
        }
        assert_eq!(check_payload(&[0; 15]), None);
    }
}
