//! The connection check's media side (`/check`, `POST /api/v1/check/offer`): one short-lived
//! server connection per check that sends a synthetic VP8-shaped test stream at a known rate,
//! so a family's browser learns whether media reaches it over UDP, over TCP or through the
//! relay, and measures the round trip and the download rate. The connection is built by
//! `MediaSettings::connect`, exactly like a room's, so a check exercises the same media port,
//! ICE-TCP listener and candidates as a real class.
//!
//! A check needs no room and no class. What bounds it: a total and a per-person number of
//! checks at once (`Checks`), the test stream's length, and a lifetime after which the
//! connection closes whether or not it ever came up.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rtc::media_stream::MediaStreamTrack;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::time::Instant;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::Track;
use webrtc::peer_connection::{
    PeerConnectionEventHandler, RTCPeerConnectionState, RTCSessionDescription,
};

use super::media::{Connection, Direction, MediaError, MediaSettings};
use super::peer::OPEN_CONNECTIONS;

/// The test stream's rate: about what a class's camera needs.
pub const BITRATE_BPS: u32 = 1_000_000;
/// How long the test stream runs once the connection is up.
pub const STREAM: Duration = Duration::from_secs(5);
/// A check's connection closes this long after it was made, up or not: the page gives up on a
/// path well before (a blocked path never connects), and a connection the page abandoned must
/// not stay open.
pub const LIFETIME: Duration = Duration::from_secs(12);
/// Checks one person may run at once (the page runs its three in turn; a second tab may
/// overlap).
pub const PER_PERSON: usize = 2;
const FPS: u32 = 30;
/// Payload bytes per packet, under any path's MTU (the relay adds its own headers).
const PACKET_BYTES: usize = 1_000;

/// The way the page wants media to reach it, and so which server candidates the answer keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// Direct UDP: the usual and best path.
    Udp,
    /// ICE over TCP, for networks that drop UDP.
    Tcp,
    /// Through a TURN relay: the relay reaches the server over UDP, so UDP candidates.
    Relay,
}

