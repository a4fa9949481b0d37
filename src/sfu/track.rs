//! A published track and its fan-out: one forwarding task reads the publisher's RTP (every
//! encoding of a simulcast track comes through the one remote track, told apart by SSRC) and
//! hands each packet to the subscribers' own queues (`fanout.rs`).
//!
//! A `Published` is a slot ("the teacher's camera") more than one remote track: when its
//! publisher reconnects and publishes the same kind of track again, the room rebinds the slot
//! to the new remote track (`rebind`) and every subscriber's outgoing track, WHEP players'
//! included, carries on without a new offer.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::{
    nack_pairs_from_sequence_numbers, TransportLayerNack,
};
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::RTCRtpCodec;
use tokio::sync::mpsc;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};

use super::fanout::{source, Fanout, Packet, Sink, OFF};
use super::forward::PliLimiter;
use super::history::History;
use super::layers::{Encodings, MAX_LAYERS};
use super::outgoing::Codec;
use super::payload::{is_keyframe_start, vp8_keyframe_size};
use crate::domain::{MediaKind, Source, TrackInfo};

/// Packets a subscriber may have queued before it is considered too slow and drops.
pub const SUBSCRIBER_QUEUE: usize = 512;
/// An audio level (-dBov) at or above which a packet counts as speech, not room noise.
const SPEECH_LEVEL: u8 = 50;
/// At most one keyframe request per encoding this often.
const PLI_INTERVAL: Duration = Duration::from_millis(500);

/// What a publisher's connection brings for the room to place: a new track or a reconnected
/// publisher's slot.
pub struct Incoming {
    pub participant_id: u64,
    pub kind: MediaKind,
    pub source: Source,
    pub codec: RTCRtpCodec,
    pub media_ssrc: u32,
    /// The encoding's name when the track is sent as simulcast.
    pub rid: Option<String>,
    /// The id of the audio level header extension on the publisher's connection.
    pub audio_level: Option<u8>,
    pub remote: Arc<dyn TrackRemote>,
}

/// A track a participant publishes.
pub struct Published {
    pub id: String,
    pub kind: MediaKind,
    pub source: Source,
    pub codec: RTCRtpCodec,
    /// Whose track it is; the same person reconnecting takes the slot back.
    pub user_id: Option<i64>,
    participant_id: AtomicU64,
    /// Which input feeds it; bumped by `rebind`, so a stale forwarding task stops.
    generation: AtomicU32,
    /// The host muted it: nothing is forwarded.
    pub muted: AtomicBool,
    fanout: Fanout,
    /// Video: its recent packets, which viewers' NACKs are answered from.
    pub history: History,
    /// Recorders of this track: bounded queues that are never waited on (`crate::recording`).
    taps: Mutex<Vec<mpsc::Sender<rtp::Packet>>>,
    /// The remote track feeding the slot now.
    remote: Mutex<Arc<dyn TrackRemote>>,
    /// Its encodings: the targets of keyframe requests and NACKs, and the layers viewers get.
    pub encodings: Encodings,
    /// Keyframe requests, per encoding.
    pli: Mutex<[PliLimiter; MAX_LAYERS]>,
    keyframes: Option<Codec>,
    /// Audio: the id of the audio level extension (0: none), and when its publisher last spoke.
    audio_level: AtomicU8,
    spoke_at: Mutex<Option<Instant>>,
    /// The encoding recordings take ([`OFF`] until the first packet after a tap is added).
    tap_slot: AtomicU8,
}

impl Published {
    pub fn new(id: String, user_id: Option<i64>, incoming: Incoming) -> Arc<Published> {
        let keyframes = Codec::from_mime(&incoming.codec.mime_type)
            .filter(|_| incoming.kind == MediaKind::Video);
        Arc::new(Published {
            id,
            kind: incoming.kind,
            source: incoming.source,
            codec: incoming.codec,
            user_id,
            participant_id: AtomicU64::new(incoming.participant_id),
            generation: AtomicU32::new(0),
            muted: AtomicBool::new(false),
            fanout: Fanout::default(),
            history: History::default(),
            taps: Mutex::default(),
            remote: Mutex::new(incoming.remote),
            encodings: Encodings::new(incoming.media_ssrc, incoming.rid),
            pli: Mutex::new(std::array::from_fn(|_| PliLimiter::new(PLI_INTERVAL))),
            keyframes,
            audio_level: AtomicU8::new(incoming.audio_level.unwrap_or(0)),
            spoke_at: Mutex::default(),
            tap_slot: AtomicU8::new(OFF),
        })
    }

    /// The participant publishing it now.
    pub fn participant_id(&self) -> u64 {
        self.participant_id.load(Ordering::Relaxed)
    }

