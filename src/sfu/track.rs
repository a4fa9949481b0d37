//! A published track and its fan-out: one forwarding task reads the publisher's RTP and hands
//! each packet to every subscriber's own bounded queue. A full queue drops packets for that
//! subscriber only (its outgoing track resumes at the next keyframe), so a slow family on weak
//! Wi-Fi never slows anyone else.
//!
//! A `Published` is a slot ("the teacher's camera") more than one remote track: when its
//! publisher reconnects and publishes the same kind of track again, the room rebinds the slot
//! to the new remote track (`rebind`) and every subscriber's outgoing track, WHEP players'
//! included, carries on without a new offer.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::{
    nack_pairs_from_sequence_numbers, TransportLayerNack,
};
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::RTCRtpCodec;
use tokio::sync::mpsc;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};

use super::forward::{should_forward, DropState, PliLimiter, SubscriberView};
use super::outgoing::Forwarded;
use crate::signal::protocol::{MediaKind, Source, TrackInfo};

/// Packets a subscriber may have queued before it is considered too slow and drops.
pub const SUBSCRIBER_QUEUE: usize = 512;
/// Packets dropped because a subscriber's queue was full, for /metrics.
pub static QUEUE_FULL_DROPS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
/// At most one keyframe request per track this often.
const PLI_INTERVAL: Duration = Duration::from_millis(500);

/// One subscriber's end of a published track.
pub struct Sink {
    pub participant_id: u64,
    pub tx: mpsc::Sender<Forwarded>,
    /// The subscriber's audio-only switch, shared by all its sinks.
    pub audio_only: Arc<AtomicBool>,
    drops: Mutex<DropState>,
}

impl Sink {
    pub fn new(
        participant_id: u64,
        tx: mpsc::Sender<Forwarded>,
        audio_only: Arc<AtomicBool>,
    ) -> Sink {
        Sink {
            participant_id,
            tx,
            audio_only,
            drops: Mutex::default(),
        }
    }
}

/// The subscribers of one track and the rule for handing them packets, apart from any
/// network I/O so it can be tested with plain channels.
#[derive(Default)]
pub struct Fanout {
    sinks: RwLock<Vec<Arc<Sink>>>,
}

impl Fanout {
    pub fn add(&self, sink: Arc<Sink>) {
        self.sinks.write().expect("sinks lock").push(sink);
    }

    pub fn remove(&self, participant_id: u64) {
        self.sinks
            .write()
            .expect("sinks lock")
            .retain(|s| s.participant_id != participant_id);
    }

    /// Hands one packet to every subscriber that should get it, never waiting for any of
    /// them. A subscriber that misses packets gets the next one marked `resync`.
    pub fn send(&self, kind: MediaKind, muted: bool, packet: &rtp::Packet, generation: u32) {
        let now = Instant::now();
        for sink in self.sinks.read().expect("sinks lock").iter() {
            let view = SubscriberView {
                audio_only: sink.audio_only.load(Ordering::Relaxed),
                waiting: false,
            };
            let mut drops = sink.drops.lock().expect("drop state lock");
            if !should_forward(kind, muted, view) {
                drops.skipped();
                continue;
            }
            let item = Forwarded {
                packet: packet.clone(),
                queued_at: now,
                generation,
                resync: drops.resync(),
            };
            match sink.tx.try_send(item) {
                Ok(()) => drops.delivered(),
                Err(mpsc::error::TrySendError::Full(_)) => {
                    drops.dropped();
                    QUEUE_FULL_DROPS.fetch_add(1, Ordering::Relaxed);
                }
                // The subscriber is leaving; its removal is on the way.
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
    }
}

/// What a publisher's connection brings for the room to place: a new track or a reconnected
/// publisher's slot.
pub struct Incoming {
    pub participant_id: u64,
    pub kind: MediaKind,
    pub source: Source,
    pub codec: RTCRtpCodec,
    pub media_ssrc: u32,
    pub remote: Arc<dyn TrackRemote>,
}

/// The remote track feeding a slot now.
struct Input {
    remote: Arc<dyn TrackRemote>,
    /// The publisher's SSRC, the target of keyframe requests and NACKs.
    media_ssrc: u32,
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
    /// Recorders of this track: bounded queues that are never waited on (`crate::recording`).
    taps: Mutex<Vec<mpsc::Sender<rtp::Packet>>>,
    input: Mutex<Input>,
    pli: Mutex<PliLimiter>,
}

impl Published {
    pub fn new(id: String, user_id: Option<i64>, incoming: Incoming) -> Arc<Published> {
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
            taps: Mutex::default(),
            input: Mutex::new(Input {
                remote: incoming.remote,
                media_ssrc: incoming.media_ssrc,
            }),
            pli: Mutex::new(PliLimiter::new(PLI_INTERVAL)),
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
        *self.input.lock().expect("input lock") = Input {
            remote: incoming.remote,
            media_ssrc: incoming.media_ssrc,
        };
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
        self.taps.lock().expect("taps lock").push(tap);
    }

    fn tap(&self, packet: &rtp::Packet) {
        let mut taps = self.taps.lock().expect("taps lock");
        taps.retain(|tap| {
            !matches!(
                tap.try_send(packet.clone()),
                Err(mpsc::error::TrySendError::Closed(_))
            )
        });
    }

    /// Asks the publisher for a keyframe, within the rate limit (a held request goes out at
    /// the next tick of the forwarding loop).
    pub fn request_keyframe(&self) {
        if self.kind == MediaKind::Video
            && self.pli.lock().expect("pli lock").request(Instant::now())
        {
            self.send_pli();
        }
    }

    fn send_pli(&self) {
        let (remote, media_ssrc) = self.input();
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

    /// Asks the publisher to resend packets (by its own sequence numbers).
    pub fn request_resend(&self, seqs: &[u16]) {
        if seqs.is_empty() {
            return;
        }
        let (remote, media_ssrc) = self.input();
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

    fn input(&self) -> (Arc<dyn TrackRemote>, u32) {
        let input = self.input.lock().expect("input lock");
        (input.remote.clone(), input.media_ssrc)
    }

    /// Reads the publisher's packets of input `generation` until that track ends or the slot
    /// is rebound. True when it ended while still feeding the slot (the track is gone).
    pub async fn forward(self: Arc<Self>, generation: u32) -> bool {
        let (remote, _) = self.input();
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
                        // Extension ids were negotiated on the publisher's connection, not the
                        // subscribers': strip them once here rather than clone them into every
                        // subscriber's copy.
                        packet.header.extension = false;
                        packet.header.extensions.clear();
                        let muted = self.muted.load(Ordering::Relaxed);
                        self.fanout.send(self.kind, muted, &packet, generation);
                        if !muted {
                            self.tap(&packet);
                        }
                    }
                    Some(TrackRemoteEvent::OnEnded) | None => break,
                    Some(_) => {}
                },
                _ = tick.tick() => {
                    if self.pli.lock().expect("pli lock").poll(Instant::now()) {
                        self.send_pli();
                    }
                }
            }
        }
        tracing::debug!(track = %self.id, generation, "published input ended");
        current()
    }
}

