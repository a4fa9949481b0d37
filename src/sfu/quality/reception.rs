//! One receiving connection's quality loop: five times a second it reads the link's estimate
//! and the measured rates of the encodings it receives, asks the [`Selector`] which layer
//! each track gets, points each track's sink at that encoding, and tells the client (a
//! `reception` message) when what it receives changes.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::estimate::Bandwidth;
use super::selector::{Demand, Selector};
use super::{Layer, Quality};
use crate::domain::{MediaKind, Source};
use crate::sfu::event::{Event, Outbox};
use crate::sfu::fanout::{Sink, OFF};
use crate::sfu::track::Published;

const TICK: Duration = Duration::from_millis(200);
/// Before the connection is up there is no estimate: what a new one starts from.
const NO_ESTIMATE_YET: u64 = 1_500_000;
/// A viewer receiving at least this many cameras (a room of three or more: its own is not
/// sent back to it) sees the ones not in focus as small tiles.
const TILES_FROM: usize = 2;
/// Someone spoke within this long: they are speaking.
const SPEAKING: Duration = Duration::from_secs(2);
/// The tile in focus stays at least this long before another speaker takes it.
const SPEAKER_DWELL: Duration = Duration::from_secs(2);

static SWITCHES_UP: AtomicU64 = AtomicU64::new(0);
static SWITCHES_DOWN: AtomicU64 = AtomicU64::new(0);
static AUDIO_ONLY_WEAK: AtomicI64 = AtomicI64::new(0);
static AUDIO_ONLY_CHOSEN: AtomicI64 = AtomicI64::new(0);
/// Upper bounds (kbit/s) of the estimate buckets; viewers per bucket, the last one unbounded.
const ESTIMATE_BUCKETS: [u64; 7] = [100, 300, 600, 1_000, 2_000, 5_000, u64::MAX];
static ESTIMATES: [AtomicI64; 7] = [const { AtomicI64::new(0) }; 7];

/// What a receiving connection gets, shared by its outputs and the signalling that changes it.
pub struct Reception {
    choice: Mutex<Quality>,
    focus: Mutex<Option<String>>,
    outputs: Mutex<Vec<(Arc<Published>, Arc<Sink>)>>,
    bandwidth: Mutex<Option<Arc<Bandwidth>>>,
    /// A tutoring room, where cameras beyond the one in focus are small tiles.
    tiles: bool,
    /// Without a focus chosen: the camera of whoever spoke last, and since when.
    speaker: Mutex<Option<(String, Instant)>>,
    changed: Notify,
}

impl Reception {
    pub fn new(tiles: bool) -> Arc<Reception> {
        Arc::new(Reception {
            choice: Mutex::default(),
            focus: Mutex::default(),
            outputs: Mutex::default(),
            bandwidth: Mutex::default(),
            tiles,
            speaker: Mutex::default(),
            changed: Notify::new(),
        })
    }

    pub fn choose(&self, quality: Quality) {
        *self.choice.lock().expect("choice lock") = quality;
        self.changed.notify_one();
    }

    /// Shows `track_id` large (none: the first camera). False for a track it does not receive.
    pub fn focus(&self, track_id: Option<String>) -> bool {
        if let Some(id) = &track_id {
            let known = self
                .outputs
                .lock()
                .expect("outputs lock")
                .iter()
                .any(|(p, _)| &p.id == id);
            if !known {
                return false;
            }
        }
        *self.focus.lock().expect("focus lock") = track_id;
        self.changed.notify_one();
        true
    }

    pub fn attach(&self, published: Arc<Published>, sink: Arc<Sink>) {
        self.outputs
            .lock()
            .expect("outputs lock")
            .push((published, sink));
        self.changed.notify_one();
    }

    pub fn detach(&self, track_id: &str) {
        self.outputs
            .lock()
            .expect("outputs lock")
            .retain(|(p, _)| p.id != track_id);
    }

    /// The estimate of the connection it receives on, once that exists.
    pub fn set_bandwidth(&self, bandwidth: Arc<Bandwidth>) {
        *self.bandwidth.lock().expect("bandwidth lock") = Some(bandwidth);
    }

    /// Starts the loop; it runs until the returned value is dropped, telling `outbox` (a
    /// participant's signalling; none for a WHEP player) what changes.
    pub fn start(self: &Arc<Self>, outbox: Option<Outbox>) -> Running {
        Running(tokio::spawn(self.clone().run(outbox)))
    }

