//! A published track and its fan-out: one forwarding task reads the publisher's RTP and hands
//! each packet to every subscriber's own bounded queue. A full queue drops packets for that
//! subscriber only (and asks for a keyframe once it drains), so a slow family on weak Wi-Fi
//! never slows anyone else.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::RTCRtpCodec;
use tokio::sync::mpsc;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};

use super::forward::{should_forward, DropState, PliLimiter, SubscriberView};
use crate::signal::protocol::{MediaKind, Source, TrackInfo};

/// Packets a subscriber may have queued before it is considered too slow and drops.
pub const SUBSCRIBER_QUEUE: usize = 512;
/// At most one keyframe request per track this often.
const PLI_INTERVAL: Duration = Duration::from_millis(250);

/// One subscriber's end of a published track.
pub struct Sink {
    pub participant_id: u64,
    pub tx: mpsc::Sender<rtp::Packet>,
    /// The subscriber's audio-only switch, shared by all its sinks.
    pub audio_only: Arc<AtomicBool>,
    drops: Mutex<DropState>,
}

impl Sink {
    pub fn new(
        participant_id: u64,
        tx: mpsc::Sender<rtp::Packet>,
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
    /// them. True when a subscriber recovered from drops and needs a keyframe.
    pub fn send(&self, kind: MediaKind, muted: bool, packet: &rtp::Packet) -> bool {
        let mut keyframe_needed = false;
        for sink in self.sinks.read().expect("sinks lock").iter() {
            let view = SubscriberView {
                audio_only: sink.audio_only.load(Ordering::Relaxed),
                waiting: false,
            };
            if !should_forward(kind, muted, view) {
                continue;
            }
            let mut drops = sink.drops.lock().expect("drop state lock");
            match sink.tx.try_send(packet.clone()) {
                Ok(()) => keyframe_needed |= drops.delivered(),
                Err(mpsc::error::TrySendError::Full(_)) => drops.dropped(),
                // The subscriber is leaving; its removal is on the way.
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
        keyframe_needed
    }
}

/// A track a participant publishes.
pub struct Published {
    pub id: String,
    pub participant_id: u64,
    pub kind: MediaKind,
    pub source: Source,
    pub codec: RTCRtpCodec,
    /// The publisher's SSRC, the target of keyframe requests.
    pub media_ssrc: u32,
    /// The host muted it: nothing is forwarded.
    pub muted: AtomicBool,
    fanout: Fanout,
    /// Recorders of this track: bounded queues that are never waited on (`crate::recording`).
    taps: Mutex<Vec<mpsc::Sender<rtp::Packet>>>,
    remote: Arc<dyn TrackRemote>,
    pli: Mutex<PliLimiter>,
}

impl Published {
    pub fn new(
        id: String,
        participant_id: u64,
        kind: MediaKind,
        source: Source,
        codec: RTCRtpCodec,
        media_ssrc: u32,
        remote: Arc<dyn TrackRemote>,
    ) -> Arc<Published> {
        Arc::new(Published {
            id,
            participant_id,
            kind,
            source,
            codec,
            media_ssrc,
            muted: AtomicBool::new(false),
            fanout: Fanout::default(),
            taps: Mutex::default(),
            remote,
            pli: Mutex::new(PliLimiter::new(PLI_INTERVAL)),
        })
    }

    pub fn info(&self) -> TrackInfo {
        TrackInfo {
            track_id: self.id.clone(),
            participant_id: self.participant_id,
            kind: self.kind,
            source: self.source,
            muted: self.muted.load(Ordering::Relaxed),
        }
    }

    /// Adds a subscriber; a video subscriber asks for a keyframe so its picture starts now.
    pub fn add_sink(&self, sink: Arc<Sink>) {
        self.fanout.add(sink);
        self.request_keyframe();
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
        let remote = self.remote.clone();
        let media_ssrc = self.media_ssrc;
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

    /// Reads the publisher's packets until the track ends; returns when it has.
    pub async fn forward(self: Arc<Self>) {
        let mut tick = tokio::time::interval(PLI_INTERVAL / 2);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                event = self.remote.poll() => match event {
                    Some(TrackRemoteEvent::OnRtpPacket(mut packet)) => {
                        // Extension ids were negotiated on the publisher's connection, not the
                        // subscribers': strip them once here rather than clone them into every
                        // subscriber's copy.
                        packet.header.extension = false;
                        packet.header.extensions.clear();
                        let muted = self.muted.load(Ordering::Relaxed);
                        if self.fanout.send(self.kind, muted, &packet) {
                            self.request_keyframe();
                        }
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
        tracing::debug!(track = %self.id, "published track ended");
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

    #[tokio::test]
    async fn a_stalled_subscriber_costs_the_others_nothing() {
        let fanout = Fanout::default();
        let (fast_tx, mut fast_rx) = mpsc::channel(8);
        let (stalled_tx, mut stalled_rx) = mpsc::channel(8);
        fanout.add(Arc::new(Sink::new(1, fast_tx, Arc::default())));
        fanout.add(Arc::new(Sink::new(2, stalled_tx, Arc::default())));
        let mut fast_got = Vec::new();
        let mut recovered = 0;
        for seq in 0..1000u16 {
            // Never blocks: 1000 packets with one subscriber reading nothing.
            recovered += fanout.send(MediaKind::Video, false, &packet(seq)) as u32;
            while let Ok(p) = fast_rx.try_recv() {
                fast_got.push(p.header.sequence_number);
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
        assert_eq!(recovered, 0);
        // Once it reads again, the next packet reaches it and a keyframe is asked for once.
        assert!(fanout.send(MediaKind::Video, false, &packet(1000)));
        assert!(!fanout.send(MediaKind::Video, false, &packet(1001)));
    }

    #[tokio::test]
    async fn audio_only_subscribers_get_no_video() {
        let fanout = Fanout::default();
        let (tx, mut rx) = mpsc::channel(8);
        fanout.add(Arc::new(Sink::new(1, tx, Arc::new(AtomicBool::new(true)))));
        fanout.send(MediaKind::Video, false, &packet(1));
        fanout.send(MediaKind::Audio, false, &packet(2));
        assert_eq!(rx.try_recv().unwrap().header.sequence_number, 2);
        assert!(rx.try_recv().is_err());
    }
}
