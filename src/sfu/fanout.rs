//! One published track's subscribers and the rule for handing them packets, apart from any
//! network I/O so it can be tested with plain channels. Each subscriber has its own bounded
//! queue; a full one drops packets for that subscriber only (its outgoing track resumes at the
//! next keyframe), so a slow family on weak Wi-Fi never slows anyone else.
//!
//! For a simulcast track each subscriber receives one encoding, the one its quality loop set
//! as its target (`quality/reception.rs`); it moves to a new target at that encoding's next
//! keyframe, and until then keeps the old one, so the picture never breaks; except on a step
//! down forced by the link, where the old one stops at once (`Sink::set_target_at_once`).

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use rtc::rtp;
use tokio::sync::mpsc;

use super::forward::DropState;
use super::layers::MAX_LAYERS;
use super::outgoing::Forwarded;
use crate::domain::MediaKind;

/// Packets dropped because a subscriber's queue was full, for /metrics.
pub static QUEUE_FULL_DROPS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A sink's target when it gets no video of the track (audio only).
pub const OFF: u8 = u8::MAX;

/// One subscriber's end of a published track.
pub struct Sink {
    pub participant_id: u64,
    pub tx: mpsc::Sender<Forwarded>,
    /// The encoding (slot) it should receive, or [`OFF`]. Audio tracks have one, slot 0.
    target: AtomicU8,
    state: Mutex<SinkState>,
}

#[derive(Default)]
struct SinkState {
    drops: DropState,
    /// The encoding it receives now.
    current: Option<u8>,
}

impl Sink {
    pub fn new(participant_id: u64, tx: mpsc::Sender<Forwarded>) -> Sink {
        Sink {
            participant_id,
            tx,
            target: AtomicU8::new(0),
            state: Mutex::default(),
        }
    }

    /// Asks for encoding `slot` (or [`OFF`]), taken at its next keyframe; true if it changed.
    pub fn set_target(&self, slot: u8) -> bool {
        self.target.swap(slot, Ordering::Relaxed) != slot
    }

    /// The same, without keeping the encoding it has meanwhile: for a step down on a link
    /// that cannot carry it, where the old encoding would fill the queue in front of the link
    /// and the new one's keyframe would be lost behind it. The picture stops for a moment.
    pub fn set_target_at_once(&self, slot: u8) -> bool {
        let mut state = self.state.lock().expect("sink lock");
        let changed = self.set_target(slot);
        if changed {
            state.current = None;
        }
        changed
    }

    /// The encoding it receives now, if any.
    pub fn current(&self) -> Option<u8> {
        self.state.lock().expect("sink lock").current
    }
}

/// What one packet of a published track is, for the fan-out.
pub struct Packet<'a> {
    pub packet: &'a rtp::Packet,
    pub kind: MediaKind,
    pub muted: bool,
    /// Which encoding it belongs to.
    pub slot: u8,
    /// Whether a decoder can start at it.
    pub keyframe: bool,
    /// Which input of the track sent it; it changes when the publisher reconnects.
    pub generation: u32,
}

/// Which input and encoding of a track a packet came from, as one number: a viewer's
/// numbering of the track starts a new run whenever it changes.
pub fn source(generation: u32, slot: u8) -> u32 {
    const _: () = assert!(MAX_LAYERS <= 4, "an encoding's slot takes two bits");
    generation.wrapping_mul(4).wrapping_add(slot as u32)
}