    /// Whether `incoming` can take this slot over: same person, kind, source and codec (the
    /// subscribers' connections negotiated that codec).
    pub fn fits(&self, user_id: Option<i64>, incoming: &Incoming) -> bool {
        user_id.is_some()
            && user_id == self.user_id
            && incoming.kind == self.kind
            && incoming.source == self.source
            && incoming
                .codec
                .mime_type
                .eq_ignore_ascii_case(&self.codec.mime_type)
    }

    /// Feeds the slot from a new remote track; returns the generation to forward.
    pub fn rebind(&self, incoming: Incoming) -> u32 {
        *self.remote.lock().expect("remote lock") = incoming.remote;
        self.audio_level
            .store(incoming.audio_level.unwrap_or(0), Ordering::Relaxed);
        self.encodings.reset(incoming.media_ssrc, incoming.rid);
        self.tap_slot.store(OFF, Ordering::Relaxed);
        self.participant_id
            .store(incoming.participant_id, Ordering::Relaxed);
        self.generation.fetch_add(1, Ordering::AcqRel) + 1
    }

    pub fn info(&self) -> TrackInfo {
        TrackInfo {
            track_id: self.id.clone(),
            participant_id: self.participant_id(),
            kind: self.kind,
            source: self.source,
            muted: self.muted.load(Ordering::Relaxed),
        }
    }

    /// Adds a subscriber. It asks for a keyframe itself, once it can receive.
    pub fn add_sink(&self, sink: Arc<Sink>) {
        self.fanout.add(sink);
    }

    pub fn remove_sink(&self, participant_id: u64) {
        self.fanout.remove(participant_id);
    }

    /// Hands every packet the publisher sends (while not muted) to a recorder too. A full
    /// queue drops the packet for the recorder only; a closed one is removed.
    pub fn add_tap(&self, tap: mpsc::Sender<rtp::Packet>) {
        let mut taps = self.taps.lock().expect("taps lock");
        if taps.iter().all(|t| t.is_closed()) {
            self.tap_slot.store(OFF, Ordering::Relaxed);
        }
        taps.push(tap);
    }

    /// A recording keeps one encoding: the richest when its first packet comes, for its whole
    /// length (a ranking that moves while a browser ramps its encodings up must not splice two
    /// streams into one file).
    fn tap(&self, packet: &rtp::Packet, slot: u8) {
        let mut taps = self.taps.lock().expect("taps lock");
        if taps.is_empty() {
            return;
        }
        let recorded = match self.tap_slot.load(Ordering::Relaxed) {
            OFF => {
                let top = self.encodings.top() as u8;
                self.tap_slot.store(top, Ordering::Relaxed);
                top
            }
            chosen => chosen,
        };
        if slot != recorded {
            return;
        }
        taps.retain(|tap| {
            !matches!(
                tap.try_send(packet.clone()),
                Err(mpsc::error::TrySendError::Closed(_))
            )
        });
    }

    /// Asks the publisher for a keyframe of every encoding (a mute ended, a recording began).
    pub fn request_keyframe(&self) {
        for slot in 0..self.encodings.ssrcs().len() {
            self.request_keyframe_of(slot as u8);
        }
    }

    /// Asks for a keyframe of one encoding, within the rate limit (a held request goes out at
    /// the next tick of the forwarding loop).
    pub fn request_keyframe_of(&self, slot: u8) {
        let slot = slot as usize;
        if self.kind == MediaKind::Video
            && slot < MAX_LAYERS
            && self.pli.lock().expect("pli lock")[slot].request(Instant::now())
        {
            self.send_pli(slot);
        }
    }

    fn send_pli(&self, slot: usize) {
        let Some(media_ssrc) = self.encodings.ssrc(slot) else {
            return;
        };
        let remote = self.remote();
        tokio::spawn(async move {
            let pli = PictureLossIndication {
                sender_ssrc: 0,
                media_ssrc,
            };
            if let Err(e) = remote.write_rtcp(vec![Box::new(pli)]).await {
                tracing::debug!(error = %e, "keyframe request not sent");
            }
        });
    }

    /// Asks the publisher to resend packets of an encoding (by its own sequence numbers).
    pub fn request_resend(&self, slot: u8, seqs: &[u16]) {
        let Some(media_ssrc) = self.encodings.ssrc(slot as usize) else {
            return;
        };
        if seqs.is_empty() {
            return;
        }
        let remote = self.remote();
        let nack = TransportLayerNack {
            sender_ssrc: 0,
            media_ssrc,
            nacks: nack_pairs_from_sequence_numbers(seqs),
        };
        tokio::spawn(async move {
            if let Err(e) = remote.write_rtcp(vec![Box::new(nack)]).await {
                tracing::debug!(error = %e, "NACK not sent");
            }
        });
    }