/// A new track id: the publisher's participant id and a random suffix.
pub fn new_track_id(participant_id: u64) -> String {
    format!("{participant_id}-{:08x}", rand::random::<u32>())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(seq: u16) -> rtp::Packet {
        rtp::Packet {
            header: rtp::header::Header {
                sequence_number: seq,
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn a_stalled_subscriber_costs_the_others_nothing() {
        let fanout = Fanout::default();
        let (fast_tx, mut fast_rx) = mpsc::channel(8);
        let (stalled_tx, mut stalled_rx) = mpsc::channel(8);
        fanout.add(Arc::new(Sink::new(1, fast_tx, Arc::default())));
        fanout.add(Arc::new(Sink::new(2, stalled_tx, Arc::default())));
        let mut fast_got = Vec::new();
        for seq in 0..1000u16 {
            // Never blocks: 1000 packets with one subscriber reading nothing.
            fanout.send(MediaKind::Video, false, &packet(seq), 0);
            while let Ok(item) = fast_rx.try_recv() {
                assert!(!item.resync);
                fast_got.push(item.packet.header.sequence_number);
            }
        }
        assert_eq!(
            fast_got,
            (0..1000).collect::<Vec<_>>(),
            "the reading subscriber got every packet, in order"
        );
        let mut stalled_got = 0;
        while stalled_rx.try_recv().is_ok() {
            stalled_got += 1;
        }
        assert_eq!(stalled_got, 8, "the stalled one holds only its queue");
        // Once it reads again, the next packet reaches it marked as a resumption, once.
        fanout.send(MediaKind::Video, false, &packet(1000), 0);
        fanout.send(MediaKind::Video, false, &packet(1001), 0);
        assert!(stalled_rx.try_recv().unwrap().resync);
        assert!(!stalled_rx.try_recv().unwrap().resync);
    }

    #[tokio::test]
    async fn audio_only_subscribers_get_no_video_and_resume_marked() {
        let (video, audio) = (Fanout::default(), Fanout::default());
        let (video_tx, mut video_rx) = mpsc::channel(8);
        let (audio_tx, mut audio_rx) = mpsc::channel(8);
        let audio_only = Arc::new(AtomicBool::new(true));
        video.add(Arc::new(Sink::new(1, video_tx, audio_only.clone())));
        audio.add(Arc::new(Sink::new(1, audio_tx, audio_only.clone())));
        video.send(MediaKind::Video, false, &packet(1), 0);
        audio.send(MediaKind::Audio, false, &packet(2), 0);
        assert!(video_rx.try_recv().is_err());
        assert!(!audio_rx.try_recv().unwrap().resync, "audio flows on");
        audio_only.store(false, Ordering::Relaxed);
        video.send(MediaKind::Video, false, &packet(3), 0);
        assert!(
            video_rx.try_recv().unwrap().resync,
            "video resumes after a skip"
        );
    }
}