impl Transport {
    /// The protocol of the server candidates this path uses.
    pub fn protocol(self) -> &'static str {
        match self {
            Transport::Udp | Transport::Relay => "udp",
            Transport::Tcp => "tcp",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Media(#[from] MediaError),
    /// The server does not offer media over this protocol (`media.ice_tcp = false`).
    #[error("the server offers no media over {0}")]
    NotOffered(&'static str),
    #[error("the offer must receive video (VP8)")]
    NoVideo,
}

/// How many checks run, in total and per person.
pub struct Checks {
    max: usize,
    running: Mutex<HashMap<i64, usize>>,
}

/// A check's place among those running; it is given back when dropped.
pub struct CheckSlot {
    checks: Arc<Checks>,
    user_id: i64,
}

impl Drop for CheckSlot {
    fn drop(&mut self) {
        let mut running = self.checks.running.lock().expect("checks lock");
        if let Some(n) = running.get_mut(&self.user_id) {
            *n -= 1;
            if *n == 0 {
                running.remove(&self.user_id);
            }
        }
    }
}

impl Checks {
    pub fn new(max: usize) -> Checks {
        Checks {
            max,
            running: Mutex::default(),
        }
    }

    /// A place for one more check by `user_id`, or `None` when the server or the person is
    /// at the limit.
    pub fn take(self: &Arc<Self>, user_id: i64) -> Option<CheckSlot> {
        let mut running = self.running.lock().expect("checks lock");
        let total: usize = running.values().sum();
        let mine = running.get(&user_id).copied().unwrap_or(0);
        if total >= self.max || mine >= PER_PERSON {
            return None;
        }
        running.insert(user_id, mine + 1);
        Some(CheckSlot {
            checks: self.clone(),
            user_id,
        })
    }
}

/// The description with only the candidates of `protocol` (`udp` or `tcp`), and how many it
/// kept.
pub fn keep_candidates(sdp: &str, protocol: &str) -> (String, usize) {
    let mut kept = 0;
    let lines: Vec<&str> = sdp
        .split("\r\n")
        .filter(|line| match line.strip_prefix("a=candidate:") {
            Some(candidate) => {
                let matches = candidate
                    .split_whitespace()
                    .nth(2)
                    .is_some_and(|p| p.eq_ignore_ascii_case(protocol));
                kept += matches as usize;
                matches
            }
            None => true,
        })
        .collect();
    (lines.join("\r\n"), kept)
}

/// Whether the connection is up, and whether it ended.
struct CheckEvents {
    state: watch::Sender<RTCPeerConnectionState>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for CheckEvents {
    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let _ = self.state.send(state);
    }
}

/// Answers the page's offer for one path (the answer's SDP) and starts the check: the test
/// stream begins when the connection comes up, and the connection closes when the stream ends
/// or at `LIFETIME`.
pub async fn start(
    media: &MediaSettings,
    offer: String,
    transport: Transport,
    slot: CheckSlot,
) -> Result<String, CheckError> {
    // What the page sent is read before a port is taken for it. Its candidates of the other
    // protocol go too: the server's own checks towards them would otherwise find a path the
    // page did not ask to test (a UDP pair learnt in a TCP check).
    let (offer, _) = keep_candidates(&offer, transport.protocol());
    let offer = RTCSessionDescription::offer(offer).map_err(MediaError::refused)?;
    if !offer.sdp.contains("\nm=video ") {
        return Err(CheckError::NoVideo);
    }
    let (state_tx, state_rx) = watch::channel(RTCPeerConnectionState::New);
    let connection = media
        .connect(Arc::new(CheckEvents { state: state_tx }), Direction::Sends)
        .await?;
    OPEN_CONNECTIONS.fetch_add(1, Ordering::Relaxed);
    match answer(&connection, offer, transport).await {
        Ok((sdp, track, payload_type)) => {
            tokio::spawn(run(connection, state_rx, track, payload_type, slot));
            Ok(sdp)
        }
        Err(e) => {
            close(connection).await;
            Err(e)
        }
    }
}

/// Applies the offer, adds the test track and answers with every candidate of the path.
async fn answer(
    connection: &Connection,
    offer: RTCSessionDescription,
    transport: Transport,
) -> Result<(String, Arc<TrackLocalStaticRTP>, u8), CheckError> {
    let pc = &connection.pc;
    pc.set_remote_description(offer)
        .await
        .map_err(MediaError::refused)?;
    let track = test_track();
    let sender = pc
        .add_track(track.clone() as Arc<dyn TrackLocal>)
        .await
        .map_err(MediaError::WebRtc)?;
    let answer = pc.create_answer(None).await.map_err(MediaError::WebRtc)?;
    connection
        .set_local_description(answer)
        .await
        .map_err(MediaError::WebRtc)?;
    let local =
        connection
            .gathered_sdp()
            .await
            .ok_or(MediaError::WebRtc(webrtc::error::Error::Other(
                "no local description".into(),
            )))?;
    let payload_type = sender
        .get_parameters()
        .await
        .ok()
        .and_then(|p| {
            p.rtp_parameters
                .codecs
                .iter()
                .find(|c| c.rtp_codec.mime_type.eq_ignore_ascii_case("video/VP8"))
                .map(|c| c.payload_type)
        })
        .ok_or(CheckError::NoVideo)?;
    let protocol = transport.protocol();
    let (sdp, kept) = keep_candidates(&local, protocol);
    if kept == 0 {
        return Err(CheckError::NotOffered(protocol));
    }
    Ok((sdp, track, payload_type))
}

fn test_track() -> Arc<TrackLocalStaticRTP> {
    let ssrc: u32 = rand::random();
    Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
        "check".to_owned(),
        "check-video".to_owned(),
        "check-video".to_owned(),
        RtpCodecKind::Video,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                ..Default::default()
            },
            codec: RTCRtpCodec {
                mime_type: "video/VP8".to_owned(),
                clock_rate: 90_000,
                ..Default::default()
            },
            ..Default::default()
        }],
    )))
}

