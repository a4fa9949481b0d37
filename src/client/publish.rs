//! A synthetic publisher's tracks on its connection: added before the offer, started once the
//! answer is applied (the payload types and header extension ids are the negotiated ones).
//! The participant and the WHIP publisher both publish this way.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rtc::media_stream::MediaStreamTrack;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RTCRtpSendParameters,
    RtpCodecKind,
};
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::peer_connection::PeerConnection;
use webrtc::rtp_transceiver::RtpSender;

use super::media::{Throttle, VideoShape};
use super::sender::{answer_keyframe_requests, send, Frames, Picture, Stream};
use super::simulcast::{self, Naming, MID_URI, RID_URI};

/// Opus-shaped audio beside a single video track: 100 bytes every 20 ms (40 kbit/s).
const AUDIO_BYTES: usize = 100;

/// Audio beside a simulcast track: a voice at 16 kbit/s (40 bytes every 20 ms), as Opus
/// sends speech on a weak link. Simulcast is for viewers on weak links: on a 60 kbit/s link
/// this audio takes about 45 kbit/s with its headers and leaves room for the feedback, where
/// the 100-byte audio alone would take 69.
const SIMULCAST_AUDIO_BYTES: usize = 40;

/// The picture size a single video track's keyframes state.
const SINGLE_SIZE: (u16, u16) = (640, 360);

/// What video a synthetic publisher sends.
#[derive(Debug, Clone, Copy)]
pub enum Video {
    /// One encoding of this shape.
    Single(VideoShape),
    /// Three layers (`simulcast.rs`).
    Simulcast,
}

impl From<VideoShape> for Video {
    fn from(shape: VideoShape) -> Video {
        Video::Single(shape)
    }
}

/// The video and audio tracks of a publisher, on its connection.
pub(super) struct Tracks {
    video: Video,
    video_track: Arc<TrackLocalStaticRTP>,
    video_sender: Arc<dyn RtpSender>,
    /// The SSRC of each video stream (one, or one per layer, lowest first).
    video_ssrcs: Vec<u32>,
    audio_track: Arc<TrackLocalStaticRTP>,
    audio_sender: Arc<dyn RtpSender>,
    audio_ssrc: u32,
}

/// What the sending tasks report to.
pub(super) struct Counters {
    pub(super) throttle: Throttle,
    /// Packets sent per kind (audio, video).
    pub(super) sent: Arc<[AtomicU64; 2]>,
    /// When each keyframe request arrived.
    pub(super) plis: Arc<Mutex<Vec<Instant>>>,
}

impl Tracks {
    /// Adds the tracks to `pc`, before its offer.
    pub(super) async fn add_to(
        pc: &Arc<dyn PeerConnection>,
        video: Video,
    ) -> Result<Tracks, String> {
        let (video_track, video_ssrcs) = match video {
            Video::Single(_) => {
                let (track, ssrc) = single_track("video/VP8", 90000, 0, RtpCodecKind::Video);
                (track, vec![ssrc])
            }
            Video::Simulcast => {
                let (track, ssrcs) = simulcast::track();
                (track, ssrcs.to_vec())
            }
        };
        let (audio_track, audio_ssrc) = single_track("audio/opus", 48000, 2, RtpCodecKind::Audio);
        let add = |track: &Arc<TrackLocalStaticRTP>| {
            let track = track.clone() as Arc<dyn TrackLocal>;
            async move { pc.add_track(track).await.map_err(|e| e.to_string()) }
        };
        Ok(Tracks {
            video,
            video_sender: add(&video_track).await?,
            video_track,
            video_ssrcs,
            audio_sender: add(&audio_track).await?,
            audio_track,
            audio_ssrc,
        })
    }

