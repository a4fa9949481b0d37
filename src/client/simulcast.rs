//! Synthetic simulcast: one video track sent as three encodings of the same picture, as a
//! browser's `sendEncodings` sends a camera (docs/signalling.md, "Simulcast and quality").
//!
//! The layers have the rids `l`, `m` and `h`, about 150, 500 and 1500 kbit/s at 30 fps, each
//! its own SSRC, and their keyframes state 320x180, 640x360 and 1280x720. The track's
//! encodings carry the rids, so the offer has `a=rid:<rid> send` and `a=simulcast:send l;m;h`
//! and no SSRCs; every packet names its stream with the mid and rid header extensions, as a
//! browser's first packets do, so the server can tell the layers apart from the first one on.
//!
//! Each layer numbers its payloads from a base of its own (`first_seq`), so a receiver knows
//! the layer of every intact packet, not only of keyframes (`layer_of`).

use std::sync::Arc;

use bytes::Bytes;
use rtc::media_stream::MediaStreamTrack;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;

use super::media::VideoShape;
use super::sender::{Frames, Picture, Stream};

/// The header extensions that name a simulcast stream. The rtc crate's default interceptors
/// register them (with the repaired-rtp-stream-id one) on every connection's media engine, so
/// every offer carries them.
pub const MID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";
pub const RID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id";

/// One encoding of the simulcast track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layer {
    pub rid: &'static str,
    pub bitrate_bps: u32,
    /// Width and height, as its keyframes state them.
    pub size: (u16, u16),
}

/// The three layers, lowest first (`scaleResolutionDownBy` 4, 2 and 1).
pub const LAYERS: [Layer; 3] = [
    Layer {
        rid: "l",
        bitrate_bps: 150_000,
        size: (320, 180),
    },
    Layer {
        rid: "m",
        bitrate_bps: 500_000,
        size: (640, 360),
    },
    Layer {
        rid: "h",
        bitrate_bps: 1_500_000,
        size: (1280, 720),
    },
];

const FPS: u32 = 30;

/// Where the payload sequence numbers of layer `index` (0 for `l`) start: a track sent once
/// numbers from 0 and never reaches 2^24 packets (over 60 hours of video).
pub(super) fn first_seq(index: usize) -> u32 {
    (index as u32 + 1) << 24
}

/// The layer (0 for `l`) a payload sequence number is from; none for a track sent once.
pub fn layer_of(seq: u32) -> Option<usize> {
    match seq >> 24 {
        0 => None,
        tag => Some(tag as usize - 1),
    }
}

/// The layer (0 for `l`) whose keyframes state `size`.
pub fn layer_by_size(size: (u16, u16)) -> Option<usize> {
    LAYERS.iter().position(|l| l.size == size)
}

/// The simulcast video track, one encoding per layer with its rid and SSRC; and the SSRCs,
/// lowest layer first.
pub(super) fn track() -> (Arc<TrackLocalStaticRTP>, [u32; 3]) {
    let ssrcs: [u32; 3] = std::array::from_fn(|_| rand::random());
    let encodings = LAYERS
        .iter()
        .zip(ssrcs)
        .map(|(layer, ssrc)| RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                rid: layer.rid.to_owned(),
                ssrc: Some(ssrc),
                ..Default::default()
            },
            codec: RTCRtpCodec {
                mime_type: "video/VP8".into(),
                clock_rate: 90000,
                ..Default::default()
            },
            ..Default::default()
        })
        .collect();
    let id = format!("simulcast-{}", ssrcs[0]);
    let track = MediaStreamTrack::new(
        format!("stream-{id}"),
        id.clone(),
        id,
        RtpCodecKind::Video,
        encodings,
    );
    (Arc::new(TrackLocalStaticRTP::new(track)), ssrcs)
}

/// The negotiated ids of the mid and rid header extensions, and the track's mid.
#[derive(Debug, Clone)]
pub(super) struct Naming {
    pub(super) mid_id: u8,
    pub(super) rid_id: u8,
    pub(super) mid: String,
}

/// One stream per layer, each packet carrying the mid and its rid.
pub(super) fn streams(ssrcs: [u32; 3], payload_type: u8, naming: &Naming) -> Vec<Stream> {
    LAYERS
        .iter()
        .zip(ssrcs)
        .enumerate()
        .map(|(index, (layer, ssrc))| {
            let shape = VideoShape {
                fps: FPS,
                bitrate_bps: layer.bitrate_bps,
            };
            let picture = Picture::new(layer.size);
            let extensions = vec![
                (naming.mid_id, Bytes::from(naming.mid.clone())),
                (naming.rid_id, Bytes::from_static(layer.rid.as_bytes())),
            ];
            Stream::new(
                ssrc,
                payload_type,
                Frames::video(shape),
                Some(picture),
                first_seq(index),
            )
            .with_extensions(extensions)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::check_payload;
    use crate::client::vp8;

    #[test]
    fn each_layer_sends_its_rate_and_its_keyframes_say_which_layer_they_are() {
        let naming = Naming {
            mid_id: 4,
            rid_id: 10,
            mid: "0".into(),
        };
        let mut streams = streams([11, 22, 33], 96, &naming);
        for (index, stream) in streams.iter_mut().enumerate() {
            let frames = stream.frames;
            let bits_per_second =
                (frames.per_frame * frames.size * 8) as f64 / frames.interval.as_secs_f64();
            let nominal = LAYERS[index].bitrate_bps as f64;
            assert!(
                (bits_per_second - nominal).abs() < nominal * 0.05,
                "layer {index}: {bits_per_second}"
            );
            let packets = stream.frame(frames.per_frame, true);
            let first = &packets[0];
            assert_eq!(
                first.header.get_extension(10),
                Some(Bytes::from(LAYERS[index].rid))
            );
            assert_eq!(first.header.get_extension(4), Some(Bytes::from("0")));
            let view = vp8::read(&first.payload).unwrap();
            assert_eq!(view.size, Some(LAYERS[index].size));
            assert_eq!(layer_by_size(LAYERS[index].size), Some(index));
            for packet in &packets {
                let view = vp8::read(&packet.payload).unwrap();
                let seq = check_payload(view.checked).expect("intact");
                assert_eq!(layer_of(seq), Some(index));
            }
            assert!(packets.last().unwrap().header.marker);
        }
        assert_eq!(layer_of(12345), None);
    }
}