/// Waits for the connection, sends the test stream, closes. The slot is held until the
/// connection is closed.
async fn run(
    connection: Connection,
    mut state: watch::Receiver<RTCPeerConnectionState>,
    track: Arc<TrackLocalStaticRTP>,
    payload_type: u8,
    _slot: CheckSlot,
) {
    let deadline = Instant::now() + LIFETIME;
    let up = tokio::time::timeout_at(
        deadline,
        state.wait_for(|s| {
            matches!(
                s,
                RTCPeerConnectionState::Connected
                    | RTCPeerConnectionState::Failed
                    | RTCPeerConnectionState::Closed
            )
        }),
    )
    .await
    .ok()
    .and_then(|s| s.ok().map(|s| *s == RTCPeerConnectionState::Connected))
    .unwrap_or(false);
    if up {
        let until = deadline.min(Instant::now() + STREAM);
        send_stream(&track, payload_type, until).await;
    }
    close(connection).await;
}

async fn close(connection: Connection) {
    let _ = connection.pc.close().await;
    OPEN_CONNECTIONS.fetch_sub(1, Ordering::Relaxed);
}

/// VP8-shaped RTP at `BITRATE_BPS` until `until`: frames of several packets at `FPS`, each
/// packet opening with a VP8 payload descriptor (picture id, start bit) and header (a
/// keyframe's states 640x360), the marker on a frame's last packet, a key frame every second.
/// The pictures are not decodable: the page counts bytes, not frames.
async fn send_stream(track: &TrackLocalStaticRTP, payload_type: u8, until: Instant) {
    let Some(ssrc) = track.ssrcs().await.first().copied() else {
        return;
    };
    let frame_bytes = (BITRATE_BPS / 8 / FPS) as usize;
    let per_frame = frame_bytes.div_ceil(PACKET_BYTES);
    let size = frame_bytes / per_frame;
    let mut tick = tokio::time::interval(Duration::from_secs(1) / FPS);
    let (mut seq, mut timestamp) = (rand::random::<u16>(), rand::random::<u32>());
    let mut picture_id = rand::random::<u16>() & 0x7fff;
    let mut frame = 0u32;
    while Instant::now() < until {
        tick.tick().await;
        let key = frame % FPS == 0;
        for i in 0..per_frame {
            let filler = vec![(frame % 251) as u8; size];
            let payload =
                crate::client::vp8::vp8_payload(i == 0, key, picture_id, (640, 360), &filler);
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
            if track.write_rtp(packet).await.is_err() {
                return;
            }
        }
        timestamp = timestamp.wrapping_add(90_000 / FPS);
        picture_id = (picture_id + 1) & 0x7fff;
        frame += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANSWER: &str = "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n\
        a=candidate:1 1 udp 2130706431 10.0.0.1 50000 typ host\r\n\
        a=candidate:2 1 tcp 1671430143 10.0.0.1 50000 typ host tcptype passive\r\n\
        a=end-of-candidates\r\n";

    #[test]
    fn an_answer_keeps_only_its_paths_candidates() {
        let (udp, kept) = keep_candidates(ANSWER, Transport::Udp.protocol());
        assert_eq!(kept, 1);
        assert!(udp.contains(" udp ") && !udp.contains(" tcp "));
        assert!(udp.ends_with("a=end-of-candidates\r\n"));
        let (tcp, kept) = keep_candidates(ANSWER, Transport::Tcp.protocol());
        assert_eq!(kept, 1);
        assert!(tcp.contains("tcptype passive") && !tcp.contains(" udp "));
        assert_eq!(Transport::Relay.protocol(), "udp");
        let (_, kept) = keep_candidates("v=0\r\n", "tcp");
        assert_eq!(kept, 0);
    }

    #[test]
    fn checks_are_bounded_in_total_and_per_person() {
        let checks = Arc::new(Checks::new(3));
        let a1 = checks.take(1).expect("first");
        let _a2 = checks.take(1).expect("second of one person");
        assert!(checks.take(1).is_none(), "a third at once for one person");
        let _b1 = checks.take(2).expect("another person");
        assert!(checks.take(3).is_none(), "the server's total");
        drop(a1);
        assert!(checks.take(3).is_some(), "a slot given back");
    }
}
