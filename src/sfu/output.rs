//! One forwarded track on a receiving connection (a participant's subscriber connection or a
//! WHEP player's): a local track of its own SSRC, a writer task fed by a bounded queue that
//! numbers packets through its `OutgoingTrack`, and a task reading the receiver's feedback.
//!
//! Nothing is written before the connection is up and the offer announcing the track has been
//! answered (its payload type is known then): a packet that arrives earlier is skipped, and
//! the outgoing track resumes at a keyframe it asks for once.

use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rtc::media_stream::MediaStreamTrack;
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::rtp_transceiver::RtpSender;

use super::fanout::Sink;
use super::media::Connection;
use super::outgoing::{Codec, Forwarded, OutgoingTrack, Verdict};
use super::quality::reception::Reception;
use super::track::{Published, SUBSCRIBER_QUEUE};
use crate::domain::MediaKind;

pub struct Output {
    pub(crate) sender: Arc<dyn RtpSender>,
    pub(crate) published: Arc<Published>,
    /// The payload type the connection negotiated for this codec (0: not yet announced).
    payload_type: Arc<AtomicU16>,
    /// The subscriber offer that first carried this track (none yet, or rolled back).
    pub(crate) offered_in: Option<u64>,
    reception: Arc<Reception>,
    tasks: [JoinHandle<()>; 2],
}

impl Output {
    /// Adds `published` to a connection that `participant_id` receives on.
    pub(crate) async fn attach(
        connection: &Connection,
        published: Arc<Published>,
        participant_id: u64,
        reception: &Arc<Reception>,
        up: Arc<AtomicBool>,
    ) -> Result<Output, webrtc::error::Error> {
        let ssrc: u32 = rand::random();
        let kind = match published.kind {
            MediaKind::Audio => RtpCodecKind::Audio,
            MediaKind::Video => RtpCodecKind::Video,
        };
        let local = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
            published.participant_id().to_string(),
            published.id.clone(),
            published.id.clone(),
            kind,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(ssrc),
                    ..Default::default()
                },
                codec: published.codec.clone(),
                ..Default::default()
            }],
        )));
        let sender = connection
            .pc
            .add_track(local.clone() as Arc<dyn TrackLocal>)
            .await?;
        let (tx, rx) = mpsc::channel(SUBSCRIBER_QUEUE);
        let payload_type = Arc::new(AtomicU16::new(0));
        // Only the codecs of `media_engine` are negotiated; anything else would be forwarded
        // without waiting for keyframes, as audio is.
        let codec = Codec::from_mime(&published.codec.mime_type).unwrap_or(Codec::Opus);
        let outgoing = Arc::new(Mutex::new(OutgoingTrack::new(
            codec,
            published.codec.clock_rate,
        )));
        let writer = Writer {
            local: local.clone(),
            ssrc,
            payload_type: payload_type.clone(),
            up,
            outgoing: outgoing.clone(),
            published: published.clone(),
        };
        let sink = Arc::new(Sink::new(participant_id, tx));
        let writer = connection.spawn(writer.run(rx));
        let feedback = connection.spawn(read_feedback(
            local,
            published.clone(),
            sink.clone(),
            outgoing,
            ssrc,
            payload_type.clone(),
        ));
        published.add_sink(sink.clone());
        reception.attach(published.clone(), sink);
        Ok(Output {
            sender,
            published,
            payload_type,
            offered_in: None,
            reception: reception.clone(),
            tasks: [writer, feedback],
        })
    }

    pub(crate) fn announced(&self) -> bool {
        self.payload_type.load(Ordering::Relaxed) != 0
    }

    /// Once an answer covers this track: learns the payload type the connection chose for
    /// its codec, which lets the writer start.
    pub(crate) async fn resolve_payload_type(&self) {
        if self.announced() {
            return;
        }
        if let Ok(parameters) = self.sender.get_parameters().await {
            let mime = &self.published.codec.mime_type;
            if let Some(codec) = parameters
                .rtp_parameters
                .codecs
                .iter()
                .find(|c| c.rtp_codec.mime_type.eq_ignore_ascii_case(mime))
            {
                self.payload_type
                    .store(codec.payload_type as u16, Ordering::Relaxed);
            }
        }
    }

    /// Stops forwarding to this participant.
    pub(crate) fn detach(&self, participant_id: u64) {
        self.published.remove_sink(participant_id);
        self.reception.detach(&self.published.id);
        self.tasks.iter().for_each(JoinHandle::abort);
    }
}