    fn remote(&self) -> Arc<dyn TrackRemote> {
        self.remote.lock().expect("remote lock").clone()
    }

    /// Reads the publisher's packets of input `generation` until that track ends or the slot
    /// is rebound. True when it ended while still feeding the slot (the track is gone).
    pub async fn forward(self: Arc<Self>, generation: u32) -> bool {
        let remote = self.remote();
        let current = || self.generation.load(Ordering::Acquire) == generation;
        let mut tick = tokio::time::interval(PLI_INTERVAL / 2);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while current() {
            tokio::select! {
                event = remote.poll() => match event {
                    Some(TrackRemoteEvent::OnRtpPacket(mut packet)) => {
                        if !current() {
                            break;
                        }
                        let Some(slot) = self.slot_of(&remote, packet.header.ssrc).await else {
                            continue;
                        };
                        self.listen(&packet);
                        // Extension ids were negotiated on the publisher's connection, not the
                        // subscribers': strip them once here rather than clone them into every
                        // subscriber's copy. The padding that ended the publisher's block goes
                        // too: left, it would count in the size of the block the congestion
                        // control adds (transport-wide sequence numbers) but not be written,
                        // and SRTP refuses such a packet (Chromium pads its blocks).
                        packet.header.extension = false;
                        packet.header.extensions.clear();
                        packet.header.extensions_padding = 0;
                        self.pass_on(&packet, slot, generation);
                    }
                    Some(TrackRemoteEvent::OnOpen(init)) => {
                        self.encodings.add(init.ssrc, init.rid.clone());
                    }
                    Some(TrackRemoteEvent::OnEnded) | None => break,
                    Some(_) => {}
                },
                _ = tick.tick() => {
                    let now = Instant::now();
                    self.encodings.measure(now);
                    let due: Vec<usize> = self.pli.lock().expect("pli lock").iter_mut()
                        .enumerate()
                        .filter_map(|(slot, limiter)| limiter.poll(now).then_some(slot))
                        .collect();
                    for slot in due {
                        self.send_pli(slot);
                    }
                }
            }
        }
        tracing::debug!(track = %self.id, generation, "published input ended");
        current()
    }

    /// Notes when the publisher speaks, from the level its browser puts in each audio
    /// packet (RFC 6464: 0 is the loudest, 127 silence, in -dBov).
    fn listen(&self, packet: &rtp::Packet) {
        let id = self.audio_level.load(Ordering::Relaxed);
        if id == 0 {
            return;
        }
        let level = packet
            .header
            .get_extension(id)
            .and_then(|ext| ext.first().copied());
        if level.is_some_and(|level| level & 0x7f <= SPEECH_LEVEL) {
            *self.spoke_at.lock().expect("spoke lock") = Some(Instant::now());
        }
    }

    /// When the publisher of this audio track last spoke, as far as its browser said.
    pub fn spoke_at(&self) -> Option<Instant> {
        *self.spoke_at.lock().expect("spoke lock")
    }

    /// The encoding of a packet's SSRC; a new encoding of a simulcast track is added.
    async fn slot_of(&self, remote: &Arc<dyn TrackRemote>, ssrc: u32) -> Option<u8> {
        if let Some(slot) = self.encodings.slot_of(ssrc) {
            return Some(slot as u8);
        }
        let rid = remote.rid(ssrc).await.map(|rid| rid.to_string());
        self.encodings.add(ssrc, rid).map(|slot| slot as u8)
    }

    fn pass_on(&self, packet: &rtp::Packet, slot: u8, generation: u32) {
        self.encodings.count(slot as usize, packet.payload.len());
        let muted = self.muted.load(Ordering::Relaxed);
        let keyframe = self
            .keyframes
            .is_none_or(|codec| is_keyframe_start(codec, &packet.payload));
        if keyframe && self.keyframes == Some(Codec::Vp8) {
            if let Some((width, height)) = vp8_keyframe_size(&packet.payload) {
                self.encodings.sized(slot as usize, width, height);
            }
        }
        if self.keyframes.is_some() {
            self.history.keep(source(generation, slot), packet);
        }
        let wants_keyframe = self.fanout.send(&Packet {
            packet,
            kind: self.kind,
            muted,
            slot,
            keyframe,
            generation,
        });
        if wants_keyframe {
            self.request_keyframe_of(slot);
        }
        if !muted {
            self.tap(packet, slot);
        }
    }
}

/// A new track id: the publisher's participant id and a random suffix.
pub fn new_track_id(participant_id: u64) -> String {
    format!("{participant_id}-{:08x}", rand::random::<u32>())
}