    async fn run(self: Arc<Self>, outbox: Option<Outbox>) {
        let mut selector = Selector::default();
        let mut told: Option<Event> = None;
        let mut counted = Counted::default();
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = self.changed.notified() => {}
            }
            let message = self.apply(&mut selector, &mut counted);
            // Not for the estimate alone: it moves at every turn, and on a weak link five
            // messages a second would take what the audio leaves of it.
            let news = match (&message, &told) {
                (Some(now), Some(then)) => !same_but_estimate(now, then),
                (now, _) => now.is_some(),
            };
            if news {
                // A message that finds the outbox full goes out at a later turn: the client
                // most in need of it (a weak link) is the one whose socket is slowest.
                let sent = match (&message, &outbox) {
                    (Some(message), Some(outbox)) => outbox.tell(message.clone()),
                    _ => true,
                };
                if sent {
                    told = message;
                }
            }
        }
    }

    /// One turn of the loop; the `reception` event describing the result, if any video or
    /// audio is received.
    fn apply(&self, selector: &mut Selector, counted: &mut Counted) -> Option<Event> {
        let outputs = self.outputs.lock().expect("outputs lock").clone();
        if outputs.is_empty() {
            return None;
        }
        let choice = *self.choice.lock().expect("choice lock");
        let estimate = self
            .bandwidth
            .lock()
            .expect("bandwidth lock")
            .as_ref()
            .map_or(NO_ESTIMATE_YET, |b| b.bps());
        let audio_bps: u64 = outputs
            .iter()
            .filter(|(p, _)| p.kind == MediaKind::Audio)
            .filter_map(|(p, _)| p.encodings.ranked().first().map(|(_, bps)| *bps))
            .sum();
        let mut videos: Vec<&(Arc<Published>, Arc<Sink>)> = outputs
            .iter()
            .filter(|(p, _)| p.kind == MediaKind::Video)
            .collect();
        let focus = self.focus.lock().expect("focus lock").clone();
        let focus = focus.or_else(|| self.speaker(&outputs, Instant::now()));
        // The track in focus first: it is served first from the estimate.
        if let Some(at) = videos
            .iter()
            .position(|(p, _)| Some(&p.id) == focus.as_ref())
        {
            let main = videos.remove(at);
            videos.insert(0, main);
        }
        let tiles = self.tiles && videos.len() >= TILES_FROM;
        let ranked: Vec<Vec<(usize, u64)>> =
            videos.iter().map(|(p, _)| p.encodings.ranked()).collect();
        let demands: Vec<Demand> = videos
            .iter()
            .zip(&ranked)
            .enumerate()
            .map(|(i, ((p, _), ranked))| Demand {
                track_id: p.id.clone(),
                layers: ranked.iter().map(|(_, bps)| *bps).collect(),
                cap: if tiles && i > 0 { 0 } else { usize::MAX },
            })
            .collect();
        let before = selector.switches;
        let decision = selector.decide(Instant::now(), choice, estimate, audio_bps, &demands);
        SWITCHES_UP.fetch_add(selector.switches.0 - before.0, Ordering::Relaxed);
        SWITCHES_DOWN.fetch_add(selector.switches.1 - before.1, Ordering::Relaxed);
        let mut layers = BTreeMap::new();
        for ((published, sink), ranked) in videos.iter().zip(&ranked) {
            let rank = decision.ranks.get(&published.id).copied().flatten();
            let slot = rank
                .and_then(|r| ranked.get(r))
                .map_or(OFF, |(slot, _)| *slot as u8);
            // A step down in auto is the link's doing: the old encoding stops at once.
            let rank_of = |slot| ranked.iter().position(|(s, _)| *s as u8 == slot);
            let down = choice == Quality::Auto
                && matches!((sink.current().and_then(rank_of), rank), (Some(now), Some(next)) if next < now);
            let changed = match down {
                true => sink.set_target_at_once(slot),
                false => sink.set_target(slot),
            };
            if changed {
                tracing::debug!(
                    track = %published.id, estimate, audio_bps, ?ranked, weak = decision.weak,
                    ?choice, slot, "layer target"
                );
            }
            let now = match sink.current() {
                Some(slot) if slot != OFF => published
                    .encodings
                    .layer_of(slot as usize)
                    .unwrap_or(Layer::High),
                _ => Layer::Off,
            };
            layers.insert(published.id.clone(), now);
        }
        let video = layers
            .values()
            .copied()
            .filter(|l| *l != Layer::Off)
            .max()
            .unwrap_or(Layer::Off);
        counted.update(choice, decision.weak, estimate);
        Some(Event::Reception {
            quality: choice,
            video,
            weak: decision.weak,
            estimate_kbps: estimate / 1000,
            layers,
        })
    }

    /// The camera of whoever spoke last (by the audio levels their browsers send), kept for
    /// at least [`SPEAKER_DWELL`] so two people talking at once do not swap tiles every tick.
    fn speaker(&self, outputs: &[(Arc<Published>, Arc<Sink>)], now: Instant) -> Option<String> {
        let cameras = outputs
            .iter()
            .filter(|(p, _)| p.kind == MediaKind::Video && p.source == Source::Camera);
        let latest = cameras
            .filter_map(|(camera, _)| {
                let spoke = outputs
                    .iter()
                    .filter(|(p, _)| {
                        p.kind == MediaKind::Audio && p.participant_id() == camera.participant_id()
                    })
                    .filter_map(|(p, _)| p.spoke_at())
                    .max()?;
                (now.saturating_duration_since(spoke) < SPEAKING).then_some((spoke, &camera.id))
            })
            .max()
            .map(|(_, id)| id.clone());
        let mut speaker = self.speaker.lock().expect("speaker lock");
        let present = |id: &String| outputs.iter().any(|(p, _)| &p.id == id);
        match (&*speaker, latest) {
            (Some((current, since)), Some(latest))
                if *current != latest && now.saturating_duration_since(*since) >= SPEAKER_DWELL =>
            {
                *speaker = Some((latest, now));
            }
            (None, Some(latest)) => *speaker = Some((latest, now)),
            (Some((current, _)), _) if !present(current) => *speaker = None,
            _ => {}
        }
        speaker.as_ref().map(|(id, _)| id.clone())
    }
}