    /// Starts sending, once the answer is applied; returns the tasks.
    pub(super) async fn start(
        self,
        pc: &Arc<dyn PeerConnection>,
        counters: Counters,
    ) -> Result<Vec<tokio::task::JoinHandle<()>>, String> {
        let video_parameters = parameters(&self.video_sender).await?;
        let video_pt = payload_type(&video_parameters)?;
        let audio_pt = payload_type(&parameters(&self.audio_sender).await?)?;
        let (video_streams, audio_bytes) = match self.video {
            Video::Single(shape) => {
                let picture = Picture::new(SINGLE_SIZE);
                let stream = Stream::new(
                    self.video_ssrcs[0],
                    video_pt,
                    Frames::video(shape),
                    Some(picture),
                    0,
                );
                (vec![stream], AUDIO_BYTES)
            }
            Video::Simulcast => {
                let naming = naming(pc, &self.video_track, &video_parameters).await?;
                let ssrcs: [u32; 3] = self.video_ssrcs[..]
                    .try_into()
                    .map_err(|_| "three layers")?;
                (
                    simulcast::streams(ssrcs, video_pt, &naming),
                    SIMULCAST_AUDIO_BYTES,
                )
            }
        };
        let pictures = video_streams
            .iter()
            .zip(&self.video_ssrcs)
            .filter_map(|(stream, ssrc)| Some((*ssrc, stream.picture.as_ref()?.keyframe.clone())))
            .collect();
        let Counters {
            throttle,
            sent,
            plis,
        } = counters;
        let mut tasks = vec![tokio::spawn(answer_keyframe_requests(
            self.video_track.clone(),
            pictures,
            plis,
        ))];
        for stream in video_streams {
            let (track, throttle, sent) =
                (self.video_track.clone(), throttle.clone(), sent.clone());
            tasks.push(tokio::spawn(send(track, stream, throttle, sent)));
        }
        let audio = Stream::new(
            self.audio_ssrc,
            audio_pt,
            Frames::audio(audio_bytes),
            None,
            0,
        );
        tasks.push(tokio::spawn(send(self.audio_track, audio, throttle, sent)));
        Ok(tasks)
    }
}

async fn parameters(sender: &Arc<dyn RtpSender>) -> Result<RTCRtpSendParameters, String> {
    sender.get_parameters().await.map_err(|e| e.to_string())
}

fn payload_type(parameters: &RTCRtpSendParameters) -> Result<u8, String> {
    Ok(parameters
        .rtp_parameters
        .codecs
        .first()
        .ok_or("no codec was negotiated")?
        .payload_type)
}

/// The negotiated mid and rid extension ids, and the mid of `track`'s transceiver.
async fn naming(
    pc: &Arc<dyn PeerConnection>,
    track: &Arc<TrackLocalStaticRTP>,
    parameters: &RTCRtpSendParameters,
) -> Result<Naming, String> {
    let id_of = |uri: &str| {
        parameters
            .rtp_parameters
            .header_extensions
            .iter()
            .find(|e| e.uri == uri)
            .map(|e| e.id as u8)
            .ok_or(format!("the answer did not accept {uri}"))
    };
    let track_id = webrtc::media_stream::Track::track_id(track.as_ref()).await;
    for transceiver in pc.get_transceivers().await {
        let Ok(Some(sender)) = transceiver.sender().await else {
            continue;
        };
        if sender.track().track_id().await != track_id {
            continue;
        }
        let mid = transceiver.mid().await.ok().flatten().ok_or("no mid")?;
        return Ok(Naming {
            mid_id: id_of(MID_URI)?,
            rid_id: id_of(RID_URI)?,
            mid,
        });
    }
    Err("the simulcast track has no transceiver".into())
}

/// A track sent once, with a random SSRC; and that SSRC.
fn single_track(
    mime: &str,
    clock_rate: u32,
    channels: u16,
    kind: RtpCodecKind,
) -> (Arc<TrackLocalStaticRTP>, u32) {
    let ssrc: u32 = rand::random();
    let codec = RTCRtpCodec {
        mime_type: mime.into(),
        clock_rate,
        channels,
        ..Default::default()
    };
    let track = TrackLocalStaticRTP::new(MediaStreamTrack::new(
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
    ));
    (Arc::new(track), ssrc)
}

#[cfg(test)]
mod tests {
    use super::*;

    use webrtc::peer_connection::PeerConnectionEventHandler;

    struct Quiet;

    impl PeerConnectionEventHandler for Quiet {}

    /// What a server reads in the offer: the layers' rids in the order of the simulcast
    /// attribute, and the header extensions that name them.
    #[tokio::test]
    async fn a_simulcast_offer_names_three_layers_and_their_extensions() {
        let pc = super::super::media::new_pc(Arc::new(Quiet), "127.0.0.1:0")
            .await
            .unwrap();
        Tracks::add_to(&pc, Video::Simulcast).await.unwrap();
        let offer = pc.create_offer(None).await.unwrap().sdp;
        let _ = pc.close().await;
        for line in [
            "a=rid:l send",
            "a=rid:m send",
            "a=rid:h send",
            "a=simulcast:send l;m;h",
            MID_URI,
            RID_URI,
        ] {
            assert!(offer.contains(line), "no {line} in\n{offer}");
        }
    }
}