/// Writes one receiver's packets of one track with its own SSRC, payload type and numbering
/// (the forwarder already stripped the publisher's header extensions).
struct Writer {
    local: Arc<TrackLocalStaticRTP>,
    ssrc: u32,
    payload_type: Arc<AtomicU16>,
    up: Arc<AtomicBool>,
    outgoing: Arc<Mutex<OutgoingTrack>>,
    published: Arc<Published>,
}

impl Writer {
    async fn run(self, mut rx: mpsc::Receiver<Forwarded>) {
        while let Some(item) = rx.recv().await {
            let pt = self.payload_type.load(Ordering::Relaxed);
            if pt == 0 || !self.up.load(Ordering::Relaxed) {
                self.outgoing.lock().expect("outgoing lock").skipped();
                continue;
            }
            let slot = item.slot;
            let verdict = self
                .outgoing
                .lock()
                .expect("outgoing lock")
                .process(item, Instant::now());
            match verdict {
                Verdict::Write(mut packet) => {
                    packet.header.ssrc = self.ssrc;
                    packet.header.payload_type = pt as u8;
                    if self.local.write_rtp(packet).await.is_err() {
                        break;
                    }
                }
                Verdict::DropAndAskKeyframe => self.published.request_keyframe_of(slot),
                Verdict::Drop => {}
            }
        }
    }
}

/// Packets resent to viewers from the tracks' histories, for /metrics.
pub static RESENT: AtomicU64 = AtomicU64::new(0);

/// Reads the receiver's RTCP for this track: a PLI or FIR asks the publisher for a keyframe;
/// a NACK is answered from the track's history for the packets this track wrote, and passed
/// on to the publisher (in its numbers) for those the SFU never got. The connection's
/// retransmission budget (`quality/resend.rs`) has already trimmed the NACK.
async fn read_feedback(
    local: Arc<TrackLocalStaticRTP>,
    published: Arc<Published>,
    sink: Arc<Sink>,
    outgoing: Arc<Mutex<OutgoingTrack>>,
    ssrc: u32,
    payload_type: Arc<AtomicU16>,
) {
    while let Some(TrackLocalEvent::OnRtcpPacket(packets)) = local.poll().await {
        let mut wants_keyframe = false;
        let mut nacked = Vec::new();
        for packet in &packets {
            let any = packet.as_any();
            wants_keyframe |= any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>();
            if let Some(nack) = any.downcast_ref::<TransportLayerNack>() {
                nacked.extend(nack.nacks.iter().flat_map(|pair| pair.packet_list()));
            }
        }
        // Of the encoding it receives now (a switch in between costs a spare request).
        let Some(slot) = sink.current() else {
            continue;
        };
        if wants_keyframe {
            published.request_keyframe_of(slot);
        }
        if nacked.is_empty() {
            continue;
        }
        let (lost, again) = {
            let outgoing = outgoing.lock().expect("outgoing lock");
            let answer = outgoing.answer(nacked);
            let again: Vec<rtp::Packet> = answer
                .resend
                .iter()
                .filter_map(|seq| published.history.get(answer.source, *seq))
                .filter_map(|packet| outgoing.again(packet))
                .collect();
            (answer.lost, again)
        };
        published.request_resend(slot, &lost);
        let pt = payload_type.load(Ordering::Relaxed) as u8;
        for mut packet in again {
            packet.header.ssrc = ssrc;
            packet.header.payload_type = pt;
            if local.write_rtp(packet).await.is_err() {
                return;
            }
            RESENT.fetch_add(1, Ordering::Relaxed);
        }
    }
}