/// Whether two `reception` events differ only in the estimate.
fn same_but_estimate(a: &Event, b: &Event) -> bool {
    let blank = |m: &Event| {
        let mut m = m.clone();
        if let Event::Reception { estimate_kbps, .. } = &mut m {
            *estimate_kbps = 0;
        }
        m
    };
    blank(a) == blank(b)
}

/// A running quality loop; dropping it stops the loop.
pub struct Running(tokio::task::JoinHandle<()>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What one connection adds to the gauges in /metrics, taken back when it ends.
#[derive(Default)]
struct Counted {
    weak: bool,
    chosen: bool,
    bucket: Option<usize>,
}

impl Counted {
    fn update(&mut self, choice: Quality, weak: bool, estimate_bps: u64) {
        let weak = weak && choice == Quality::Auto;
        let chosen = choice == Quality::AudioOnly;
        let kbps = estimate_bps / 1000;
        let bucket = ESTIMATE_BUCKETS.iter().position(|top| kbps < *top);
        self.set(weak, chosen, bucket);
    }

    fn set(&mut self, weak: bool, chosen: bool, bucket: Option<usize>) {
        let delta = |now: bool, then: bool| i64::from(now) - i64::from(then);
        AUDIO_ONLY_WEAK.fetch_add(delta(weak, self.weak), Ordering::Relaxed);
        AUDIO_ONLY_CHOSEN.fetch_add(delta(chosen, self.chosen), Ordering::Relaxed);
        if bucket != self.bucket {
            if let Some(old) = self.bucket {
                ESTIMATES[old].fetch_sub(1, Ordering::Relaxed);
            }
            if let Some(new) = bucket {
                ESTIMATES[new].fetch_add(1, Ordering::Relaxed);
            }
        }
        (self.weak, self.chosen, self.bucket) = (weak, chosen, bucket);
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.set(false, false, None);
    }
}

/// The quality series for /metrics.
pub fn render_metrics() -> String {
    let mut out = String::from(
        "# HELP homeroom_layer_switches_total Simulcast layer switches made for viewers.\n\
         # TYPE homeroom_layer_switches_total counter\n",
    );
    out.push_str(&format!(
        "homeroom_layer_switches_total{{direction=\"up\"}} {}\n\
         homeroom_layer_switches_total{{direction=\"down\"}} {}\n",
        SWITCHES_UP.load(Ordering::Relaxed),
        SWITCHES_DOWN.load(Ordering::Relaxed)
    ));
    out.push_str(&format!(
        "# HELP homeroom_viewers_audio_only Viewers receiving audio only, by why.\n\
         # TYPE homeroom_viewers_audio_only gauge\n\
         homeroom_viewers_audio_only{{reason=\"weak\"}} {}\n\
         homeroom_viewers_audio_only{{reason=\"chosen\"}} {}\n",
        AUDIO_ONLY_WEAK.load(Ordering::Relaxed),
        AUDIO_ONLY_CHOSEN.load(Ordering::Relaxed)
    ));
    out.push_str(
        "# HELP homeroom_viewers_by_estimate Viewers by the estimated bandwidth of their link, up to `upto_kbps`.\n\
         # TYPE homeroom_viewers_by_estimate gauge\n",
    );
    let mut from = 0;
    for (top, count) in ESTIMATE_BUCKETS.iter().zip(&ESTIMATES) {
        let upto = if *top == u64::MAX {
            "inf".to_owned()
        } else {
            top.to_string()
        };
        out.push_str(&format!(
            "homeroom_viewers_by_estimate{{from_kbps=\"{from}\",upto_kbps=\"{upto}\"}} {}\n",
            count.load(Ordering::Relaxed).max(0)
        ));
        from = *top;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_estimate_alone_is_no_news() {
        let message = |estimate_kbps, weak| Event::Reception {
            quality: Quality::Auto,
            video: Layer::Low,
            weak,
            estimate_kbps,
            layers: BTreeMap::new(),
        };
        assert!(same_but_estimate(
            &message(300, false),
            &message(900, false)
        ));
        assert!(!same_but_estimate(
            &message(300, false),
            &message(300, true)
        ));
    }
}