/// The encoding (slot) of a [`source`].
pub fn slot_of(source: u32) -> usize {
    (source % 4) as usize
}

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
    /// them; true when some subscriber waits for a keyframe of this packet's encoding. A
    /// subscriber that misses packets gets the next one marked `resync`.
    pub fn send(&self, p: &Packet) -> bool {
        let now = Instant::now();
        let mut wants_keyframe = false;
        for sink in self.sinks.read().expect("sinks lock").iter() {
            let target = sink.target.load(Ordering::Relaxed);
            let mut state = sink.state.lock().expect("sink lock");
            if p.muted || (target == OFF && p.kind == MediaKind::Video) {
                state.current = None;
                state.drops.skipped();
                continue;
            }
            if p.kind == MediaKind::Video && state.current != Some(p.slot) {
                if target != p.slot {
                    // Another encoding's packet.
                    continue;
                }
                if !p.keyframe {
                    // The encoding it has (if any) goes on meanwhile, unmarked.
                    wants_keyframe = true;
                    continue;
                }
                // The switch: this keyframe starts the new encoding, numbered straight on.
                state.current = Some(p.slot);
            }
            let item = Forwarded {
                packet: p.packet.clone(),
                queued_at: now,
                generation: source(p.generation, p.slot),
                slot: p.slot,
                resync: state.drops.resync(),
            };
            match sink.tx.try_send(item) {
                Ok(()) => state.drops.delivered(),
                Err(mpsc::error::TrySendError::Full(_)) => {
                    state.drops.dropped();
                    QUEUE_FULL_DROPS.fetch_add(1, Ordering::Relaxed);
                }
                // The subscriber is leaving; its removal is on the way.
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
        wants_keyframe
    }
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

    fn video<'a>(packet: &'a rtp::Packet, slot: u8, keyframe: bool) -> Packet<'a> {
        Packet {
            packet,
            kind: MediaKind::Video,
            muted: false,
            slot,
            keyframe,
            generation: 0,
        }
    }

    #[tokio::test]
    async fn a_stalled_subscriber_costs_the_others_nothing() {
        let fanout = Fanout::default();
        let (fast_tx, mut fast_rx) = mpsc::channel(8);
        let (stalled_tx, mut stalled_rx) = mpsc::channel(8);
        fanout.add(Arc::new(Sink::new(1, fast_tx)));
        fanout.add(Arc::new(Sink::new(2, stalled_tx)));
        let mut fast_got = Vec::new();
        for seq in 0..1000u16 {
            // Never blocks: 1000 packets with one subscriber reading nothing.
            let p = packet(seq);
            fanout.send(&video(&p, 0, true));
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
        let (a, b) = (packet(1000), packet(1001));
        fanout.send(&video(&a, 0, false));
        fanout.send(&video(&b, 0, false));
        assert!(stalled_rx.try_recv().unwrap().resync);
        assert!(!stalled_rx.try_recv().unwrap().resync);
    }

    #[tokio::test]
    async fn audio_only_subscribers_get_no_video_and_resume_at_a_keyframe() {
        let (video_fanout, audio_fanout) = (Fanout::default(), Fanout::default());
        let (video_tx, mut video_rx) = mpsc::channel(8);
        let (audio_tx, mut audio_rx) = mpsc::channel(8);
        let sink = Arc::new(Sink::new(1, video_tx));
        sink.set_target(OFF);
        video_fanout.add(sink.clone());
        audio_fanout.add(Arc::new(Sink::new(1, audio_tx)));
        let (v, a) = (packet(1), packet(2));
        video_fanout.send(&video(&v, 0, true));
        audio_fanout.send(&Packet {
            kind: MediaKind::Audio,
            ..video(&a, 0, false)
        });
        assert!(video_rx.try_recv().is_err());
        assert!(!audio_rx.try_recv().unwrap().resync, "audio flows on");
        sink.set_target(0);
        let (delta, key) = (packet(3), packet(4));
        assert!(
            video_fanout.send(&video(&delta, 0, false)),
            "it waits for a keyframe"
        );
        assert!(video_rx.try_recv().is_err());
        video_fanout.send(&video(&key, 0, true));
        assert!(
            video_rx.try_recv().unwrap().resync,
            "video resumes after a skip"
        );
    }

    /// A fan-out with one subscriber: its sink and what it receives.
    fn one_subscriber() -> (Fanout, Arc<Sink>, mpsc::Receiver<Forwarded>) {
        let fanout = Fanout::default();
        let (tx, rx) = mpsc::channel(16);
        let sink = Arc::new(Sink::new(1, tx));
        fanout.add(sink.clone());
        (fanout, sink, rx)
    }

    #[tokio::test]
    async fn a_switch_of_encoding_waits_for_its_keyframe_and_keeps_the_old_one_till_then() {
        let (fanout, sink, mut rx) = one_subscriber();
        let (low1, high1, low2, high_key, low3, high2) = (
            packet(10),
            packet(500),
            packet(11),
            packet(501),
            packet(12),
            packet(502),
        );
        fanout.send(&video(&low1, 0, true));
        fanout.send(&video(&high1, 1, false));
        assert_eq!(rx.try_recv().unwrap().packet.header.sequence_number, 10);
        assert!(rx.try_recv().is_err(), "the other encoding is not sent");
        sink.set_target(1);
        assert!(!fanout.send(&video(&low2, 0, false)));
        assert_eq!(
            rx.try_recv().unwrap().slot,
            0,
            "the old encoding goes on meanwhile"
        );
        fanout.send(&video(&high_key, 1, true));
        let switched = rx.try_recv().unwrap();
        assert_eq!((switched.slot, switched.generation), (1, 1));
        fanout.send(&video(&low3, 0, false));
        fanout.send(&video(&high2, 1, false));
        assert_eq!(rx.try_recv().unwrap().packet.header.sequence_number, 502);
        assert_eq!(sink.current(), Some(1));
    }

    #[tokio::test]
    async fn a_step_down_at_once_stops_the_old_encoding_before_the_new_keyframe() {
        let (fanout, sink, mut rx) = one_subscriber();
        sink.set_target(1);
        let (high_key, high1, low1, low_key) = (packet(500), packet(501), packet(10), packet(11));
        fanout.send(&video(&high_key, 1, true));
        assert_eq!(rx.try_recv().unwrap().slot, 1);
        assert!(sink.set_target_at_once(0));
        assert!(!fanout.send(&video(&high1, 1, false)));
        assert!(rx.try_recv().is_err(), "the old encoding stopped");
        assert!(fanout.send(&video(&low1, 0, false)), "a keyframe is wanted");
        assert!(rx.try_recv().is_err());
        fanout.send(&video(&low_key, 0, true));
        assert_eq!(rx.try_recv().unwrap().packet.header.sequence_number, 11);
        assert_eq!(sink.current(), Some(0));
    }
}
